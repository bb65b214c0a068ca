"""Tests of tltutor.grade: ``python -m tltutor grade`` on a class of small notebook-00 submissions.

The class comes from scripts/make_demo_class.py in its light form (the set-up imports only
NumPy and the checkers, then come notebook 00's exercise and check cells), so that each
notebook runs in a few seconds. One slow test grades the real notebook 00.
"""

import csv
import importlib.util
import json
import shutil
import sys
from pathlib import Path

import nbformat
import pytest

from tltutor import cli, grade
from tltutor.student import make_student_copy

ROOT = Path(__file__).resolve().parents[1]
NB00 = ROOT / "notebooks" / "00_setup.ipynb"


def _demo_module():
    spec = importlib.util.spec_from_file_location(
        "make_demo_class", ROOT / "scripts" / "make_demo_class.py"
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


demo = _demo_module()
ITEMS = list(grade.catalog("00"))
OPTIONS = grade.Options(timeout=60, memory_mb=2048)


def _rows(path):
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def _by_student(rows):
    table = {}
    for row in rows:
        table.setdefault(row["student"], {})[row["exercise"]] = (row["status"], row["message"])
    return table


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """The light demo class graded with -j 2: (class folder, gradebook, rows by student, log)."""
    root = tmp_path_factory.mktemp("class") / "submissions"
    out = root.parent / "gradebook"
    demo.make_class(root, lite=True)
    log = []
    rows = grade.grade(root, out, jobs=2, options=OPTIONS, log=log.append)
    return root, out, _by_student(rows), log


def _order():
    nb = demo.light(nbformat.read(NB00, as_version=4))
    return demo.item_ids(nb)


# ------------------------------------------------------------------ the class


def test_the_class_covers_every_item_of_notebook_00(graded):
    _, out, table, _ = graded
    assert set(table) == {
        "ada_all_correct",
        "ben_all_stubs",
        "cai_mixed",
        "dee_reregisters_checkers",
        "eve_edits_progress",
        "fay_kills_kernel",
        "gus_loops_forever",
        "hal_broken_json",
        "ivy_prints_100mb",
        "jon_fills_memory",
        "kim_forges_verdicts",
        "lea_no_notebook",
    }
    assert set(ITEMS) == set(_order()) and len(ITEMS) >= 4
    for student, items in table.items():
        if student != "lea_no_notebook":
            assert sorted(items) == sorted(ITEMS), student
    assert _by_student(_rows(out / "grades.csv")) == table


def test_the_solution_is_all_correct_and_the_student_copy_all_not_attempted(graded):
    table = graded[2]
    assert {status for status, _ in table["ada_all_correct"].values()} == {"correct"}
    assert {status for status, _ in table["ben_all_stubs"].values()} == {"not attempted"}


def test_mixed_answers_get_their_own_verdicts(graded):
    order = _order()
    exercises_only = [i for i in order if grade.catalog("00")[i].kind == "exercise"]
    mixed = graded[2]["cai_mixed"]
    assert mixed[exercises_only[-1]][0] == "not yet"
    assert mixed[order[-1]][0] == "not attempted"
    others = set(order) - {exercises_only[-1], order[-1]}
    assert others and all(mixed[i][0] == "correct" for i in others)


@pytest.mark.parametrize(
    "student", ["dee_reregisters_checkers", "eve_edits_progress", "kim_forges_verdicts"]
)
def test_cheats_earn_no_credit(graded, student):
    statuses = {status for status, _ in graded[2][student].values()}
    assert "correct" not in statuses and "error" not in statuses, graded[2][student]
    expected = "not attempted" if student == "eve_edits_progress" else "not yet"
    assert statuses == {expected}


def test_a_kernel_killer_keeps_what_was_checked_before(graded):
    order = _order()
    killed_after = next(i for i in order if grade.catalog("00")[i].kind == "exercise")
    rows = graded[2]["fay_kills_kernel"]
    before = order[: order.index(killed_after) + 1]
    assert all(rows[i][0] == "correct" for i in before)
    after = [i for i in order if i not in before]
    assert after and all(rows[i][0] == "error" and "kernel died" in rows[i][1] for i in after)


def test_an_endless_loop_is_stopped_by_the_time_limit(graded):
    order = _order()
    rows = graded[2]["gus_loops_forever"]
    assert rows[order[0]][0] == "correct"
    assert all(rows[i][0] == "error" and "time limit of 60 s" in rows[i][1] for i in order[1:])


def test_a_broken_file_and_an_empty_folder_get_error_rows(graded):
    table = graded[2]
    assert all(
        status == "error" and "not valid JSON" in message
        for status, message in table["hal_broken_json"].values()
    )
    assert table["lea_no_notebook"] == {
        "": ("error", "no notebook (.ipynb) in this student's folder")
    }


def test_a_100_mb_print_is_cut_and_the_notebook_still_graded(graded):
    _, out, table, _ = graded
    assert {status for status, _ in table["ivy_prints_100mb"].values()} == {"correct"}
    stored = next((out / "results").glob("ivy_prints_100mb/*.json"))
    assert stored.stat().st_size < 100_000
    assert any(
        "output cut at 1,000,000 characters" in note
        for note in json.loads(stored.read_text())["notes"]
    )


def test_filling_memory_hits_the_limit_and_every_item_gets_a_row(graded):
    _, out, table, _ = graded
    rows = table["jon_fills_memory"]
    assert rows[_order()[0]][0] == "correct"  # checked before the memory ran out
    assert all(
        status == "correct" or (status == "error" and "memory" in message)
        for status, message in rows.values()
    )
    notes = json.loads(next((out / "results").glob("jon_fills_memory/*.json")).read_text())["notes"]
    assert any("raised MemoryError" in note for note in notes), notes


def test_summary_table_plot_and_feedback_pages(graded):
    _, out, table, _ = graded
    summary = _rows(out / "summary.csv")
    assert [row["exercise"] for row in summary] == sorted(ITEMS, key=grade._id_key)
    for row in summary:
        right = sum(items.get(row["exercise"], ("",))[0] == "correct" for items in table.values())
        assert int(row["correct"]) == right
        assert sum(int(row[s]) for s in grade.STATUSES) == int(row["students"]) == 11
    assert (out / "summary.md").read_text().startswith("| exercise | students | correct |")
    assert (out / "summary.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    pages = sorted(p.name for p in (out / "feedback").glob("*.html"))
    assert pages == sorted(f"{name}.html" for name in table)
    page = (out / "feedback" / "ben_all_stubs.html").read_text()
    assert "not attempted" in page and "<details><summary>hints</summary>" in page
    assert "<script" not in (out / "feedback" / "kim_forges_verdicts.html").read_text()


def test_parallel_and_serial_give_the_same_gradebook_and_a_rerun_skips(graded, tmp_path):
    root, out, _, _ = graded
    subset = tmp_path / "subset"
    for student in ("ada_all_correct", "dee_reregisters_checkers", "hal_broken_json"):
        shutil.copytree(root / student, subset / student)
    serial = tmp_path / "serial"
    rows = grade.grade(subset, serial, jobs=1, options=OPTIONS, log=lambda line: None)
    parallel = [
        row for row in _rows(out / "grades.csv") if row["student"] in {r["student"] for r in rows}
    ]
    assert _rows(serial / "grades.csv") == parallel
    for student in ("ada_all_correct", "dee_reregisters_checkers", "hal_broken_json"):
        name = f"{student}.html"
        assert (serial / "feedback" / name).read_text() == (out / "feedback" / name).read_text()
    before = (serial / "grades.csv").read_bytes()
    log = []
    grade.grade(subset, serial, jobs=1, options=OPTIONS, log=log.append)
    assert "0 to grade, 3 already graded" in log[0]
    assert (serial / "grades.csv").read_bytes() == before
    shutil.copyfile(
        root / "ada_all_correct" / "00_setup.ipynb", subset / "hal_broken_json" / "00_setup.ipynb"
    )
    log = []
    rows = grade.grade(subset, serial, jobs=1, options=OPTIONS, log=log.append)
    assert "1 to grade, 2 already graded" in log[0]
    assert {r["status"] for r in rows if r["student"] == "hal_broken_json"} == {"correct"}


# ------------------------------------------------------------------ without a kernel


def test_an_interrupted_run_leaves_no_gradebook_and_resumes(tmp_path, monkeypatch):
    root = tmp_path / "class"
    for student in ("a", "b", "c"):
        (root / student).mkdir(parents=True)
        (root / student / "00_setup.ipynb").write_text("{ not json")
    real = grade.grade_notebook
    calls = []

    def interrupted(submission, options):
        calls.append(submission.student)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(submission, options)

    monkeypatch.setattr(grade, "grade_notebook", interrupted)
    out = tmp_path / "gradebook"
    with pytest.raises(KeyboardInterrupt):
        grade.grade(root, out, log=lambda line: None)
    assert not (out / "grades.csv").exists() and not (out / "summary.png").exists()
    assert [p.parent.name for p in (out / "results").glob("*/*.json")] == ["a"]
    assert not list(out.rglob("*.tmp"))
    monkeypatch.setattr(grade, "grade_notebook", real)
    log = []
    rows = grade.grade(root, out, log=log.append)
    assert "2 to grade, 1 already graded" in log[0]
    assert {r["student"] for r in rows} == {"a", "b", "c"} and {r["status"] for r in rows} == {
        "error"
    }


def test_both_layouts_are_found(tmp_path):
    lms = tmp_path / "lms"
    for path in (
        "ada/00_setup.ipynb",
        "ben/00_setup (1).ipynb",
        "ben/.ipynb_checkpoints/00_setup-checkpoint.ipynb",
    ):
        (lms / path).parent.mkdir(parents=True, exist_ok=True)
        (lms / path).write_text("{}")
    (lms / "cy").mkdir()
    found = [(s.student, s.notebook) for s in grade.find_submissions(lms)]
    assert found == [("ada", "00_setup.ipynb"), ("ben", "00_setup (1).ipynb"), ("cy", "")]
    course = tmp_path / "nbgrader"
    (course / "submitted" / "ada" / "ps1").mkdir(parents=True)
    (course / "submitted" / "ada" / "ps1" / "00_setup.ipynb").write_text("{}")
    (course / "source" / "ps1").mkdir(parents=True)
    for root in (course, course / "submitted"):
        assert [(s.student, s.notebook) for s in grade.find_submissions(root)] == [
            ("ada", "ps1/00_setup.ipynb")
        ]


def test_mistakes_in_the_command_get_clear_errors(tmp_path, capsys):
    (tmp_path / "loose").mkdir()
    (tmp_path / "loose" / "00_setup.ipynb").write_text("{}")
    assert cli.main(["grade", str(tmp_path / "loose"), "-o", str(tmp_path / "out")]) == 2
    assert "put each student's notebooks in their own subfolder" in capsys.readouterr().err
    assert cli.main(["grade", str(tmp_path / "missing"), "-o", str(tmp_path / "out")]) == 2
    assert "is not a folder" in capsys.readouterr().err
    (tmp_path / "class" / "ada").mkdir(parents=True)
    assert (
        cli.main(["grade", str(tmp_path / "class"), "-o", str(grade.PACKAGE_DIR / "gradebook")])
        == 2
    )
    assert "inside the tltutor package" in capsys.readouterr().err
    assert cli.main(["grade", str(tmp_path / "class"), "-o", str(tmp_path / "class" / "gb")]) == 2
    assert "inside the submissions" in capsys.readouterr().err
    assert not (grade.PACKAGE_DIR / "gradebook").exists()


def test_check_calls_and_notebook_numbers():
    source = (
        "%time x = 1\n"
        'exercises.check("02.1", features)\n'
        'exercises.quiz("02.q1", "2 + 2?", ["3", "4"], 1, explanation="4.", choice=pick)\n'
        'exercises.match("02.m1", choices={"a": "b"})\n'
        "exercises.check(item)\n"
    )
    calls = grade.check_calls(source)
    assert [(c.kind, c.id, c.expression) for c in calls] == [
        ("check", "02.1", "features"),
        ("quiz", "02.q1", "pick"),
        ("match", "02.m1", '{"a": "b"}'),
    ]
    assert calls[1].key == (("2 + 2?", ["3", "4"], 1), (("explanation", "4."),))
    assert grade.check_calls("def broken(:") == []
    cells = [{"cell_type": "code", "source": ["from tltutor.checks ", "import nb03\n"]}]
    assert grade.notebook_number(cells, "homework.ipynb") == "03"
    assert grade.notebook_number([], "homework.ipynb") is None


def test_a_quiz_is_checked_against_the_course_key_not_the_students():
    quiz = next(item for item in grade.catalog("00").values() if item.kind == "quiz")
    verdicts = {choice: grade.grade_choice(quiz, choice)[0] for choice in range(4)}
    assert sorted(verdicts.values()).count("correct") == 1
    assert grade.grade_choice(quiz, None)[0] == "not attempted"
    assert grade.grade_choice(quiz, "<a Hostile object>")[0] == "not yet"


# ------------------------------------------------------------------ the real notebook


def test_real_notebook_00_solution_and_student_copy(tmp_path):
    nb = nbformat.read(NB00, as_version=4)
    for student, notebook in (("solution", nb), ("student", make_student_copy(nb))):
        (tmp_path / "class" / student).mkdir(parents=True)
        nbformat.write(notebook, tmp_path / "class" / student / NB00.name)
    rows = grade.grade(
        tmp_path / "class", tmp_path / "gradebook", jobs=2, options=grade.Options(timeout=600)
    )
    table = _by_student(rows)
    assert {status for status, _ in table["solution"].values()} == {"correct"}
    assert {status for status, _ in table["student"].values()} == {"not attempted"}
    assert sorted(table["solution"]) == sorted(ITEMS)
