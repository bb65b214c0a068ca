"""Draw the course map for the book's intro page: book/_generated/course_map.svg.

scripts/build_book.py runs it before every build; run it alone with
``python book/course_map.py [output.svg]``. The figure is drawn, not hand-kept,
so that it changes with the course in one place: ``NOTEBOOKS`` below.
"""

from __future__ import annotations

import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch  # noqa: E402
from matplotlib.path import Path as CurvePath  # noqa: E402

# (number, title, what the student runs, part of the course)
NOTEBOOKS = [
    ("00", "Setup and tour", "check your machine;\nhow exercises work", "start"),
    ("01", "Concepts", "scratch vs transfer\nas labels grow", "start"),
    ("02", "Feature extraction", "a frozen base,\na new head", "core"),
    ("03", "Fine-tuning", "unfreeze layers,\nLP-FT, BatchNorm", "core"),
    ("04", "Domain adaptation", "shifted targets:\nAdaBN, CORAL, DANN", "shift"),
    ("05", "Negative transfer", "when transfer hurts,\nand the fix", "shift"),
    ("06", "Choosing a source", "LogME, LEEP, H-score\nbefore training", "shift"),
    ("07", "Real world", "ImageNet backbones,\nphotos, a GPU", "beyond"),
    ("08", "Beyond", "multi-task, stacking,\nprogressive nets", "beyond"),
]
PARTS = {
    "start": ("Start here", "#dbe9f6"),
    "core": ("Reuse a pretrained model", "#dff0d8"),
    "shift": ("When domains and tasks differ", "#fbe5cc"),
    "beyond": ("Scale up and go further", "#eadcf2"),
}
COLUMNS = 3
BOX_W, BOX_H, GAP_X, GAP_Y = 3.7, 1.45, 0.8, 0.75


def box_origin(index: int) -> tuple[float, float]:
    """Lower-left corner of notebook ``index``: rows of three, read left to right."""
    row, col = divmod(index, COLUMNS)
    return col * (BOX_W + GAP_X), -row * (BOX_H + GAP_Y)


def draw(path: Path) -> Path:
    """Draw the map and write it as an SVG file at ``path``; returns ``path``."""
    rows = -(-len(NOTEBOOKS) // COLUMNS)
    width = COLUMNS * BOX_W + (COLUMNS - 1) * GAP_X
    fig, ax = plt.subplots(figsize=(9.6, 1.05 + rows * 2.0))
    for index, (number, title, runs, part) in enumerate(NOTEBOOKS):
        x, y = box_origin(index)
        ax.add_patch(
            FancyBboxPatch(
                (x, y),
                BOX_W,
                BOX_H,
                boxstyle="round,pad=0.02,rounding_size=0.12",
                facecolor=PARTS[part][1],
                edgecolor="#444444",
                linewidth=1.0,
            )
        )
        ax.text(
            x + 0.15,
            y + BOX_H - 0.25,
            f"{number}  {title}",
            fontsize=11,
            fontweight="bold",
            va="top",
        )
        ax.text(
            x + 0.15,
            y + BOX_H - 0.62,
            runs,
            fontsize=10,
            va="top",
            color="#222222",
            linespacing=1.3,
        )
        if index + 1 < len(NOTEBOOKS):
            nx, ny = box_origin(index + 1)
            if ny == y:  # same row: straight to the right
                points = [(x + BOX_W, y + BOX_H / 2), (nx, ny + BOX_H / 2)]
            else:  # next row: down into the gap, left along it, down into the next row's first box
                mid = y - GAP_Y / 2
                points = [
                    (x + BOX_W / 2, y),
                    (x + BOX_W / 2, mid),
                    (nx + BOX_W / 2, mid),
                    (nx + BOX_W / 2, ny + BOX_H),
                ]
            ax.add_patch(
                FancyArrowPatch(
                    path=CurvePath(points),
                    arrowstyle="-|>",
                    mutation_scale=14,
                    color="#555555",
                    linewidth=1.2,
                )
            )
    handles = [
        plt.Rectangle((0, 0), 1, 1, facecolor=color, edgecolor="#444444")
        for _, color in PARTS.values()
    ]
    ax.legend(
        handles,
        [label for label, _ in PARTS.values()],
        loc="upper center",
        ncol=len(PARTS),
        bbox_to_anchor=(0.5, 1.0),
        frameon=False,
        fontsize=10,
        handlelength=1.2,
    )
    bottom = -(rows - 1) * (BOX_H + GAP_Y)
    ax.set_xlim(-0.1, width + 0.1)
    ax.set_ylim(bottom - 0.1, BOX_H + 0.65)
    ax.set_aspect("equal")
    ax.axis("off")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.svg")
    fig.savefig(tmp, format="svg", bbox_inches="tight", metadata={"Date": None})
    plt.close(fig)
    tmp.replace(path)
    return path


if __name__ == "__main__":
    default = Path(__file__).resolve().parent / "_generated" / "course_map.svg"
    print(draw(Path(sys.argv[1]) if len(sys.argv) > 1 else default))
