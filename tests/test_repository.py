"""One place names the course repository (pyproject.toml); its copies agree and the Colab cell
installs from it on Colab only."""

import importlib.util
import json
import shutil
import sys
import types
from pathlib import Path

import pytest

import tltutor

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def _load_script():
    spec = importlib.util.spec_from_file_location(
        "set_repository", ROOT / "scripts" / "set_repository.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


set_repository = _load_script()


def test_package_constant_is_pyprojects_url():
    assert tltutor.REPOSITORY == set_repository.repository(ROOT)
    assert tltutor.REPOSITORY.startswith("https://github.com/")


def test_every_copy_agrees_with_pyproject():
    assert len(NOTEBOOKS) == 9
    assert set_repository.disagreements(ROOT) == []


def test_launch_buttons_and_colab_cells_name_the_same_repository():
    import yaml

    config = yaml.safe_load((ROOT / "book" / "_config.yml").read_text())
    assert config["repository"]["url"] == tltutor.REPOSITORY
    for path in NOTEBOOKS:
        assert set_repository.notebook_urls(path) == [config["repository"]["url"]], path.name


def _fork(tmp_path: Path) -> Path:
    for name in ("notebooks", "book"):
        (tmp_path / name).mkdir()
    for path in NOTEBOOKS:
        shutil.copy(path, tmp_path / "notebooks" / path.name)
    shutil.copy(ROOT / "book" / "_config.yml", tmp_path / "book" / "_config.yml")
    text = (
        (ROOT / "pyproject.toml")
        .read_text()
        .replace(tltutor.REPOSITORY, "https://github.com/someone/fork")
    )
    (tmp_path / "pyproject.toml").write_text(text)
    return tmp_path


def test_a_fork_changes_one_line_and_the_script_does_the_rest(tmp_path):
    fork = _fork(tmp_path)
    problems = set_repository.disagreements(fork)
    assert len(problems) == len(NOTEBOOKS) + 1  # every copy is stale until the script runs
    changed = set_repository.write(fork)
    assert len(changed) == len(NOTEBOOKS) + 1
    assert set_repository.disagreements(fork) == []
    assert set_repository.config_url(fork) == "https://github.com/someone/fork"
    for path in NOTEBOOKS:  # only the Colab cell changed
        before, after = (json.loads(p.read_text()) for p in (path, fork / "notebooks" / path.name))
        differ = [i for i, (a, b) in enumerate(zip(before["cells"], after["cells"])) if a != b]
        assert len(differ) == 1 and len(before["cells"]) == len(after["cells"]), path.name
    assert set_repository.write(fork) == []  # a second run changes nothing


def _colab_source(path: Path) -> str:
    cells = set_repository.colab_cells(json.loads(path.read_text()))
    assert len(cells) == 1, path.name
    return "".join(cells[0]["source"])


class _Shell:
    def __init__(self):
        self.calls = []

    def run_line_magic(self, magic, line):
        self.calls.append((magic, line))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_colab_cell_does_nothing_outside_colab(path, monkeypatch):
    shell = _Shell()
    monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    exec(_colab_source(path), {"get_ipython": lambda: shell})
    assert shell.calls == []


def test_colab_cell_installs_from_the_repository_on_colab(monkeypatch):
    shell = _Shell()
    monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    exec(_colab_source(NOTEBOOKS[0]), {"get_ipython": lambda: shell})
    assert shell.calls == [("pip", f'install -q "tltutor @ git+{tltutor.REPOSITORY}"')]
