"""scripts/lessons.py: a notebook's lesson cells must hold for every seed, and a student copy
must leave every check "not attempted"."""

import importlib.util
import pathlib

import nbformat

ROOT = pathlib.Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("lessons", ROOT / "scripts" / "lessons.py")
lessons = importlib.util.module_from_spec(spec)
spec.loader.exec_module(lessons)


def tiny_notebook(path: pathlib.Path) -> pathlib.Path:
    cells = [
        nbformat.v4.new_code_cell("SEED = 0", metadata={"tags": ["parameters"]}),
        nbformat.v4.new_code_cell(
            "### BEGIN SOLUTION\nanswer = 2 * SEED\n### END SOLUTION",
            metadata={"tags": ["exercise"]},
        ),
        nbformat.v4.new_code_cell(
            "print('[00.1] correct' if answer is not None else '[00.1] not attempted')",
            metadata={"tags": ["check"]},
        ),
        nbformat.v4.new_code_cell(
            "assert SEED != 2, 'this lesson fails on seed 2'", metadata={"tags": ["lesson"]}
        ),
    ]
    nbformat.write(nbformat.v4.new_notebook(cells=cells), path / "00_tiny.ipynb")
    return path / "00_tiny.ipynb"


def test_seeds_student_copies_and_failures(tmp_path):
    path = tiny_notebook(tmp_path)
    solution = lessons.run_once(path, 0, timeout=60)
    assert solution["copy"] == "solution" and solution["passed"] == 1 and not solution["failures"]
    assert solution["peak_rss_mb"] and solution["kernel_cpu_s"] is not None
    student = lessons.run_once(path, 1, timeout=60, student=True)
    assert student["copy"] == "student" and not student["failures"], student["failures"]
    failing = lessons.run_once(path, 2, timeout=60, save=tmp_path / "executed")
    assert failing["passed"] == 0 and "this lesson fails on seed 2" in failing["failures"][0]
    kept = nbformat.read(tmp_path / "executed" / "00_tiny_seed2.ipynb", as_version=4)
    assert "SEED = 2" in kept.cells[0].source and "this lesson fails" in str(kept.cells[-2].outputs)


def test_a_cell_that_runs_out_of_time_is_a_failed_row_not_a_crash(tmp_path):
    cells = [
        nbformat.v4.new_code_cell("SEED = 0", metadata={"tags": ["parameters"]}),
        nbformat.v4.new_code_cell("import time\ntime.sleep(30)"),
    ]
    path = tmp_path / "00_slow.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=cells), path)
    row = lessons.run_once(path, 0, timeout=2)
    assert row["failures"] and row["failures"][0].startswith("stopped: CellTimeoutError")
    assert row["wall_s"] < 25


def test_a_student_copy_that_says_correct_is_a_failure():
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x")])
    nb.cells[0].outputs = [nbformat.v4.new_output("stream", text="[01.1] correct\n")]
    problems = lessons.student_copy_problems(nb, num_checks=1)
    assert any("not attempted" in p for p in problems) and any("correct" in p for p in problems)


def test_with_seed_changes_the_value_and_keeps_the_comment():
    import doctest

    cell = nbformat.v4.new_code_cell(
        "SEED = 0  # sections 2-7 use SEED\nSCALE = 'lab'", metadata={"tags": ["parameters"]}
    )
    nb = lessons.with_seed(nbformat.v4.new_notebook(cells=[cell]), 12)
    assert nb.cells[0].source == "SEED = 12  # sections 2-7 use SEED\nSCALE = 'lab'"
    plain = nbformat.v4.new_code_cell("SEED = 3\n", metadata={"tags": ["parameters"]})
    assert (
        lessons.with_seed(nbformat.v4.new_notebook(cells=[plain]), 1).cells[0].source
        == "SEED = 1\n"
    )
    finder = doctest.DocTestFinder()
    runner = doctest.DocTestRunner()
    for test in finder.find(
        lessons.with_seed, globs={"nbformat": nbformat, "with_seed": lessons.with_seed}
    ):
        runner.run(test)
    assert runner.failures == 0 and runner.tries > 0
