"""Run the notebooks' lessons for several seeds: every claim a notebook makes must hold on each.

    python scripts/lessons.py                                  # every notebook, seeds 0 1 2
    python scripts/lessons.py notebooks/03_fine_tuning.ipynb --seeds 0 1 2
    python scripts/lessons.py --json out/lessons.json          # also write the table as JSON
    python scripts/lessons.py notebooks/01_concepts.ipynb --show   # also print what lesson cells print

Each notebook is executed in a fresh kernel, once per seed, from a copy whose parameters cell
says ``SEED = <seed>`` (the stored notebook is never written). A cell tagged ``lesson`` holds
the asserts that guard what the prose says; the run fails when any of them (or any other cell)
raises for any seed. The table printed at the end has one row per notebook and seed: lesson
cells passed, the first failure, the wall time and the kernel's CPU time (on a busy machine the
CPU time is the steadier figure). ``make lessons`` runs this for every notebook (slow: each
notebook runs three times).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parent.parent
CPU_CELL = (
    "import os as _os\n_t = _os.times()\nprint('KERNEL_CPU_S', round(_t.user + _t.system, 1))"
)


def with_seed(nb: nbformat.NotebookNode, seed: int) -> nbformat.NotebookNode:
    """Set ``SEED = seed`` in the notebook's ``parameters`` cell (which must set SEED on its own line).

    >>> nb = nbformat.v4.new_notebook(cells=[
    ...     nbformat.v4.new_code_cell("SEED = 0\\nSCALE = 'lab'", metadata={"tags": ["parameters"]})])
    >>> with_seed(nb, 2).cells[0].source
    "SEED = 2\\nSCALE = 'lab'"
    """
    cell = next((c for c in nb.cells if "parameters" in c.metadata.get("tags", [])), None)
    if cell is None:
        raise ValueError("the notebook has no cell tagged 'parameters'")
    cell.source, count = re.subn(r"(?m)^SEED\s*=.*$", f"SEED = {seed}", cell.source)
    if count != 1:
        raise ValueError("the parameters cell must set SEED on a line of its own")
    return nb


def cell_error(cell: nbformat.NotebookNode) -> str | None:
    """The error a code cell raised, as ``Name: message``, or None."""
    for output in cell.get("outputs", []):
        if output.get("output_type") == "error":
            return f"{output.get('ename')}: {output.get('evalue')}"[:300]
    return None


def run_once(path: Path, seed: int, timeout: int) -> dict:
    """Execute a seeded copy of ``path``; return the lesson verdicts, errors and times."""
    nb = with_seed(nbformat.read(path, as_version=4), seed)
    nb.cells.append(nbformat.v4.new_code_cell(CPU_CELL))
    client = NotebookClient(
        nb,
        timeout=timeout,
        kernel_name="python3",
        allow_errors=True,
        resources={"metadata": {"path": str(path.parent)}},
    )
    start = time.perf_counter()
    client.execute()
    wall = time.perf_counter() - start
    lessons, failures, printed = 0, [], []
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        error = cell_error(cell)
        is_lesson = "lesson" in cell.metadata.get("tags", [])
        lessons += is_lesson
        if is_lesson:
            printed.append("".join(o.get("text", "") for o in cell.get("outputs", [])).strip())
        if error:
            failures.append(f"cell {index}{' (lesson)' if is_lesson else ''}: {error}")
    text = "".join(o.get("text", "") for o in nb.cells[-1].get("outputs", []))
    cpu = re.search(r"KERNEL_CPU_S ([\d.]+)", text)
    lesson_failures = sum("(lesson)" in f for f in failures)
    return {
        "notebook": path.name,
        "seed": seed,
        "lessons": lessons,
        "passed": lessons - lesson_failures,
        "failures": failures,
        "printed": [p for p in printed if p],
        "wall_s": round(wall, 1),
        "kernel_cpu_s": float(cpu.group(1)) if cpu else None,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    parser.add_argument("notebooks", nargs="*", type=Path, help="notebooks to run (default: all)")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2], help="seeds to run")
    parser.add_argument("--timeout", type=int, default=600, help="seconds allowed per cell")
    parser.add_argument("--json", type=Path, help="also write the rows to this JSON file")
    parser.add_argument(
        "--show", action="store_true", help="also print what the lesson cells print"
    )
    args = parser.parse_args(argv)
    paths = args.notebooks or sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        print(f"lessons: no such notebook: {', '.join(missing)}", file=sys.stderr)
        return 2
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("TLTUTOR_QUIET", "1")
    os.environ.setdefault("TLTUTOR_CACHE", tempfile.mkdtemp(prefix="tltutor-lessons-cache-"))
    rows = []
    print(f"{'notebook':32} seed  lessons  wall s  kernel CPU s  first failure")
    for path in paths:
        for seed in args.seeds:
            row = run_once(path.resolve(), seed, args.timeout)
            rows.append(row)
            first = row["failures"][0] if row["failures"] else "-"
            print(
                f"{row['notebook']:32} {seed:4}  {row['passed']:3}/{row['lessons']:<3}  {row['wall_s']:6.1f}"
                f"  {row['kernel_cpu_s'] or float('nan'):12.1f}  {first}",
                flush=True,
            )
            if args.show and row["printed"]:
                print("    " + "\n    ".join("\n".join(row["printed"]).splitlines()), flush=True)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(rows, indent=2))
    failed = [r for r in rows if r["failures"]]
    for row in failed:
        print(f"\nFAILED {row['notebook']} seed {row['seed']}:\n  " + "\n  ".join(row["failures"]))
    checked = sum(r["lessons"] for r in rows)
    print(
        f"\n{sum(r['passed'] for r in rows)} passed, {checked - sum(r['passed'] for r in rows)} failed "
        f"(lesson cells over {len(rows)} notebook runs)"
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
