"""Tests of tltutor.student: stripping solutions, student copies, the command line, executing both."""

import copy
import re
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from tltutor.student import main, make_student_copy, strip_solutions

FIXTURE = Path(__file__).parent / "fixtures" / "exercise_demo.ipynb"


# ------------------------------------------------------------------ strip_solutions


def test_default_stub_assigns_none_to_each_variable():
    source = (
        "import numpy as np\n"
        "### BEGIN SOLUTION\n"
        "X = np.ones(3)\n"
        "a, (b, *c) = 1, (2, 3)\n"
        "X += 1\n"
        "### END SOLUTION\n"
        "print(X)\n"
    )
    assert strip_solutions(source) == (
        "import numpy as np\n"
        "X = None  # YOUR CODE HERE\n"
        "a = None  # YOUR CODE HERE\n"
        "b = None  # YOUR CODE HERE\n"
        "c = None  # YOUR CODE HERE\n"
        "print(X)\n"
    )


def test_indentation_is_preserved():
    source = (
        "def train(model):\n"
        "    for epoch in range(3):\n"
        "        ### BEGIN SOLUTION\n"
        "        if epoch > 0:\n"
        "            lr = 0.1 / epoch\n"
        "        model.fit(lr)\n"
        "        ### END SOLUTION\n"
        "    return model"
    )
    assert strip_solutions(source) == (
        "def train(model):\n    for epoch in range(3):\n        lr = None  # YOUR CODE HERE\n    return model"
    )


def test_functions_classes_and_blocks_without_assignments():
    source = "### BEGIN SOLUTION\ndef f(x):\n    y = x\n    return y\nclass Head:\n    pass\n### END SOLUTION"
    assert strip_solutions(source) == "f = None  # YOUR CODE HERE\nHead = None  # YOUR CODE HERE"
    source = "def f(x):\n    ### BEGIN SOLUTION\n    return [i for i in x]\n    ### END SOLUTION"
    assert strip_solutions(source) == "def f(x):\n    pass  # YOUR CODE HERE"
    source = "for i in range(3):\n    ### BEGIN SOLUTION\n    model.layers[i].trainable = False\n    ### END SOLUTION"
    assert strip_solutions(source) == "for i in range(3):\n    pass  # YOUR CODE HERE"


def test_stub_comment_is_honoured():
    source = (
        "    ### BEGIN SOLUTION\n"
        "    # STUB: def head(x):\n"
        "    # STUB:     return None  # YOUR CODE HERE\n"
        "    def head(x):\n"
        "        return x * 2\n"
        "    ### END SOLUTION\n"
    )
    assert strip_solutions(source) == "    def head(x):\n        return None  # YOUR CODE HERE\n"
    magic = "### BEGIN SOLUTION\n# STUB: answer = None  # YOUR CODE HERE\n%time answer = 3\n### END SOLUTION"
    assert strip_solutions(magic) == "answer = None  # YOUR CODE HERE"


def test_text_outside_markers_is_kept_and_no_raise_is_added():
    source = "a = 1\n\n# a comment\nb = 2"
    assert strip_solutions(source) == source
    two_blocks = (
        "### BEGIN SOLUTION\nz = 3\n### END SOLUTION\n### BEGIN SOLUTION\nw = 4\n### END SOLUTION"
    )
    stripped = strip_solutions(two_blocks)
    assert stripped == "z = None  # YOUR CODE HERE\nw = None  # YOUR CODE HERE"
    assert "NotImplementedError" not in stripped


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("x = 1\n### BEGIN SOLUTION\nx = 2\n", "line 2: '### BEGIN SOLUTION' is never closed"),
        ("x = 1\n### END SOLUTION\n", "line 2: '### END SOLUTION' without a '### BEGIN SOLUTION'"),
        (
            "### BEGIN SOLUTION\n### BEGIN SOLUTION\n### END SOLUTION",
            "line 2: '### BEGIN SOLUTION' inside",
        ),
        (
            "## BEGIN SOLUTION\nx = 2\n### END SOLUTION",
            "line 1: '## BEGIN SOLUTION' looks like a solution marker",
        ),
        ("### begin solution\nx = 2\n", "looks like a solution marker"),
        ("### BEGIN SOLUTION\n%time x = 2\n### END SOLUTION", "add '# STUB: <code>'"),
    ],
)
def test_bad_markers_raise_with_the_line(source, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        strip_solutions(source)


# ------------------------------------------------------------------ make_student_copy


def solution_lines(nb):
    """The code lines between markers in a solution notebook."""
    lines = []
    for cell in nb.cells:
        inside = False
        for line in cell.source.splitlines():
            if line.strip() in ("### BEGIN SOLUTION", "### END SOLUTION"):
                inside = line.strip() == "### BEGIN SOLUTION"
            elif inside and line.strip() and not line.strip().startswith("# STUB:"):
                lines.append(line.strip())
    return lines


def test_student_copy_of_the_fixture():
    nb = nbformat.read(FIXTURE, as_version=4)
    original = copy.deepcopy(nb)
    student = make_student_copy(nb)
    assert nb == original  # the solution notebook is not changed

    secret = solution_lines(nb)
    assert len(secret) >= 5
    student_lines = {line.strip() for cell in student.cells for line in cell.source.splitlines()}
    assert not student_lines & set(secret)
    text = "\n".join(cell.source for cell in student.cells)
    assert "BEGIN SOLUTION" not in text and "END SOLUTION" not in text
    assert "NotImplementedError" not in text
    assert "squares = None  # YOUR CODE HERE" in student_lines
    assert "lr = None  # YOUR CODE HERE: a float such as 0.1" in student_lines

    assert any("solution" in cell.metadata.get("tags", []) for cell in nb.cells)
    assert not any("solution" in cell.metadata.get("tags", []) for cell in student.cells)
    assert len(student.cells) == len(nb.cells) - 1
    for cell in student.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None
    nbformat.validate(student)


def test_tags_are_consistent_in_the_fixture():
    nb = nbformat.read(FIXTURE, as_version=4)
    for cell in nb.cells:
        tags = cell.metadata.get("tags", [])
        if "BEGIN SOLUTION" in cell.source:
            assert "exercise" in tags
        if "exercises.check(" in cell.source:
            assert "check" in tags


def test_student_copy_refuses_misplaced_markers():
    marked = "### BEGIN SOLUTION\nx = 1\n### END SOLUTION"
    untagged = new_notebook(cells=[new_code_cell(marked)])
    with pytest.raises(ValueError, match="cell 1: .*not tagged 'exercise'"):
        make_student_copy(untagged)
    markdown = new_notebook(cells=[new_markdown_cell(marked)])
    with pytest.raises(ValueError, match="cell 1: solution markers work in code cells only"):
        make_student_copy(markdown)
    never_closed = new_code_cell("### BEGIN SOLUTION\nx = 1", metadata={"tags": ["exercise"]})
    unbalanced = new_notebook(cells=[new_code_cell("x = 1"), never_closed])
    with pytest.raises(ValueError, match="cell 2: line 1: '### BEGIN SOLUTION' is never closed"):
        make_student_copy(unbalanced)
    with pytest.raises(TypeError, match="expected a notebook"):
        make_student_copy("notebook.ipynb")


def test_student_copy_drops_widget_state_and_timing():
    cell = new_code_cell(
        "x = 1", execution_count=3, metadata={"execution": {"iopub.execute_input": "now"}}
    )
    cell.outputs = [nbformat.v4.new_output("stream", text="1\n")]
    nb = new_notebook(cells=[cell], metadata={"widgets": {"state": {}}})
    student = make_student_copy(nb)
    assert "widgets" not in student.metadata
    assert "execution" not in student.cells[0].metadata
    assert student.cells[0].outputs == []


# -------------------------------------------------------------------- command line


def write_notebook(path, *cells):
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(new_notebook(cells=list(cells)), path)


def test_main_writes_copies_of_a_folder(tmp_path, capsys):
    source = tmp_path / "notebooks"
    exercise_cell = new_code_cell(
        "### BEGIN SOLUTION\nx = 1\n### END SOLUTION", metadata={"tags": ["exercise"]}
    )
    write_notebook(source / "01.ipynb", exercise_cell)
    write_notebook(
        source / "part" / "02.ipynb", new_markdown_cell("worked", metadata={"tags": ["solution"]})
    )
    (source / ".ipynb_checkpoints").mkdir()
    write_notebook(source / ".ipynb_checkpoints" / "01-checkpoint.ipynb")
    assert main([str(source), "-o", str(tmp_path / "student")]) == 0
    out = capsys.readouterr().out
    assert (
        "wrote 2 student notebook(s)" in out
        and "removed 1 solution block(s) and 1 solution cell(s)" in out
    )
    first = nbformat.read(tmp_path / "student" / "01.ipynb", as_version=4)
    assert first.cells[0].source == "x = None  # YOUR CODE HERE"
    assert nbformat.read(tmp_path / "student" / "part" / "02.ipynb", as_version=4).cells == []
    assert not (tmp_path / "student" / ".ipynb_checkpoints").exists()
    assert sorted(p.name for p in (tmp_path / "student").iterdir()) == [
        "01.ipynb",
        "part",
    ]  # no temp files left
    # writing again (and into a folder inside the source) is fine
    assert main([str(source), "-o", str(source / "student")]) == 0
    assert main([str(source), "-o", str(source / "student")]) == 0
    assert not (source / "student" / "student").exists()


def test_main_refuses_to_overwrite_and_reports_errors(tmp_path, capsys):
    source = tmp_path / "notebooks"
    write_notebook(source / "good.ipynb", new_code_cell("x = 1"))
    assert main([str(source), "-o", str(source)]) == 1
    assert "refusing to write into the source folder" in capsys.readouterr().err
    assert main([str(source / "good.ipynb"), "-o", str(source)]) == 1
    assert "refusing to overwrite the solution notebook" in capsys.readouterr().err
    assert main([str(tmp_path / "missing"), "-o", str(tmp_path / "out")]) == 1
    assert "does not exist" in capsys.readouterr().err
    assert (
        main([str(tmp_path), "-o", str(tmp_path / "out")]) == 0
    )  # tmp_path holds notebooks/good.ipynb
    capsys.readouterr()

    write_notebook(
        source / "bad.ipynb",
        new_code_cell("### BEGIN SOLUTION\nx = 1", metadata={"tags": ["exercise"]}),
    )
    assert main([str(source), "-o", str(tmp_path / "student")]) == 1
    err = capsys.readouterr().err
    assert "bad.ipynb: cell 1: line 1: '### BEGIN SOLUTION' is never closed" in err
    assert "no student copies were written" in err
    assert not (tmp_path / "student").exists()
    (source / "empty").mkdir()
    assert main([str(source / "empty"), "-o", str(tmp_path / "student")]) == 1
    assert "no .ipynb files" in capsys.readouterr().err


def test_main_single_file(tmp_path, capsys):
    assert main([str(FIXTURE), "-o", str(tmp_path)]) == 0
    assert "removed 5 solution block(s) and 1 solution cell(s)" in capsys.readouterr().out
    assert (tmp_path / FIXTURE.name).exists()


# -------------------------------------------------------------------- execution


def execute(nb):
    from nbclient import NotebookClient

    NotebookClient(nb, kernel_name="python3", timeout=120).execute()
    return [
        line
        for cell in nb.cells
        if cell.cell_type == "code"
        for output in cell.outputs
        if output.output_type == "stream" and output.name == "stdout"
        for line in output.text.splitlines()
    ]


@pytest.fixture(scope="module")
def executed():
    pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    solution = nbformat.read(FIXTURE, as_version=4)
    student = make_student_copy(solution)
    # later the student solves exercise demo.1 and presses its Check button, in the same kernel
    student.cells.append(
        new_code_cell(
            "squares = np.arange(5) ** 2\n"
            "box = exercises.panel('demo.1')\n"
            "(check_button,) = [b for b in box.children[1].children if b.description == 'Check']\n"
            "check_button.click()\n"
            "print('after click:', exercises.progress('demo'))"
        )
    )
    return execute(solution), execute(student)


VERDICT = re.compile(r"^\[(ex|quiz) (demo\.\w+)\] (correct|not yet|not attempted): ")


def verdicts(lines):
    return {match[2]: match[3] for line in lines if (match := VERDICT.match(line))}


def test_solution_notebook_passes_every_check(executed):
    lines, _ = executed
    assert verdicts(lines) == dict.fromkeys(
        ["demo.1", "demo.2", "demo.3", "demo.q1", "demo.m1"], "correct"
    )
    assert "5 / 5 exercises done in notebook demo" in lines
    assert "sum of squares: 30" in lines


def test_student_notebook_runs_and_reports_not_attempted(executed):
    _, lines = executed
    assert verdicts(lines) == dict.fromkeys(
        ["demo.1", "demo.2", "demo.3", "demo.q1", "demo.m1"], "not attempted"
    )
    assert "sum of squares: 30" in lines  # the reference answer let the notebook go on
    assert "0 / 5 exercises done in notebook demo" in lines
    assert (
        "after click: 1 / 5 exercises done in notebook demo" in lines
    )  # re-read `squares` from the kernel


# ------------------------------------------------------------------ answer keys stay out of student copies

NOTEBOOKS = Path(__file__).parent.parent / "notebooks"
KEY_ARGUMENTS = {"quiz": 1, "match": 1}  # positional arguments allowed: the id only
ASKING_KEYWORDS = {"quiz": {"choice", "widget"}, "match": {"choices", "widget"}}


def answer_keys() -> dict[str, list[str]]:
    """Notebook number -> every key text its checker module defines: right options, explanations,
    match definitions (each at least 12 characters: shorter ones are words, not keys)."""
    import importlib
    import pkgutil

    import tltutor.checks
    from tltutor import exercises

    exercises.reset()
    for module in pkgutil.iter_modules(tltutor.checks.__path__):
        importlib.reload(importlib.import_module(f"tltutor.checks.{module.name}"))
    keys: dict[str, list[str]] = {}
    for quiz in exercises._QUIZZES.values():
        texts = [quiz.options[i] for i in quiz.right] + [quiz.explanation]
        keys.setdefault(quiz.id.split(".")[0], []).extend(texts)
    for match in exercises._MATCHES.values():
        keys.setdefault(match.id.split(".")[0], []).extend(match.pairs.values())
    return {
        number: [text for text in texts if len(text.strip()) >= 12]
        for number, texts in keys.items()
    }


def keys_in_calls(source: str) -> list[str]:
    """exercises.quiz/match calls that pass a key (question, options, answer, pairs) in the cell."""
    import ast

    try:
        tree = ast.parse(source)
    except SyntaxError:
        return []
    found = []
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in KEY_ARGUMENTS
        ):
            kind = node.func.attr
            extra = [k.arg for k in node.keywords if k.arg not in ASKING_KEYWORDS[kind]]
            if len(node.args) > KEY_ARGUMENTS[kind] or extra:
                found.append(f"line {node.lineno}: exercises.{kind}(...) with its key in the cell")
    return found


def test_student_copies_hold_no_answer_key():
    """Issue 15: quiz and match keys live in the checker modules; a student copy shows none of them."""
    keys = answer_keys()
    leaks = {}
    for path in sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb")):
        student = make_student_copy(nbformat.read(path, as_version=4))
        text = "\n".join(cell.source for cell in student.cells)
        found = [
            f"cell {n}: {problem}"
            for n, cell in enumerate(student.cells, start=1)
            if cell.cell_type == "code"
            for problem in keys_in_calls(cell.source)
        ]
        found += [f"key text {key[:60]!r}" for key in keys.get(path.name[:2], []) if key in text]
        if found:
            leaks[path.name] = found
    assert not leaks, "answer keys in student copies:\n" + "\n".join(
        f"  {name}: " + "; ".join(problems) for name, problems in leaks.items()
    )


def test_the_key_leak_test_finds_keys():
    assert keys_in_calls('exercises.quiz("00.q1", "Q?", ["a", "b"], 1, explanation="x", choice=c)')
    assert keys_in_calls('exercises.match("00.m1", pairs, choices=c)')
    assert not keys_in_calls(
        'exercises.quiz("00.q1", choice=choice);\nexercises.match("00.m1", choices=c)'
    )
