"""Grade a class: ``python -m tltutor grade SUBMISSIONS -o GRADEBOOK [-j N] [--timeout S]``.

SUBMISSIONS holds one folder per student (an LMS export), or is nbgrader's
``submitted/`` folder (``submitted/STUDENT/ASSIGNMENT/*.ipynb``). Every notebook
is executed from the top in a fresh kernel, in a scratch copy of its folder
(under the system's temporary folder, never in the submissions or the course
repository), with a time limit per notebook, a memory limit (Linux) and a cap
on the output kept. Right after each check cell has run, the grader checks that
exercise itself:

- an **exercise** is checked inside the student's kernel by *freshly loaded*
  checkers: ``tltutor/exercises.py``, ``tltutor/data.py`` and the notebook's
  ``tltutor/checks/nbNN.py`` are executed again from their files (their SHA-256
  is verified first) into new module objects, so nothing the student did to
  the loaded ``exercises`` module (re-registering a checker, editing the
  progress state) or to ``data`` counts; the answer is read like the Check
  button reads it (the exercise's variable, or the argument of the check call);
- a **quiz** or **match**: only the student's choice leaves the kernel (as
  plain JSON: numbers, text, lists, dicts); the grader process, which never runs
  student code, checks it against the key in the checker module
  (``exercises.define_quiz``), or, for notebooks that still pass the key in the
  call, against the key in the course's own notebook (``--reference``).

Each verdict leaves the kernel at once, in the output of the grader's own
(hidden) cell, behind a random marker: a verdict is never read from a student's
cell, and what the student's code does later cannot change it.

Outputs, in GRADEBOOK: ``grades.csv`` (student, notebook, exercise, status,
message), ``feedback/STUDENT.html`` (each verdict with its hints),
``summary.csv``, ``summary.md`` and ``summary.png`` (how many students got each
exercise right), and ``results/`` (one JSON per graded notebook, so that a
re-run skips what is graded, unless the notebook, the limits or the package's
checkers changed; ``--force`` re-grades). Every file is written to a
temporary name and renamed, so an interrupted run never leaves a half-written
gradebook. Rows are sorted, so ``-j 4`` gives the same gradebook as ``-j 1``.

A status is ``correct``, ``not yet``, ``not attempted`` or ``error`` (the
notebook could not be graded that far: not valid JSON, the kernel died, the
time limit, ...; the message says why).

Grading runs the students' code: run it in a container (see the instructor
guide, "Grading a class").
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import csv
import dataclasses
import hashlib
import html
import io
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

GRADER_VERSION = 1
STATUSES = ("correct", "not yet", "not attempted", "error")
PACKAGE_DIR = Path(__file__).resolve().parent
DEFAULT_REFERENCE = PACKAGE_DIR.parent / "notebooks"  # the course's own notebooks, in a clone
DEFAULT_TIMEOUT = 600.0  # seconds per notebook
DEFAULT_MEMORY_MB = 6144  # address space of a kernel; TensorFlow alone maps about 2 GB
OUTPUT_CAP = 1_000_000  # characters of output kept per cell; the rest is dropped
FOLDER_CAP = 500 * 2**20  # a student's folder larger than this is not copied
CHECK_TIME = 300.0  # seconds for the grader's own cell after a check cell
_VERDICT = re.compile(
    r"^\[(?:ex|quiz) (?P<id>\S+)\] (?P<status>correct|not yet|not attempted): (?P<message>.*)$"
)
_CHECKS_IMPORT = re.compile(r"tltutor\.checks(?:\s+import\s+|\.)nb(\d\d)\b")


class GradeError(ValueError):
    """A mistake in how the grader was called (a missing folder, an output inside the package, ...)."""


# ------------------------------------------------------------------ submissions


@dataclass(frozen=True, order=True)
class Submission:
    """One student's notebook: ``student`` (folder name), ``notebook`` (path in that folder), ``path``."""

    student: str
    notebook: str
    path: Path


def find_submissions(root: str | Path) -> list[Submission]:
    """The notebooks under ``root``: one subfolder per student, notebooks anywhere inside it.

    Both layouts work: ``root/STUDENT/00_setup.ipynb`` (an LMS export) and nbgrader's
    ``submitted/STUDENT/ASSIGNMENT/00_setup.ipynb`` (pass ``submitted/`` or the course folder
    holding it). Hidden folders and ``.ipynb_checkpoints`` are skipped. A student folder without
    a notebook gives a ``Submission`` with an empty ``notebook`` (graded as an error row).

    >>> import tempfile, pathlib
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> (root / "ada" / "ps1").mkdir(parents=True)
    >>> _ = (root / "ada" / "ps1" / "00_setup.ipynb").write_text("{}")
    >>> [(s.student, s.notebook) for s in find_submissions(root)]
    [('ada', 'ps1/00_setup.ipynb')]
    """
    root = Path(root)
    if not root.is_dir():
        raise GradeError(
            f"{root} is not a folder: pass the folder that holds one subfolder per student"
        )
    if (root / "submitted").is_dir() and not any(root.glob("*.ipynb")):
        root = root / "submitted"  # an nbgrader course folder
    loose = sorted(p.name for p in root.glob("*.ipynb"))
    if loose:
        raise GradeError(
            f"{root} holds notebooks directly ({', '.join(loose[:3])}); put each student's notebooks in "
            f"their own subfolder, {root}/STUDENT/NOTEBOOK.ipynb (see the instructor guide)"
        )
    found = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        notebooks = sorted(
            p
            for p in folder.rglob("*.ipynb")
            if not any(part.startswith(".") for part in p.relative_to(folder).parts)
        )
        found += [Submission(folder.name, p.relative_to(folder).as_posix(), p) for p in notebooks]
        if not notebooks:
            found.append(Submission(folder.name, "", folder))
    if not found:
        raise GradeError(f"{root} has no student folders: expected {root}/STUDENT/NOTEBOOK.ipynb")
    return found


# ------------------------------------------------------------------ reading notebooks


@dataclass(frozen=True)
class CheckCall:
    """A call in a cell that checks an item: ``kind`` is ``check``, ``quiz`` or ``match``.

    ``expression`` is the source of the answer passed (``None``: read the exercise's variable,
    or no choice given); ``key`` holds the literal key arguments of an old-style quiz call.
    """

    kind: str
    id: str
    expression: str | None
    key: tuple | None = None


def check_calls(source: str) -> list[CheckCall]:
    """The ``exercises.check/quiz/match("NN.k", ...)`` calls of a cell, in source order.

    >>> check_calls('exercises.check("00.1");\\nexercises.quiz("00.q1", choice=choice);')
    [CheckCall(kind='check', id='00.1', expression=None, key=None), \
CheckCall(kind='quiz', id='00.q1', expression='choice', key=None)]
    """
    try:
        from IPython.core.inputtransformer2 import TransformerManager

        source = TransformerManager().transform_cell(source)  # %magics and !shell lines
        tree = ast.parse(source)
    except (SyntaxError, ValueError, ImportError):
        return []
    calls = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call) or not node.args:
            continue
        func = node.func
        name = (
            func.attr
            if isinstance(func, ast.Attribute)
            else func.id
            if isinstance(func, ast.Name)
            else None
        )
        first = node.args[0]
        if name not in ("check", "quiz", "match") or not (
            isinstance(first, ast.Constant) and isinstance(first.value, str)
        ):
            continue
        keywords = {k.arg: k.value for k in node.keywords if k.arg}
        answer_key = {"check": "answer", "quiz": "choice", "match": "choices"}[name]
        answer = keywords.get(answer_key)
        if name == "check" and answer is None and len(node.args) > 1:
            answer = node.args[1]
        expression = ast.get_source_segment(source, answer) if answer is not None else None
        key = None
        if name != "check":
            extra = {k: v for k, v in keywords.items() if k not in (answer_key, "widget")}
            if len(node.args) > 1 or extra:
                try:
                    key = (
                        tuple(ast.literal_eval(a) for a in node.args[1:]),
                        tuple(sorted((k, ast.literal_eval(v)) for k, v in extra.items())),
                    )
                except (ValueError, TypeError, SyntaxError):
                    key = ("not a literal",)
        calls.append(CheckCall(name, first.value, expression, key))
    return sorted(calls, key=lambda c: _position(tree, c))


def _position(tree: ast.AST, call: CheckCall) -> tuple[int, int]:
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and node.args[0].value == call.id
        ):
            return node.lineno, node.col_offset
    return 0, 0


def notebook_number(cells: Sequence[dict], filename: str = "") -> str | None:
    """The course notebook a submission is: ``"00"`` from its ``tltutor.checks import nb00``.

    Falls back to the file name (``00_setup.ipynb``), then to the ids its cells check.

    >>> notebook_number([{"cell_type": "code", "source": "from tltutor.checks import nb02"}])
    '02'
    >>> notebook_number([], "03_fine_tuning (1).ipynb")
    '03'
    """
    sources = [_source(c) for c in cells if c.get("cell_type") == "code"]
    for text in sources:
        found = _CHECKS_IMPORT.search(text)
        if found:
            return found.group(1)
    by_name = re.match(r"^(\d\d)_", Path(filename).name)
    if by_name:
        return by_name.group(1)
    prefixes = Counter(call.id.split(".", 1)[0] for text in sources for call in check_calls(text))
    return prefixes.most_common(1)[0][0] if prefixes else None


def _source(cell: dict) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else str(source)


# ------------------------------------------------------------------ what a notebook asks


@dataclass
class Item:
    """One exercise, quiz or match of a notebook, as the course (not the student) defines it."""

    id: str
    kind: str  # "exercise", "quiz" or "match"
    title: str
    hints: tuple[str, ...] = ()
    key: tuple | None = None  # an old-style quiz's key, from the course's own notebook


def catalog(number: str, reference: Path | None = DEFAULT_REFERENCE) -> dict[str, Item]:
    """Every exercise, quiz and match of notebook ``number``, from the grader's own (trusted) modules.

    Exercises and quizzes come from ``tltutor/checks/nbNN.py`` (imported here, in the grader
    process, which never runs student code); quizzes whose key is still written in the notebook
    come from the course's notebook in ``reference``.

    >>> sorted(catalog("00"))[:2]
    ['00.1', '00.2']
    """
    import importlib

    from tltutor import exercises

    if not (PACKAGE_DIR / "checks" / f"nb{number}.py").is_file():
        raise GradeError(f"tltutor has no checker module checks/nb{number}.py")
    module = importlib.import_module(f"tltutor.checks.nb{number}")
    mine = lambda item_id: item_id.split(".", 1)[0] == number  # noqa: E731
    registries = [
        exercises._EXERCISES,
        getattr(exercises, "_QUIZZES", {}),
        getattr(exercises, "_MATCHES", {}),
    ]
    if not any(mine(i) for registry in registries for i in registry):
        importlib.reload(
            module
        )  # its checkers were forgotten (exercises.reset): register them again
    items = {
        i: Item(i, "exercise", e.title, tuple(e.hints))
        for i, e in exercises._EXERCISES.items()
        if mine(i)
    }
    for kind, registry in (
        ("quiz", getattr(exercises, "_QUIZZES", {})),
        ("match", getattr(exercises, "_MATCHES", {})),
    ):
        items.update({i: Item(i, kind, q.question) for i, q in registry.items() if mine(i)})
    for call in _reference_calls(number, reference):
        if call.kind != "check" and call.id not in items and mine(call.id):
            title = call.key[0][0] if call.key and len(call.key) == 2 and call.key[0] else call.id
            items[call.id] = Item(call.id, call.kind, str(title), key=call.key)
    return dict(sorted(items.items()))


def _reference_calls(number: str, reference: Path | None) -> list[CheckCall]:
    if reference is None or not Path(reference).is_dir():
        return []
    for path in sorted(Path(reference).glob(f"{number}_*.ipynb")):
        try:
            cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
        except (OSError, ValueError, KeyError):
            continue
        return [
            call
            for cell in cells
            if cell.get("cell_type") == "code"
            for call in check_calls(_source(cell))
        ]
    return []


def grade_choice(item: Item, value: Any) -> tuple[str, str]:
    """Check a quiz or match choice in the grader process, against the course's key.

    >>> grade_choice(catalog("00")["00.q1"], None)[0]
    'not attempted'
    """
    from tltutor import exercises

    out = io.StringIO()
    try:
        with contextlib.redirect_stdout(out):
            if item.key is not None:
                if len(item.key) != 2:
                    return (
                        "error",
                        f"the key of {item.id} in the course's notebook is not written as literals",
                    )
                args, keywords = item.key
                ask = exercises.quiz if item.kind == "quiz" else exercises.match
                ask(item.id, *args, **dict(keywords), widget=False, **{_CHOICE[item.kind]: value})
            elif item.kind == "quiz":
                exercises.quiz(item.id, choice=value, widget=False)
            else:
                exercises.match(item.id, choices=value, widget=False)
    except Exception as exc:  # a malformed key is the course author's mistake: report it, go on
        return "error", f"the grader could not check {item.id}: {type(exc).__name__}: {exc}"
    return _parse_verdict(out.getvalue(), item.id)


_CHOICE = {"quiz": "choice", "match": "choices"}


def _parse_verdict(text: str, item_id: str) -> tuple[str, str]:
    verdicts = [m for m in map(_VERDICT.match, text.splitlines()) if m and m.group("id") == item_id]
    if not verdicts:
        return "error", f"the checker of {item_id} printed no verdict"
    return verdicts[-1].group("status"), verdicts[-1].group("message")


# ------------------------------------------------------------------ code run in the student's kernel

# Runs right after a check cell, in the student's kernel, as a hidden cell (no history). It loads
# fresh copies of the checker modules from their files and prints one marked JSON verdict.
_EXERCISE_CELL = r"""
def _tltutor_grade():
    import contextlib, hashlib, importlib, importlib.abc, importlib.util, io, json, os, sys
    files, item_id, expression, marker = {arguments}
    out = sys.stdout

    class Loader(importlib.abc.Loader):
        def create_module(self, spec):
            return None

        def exec_module(self, module):
            path, digest = files[module.__name__]
            with open(path, "rb") as handle:
                source = handle.read()
            if hashlib.sha256(source).hexdigest() != digest:
                raise RuntimeError(path + " changed on disk since grading started")
            exec(compile(source, path, "exec"), module.__dict__)

    class Finder(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name not in files:
                return None
            origin = files[name][0]
            inside = [os.path.dirname(origin)] if origin.endswith("__init__.py") else None
            return importlib.util.spec_from_file_location(name, origin, loader=Loader(), submodule_search_locations=inside)

    saved = {{name: sys.modules.pop(name) for name in files if name in sys.modules}}
    finder = Finder()
    sys.meta_path.insert(0, finder)
    text = io.StringIO()
    try:
        for name in files:
            importlib.import_module(name)
        exercises = sys.modules["tltutor.exercises"]
        with contextlib.redirect_stdout(text):
            if expression is None:
                exercises.check(item_id, widget=False)
            else:
                from IPython import get_ipython
                try:
                    answer = eval(compile(expression, "<answer>", "eval"), get_ipython().user_ns)
                except Exception as exc:
                    print("[ex " + item_id + "] not yet: evaluating `" + expression + "` raised " + type(exc).__name__ + ".")
                else:
                    exercises.check(item_id, answer, widget=False)
        result = {{"text": text.getvalue()[-20000:]}}
    except BaseException as exc:
        result = {{"error": type(exc).__name__ + ": " + str(exc)[:300]}}
    finally:
        sys.meta_path[:] = [f for f in sys.meta_path if f is not finder]
        for name in files:
            sys.modules.pop(name, None)
        sys.modules.update(saved)
    out.write(marker + json.dumps(result) + "\n")
    out.flush()


_tltutor_grade()
del _tltutor_grade
"""

# Reads a quiz's choice after its cell ran; only plain data leaves the kernel.
_CHOICE_CELL = r"""
def _tltutor_grade():
    import json, numbers, sys
    expression, marker = {arguments}
    out = sys.stdout

    def plain(value, depth=0):
        if value is None or isinstance(value, (bool, str)):
            return value if not isinstance(value, str) else value[:1000]
        if isinstance(value, numbers.Integral):
            return int(value)
        if isinstance(value, numbers.Real):
            return float(value)
        if depth < 3 and isinstance(value, (list, tuple, set, frozenset)):
            items = [plain(v, depth + 1) for v in list(value)[:100]]
            return {{"set": items}} if isinstance(value, (set, frozenset)) else items
        if depth < 3 and isinstance(value, dict):
            return {{"dict": [[plain(k, depth + 1), plain(v, depth + 1)] for k, v in list(value.items())[:100]]}}
        return {{"object": type(value).__name__[:100]}}

    try:
        from IPython import get_ipython
        result = {{"value": plain(eval(compile(expression, "<choice>", "eval"), get_ipython().user_ns))}}
    except BaseException as exc:
        result = {{"error": type(exc).__name__ + ": " + str(exc)[:300]}}
    out.write(marker + json.dumps(result) + "\n")
    out.flush()


_tltutor_grade()
del _tltutor_grade
"""


def _from_plain(value: Any) -> Any:
    """Undo the kernel's ``plain``: sets and dicts back; an unknown object becomes a description."""
    if isinstance(value, list):
        return [_from_plain(v) for v in value]
    if isinstance(value, dict):
        if "set" in value:
            return {_hashable(_from_plain(v)) for v in value["set"]}
        if "dict" in value:
            return {_hashable(_from_plain(k)): _from_plain(v) for k, v in value["dict"]}
        return f"<a {value.get('object', 'object')} object>"
    return value


def _hashable(value: Any) -> Any:
    return (
        tuple(value)
        if isinstance(value, list)
        else repr(value)
        if isinstance(value, (dict, set))
        else value
    )


def _module_files(number: str, package: Path = PACKAGE_DIR) -> dict[str, tuple[str, str]]:
    """The modules loaded fresh in the kernel, in import order: name -> (file, SHA-256)."""
    paths = {
        "tltutor": package / "__init__.py",
        "tltutor.exercises": package / "exercises.py",
        "tltutor.data": package / "data.py",
        "tltutor.checks": package / "checks" / "__init__.py",
        f"tltutor.checks.nb{number}": package / "checks" / f"nb{number}.py",
    }
    return {
        name: (str(path), hashlib.sha256(path.read_bytes()).hexdigest())
        for name, path in paths.items()
    }


@contextlib.contextmanager
def trusted_copy():
    """A private copy of the package's sources, taken before any student code runs.

    The kernels load their fresh checkers from it (each file's SHA-256 verified), so neither a
    notebook that edits the installed package nor an edit made while grading changes a verdict.
    The bundled data is linked, not copied.

    >>> with trusted_copy() as package:
    ...     (package / "checks" / "nb00.py").is_file()
    True
    """
    with tempfile.TemporaryDirectory(prefix="tltutor-trusted-") as folder:
        package = Path(folder) / "tltutor"
        (package / "checks").mkdir(parents=True)
        for source in [*PACKAGE_DIR.glob("*.py"), *PACKAGE_DIR.glob("checks/*.py")]:
            shutil.copyfile(source, package / source.relative_to(PACKAGE_DIR))
        (package / "__init__.py").write_text(
            '"""A private copy of tltutor\'s checkers, loaded by the grader."""\n'
        )
        if (PACKAGE_DIR / "_data").is_dir():
            (package / "_data").symlink_to(PACKAGE_DIR / "_data", target_is_directory=True)
        yield package


# ------------------------------------------------------------------ running one notebook


@dataclass
class Options:
    """How to grade: per-notebook ``timeout`` (s), kernel ``memory_mb``, ``reference`` notebooks."""

    timeout: float = DEFAULT_TIMEOUT
    memory_mb: int = DEFAULT_MEMORY_MB
    reference: Path | None = DEFAULT_REFERENCE
    output_cap: int = OUTPUT_CAP
    package: Path = (
        PACKAGE_DIR  # where the kernel loads fresh checkers from (grade() uses a trusted copy)
    )


@dataclass
class Result:
    """The grading of one notebook: its rows and notes (cell errors, time limit, ...)."""

    student: str
    notebook: str
    sha256: str
    rows: list[dict] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    settings: str = ""  # what it was graded with (see _settings): a change re-grades it


def _kernel_manager_class(memory_mb: int, file_mb: int = 1024):
    """A KernelManager that starts ipykernel with this Python under address-space and file-size limits.

    The limits use ``resource.setrlimit`` in the kernel process before ipykernel starts: Linux
    enforces both; macOS does not enforce the address-space limit, and Windows has no
    ``resource`` module (the kernel then runs without limits: use a container's memory limit).
    """
    from jupyter_client import AsyncKernelManager

    wrapper = (
        "import sys\n"
        "try:\n"
        "    import resource\n"
        f"    for limit, value in ((resource.RLIMIT_AS, {memory_mb * 2**20}), (resource.RLIMIT_FSIZE, {file_mb * 2**20}),"
        " (resource.RLIMIT_CORE, 0)):\n"
        "        try:\n"
        "            resource.setrlimit(limit, (value, value))\n"
        "        except (ValueError, OSError):\n"
        "            pass\n"
        "except ImportError:\n"
        "    pass\n"
        "from ipykernel import kernelapp\n"
        "kernelapp.launch_new_instance()\n"
    )

    class LimitedKernelManager(AsyncKernelManager):
        def format_kernel_cmd(self, extra_arguments: list[str] | None = None) -> list[str]:
            return [
                sys.executable,
                "-c",
                wrapper,
                "-f",
                self.connection_file,
                *(extra_arguments or []),
            ]

    return LimitedKernelManager


def _client_class():
    from nbclient import NotebookClient

    class CappedClient(NotebookClient):
        """Keeps at most ``output_cap`` characters of output per cell; notes which cells were cut."""

        output_cap = OUTPUT_CAP
        kept: dict[int, int]
        cut: set[int]

        def output(self, outs, msg, display_id, cell_index):
            content = msg.get("content", {})
            size = len(content.get("text", "")) + sum(
                len(str(v)) for v in content.get("data", {}).values()
            )
            size += sum(len(line) for line in content.get("traceback", []))
            self.kept[cell_index] = self.kept.get(cell_index, 0) + size
            if self.kept[cell_index] > self.output_cap:
                self.cut.add(cell_index)
                return None
            return super().output(outs, msg, display_id, cell_index)

    return CappedClient


def grade_notebook(submission: Submission, options: Options) -> Result:
    """Execute one submission in a scratch folder and check each of its exercises as it goes.

    >>> grade_notebook(Submission("ada", "", Path(".")), Options()).rows[0]["status"]
    'error'
    """
    start = time.perf_counter()
    if not submission.notebook:
        result = Result(submission.student, "", "")
        result.rows.append(
            _row(result, "", "error", "no notebook (.ipynb) in this student's folder")
        )
        return result
    raw = submission.path.read_bytes()
    result = Result(submission.student, submission.notebook, hashlib.sha256(raw).hexdigest())
    try:
        nb = _read_notebook(raw)
    except ValueError as exc:
        number = notebook_number([], submission.path.name)
        items = _safe_catalog(number, options, result) if number else {}
        reason = f"the notebook cannot be read: {exc}"
        result.rows += [_row(result, i, "error", reason) for i in items] or [
            _row(result, "", "error", reason)
        ]
        return result
    number = notebook_number(nb.cells, submission.path.name)
    items = _safe_catalog(number, options, result) if number else {}
    if not items:
        result.rows.append(
            _row(result, "", "error", "no tltutor exercise found: is this a course notebook?")
        )
        return result
    verdicts: dict[str, tuple[str, str]] = {}
    stopped = _execute(nb, submission, number, items, verdicts, options, result)
    present = {
        c.id for cell in nb.cells if cell.cell_type == "code" for c in check_calls(cell.source)
    }
    for item_id, item in items.items():
        if item_id in verdicts:
            status, message = verdicts[item_id]
        elif stopped and item_id in present:
            status, message = "error", f"not graded: {stopped}"
        elif item_id in present:
            status, message = "not attempted", "its check cell did not run"
        else:
            status, message = (
                "not attempted",
                f"the check cell of {item_id} is missing from the notebook",
            )
        result.rows.append(_row(result, item_id, status, message, item))
    result.seconds = time.perf_counter() - start
    return result


def _row(
    result: Result, exercise: str, status: str, message: str, item: Item | None = None
) -> dict:
    row = {
        "student": result.student,
        "notebook": result.notebook,
        "exercise": exercise,
        "status": status,
        "message": message,
    }
    if item is not None:
        row.update(title=item.title, hints=list(item.hints) if status != "correct" else [])
    return row


def _safe_catalog(number: str, options: Options, result: Result) -> dict[str, Item]:
    try:
        return catalog(number, options.reference)
    except GradeError as exc:
        result.notes.append(str(exc))
        return {}


def _read_notebook(raw: bytes):
    import nbformat

    try:
        text = raw.decode("utf-8")
        json.loads(text)
        nb = nbformat.reads(text, as_version=4)
    except UnicodeDecodeError as exc:
        raise ValueError(f"it is not UTF-8 text ({exc.reason})") from None
    except json.JSONDecodeError as exc:
        raise ValueError(
            f"it is not valid JSON ({exc.msg}: line {exc.lineno}, column {exc.colno})"
        ) from None
    except Exception as exc:  # nbformat raises several kinds for a broken file
        raise ValueError(
            f"it is not a valid notebook ({type(exc).__name__}: {str(exc)[:200]})"
        ) from None
    if not isinstance(nb.get("cells"), list):
        raise ValueError("it has no list of cells")
    return nb


def _execute(nb, submission, number, items, verdicts, options, result) -> str | None:
    """Run the cells in a scratch copy, grading after each check cell; return why it stopped early, or None."""
    from nbclient.exceptions import CellTimeoutError, DeadKernelError

    scratch_root = Path(tempfile.mkdtemp(prefix="tltutor-grade-"))
    try:
        _refuse_inside_repository(scratch_root)
        folder = submission.path.parent
        size = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
        if size > FOLDER_CAP:
            return f"the notebook's folder holds {size / 2**20:.0f} MB (the grader copies at most {FOLDER_CAP / 2**20:.0f} MB)"
        scratch = scratch_root / "work"
        shutil.copytree(
            folder,
            scratch,
            ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__"),
            symlinks=True,
        )
        client = _client_class()(
            nb,
            kernel_manager_class=_kernel_manager_class(options.memory_mb),
            kernel_name="python3",
            allow_errors=True,
            timeout=options.timeout,
            startup_timeout=120,
            shutdown_kernel="immediate",
        )
        client.output_cap, client.kept, client.cut = options.output_cap, {}, set()
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
        client.km = client.create_kernel_manager()
        try:
            client.start_new_kernel(
                cwd=str(scratch), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )
            client.start_new_kernel_client()
            return _run_cells(
                client,
                nb,
                number,
                items,
                verdicts,
                options,
                result,
                CellTimeoutError,
                DeadKernelError,
            )
        finally:
            with contextlib.suppress(Exception):
                client._cleanup_kernel()
            if client.cut:
                result.notes.append(
                    f"output cut at {options.output_cap:,} characters in cell(s) {', '.join(map(str, sorted(client.cut)))}"
                )
    except (DeadKernelError, RuntimeError, OSError) as exc:
        return f"the kernel could not start or died ({type(exc).__name__}: {exc})"
    finally:
        shutil.rmtree(scratch_root, ignore_errors=True)


def _run_cells(
    client, nb, number, items, verdicts, options, result, CellTimeoutError, DeadKernelError
) -> str | None:
    import nbformat

    deadline = time.monotonic() + options.timeout
    files = _module_files(number, options.package)
    code_cells = [(i, c) for i, c in enumerate(list(nb.cells)) if c.cell_type == "code"]
    for index, cell in code_cells:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return (
                f"the notebook ran past the time limit of {options.timeout:g} s before cell {index}"
            )
        client.timeout = max(1, int(remaining))
        try:
            client.execute_cell(cell, index)
        except CellTimeoutError:
            return f"the notebook ran past the time limit of {options.timeout:g} s in cell {index} (an endless loop?)"
        except DeadKernelError:
            return f"the kernel died in cell {index} (os._exit, a crash, or out of memory)"
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error" and len(result.notes) < 20:
                result.notes.append(
                    f"cell {index} raised {output.get('ename')}: {_short(output.get('evalue', ''))}"
                )
        for call in check_calls(cell.source):
            item = items.get(call.id)
            if item is None or (item.kind == "exercise") != (call.kind == "check"):
                continue
            marker = f"TLTUTOR-GRADE-{secrets.token_hex(16)} "
            if item.kind == "exercise":
                arguments = (files, call.id, call.expression, marker)
                code = _EXERCISE_CELL.format(arguments=repr(arguments))
            elif call.expression is None:
                verdicts[call.id] = grade_choice(item, None)
                continue
            else:
                code = _CHOICE_CELL.format(arguments=repr((call.expression, marker)))
            hidden = nbformat.v4.new_code_cell(code)
            nb.cells.append(hidden)
            client.kept.pop(
                len(nb.cells) - 1, None
            )  # each hidden cell has its own output allowance
            client.timeout = int(CHECK_TIME)
            try:
                client.execute_cell(hidden, len(nb.cells) - 1, store_history=False)
            except CellTimeoutError:
                verdicts[call.id] = ("error", f"checking took longer than {CHECK_TIME:g} s")
                return f"checking {call.id} took longer than {CHECK_TIME:g} s"
            except DeadKernelError:
                verdicts[call.id] = (
                    "error",
                    "the kernel died while the grader checked this answer",
                )
                return f"the kernel died while the grader checked {call.id}"
            finally:
                nb.cells.pop()
            verdicts[call.id] = _hidden_verdict(hidden, marker, item)
    return None


def _hidden_verdict(cell, marker: str, item: Item) -> tuple[str, str]:
    """The verdict printed by the grader's hidden cell (only a line with this run's marker counts)."""
    text = "".join(
        o.get("text", "") for o in cell.get("outputs", []) if o.get("output_type") == "stream"
    )
    lines = [line[len(marker) :] for line in text.splitlines() if line.startswith(marker)]
    if len(lines) != 1:
        return (
            "error",
            "the grader's check produced no verdict (did the notebook replace sys.stdout?)",
        )
    try:
        payload = json.loads(lines[0])
    except ValueError:
        return "error", "the grader's check produced an unreadable verdict"
    if "error" in payload:
        error = _short(str(payload["error"]))
        if error.startswith("MemoryError"):
            error = "the notebook had used up the kernel's memory limit (MemoryError)"
        return "error", f"the grader could not check this answer: {error}"
    if item.kind == "exercise":
        status, message = _parse_verdict(str(payload.get("text", "")), item.id)
        if (
            status != "correct" and "MemoryError" in message
        ):  # the kernel, not the answer, is out of memory
            return (
                "error",
                f"the checker ran out of memory: the notebook had used up the kernel's memory limit ({message})",
            )
        return status, message
    return grade_choice(item, _from_plain(payload.get("value")))


def _short(text: str, limit: int = 300) -> str:
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(text))
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


# ------------------------------------------------------------------ the class


def _refuse_inside_repository(path: Path) -> None:
    repository = PACKAGE_DIR.parent
    path = Path(path).resolve()
    if (repository / "pyproject.toml").is_file() and path.is_relative_to(repository):
        raise GradeError(
            f"{path} is inside the course repository {repository}; the grader never runs student code there. "
            "Set TMPDIR to a folder outside it."
        )


def _check_folders(submissions: Path, out: Path) -> None:
    submissions, out = submissions.resolve(), out.resolve()
    if out.is_relative_to(PACKAGE_DIR):
        raise GradeError(
            f"the gradebook {out} would be inside the tltutor package; choose another -o folder"
        )
    if out.is_relative_to(submissions):
        raise GradeError(
            f"the gradebook {out} is inside the submissions {submissions}; choose an -o folder outside it"
        )
    if submissions.is_relative_to(out):
        raise GradeError(
            f"the submissions {submissions} are inside the gradebook folder {out}; choose another -o folder"
        )
    _refuse_inside_repository(Path(tempfile.gettempdir()))


def _slug(name: str) -> str:
    """A file name for a student or notebook: safe characters, plus a short hash if any were changed.

    >>> _slug("ada"), _slug("Ada Lovelace")
    ('ada', 'Ada_Lovelace-a69a9f8a')
    """
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._")[:80] or "_"
    return safe if safe == name else f"{safe}-{hashlib.sha1(name.encode()).hexdigest()[:8]}"


def _result_path(out: Path, submission: Submission) -> Path:
    return (
        out / "results" / _slug(submission.student) / f"{_slug(submission.notebook or 'none')}.json"
    )


def _settings(options: Options) -> str:
    """A digest of what grading depends on: the grader's version, its limits and the package's sources."""
    digest = hashlib.sha256(
        json.dumps(
            [GRADER_VERSION, options.timeout, options.memory_mb, options.output_cap]
        ).encode()
    )
    for path in sorted([*PACKAGE_DIR.glob("*.py"), *PACKAGE_DIR.glob("checks/*.py")]):
        digest.update(path.name.encode() + hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def _stored(path: Path, submission: Submission, settings: str) -> Result | None:
    """The stored result of a submission, if it is for the same file, graded with the same settings."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        stored = Result(**data)
    except (OSError, ValueError, TypeError):
        return None
    current = (
        hashlib.sha256(submission.path.read_bytes()).hexdigest() if submission.notebook else ""
    )
    return stored if stored.sha256 == current and stored.settings == settings else None


def _grade_and_store(submission: Submission, options: Options, path: str, settings: str) -> Result:
    """Grade one notebook and store its result atomically (runs in a worker process with -j N)."""
    result = grade_notebook(submission, options)
    result.settings = settings
    _write_atomic(Path(path), json.dumps(asdict(result), indent=1, default=str))
    return result


def grade(
    submissions: str | Path,
    out: str | Path,
    *,
    jobs: int = 1,
    force: bool = False,
    options: Options | None = None,
    log=print,
) -> list[dict]:
    """Grade every notebook under ``submissions`` into the gradebook folder ``out``; return the rows.

    >>> grade("no-such-folder", "gradebook")
    Traceback (most recent call last):
    ...
    tltutor.grade.GradeError: no-such-folder is not a folder: pass the folder that holds one subfolder per student
    """
    options = options or Options()
    submissions, out = Path(submissions), Path(out)
    found = find_submissions(submissions)
    _check_folders(submissions, out)
    if not isinstance(jobs, int) or jobs < 1:
        raise GradeError(f"-j must be a whole number of parallel workers, 1 or more; got {jobs!r}")
    if not options.timeout > 0 or options.memory_mb < 256:
        raise GradeError("--timeout must be positive and --memory-mb at least 256")
    results: dict[Submission, Result] = {}
    todo = []
    settings = _settings(options)
    for submission in found:
        stored = None if force else _stored(_result_path(out, submission), submission, settings)
        if stored is not None:
            results[submission] = stored
        else:
            todo.append(submission)
    log(
        f"{len(found)} notebooks from {len({s.student for s in found})} students: "
        f"{len(todo)} to grade, {len(found) - len(todo)} already graded (--force re-grades)"
    )
    start = time.perf_counter()
    with trusted_copy() as package:
        options = dataclasses.replace(options, package=package)
        for submission, result in _run_all(todo, out, options, jobs, settings):
            results[submission] = result
            counts = Counter(row["status"] for row in result.rows)
            log(
                f"  {submission.student}/{submission.notebook or '-'}: "
                + ", ".join(f"{counts[s]} {s}" for s in STATUSES if counts[s])
                + f" ({result.seconds:.0f} s)"
            )
    rows = sorted(
        (row for r in results.values() for row in r.rows),
        key=lambda r: (r["student"], r["notebook"], _id_key(r["exercise"])),
    )
    notes = {(s.student, s.notebook): results[s].notes for s in found}
    write_gradebook(out, rows, notes)
    log(f"graded in {time.perf_counter() - start:.0f} s; gradebook: {out}")
    return rows


def _run_all(todo: list[Submission], out: Path, options: Options, jobs: int, settings: str):
    """Grade each submission (in ``jobs`` worker processes); yield (submission, result) as they finish."""
    if jobs == 1 or len(todo) <= 1:
        for submission in todo:
            yield (
                submission,
                _grade_and_store(submission, options, str(_result_path(out, submission)), settings),
            )
        return
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    with ProcessPoolExecutor(
        max_workers=jobs, mp_context=multiprocessing.get_context("spawn")
    ) as pool:
        futures = {
            pool.submit(_grade_and_store, s, options, str(_result_path(out, s)), settings): s
            for s in todo
        }
        try:
            for future in as_completed(futures):
                yield futures[future], future.result()
        except (
            BaseException
        ):  # Ctrl-C: stop the workers now; their kernels exit with them (JPY_PARENT_PID)
            for process in list(getattr(pool, "_processes", {}).values()):
                process.terminate()
            pool.shutdown(wait=False, cancel_futures=True)
            raise


def _id_key(item_id: str) -> tuple:
    """Sort ids naturally: 00.2 before 00.10, exercises before quizzes."""
    return tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in re.split(r"[.]", item_id))


# ------------------------------------------------------------------ the gradebook


def _write_atomic(path: Path, text: str | bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(text.encode("utf-8") if isinstance(text, str) else text)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(
            temporary, 0o666 & ~umask
        )  # mkstemp makes it private; a gradebook file is an ordinary file
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


def summarize(rows: Sequence[dict]) -> list[dict]:
    """Per exercise: how many students are at each status (a student's best notebook counts).

    >>> summarize([{"student": "a", "exercise": "00.1", "status": "correct"},
    ...            {"student": "b", "exercise": "00.1", "status": "error"}])
    [{'exercise': '00.1', 'students': 2, 'correct': 1, 'not yet': 0, 'not attempted': 0, 'error': 1}]
    """
    best: dict[tuple[str, str], str] = {}
    for row in rows:
        if row["exercise"]:
            key = (row["exercise"], row["student"])
            if key not in best or STATUSES.index(row["status"]) < STATUSES.index(best[key]):
                best[key] = row["status"]
    summary = []
    for exercise in sorted({e for e, _ in best}, key=_id_key):
        counts = Counter(status for (e, _), status in best.items() if e == exercise)
        summary.append(
            {
                "exercise": exercise,
                "students": sum(counts.values()),
                **{s: counts[s] for s in STATUSES},
            }
        )
    return summary


def summary_markdown(summary: Sequence[dict]) -> str:
    """The summary as a Markdown table.

    >>> print(summary_markdown([{"exercise": "00.1", "students": 2, "correct": 1, "not yet": 1,
    ...                          "not attempted": 0, "error": 0}]))
    | exercise | students | correct | not yet | not attempted | error |
    |---|---|---|---|---|---|
    | 00.1 | 2 | 1 | 1 | 0 | 0 |
    """
    header = ["exercise", "students", *STATUSES]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(row[h]) for h in header) + " |" for row in summary]
    return "\n".join(lines)


def summary_plot(summary: Sequence[dict], path: Path) -> None:
    """A horizontal stacked bar per exercise: how many students are correct, not yet, not attempted, error."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    colors = {
        "correct": "#1a7f37",
        "not yet": "#e09b3d",
        "not attempted": "#b8c0c8",
        "error": "#cf222e",
    }
    names = [row["exercise"] for row in summary]
    figure = Figure(figsize=(7, 0.45 * len(names) + 1.4))
    FigureCanvasAgg(figure)
    ax = figure.add_subplot()
    left = [0] * len(names)
    for status in STATUSES:
        counts = [row[status] for row in summary]
        ax.barh(names, counts, left=left, color=colors[status], label=status)
        left = [a + b for a, b in zip(left, counts)]
    for y, row in enumerate(summary):
        ax.text(
            row["correct"] / 2,
            y,
            str(row["correct"]) if row["correct"] else "",
            ha="center",
            va="center",
            color="white",
            fontsize=9,
        )
    ax.invert_yaxis()
    students = max((row["students"] for row in summary), default=0)
    ax.set_xlabel("students")
    ax.set_xlim(0, max(students, 1))
    ax.set_title(f"How many of {students} students got each exercise right")
    ax.legend(
        ncol=4,
        fontsize=8,
        loc="upper center",
        bbox_to_anchor=(0.5, -0.12 - 0.4 / max(len(names), 1)),
    )
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110, metadata={"Software": None})
    _write_atomic(path, buffer.getvalue())


def write_gradebook(
    out: Path, rows: Sequence[dict], notes: dict[tuple[str, str], list[str]]
) -> None:
    """Write grades.csv, the feedback pages and the summary (each file atomically)."""
    columns = ["student", "notebook", "exercise", "status", "message"]
    _write_atomic(out / "grades.csv", _csv(columns, rows))
    summary = summarize(rows)
    _write_atomic(out / "summary.csv", _csv(["exercise", "students", *STATUSES], summary))
    _write_atomic(out / "summary.md", summary_markdown(summary) + "\n")
    summary_plot(summary, out / "summary.png")
    for student in sorted({row["student"] for row in rows}):
        mine = [row for row in rows if row["student"] == student]
        page = feedback_html(student, mine, {nb: n for (s, nb), n in notes.items() if s == student})
        _write_atomic(out / "feedback" / f"{_slug(student)}.html", page)


def _csv(columns: Sequence[str], rows: Iterable[dict]) -> str:
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return text.getvalue()


def feedback_html(student: str, rows: Sequence[dict], notes: dict[str, list[str]]) -> str:
    """One student's feedback page: per notebook, each exercise's verdict and hints (all text escaped).

    >>> "&lt;b&gt;" in feedback_html("<b>", [], {})
    True
    """
    e = html.escape
    colors = {
        "correct": "#1a7f37",
        "not yet": "#b35900",
        "not attempted": "#57606a",
        "error": "#cf222e",
    }
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>Feedback for {e(student)}</title>",
        "<style>body{font-family:sans-serif;max-width:60em;margin:2em auto;line-height:1.4}"
        "td,th{border-bottom:1px solid #ddd;padding:.4em;vertical-align:top;text-align:left}"
        "table{border-collapse:collapse;width:100%}code{background:#f4f4f4}</style></head><body>",
        f"<h1>Feedback for {e(student)}</h1>",
    ]
    for notebook in sorted({row["notebook"] for row in rows}):
        mine = [row for row in rows if row["notebook"] == notebook]
        counts = Counter(row["status"] for row in mine if row["exercise"])
        parts.append(f"<h2>{e(notebook or '(no notebook)')}</h2>")
        parts.append(f"<p>{counts['correct']} of {sum(counts.values())} correct.</p>")
        parts.append("<table><tr><th>exercise</th><th>status</th><th>feedback</th></tr>")
        for row in mine:
            title = f"<br><small>{e(row.get('title', ''))}</small>" if row.get("title") else ""
            hints = "".join(f"<li>{_markup(h)}</li>" for h in row.get("hints", []))
            hints = f"<details><summary>hints</summary><ol>{hints}</ol></details>" if hints else ""
            parts.append(
                f"<tr><td>{e(row['exercise'] or '-')}{title}</td>"
                f'<td style="color:{colors[row["status"]]}"><b>{e(row["status"])}</b></td>'
                f"<td>{_markup(row['message'])}{hints}</td></tr>"
            )
        parts.append("</table>")
        if notes.get(notebook):
            parts.append("<p>While your notebook ran:</p><ul>")
            parts += [f"<li>{e(note)}</li>" for note in notes[notebook]]
            parts.append("</ul>")
    parts.append("</body></html>\n")
    return "\n".join(parts)


def _markup(text: str) -> str:
    """Escape text for HTML and show `code` in a code font (as the exercise panels do)."""
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", html.escape(text))


# ------------------------------------------------------------------ command line


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``python -m tltutor grade``."""
    parser.description = parser.description or (
        "Run every student's notebooks in fresh, limited kernels and check them with freshly loaded checkers; "
        "write grades.csv, a feedback page per student and a summary with a plot. "
        "This runs the students' code: grade in a container (see the instructor guide)."
    )
    parser.add_argument(
        "submissions",
        type=Path,
        metavar="SUBMISSIONS",
        help="one subfolder per student (an LMS export), or nbgrader's submitted/ folder",
    )
    parser.add_argument(
        "-o", "--output", type=Path, required=True, metavar="DIR", help="the gradebook folder"
    )
    parser.add_argument(
        "-j",
        "--jobs",
        type=int,
        default=1,
        metavar="N",
        help="notebooks graded at once (default 1)",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_TIMEOUT,
        metavar="S",
        help=f"seconds for each notebook (default {DEFAULT_TIMEOUT:g})",
    )
    parser.add_argument(
        "--memory-mb",
        type=int,
        default=DEFAULT_MEMORY_MB,
        metavar="MB",
        help=f"address-space limit of each kernel, enforced on Linux (default {DEFAULT_MEMORY_MB})",
    )
    parser.add_argument("--force", action="store_true", help="grade again what is already graded")
    parser.add_argument(
        "--reference",
        type=Path,
        default=DEFAULT_REFERENCE,
        metavar="DIR",
        help="the course's own notebooks, for quiz keys still written in a notebook "
        "(default: notebooks/ of the clone)",
    )


def run(args: argparse.Namespace) -> int:
    """Run ``python -m tltutor grade`` from parsed arguments; print the summary; return the exit status."""
    options = Options(timeout=args.timeout, memory_mb=args.memory_mb, reference=args.reference)
    rows = grade(args.submissions, args.output, jobs=args.jobs, force=args.force, options=options)
    print()
    print(summary_markdown(summarize(rows)))
    print(
        f"\ngrades: {args.output / 'grades.csv'}\nsummary plot: {args.output / 'summary.png'}"
        f"\nfeedback pages: {args.output / 'feedback'}"
    )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m tltutor.grade ...``: the same as ``python -m tltutor grade ...``."""
    parser = argparse.ArgumentParser(
        prog="python -m tltutor grade", description=__doc__.split("\n\n")[0]
    )
    add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        return run(args)
    except GradeError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
