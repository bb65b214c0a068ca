"""The course notebooks: numbered in order, and (in CI) the book build's executed copies checked.

Each notebook is executed once per CI run. Without ``TLTUTOR_EXECUTED``, nbval executes the
solution notebooks (``pytest --nbval-lax`` collects ``notebooks/``) and compares the outputs of
cells marked ``# NBVAL_CHECK_OUTPUT``. CI builds the book first, which executes every notebook,
and sets ``TLTUTOR_EXECUTED`` to the folder of executed copies: conftest.py then skips nbval and
:func:`test_book_executed_copy` checks those copies instead (same code, no error, checked
outputs as stored).

The student copies (solutions removed) with ``SEED = 1``, and the solutions with ``SEED = 2``,
run in ``make lessons`` (scripts/lessons.py): every lesson assertion must hold on seeds 0, 1
and 2, and every check of a student copy must say "not attempted". Times are reported there and
by ``bench/bench.py --notebooks`` as ratios to each notebook's budget, not asserted here.
"""

import os
import pathlib
import re

import nbformat
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
EXECUTED = os.environ.get("TLTUTOR_EXECUTED")  # notebooks the book build executed (see conftest.py)
WIDGET = "application/vnd.jupyter.widget-view+json"


def checked_text(cell) -> str:
    """What a ``# NBVAL_CHECK_OUTPUT`` cell printed: its streams and plain-text results, not widgets."""
    parts = []
    for output in cell.get("outputs", []):
        if output.get("output_type") == "stream":
            parts.append(output.get("text", ""))
        elif "text/plain" in output.get("data", {}) and WIDGET not in output.get("data", {}):
            parts.append(output["data"]["text/plain"])
    return "".join(parts).rstrip()


def test_notebooks_exist_in_order():
    numbers = [int(p.name[:2]) for p in NOTEBOOKS]
    assert numbers[:4] == [0, 1, 2, 3], [p.name for p in NOTEBOOKS]
    assert numbers == list(range(len(numbers))), "notebooks are numbered 00, 01, ... without gaps"


@pytest.mark.skipif(
    not EXECUTED, reason="nbval executes the notebooks (TLTUTOR_EXECUTED is not set)"
)
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_book_executed_copy(path):
    """The book build's execution stands in for nbval's: same code, no error, checked outputs as stored."""
    executed = pathlib.Path(EXECUTED) / path.name
    assert executed.is_file(), (
        f"{executed} is missing: build the book first (make book) or unset TLTUTOR_EXECUTED"
    )
    stored, ran = nbformat.read(path, as_version=4), nbformat.read(executed, as_version=4)
    stored_code = [c for c in stored.cells if c.cell_type == "code"]
    ran_code = [c for c in ran.cells if c.cell_type == "code"]
    assert [c.source for c in ran_code] == [c.source for c in stored_code], (
        f"{executed} was executed from other code than {path.name}: rebuild the book"
    )
    errors = [
        f"cell {i}: {o.get('ename')}: {o.get('evalue')}"
        for i, c in enumerate(ran_code)
        for o in c.get("outputs", [])
        if o.get("output_type") == "error"
    ]
    assert not errors, errors
    for index, (want, got) in enumerate(zip(stored_code, ran_code)):
        if "NBVAL_CHECK_OUTPUT" in want.source:
            assert checked_text(got) == checked_text(want), (
                f"{path.name}, code cell {index}: output changed"
            )


def test_stored_notebooks_show_the_shipped_source_checkpoint():
    """A stored output that names the source checkpoint names the one the package ships.

    nbval's lax mode compares only marked cells, so after a new checkpoint the stored notebooks
    kept showing the old one (notebook 00 said 0.908 and weights 2873e7c448b2 for two days).
    """
    from tltutor import models

    meta = models.source_metadata("TLNet")
    shipped = f"ok ({meta['sha256'][:12]})"
    stale = []
    for path in NOTEBOOKS:
        for index, cell in enumerate(nbformat.read(path, as_version=4).cells):
            for output in cell.get("outputs", []):
                data = output.get("data", {})
                text = output.get("text", "") + str(data.get("text/html", ""))
                for mention in re.findall(r"weights: TLNet</td><td><code>(ok \(\w+\))", text):
                    if mention != shipped:
                        stale.append(f"{path.name} cell {index}: {mention}")
    stored = nbformat.read(ROOT / "notebooks" / "00_setup.ipynb", as_version=4)
    printed = "".join(o.get("text", "") for c in stored.cells for o in c.get("outputs", []))
    accuracy = f"held-out source images: {meta['test_accuracy_inference']:.3f}"
    assert not stale and accuracy in printed, (
        f"run the notebooks again and store them (scripts/lessons.py --save): {stale or accuracy}"
    )
