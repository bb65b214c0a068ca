"""The package's structure: modules import each other in one direction only (no cycle, counting
imports inside functions too), and no module uses another module's private names."""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "tltutor"
MODULES = {
    path.stem: path for path in PACKAGE.glob("*.py") if path.stem not in ("__init__", "__main__")
}


def _imports(path: Path) -> tuple[set[str], list[str]]:
    """The tltutor modules ``path`` imports (anywhere in it) and the private names it takes from them."""
    tree = ast.parse(path.read_text())
    imported, private, aliases = set(), [], {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == "tltutor":
            for alias in node.names:
                if alias.name in MODULES:
                    imported.add(alias.name)
                    aliases[alias.asname or alias.name] = alias.name
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("tltutor."):
            module = node.module.split(".")[1]
            imported.add(module)
            private += [f"{module}.{a.name}" for a in node.names if a.name.startswith("_")]
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id in aliases
            and node.attr.startswith("_")
            and not node.attr.startswith("__")
        ):
            private.append(f"{aliases[node.value.id]}.{node.attr}")
    imported.discard(path.stem)
    return {m for m in imported if m in MODULES}, private


GRAPH = {name: _imports(path)[0] for name, path in MODULES.items()}


def _cycle(graph: dict) -> list[str] | None:
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return path[path.index(nxt) :] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        state[node] = 2
        path.pop()
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_the_cycle_detector_finds_a_cycle():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


def test_no_import_cycle_between_modules():
    assert _cycle(GRAPH) is None, " -> ".join(_cycle(GRAPH))


def test_core_layering():
    """validation <- data <- models <- train <- sources: the core imports downwards only."""
    assert GRAPH["validation"] == set()
    assert GRAPH["data"] <= {"validation"}
    assert GRAPH["models"] <= {"validation", "data"}
    assert GRAPH["train"] <= {"validation", "data", "models"}
    assert "sources" not in GRAPH["models"] | GRAPH["train"] | GRAPH["data"]


CORE = (
    "validation",
    "data",
    "models",
    "train",
    "sources",
    "adapt",
    "metrics",
    "gpu",
    "cli",
    "demo",
)


def test_no_module_uses_another_modules_private_names():
    used = {name: _imports(MODULES[name])[1] for name in CORE if name in MODULES}
    assert {name: names for name, names in used.items() if names} == {}


def test_the_private_name_finder_finds_them(tmp_path):
    path = tmp_path / "m.py"
    path.write_text(
        "from tltutor import models\nfrom tltutor.train import _x\n\ndef f():\n    return models._y\n"
    )
    assert sorted(_imports(path)[1]) == ["models._y", "train._x"]


def test_core_modules_share_one_validation_module():
    """The ~26 private _check_* helpers of data/models/train/adapt/metrics became tltutor.validation."""
    core = ("data", "models", "train", "adapt", "metrics")
    helpers = {
        name: [
            n.name
            for n in ast.walk(ast.parse(MODULES[name].read_text()))
            if isinstance(n, ast.FunctionDef) and n.name.startswith("_check_")
        ]
        for name in core
    }
    assert sum(map(len, helpers.values())) <= 2, helpers
    assert all("validation" in GRAPH[name] for name in core)
