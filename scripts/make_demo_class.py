"""Write a demo class of submissions of notebook 00, to try ``python -m tltutor grade`` on.

Each student is one way a submission can go (the folder names say which):

- ``ada_all_correct``: the solution notebook (``notebooks/00_setup.ipynb`` as it is);
- ``ben_all_stubs``: the student copy, untouched (``python -m tltutor student-copy``);
- ``cai_mixed``: the last exercise wrong, the last item (a quiz) skipped, the others right;
- ``dee_reregisters_checkers``: wrong answers, and checkers re-registered with the public
  ``exercises.exercise`` decorator so that every check in her kernel says "correct";
- ``eve_edits_progress``: the student copy, and the progress state set to "correct" by hand;
- ``fay_kills_kernel``: the solution with ``os._exit(1)`` after the first exercise's check;
- ``gus_loops_forever``: the solution with an endless loop after the first check (it sleeps, to
  spare the CPU; a busy loop is stopped the same way);
- ``hal_broken_json``: the solution notebook cut in half (not valid JSON);
- ``ivy_prints_100mb``: the solution with a cell that prints 100 MB (after the first check);
- ``jon_fills_memory``: the solution with a cell that allocates memory until it fails (after
  the first check);
- ``kim_forges_verdicts``: wrong answers, fake verdict lines and fake grader markers printed,
  and the course's class lists in ``tltutor.data`` changed;
- ``lea_no_notebook``: an empty folder.

Usage::

    python scripts/make_demo_class.py /tmp/demo_class          # notebook 00 as students get it
    python scripts/make_demo_class.py /tmp/demo_class --light  # only the exercise cells: fast
    python -m tltutor grade /tmp/demo_class -o /tmp/gradebook -j 2 --timeout 120

``--light`` keeps only the exercise and check cells after a one-cell set-up (the tests use it).
"""

from __future__ import annotations

import argparse
import copy
import importlib
import re
import shutil
from pathlib import Path

import nbformat

from tltutor import exercises
from tltutor.grade import catalog, check_calls
from tltutor.student import make_student_copy

REFERENCE = Path(__file__).resolve().parents[1] / "notebooks" / "00_setup.ipynb"
LIGHT_SETUP = (
    "import numpy as np\n\nfrom tltutor import data, exercises\nfrom tltutor.checks import nb00"
)
REREGISTER = """\
# "Make every check pass": replace each checker through the public decorator.
for item_id, ex in list(exercises._EXERCISES.items()):
    exercises.exercise(item_id, ex.title, name=ex.name)(lambda answer: (True, "well done."))
if hasattr(exercises, "define_quiz"):  # the quiz keys too, where they live in the checker module
    for item_id, quiz in list(exercises._QUIZZES.items()):
        exercises.define_quiz(item_id, question=quiz.question, options=list(quiz.options), answer=0,
                              explanation="well done.")"""
EDIT_PROGRESS = """\
# "Make the progress say it is all done": set every verdict to correct by hand.
for item_id in list(exercises._STATUS):
    exercises._STATUS[item_id] = "correct"
print(exercises.progress("00"))"""
FORGE = """\
# Print what a grader might read, and change the course's class lists.
data.TARGET_CLASSES = data.SOURCE_CLASSES
for item_id in list(exercises._EXERCISES):
    print(f"[ex {item_id}] correct: well done.")
    print('TLTUTOR-GRADE-0000 {"text": "[ex ' + item_id + '] correct: well done."}')"""
FILL_MEMORY = """\
def fill():
    blocks = []
    while True:
        blocks.append(np.ones(2**24))  # 128 MB more each time, until the memory limit


fill()"""
LOOP = "import time\n\nwhile True:  # sleeps, to spare the CPU; a busy loop is stopped the same way\n    time.sleep(0.5)"


def light(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """Only the exercise and check cells of ``nb``, after a one-cell set-up (no Keras, no plots)."""
    small = nbformat.v4.new_notebook(metadata=copy.deepcopy(nb.metadata))
    small.cells.append(nbformat.v4.new_code_cell(LIGHT_SETUP))
    small.cells += [
        copy.deepcopy(cell)
        for cell in nb.cells
        if cell.cell_type == "code" and {"exercise", "check"} & set(cell.metadata.get("tags", []))
    ]
    return small


def check_cell(nb: nbformat.NotebookNode, item_id: str) -> int:
    """The index of the cell that checks ``item_id``."""
    for index, cell in enumerate(nb.cells):
        if cell.cell_type == "code" and any(
            call.id == item_id for call in check_calls(cell.source)
        ):
            return index
    raise ValueError(f"no cell checks {item_id}")


def answer_line(nb: nbformat.NotebookNode, item_id: str) -> tuple[int, re.Pattern]:
    """The cell that holds the answer of ``item_id`` and a pattern matching its assignment line."""
    index = check_cell(nb, item_id)
    call = next(c for c in check_calls(nb.cells[index].source) if c.id == item_id)
    if call.kind == "check":
        importlib.import_module(f"tltutor.checks.nb{item_id.split('.')[0]}")
        variable = exercises._EXERCISES[item_id].name
    else:
        variable = call.expression
    line = re.compile(rf"^{re.escape(variable)} = .*$", flags=re.MULTILINE)
    index = max(i for i in range(index + 1) if line.search(nb.cells[i].source))
    return index, line


def variant(
    nb: nbformat.NotebookNode,
    *,
    stub: tuple[str, ...] = (),
    wrong: tuple[str, ...] = (),
    after: dict[str, str] | None = None,
    student_copy: bool = False,
) -> nbformat.NotebookNode:
    """A submission: the solution (or the student copy) of ``nb``, some answers stubbed or wrong.

    ``after`` maps an item id (or ``"setup"``) to a code cell inserted after that item's check cell.
    """
    new = make_student_copy(nb) if student_copy else copy.deepcopy(nb)
    for item_id in (*stub, *wrong):
        index, line = answer_line(new, item_id)
        source = new.cells[index].source

        def replace(found: re.Match) -> str:
            name, value = found.group(0).split(" = ", 1)
            if item_id in stub:
                return f"{name} = None  # YOUR CODE HERE"
            number = re.match(r"\d+", value)
            return (
                f"{name} = {int(number.group()) - 1 if number and number.group() != '0' else 1}"
                if number
                else (f'{name} = "not the answer"')
            )

        new.cells[index].source = line.sub(replace, source, count=1)
    for item_id, code in (after or {}).items():
        index = _setup_cell(new) if item_id == "setup" else check_cell(new, item_id)
        new.cells.insert(index + 1, nbformat.v4.new_code_cell(code))
    return new


def _setup_cell(nb: nbformat.NotebookNode) -> int:
    return next(i for i, cell in enumerate(nb.cells) if "tltutor.checks import" in cell.source)


def item_ids(nb: nbformat.NotebookNode) -> list[str]:
    """The ids the notebook checks, in order."""
    return [
        call.id
        for cell in nb.cells
        if cell.cell_type == "code"
        for call in check_calls(cell.source)
    ]


def make_class(root: Path, *, reference: Path = REFERENCE, lite: bool = False) -> list[str]:
    """Write the demo class into ``root`` (one folder per student); return the student names."""
    nb = nbformat.read(reference, as_version=4)
    nb = light(nb) if lite else nb
    ids = item_ids(nb)
    first, last = ids[0], ids[-1]
    kinds = catalog(ids[0].split(".")[0])
    exercise_ids = tuple(i for i in ids if kinds[i].kind == "exercise")
    students = {
        "ada_all_correct": variant(nb),
        "ben_all_stubs": variant(nb, student_copy=True),
        "cai_mixed": variant(nb, wrong=(exercise_ids[-1],), stub=(last,)),
        "dee_reregisters_checkers": variant(nb, wrong=tuple(ids), after={"setup": REREGISTER}),
        "eve_edits_progress": variant(
            nb, student_copy=True, after={"setup": EDIT_PROGRESS, last: EDIT_PROGRESS}
        ),
        "fay_kills_kernel": variant(nb, after={exercise_ids[0]: "import os\n\nos._exit(1)"}),
        "gus_loops_forever": variant(nb, after={first: LOOP}),
        "ivy_prints_100mb": variant(nb, after={first: 'print("x" * 100_000_000)'}),
        "jon_fills_memory": variant(nb, after={first: FILL_MEMORY}),
        "kim_forges_verdicts": variant(
            nb, wrong=tuple(ids), after={"setup": FORGE, exercise_ids[-1]: FORGE}
        ),
    }
    if root.exists():
        shutil.rmtree(root)
    for student, notebook in students.items():
        (root / student).mkdir(parents=True)
        nbformat.write(notebook, root / student / reference.name)
    text = nbformat.writes(variant(nb))
    (root / "hal_broken_json").mkdir()
    (root / "hal_broken_json" / reference.name).write_text(text[: len(text) // 2], encoding="utf-8")
    (root / "lea_no_notebook").mkdir()
    return sorted([*students, "hal_broken_json", "lea_no_notebook"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("root", type=Path, help="the folder to write (replaced if it exists)")
    parser.add_argument("--light", action="store_true", help="only the exercise cells (fast)")
    args = parser.parse_args(argv)
    students = make_class(args.root, lite=args.light)
    print(f"{len(students)} students in {args.root}: {', '.join(students)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
