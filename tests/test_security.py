"""Security rules, checked on the source: no pickle, no eval/exec, safe model loading, no silent downloads.

Read with ``ast`` (not grep), so comments and docstrings that *mention* these names do not count.
"""

import ast
import json
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
PACKAGE = sorted((ROOT / "tltutor").rglob("*.py"))
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
FORBIDDEN_CALLS = {"eval", "exec", "compile", "__import__"}
FORBIDDEN_MODULES = {"pickle", "cPickle", "dill", "cloudpickle", "marshal", "shelve"}


def sources():
    for path in PACKAGE:
        yield path.relative_to(ROOT).as_posix(), path.read_text()
    for path in NOTEBOOKS:
        cells = json.loads(path.read_text())["cells"]
        code = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")
        # IPython magics are not Python: drop them before parsing
        yield (
            path.name,
            "\n".join(
                line for line in code.splitlines() if not line.lstrip().startswith(("%", "!"))
            ),
        )


def keyword(call: ast.Call, name: str):
    return next((k.value for k in call.keywords if k.arg == name), None)


@pytest.mark.parametrize("name,source", list(sources()), ids=[n for n, _ in sources()])
def test_no_pickle_no_eval_and_safe_loading(name, source):
    problems = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            modules = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
            )
            problems += [
                f"line {node.lineno}: imports {m}"
                for m in modules
                if m.split(".")[0] in FORBIDDEN_MODULES
            ]
        if not isinstance(node, ast.Call):
            continue
        function = (
            node.func.id if isinstance(node.func, ast.Name) else getattr(node.func, "attr", "")
        )
        if isinstance(node.func, ast.Name) and function in FORBIDDEN_CALLS:
            problems.append(f"line {node.lineno}: calls {function}()")
        if (
            function == "load"
            and isinstance(node.func, ast.Attribute)
            and getattr(node.func.value, "id", "") == "np"
        ):
            flag = keyword(node, "allow_pickle")
            if not (isinstance(flag, ast.Constant) and flag.value is False):
                problems.append(f"line {node.lineno}: np.load without allow_pickle=False")
        if function == "load_model":
            flag = keyword(node, "safe_mode")
            if isinstance(flag, ast.Constant) and flag.value is False:
                problems.append(f"line {node.lineno}: load_model(safe_mode=False)")
    assert not problems, f"{name}: " + "; ".join(problems)


def test_network_is_touched_only_where_the_user_asks():
    """Only the documented online paths open connections: the ImageNet weights, the full Fashion-MNIST
    download (``download=True``) and the one "are we online" check (``validation.host_reachable``), each
    with a timeout."""
    allowed = {"tltutor/models.py", "tltutor/data.py", "tltutor/cli.py", "tltutor/validation.py"}
    for path in PACKAGE:
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and getattr(node.func, "attr", "") in (
                "create_connection",
                "urlopen",
                "urlretrieve",
                "get_file",
            ):
                name = path.relative_to(ROOT).as_posix()
                assert name in allowed, f"{name} line {node.lineno} opens a connection"
                if node.func.attr == "create_connection":
                    assert keyword(node, "timeout") is not None or len(node.args) >= 2, (
                        f"{name} line {node.lineno}: no timeout"
                    )
