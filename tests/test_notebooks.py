"""Every notebook's student copy (solutions removed) runs top to bottom with another seed.

The solution version is run by nbval (``pytest --nbval-lax`` collects ``notebooks/``), which
also compares the outputs of cells marked ``# NBVAL_CHECK_OUTPUT``. Here the student copy is
executed with ``SEED = 1`` injected into the parameters cell: every exercise check must report
"not attempted", nothing may fail, and the lesson assertions (cells tagged ``lesson``) must
hold for this seed too. Wall times and the kernel's peak memory (limit 3 GB) are printed and written to
``out/notebook_times.json``; a notebook may take at most 1.5 times its budget (``budget_s`` in the
notebook's ``tltutor`` metadata, 60 s when absent: the time it should take on two quiet CPU cores).
"""

import json
import os
import pathlib
import re
import time

import nbformat
import pytest
from nbclient import NotebookClient

from tltutor.student import make_student_copy

ROOT = pathlib.Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
TIMES = ROOT / "out" / "notebook_times.json"
EXECUTED = os.environ.get("TLTUTOR_EXECUTED")  # notebooks the book build executed (see conftest.py)
WIDGET = "application/vnd.jupyter.widget-view+json"
PEAK_RSS_LIMIT_MB = 3072  # a lab-scale notebook must fit a small laptop next to a browser
PEAK_RSS_CELL = (  # appended to the copy: the kernel's own peak resident memory (Linux)
    "import os\n"
    "if os.path.exists('/proc/self/status'):\n"
    "    _hwm = [l for l in open('/proc/self/status') if l.startswith('VmHWM:')][0]\n"
    "    print('PEAK_RSS_MB', int(_hwm.split()[1]) // 1024)"
)


def with_seed(nb, seed: int):
    cell = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
    cell.source, count = re.subn(r"(?m)^SEED\s*=.*$", f"SEED = {seed}", cell.source)
    assert count == 1, "the parameters cell must set SEED on a line of its own"
    return nb


def outputs_text(nb) -> str:
    parts = []
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            parts.append(output.get("text", "") or output.get("data", {}).get("text/plain", ""))
    return "\n".join(parts)


def budget_seconds(nb) -> float:
    """The notebook's time budget on two quiet CPU cores, from its metadata (``tltutor.budget_s``)."""
    return float(nb.metadata.get("tltutor", {}).get("budget_s", 60))


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


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_student_copy_runs_with_another_seed(path):
    nb = with_seed(make_student_copy(nbformat.read(path, as_version=4)), seed=1)
    source = "\n".join(c.source for c in nb.cells)
    assert "BEGIN SOLUTION" not in source
    num_checks = sum("check" in c.metadata.get("tags", []) for c in nb.cells)
    nb.cells.append(nbformat.v4.new_code_cell(PEAK_RSS_CELL))
    start = time.perf_counter()
    NotebookClient(
        nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}
    ).execute()
    seconds = time.perf_counter() - start
    times = json.loads(TIMES.read_text()) if TIMES.exists() else {}
    text = outputs_text(nb)
    peak = re.search(r"PEAK_RSS_MB (\d+)", text)
    times[path.name] = {
        "seconds": round(seconds, 1),
        "peak_rss_mb": int(peak.group(1)) if peak else None,
    }
    TIMES.parent.mkdir(exist_ok=True)
    TIMES.write_text(json.dumps(times, indent=2, sort_keys=True))
    budget = budget_seconds(nb)
    print(
        f"{path.name}: student copy ran in {seconds:.1f} s (budget {budget:.0f} s), "
        f"kernel peak RSS {times[path.name]['peak_rss_mb']} MB"
    )
    if peak:
        assert int(peak.group(1)) < PEAK_RSS_LIMIT_MB, (
            f"{path.name} peaked at {peak.group(1)} MB of memory"
        )
    assert seconds <= 1.5 * budget, (
        f"{path.name} took {seconds:.0f} s, over 1.5 x its budget of {budget:.0f} s"
    )
    assert text.count("not attempted") >= num_checks, (
        f"{num_checks} checks, output:\n{text[-3000:]}"
    )
    assert "] correct" not in text


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
