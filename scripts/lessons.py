"""Run the notebooks' lessons for several seeds: every claim a notebook makes must hold on each.

    python scripts/lessons.py                                  # every notebook, seeds 0 1 2
    python scripts/lessons.py notebooks/03_fine_tuning.ipynb --seeds 0 1 2
    python scripts/lessons.py --json out/lessons.json          # also write the table as JSON
    python scripts/lessons.py notebooks/01_concepts.ipynb --show   # also print what lesson cells print
    python scripts/lessons.py --save out/executed              # also keep every executed copy
    python scripts/lessons.py --student-seeds                  # only solution copies

Each notebook is executed in a fresh kernel, once per seed, from a copy whose parameters cell
says ``SEED = <seed>`` (the stored notebook is never written). For the seeds in
``--student-seeds`` (default: 1) the copy is the *student* copy (solutions removed, as
``python -m tltutor student-copy`` writes it): then every exercise check must also report
"not attempted", none may say "correct", and the kernel must stay under 3 GB of memory.

A cell tagged ``lesson`` holds the asserts that guard what the prose says; the run fails when
any of them (or any other cell) raises for any seed. The table printed at the end has one row
per notebook and seed: lesson cells passed, the first failure, the wall time, the kernel's CPU
time (on a busy machine the steadier figure), its ratio to the notebook's budget (``budget_s`` in
the notebook's ``tltutor`` metadata: its time on two quiet cores; over 1.5x fails the run, so run
this on a quiet machine) and the kernel's peak memory.
``make lessons`` runs this for every notebook (slow: each notebook runs three times, about
45 minutes on two quiet cores). CI executes each notebook once (the book build, seed 0); this
is the check of seeds 1 and 2 and of the student copies.
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
from nbclient.exceptions import CellTimeoutError, DeadKernelError

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from tltutor.student import make_student_copy  # noqa: E402

BUDGET_FACTOR = 1.5  # a run longer than 1.5 x the notebook's budget fails (run on a quiet machine)
PEAK_RSS_LIMIT_MB = 3072  # a lab-scale notebook must fit a small laptop next to a browser
CPU_CELL = (  # appended to each copy: the kernel's CPU time and peak resident memory (Linux)
    "import os as _os\n_t = _os.times()\nprint('KERNEL_CPU_S', round(_t.user + _t.system, 1))\n"
    "if _os.path.exists('/proc/self/status'):\n"
    "    _hwm = [l for l in open('/proc/self/status') if l.startswith('VmHWM:')][0]\n"
    "    print('PEAK_RSS_MB', int(_hwm.split()[1]) // 1024)"
)


def with_seed(nb: nbformat.NotebookNode, seed: int) -> nbformat.NotebookNode:
    """Set ``SEED = seed`` in the notebook's ``parameters`` cell (which must set SEED on its own line).

    >>> nb = nbformat.v4.new_notebook(cells=[
    ...     nbformat.v4.new_code_cell("SEED = 0  # first seed\\nSCALE = 'lab'", metadata={"tags": ["parameters"]})])
    >>> with_seed(nb, 2).cells[0].source
    "SEED = 2  # first seed\\nSCALE = 'lab'"
    """
    cell = next((c for c in nb.cells if "parameters" in c.metadata.get("tags", [])), None)
    if cell is None:
        raise ValueError("the notebook has no cell tagged 'parameters'")
    # the value only: a comment after it stays
    cell.source, count = re.subn(
        r"(?m)^SEED\s*=\s*[^#\n]*?(?=\s*(#|$))", f"SEED = {seed}", cell.source
    )
    if count != 1:
        raise ValueError("the parameters cell must set SEED on a line of its own")
    return nb


def cell_error(cell: nbformat.NotebookNode) -> str | None:
    """The error a code cell raised, as ``Name: message``, or None."""
    for output in cell.get("outputs", []):
        if output.get("output_type") == "error":
            return f"{output.get('ename')}: {output.get('evalue')}"[:300]
    return None


def run_once(
    path: Path, seed: int, timeout: int, *, student: bool = False, save: Path | None = None
) -> dict:
    """Execute a seeded copy of ``path`` (the student copy when ``student``); return the lesson
    verdicts, errors, times and peak memory. ``save``: a folder to keep the executed copy in."""
    nb = nbformat.read(path, as_version=4)
    budget = float(nb.metadata.get("tltutor", {}).get("budget_s", 60))
    if student:
        nb = make_student_copy(nb)
    nb = with_seed(nb, seed)
    num_checks = sum("check" in c.metadata.get("tags", []) for c in nb.cells)
    nb.cells.append(nbformat.v4.new_code_cell(CPU_CELL))
    client = NotebookClient(
        nb,
        timeout=timeout,
        kernel_name="python3",
        allow_errors=True,
        resources={"metadata": {"path": str(path.parent)}},
    )
    start = time.perf_counter()
    # a cell that runs out of time (or a kernel that dies) ends this run, not the whole table
    stopped = None
    try:
        client.execute()
    except (CellTimeoutError, DeadKernelError) as error:
        stopped = f"stopped: {type(error).__name__}: {str(error).splitlines()[0][:200]}"
    wall = time.perf_counter() - start
    if save is not None:
        save.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, save / f"{path.stem}_seed{seed}.ipynb")
    lessons, failures, printed = 0, [stopped] if stopped else [], []
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
    peak = re.search(r"PEAK_RSS_MB (\d+)", text)
    if peak and int(peak.group(1)) >= PEAK_RSS_LIMIT_MB:
        failures.append(f"the kernel peaked at {peak.group(1)} MB (limit {PEAK_RSS_LIMIT_MB} MB)")
    if student:
        failures += student_copy_problems(nb, num_checks)
    if wall > BUDGET_FACTOR * budget:
        failures.append(f"took {wall:.0f} s, over {BUDGET_FACTOR} x its budget of {budget:.0f} s")
    lesson_failures = sum("(lesson)" in f for f in failures)
    return {
        "notebook": path.name,
        "copy": "student" if student else "solution",
        "seed": seed,
        "lessons": lessons,
        "passed": lessons - lesson_failures,
        "failures": failures,
        "printed": [p for p in printed if p],
        "wall_s": round(wall, 1),
        "kernel_cpu_s": float(cpu.group(1)) if cpu else None,
        "budget_s": budget,
        "peak_rss_mb": int(peak.group(1)) if peak else None,
    }


def student_copy_problems(nb: nbformat.NotebookNode, num_checks: int) -> list[str]:
    """What is wrong with an executed student copy: a check that did not say "not attempted"."""
    printed = "\n".join(
        o.get("text", "") or o.get("data", {}).get("text/plain", "")
        for c in nb.cells
        for o in c.get("outputs", [])
    )
    problems = []
    if printed.count("not attempted") < num_checks:
        problems.append(
            f"{num_checks} checks but {printed.count('not attempted')} said 'not attempted'"
        )
    if "] correct" in printed:
        problems.append("a check of the student copy (no answers) said 'correct'")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    parser.add_argument("notebooks", nargs="*", type=Path, help="notebooks to run (default: all)")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2], help="seeds to run")
    parser.add_argument(
        "--student-seeds",
        nargs="*",
        type=int,
        default=[1],
        help="seeds whose run uses the student copy (solutions removed); none: only solutions",
    )
    parser.add_argument("--timeout", type=int, default=600, help="seconds allowed per cell")
    parser.add_argument("--json", type=Path, help="also write the rows to this JSON file")
    parser.add_argument(
        "--show", action="store_true", help="also print what the lesson cells print"
    )
    parser.add_argument(
        "--save",
        type=Path,
        help="also keep each executed copy here, as <notebook>_seed<k>.ipynb (every printed value)",
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
    print(
        f"{'notebook':28} {'copy':8} seed  lessons  wall s  CPU s  wall/budget  peak MB  first failure"
    )
    for path in paths:
        for seed in args.seeds:
            row = run_once(
                path.resolve(),
                seed,
                args.timeout,
                student=seed in args.student_seeds,
                save=args.save,
            )
            rows.append(row)
            first = row["failures"][0] if row["failures"] else "-"
            print(
                f"{row['notebook']:28} {row['copy']:8} {seed:4}  {row['passed']:3}/{row['lessons']:<3}"
                f"  {row['wall_s']:6.1f}  {row['kernel_cpu_s'] or float('nan'):5.0f}"
                f"  {row['wall_s'] / row['budget_s']:10.2f}x  {row['peak_rss_mb'] or 0:7}  {first}",
                flush=True,
            )
            if args.show and row["printed"]:
                print("    " + "\n    ".join("\n".join(row["printed"]).splitlines()), flush=True)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(rows, indent=2))
    failed = [r for r in rows if r["failures"]]
    for row in failed:
        print(
            f"\nFAILED {row['notebook']} ({row['copy']}) seed {row['seed']}:\n  "
            + "\n  ".join(row["failures"])
        )
    checked = sum(r["lessons"] for r in rows)
    print(
        f"\n{sum(r['passed'] for r in rows)} passed, {checked - sum(r['passed'] for r in rows)} failed "
        f"(lesson cells over {len(rows)} notebook runs)"
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
