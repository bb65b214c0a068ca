"""Make the student copy of a course notebook: solutions out, stubs in.

The notebooks in the repository are the *solution* notebooks. One source of
truth holds exercise and solution, with nbgrader-style markers in the
exercise cell (a code cell tagged ``exercise``)::

    ### BEGIN SOLUTION
    # STUB: squares = None  # YOUR CODE HERE
    squares = np.arange(5) ** 2
    ### END SOLUTION

The student copy replaces each marked block by its stub: the ``# STUB:``
line(s) right after ``### BEGIN SOLUTION`` when given, otherwise
``name = None  # YOUR CODE HERE`` for each variable the block assigns (or
``pass  # YOUR CODE HERE`` when it assigns none), indented like the block.
Unlike nbgrader it never writes ``raise NotImplementedError()``: a skipped
exercise leaves ``None``, its check says "not attempted", and "Run all" goes
on. Cells tagged ``solution`` (worked answers) are dropped, outputs and
execution counts are cleared, and saved widget state is removed.

Quiz and match keys are not in the notebooks at all: they are defined in
each notebook's checker module (``exercises.define_quiz``), and the notebook
only asks (``exercises.quiz("00.q1", choice=choice)``). So the student copy
holds no answer key; ``tests/test_student.py`` checks that for every notebook.

Command line::

    python -m tltutor.student notebooks/ -o student/
"""

from __future__ import annotations

import argparse
import ast
import copy
import os
import re
import sys
import tempfile
import textwrap
from pathlib import Path

import nbformat

__all__ = ["main", "make_student_copy", "strip_solutions"]

STUB_SUFFIX = "  # YOUR CODE HERE"
_MARKER = re.compile(r"^\s*###\s(BEGIN|END) SOLUTION\s*$")
_NEAR_MARKER = re.compile(r"#.*\b(BEGIN|END)\s*SOLUTION", re.IGNORECASE)
_STUB = re.compile(r"^(\s*)#\s*STUB:\s?(.*)$")


def strip_solutions(source: str) -> str:
    """Replace every ``### BEGIN SOLUTION`` ... ``### END SOLUTION`` block by its stub.

    Raises ``ValueError`` naming the line of an unbalanced or misspelt marker.

    >>> code = '''for epoch in range(3):
    ...     ### BEGIN SOLUTION
    ...     lr = 0.1 / (epoch + 1)
    ...     ### END SOLUTION
    ...     print(lr)
    ... '''
    >>> print(strip_solutions(code), end="")
    for epoch in range(3):
        lr = None  # YOUR CODE HERE
        print(lr)
    >>> print(strip_solutions("### BEGIN SOLUTION\\n# STUB: lr = ...\\nlr = 1e-3\\n### END SOLUTION"))
    lr = ...
    """
    lines = source.splitlines()
    kept: list[str] = []
    block: list[str] | None = None
    begin_line = begin_indent = 0
    for number, line in enumerate(lines, start=1):
        marker = _MARKER.match(line)
        if marker is None and _NEAR_MARKER.search(line):
            raise ValueError(
                f"line {number}: {line.strip()!r} looks like a solution marker; "
                "write it exactly as '### BEGIN SOLUTION' or '### END SOLUTION'"
            )
        if marker is None:
            (kept if block is None else block).append(line)
        elif marker.group(1) == "BEGIN":
            if block is not None:
                raise ValueError(
                    f"line {number}: '### BEGIN SOLUTION' inside the solution opened on line {begin_line}; "
                    "close that one with '### END SOLUTION' first"
                )
            block, begin_line = [], number
            begin_indent = len(line) - len(line.lstrip())
        else:
            if block is None:
                raise ValueError(
                    f"line {number}: '### END SOLUTION' without a '### BEGIN SOLUTION' before it"
                )
            kept.extend(_stub(block, begin_line, line[:begin_indent]))
            block = None
    if block is not None:
        raise ValueError(
            f"line {begin_line}: '### BEGIN SOLUTION' is never closed; add '### END SOLUTION' after the solution"
        )
    return "\n".join(kept) + ("\n" if source.endswith("\n") and kept else "")


def make_student_copy(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """Return the student copy of a solution notebook (``nb`` itself is not changed).

    Drops cells tagged ``solution``, strips solution blocks from code cells,
    clears outputs, execution counts and saved widget state. Raises
    ``ValueError`` (naming the cell) on unbalanced markers, on markers in a
    code cell not tagged ``exercise``, or on markers in a markdown cell.

    >>> nb = nbformat.v4.new_notebook(cells=[
    ...     nbformat.v4.new_code_cell("### BEGIN SOLUTION\\nx = 1\\n### END SOLUTION",
    ...                               metadata={"tags": ["exercise"]}),
    ...     nbformat.v4.new_markdown_cell("x is 1", metadata={"tags": ["solution"]})])
    >>> student = make_student_copy(nb)
    >>> [cell.source for cell in student.cells]
    ['x = None  # YOUR CODE HERE']
    """
    if not isinstance(nb, dict) or "cells" not in nb:
        raise TypeError(
            f"expected a notebook (nbformat.read(path, as_version=4)); got {type(nb).__name__}"
        )
    student = copy.deepcopy(nb)
    cells = []
    for number, cell in enumerate(student.cells, start=1):
        tags = cell.get("metadata", {}).get("tags", [])
        if "solution" in tags:
            continue
        has_markers = any(_NEAR_MARKER.search(line) for line in cell.source.splitlines())
        if cell.cell_type == "code":
            if has_markers and "exercise" not in tags:
                raise ValueError(
                    f"cell {number}: it has solution markers but is not tagged 'exercise'; "
                    "add the tag so the book and the tests treat it as an exercise"
                )
            try:
                cell.source = strip_solutions(cell.source)
            except ValueError as exc:
                raise ValueError(f"cell {number}: {exc}") from None
            cell.outputs = []
            cell.execution_count = None
            cell.metadata.pop("execution", None)
        elif has_markers:
            raise ValueError(
                f"cell {number}: solution markers work in code cells only; "
                f"tag a {cell.cell_type} cell with a worked answer 'solution' instead"
            )
        cells.append(cell)
    student.cells = cells
    student.metadata.pop("widgets", None)
    return student


def main(argv: list[str] | None = None) -> int:
    """Write student copies of a notebook or of a folder of notebooks; return the exit code.

    Sub-folders are kept; the source folder is never written to; nothing is
    written when any notebook has an unbalanced marker (exit code 1). Example::

        python -m tltutor.student notebooks/ -o student/
    """
    parser = argparse.ArgumentParser(
        prog="python -m tltutor.student",
        description="Write student copies of course notebooks: solutions replaced by stubs, "
        "cells tagged 'solution' dropped, outputs cleared.",
    )
    parser.add_argument(
        "source", type=Path, help="a solution notebook, or a folder of them (searched recursively)"
    )
    parser.add_argument(
        "-o", "--output", type=Path, required=True, help="folder for the student copies"
    )
    args = parser.parse_args(argv)
    source, output = args.source, args.output

    if not source.exists():
        return _fail(f"{source} does not exist; give a notebook or a folder of notebooks")
    if source.is_dir():
        if output.resolve() == source.resolve():
            return _fail(
                f"refusing to write into the source folder {source}; choose another, e.g. -o student/"
            )
        root = source
        notebooks = sorted(
            path
            for path in source.rglob("*.ipynb")
            if ".ipynb_checkpoints" not in path.parts
            and not path.resolve().is_relative_to(output.resolve())
        )
    else:
        root, notebooks = source.parent, [source]
    if not notebooks:
        return _fail(f"no .ipynb files in {source}")

    copies, errors = [], []
    for path in notebooks:
        target = output / path.relative_to(root)
        if target.resolve() == path.resolve():
            return _fail(
                f"refusing to overwrite the solution notebook {path}; choose another output folder"
            )
        try:
            nb = nbformat.read(path, as_version=4)
            copies.append((path, target, make_student_copy(nb), *_count_solutions(nb)))
        except (OSError, ValueError) as exc:
            errors.append(f"{path}: {exc}")
    if errors:
        return _fail("\n".join(errors) + "\nno student copies were written")

    for path, target, student, blocks, cells in copies:
        _write(student, target)
        print(
            f"{path} -> {target}: removed {blocks} solution block(s) and {cells} solution cell(s)"
        )
    total_blocks = sum(item[3] for item in copies)
    total_cells = sum(item[4] for item in copies)
    print(
        f"wrote {len(copies)} student notebook(s) to {output}: "
        f"removed {total_blocks} solution block(s) and {total_cells} solution cell(s)"
    )
    return 0


def _stub(block: list[str], begin_line: int, marker_indent: str) -> list[str]:
    """The lines that replace one solution block."""
    stub = []
    for line in block:
        found = _STUB.match(line)
        if found is None:
            break
        stub.append(found.group(1) + found.group(2))
    if stub:
        return stub
    code = [line for line in block if line.strip()]
    indent = min(
        (line[: len(line) - len(line.lstrip())] for line in code), key=len, default=marker_indent
    )
    try:
        tree = ast.parse(textwrap.dedent("\n".join(block)))
    except SyntaxError as exc:
        raise ValueError(
            f"line {begin_line}: the solution is not Python on its own ({exc.msg}), so no stub can be "
            "worked out; add '# STUB: <code>' right after '### BEGIN SOLUTION'"
        ) from None
    names = _assigned_names(tree)
    return [f"{indent}{name} = None{STUB_SUFFIX}" for name in names] or [
        f"{indent}pass{STUB_SUFFIX}"
    ]


def _assigned_names(tree: ast.AST) -> list[str]:
    """Names that statements assign (``x = ...``, ``def f``, ``class C``), outside nested scopes."""
    names: list[str] = []

    def add_target(target: ast.AST) -> None:
        if isinstance(target, ast.Name):
            names.append(target.id)
        elif isinstance(target, (ast.Tuple, ast.List)):
            for element in target.elts:
                add_target(element)
        elif isinstance(target, ast.Starred):
            add_target(target.value)

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                names.append(child.name)
            elif isinstance(child, ast.Assign):
                for target in child.targets:
                    add_target(target)
            elif isinstance(child, (ast.AnnAssign, ast.AugAssign)):
                add_target(child.target)
            elif isinstance(child, ast.stmt):
                visit(child)

    visit(tree)
    return list(dict.fromkeys(names))


def _count_solutions(nb: nbformat.NotebookNode) -> tuple[int, int]:
    """(solution blocks in kept cells, cells tagged 'solution')."""
    blocks = cells = 0
    for cell in nb.cells:
        if "solution" in cell.get("metadata", {}).get("tags", []):
            cells += 1
        elif cell.cell_type == "code":
            blocks += sum(line.strip() == "### BEGIN SOLUTION" for line in cell.source.splitlines())
    return blocks, cells


def _write(nb: nbformat.NotebookNode, target: Path) -> None:
    """Write atomically: a temporary file in the same folder, then os.replace."""
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as file:
            nbformat.write(nb, file)
        os.replace(temp, target)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def _fail(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    raise SystemExit(main())
