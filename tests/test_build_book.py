"""scripts/build_book.py executes notebooks in parallel into the cache that jupyter-book reads."""

import sys
from pathlib import Path

import nbformat
import pytest
from jupyter_cache import get_cache

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))  # worker processes import build_book by name
import build_book  # noqa: E402


def write_notebook(path: Path, *sources: str, budget_s: float = 60) -> Path:
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(s) for s in sources])
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nb.metadata["tltutor"] = {"budget_s": budget_s}
    nbformat.write(nb, path)
    return path


def cached_text(cache, path: Path) -> str:
    """The printed output of the cached execution of the notebook at ``path``."""
    record = cache.match_cache_notebook(nbformat.read(path, as_version=4))
    nb = cache.get_cache_bundle(record.pk).nb
    return "".join(o.get("text", "") for cell in nb.cells for o in cell.get("outputs", []))


def test_notebooks_run_two_at_a_time_into_the_cache_and_failures_are_named(tmp_path):
    folder = tmp_path / "notebooks"
    folder.mkdir()
    (folder / "companion.py").write_text("VALUE = 41\n")
    first = write_notebook(
        folder / "01_env.ipynb",
        "import os, pathlib\nprint(os.environ['TLTUTOR_TEST_FLAG'], pathlib.Path.cwd().name)",
        budget_s=10,
    )
    second = write_notebook(
        folder / "02_companion.ipynb", "from companion import VALUE\nprint(VALUE + 1)"
    )
    broken = write_notebook(folder / "03_broken.ipynb", "1 / 0")
    cache_path = tmp_path / "cache"

    with pytest.raises(RuntimeError, match=r"(?s)03_broken\.ipynb.*ZeroDivisionError"):
        build_book.execute_in_parallel(
            [first, second, broken],
            jobs=2,
            env={"TLTUTOR_TEST_FLAG": "on"},
            cache_path=cache_path,
            timeout=60,
        )

    cache = get_cache(str(cache_path))
    assert cached_text(cache, first) == "on notebooks\n"  # the env, and the notebook's own folder
    assert cached_text(cache, second) == "42\n"  # companion files import
    with pytest.raises(KeyError):  # a failed notebook is not cached: jupyter-book would rerun it
        cache.match_cache_notebook(nbformat.read(broken, as_version=4))
    # cached notebooks are not executed again
    assert (
        build_book.execute_in_parallel(
            [first, second], jobs=2, env={}, cache_path=cache_path, timeout=60
        )
        == []
    )


def test_notebooks_that_start_workers_run_one_at_a_time_beside_the_others(tmp_path):
    seeds = "train.map_seeds(run, SEEDS)"
    heavy = [
        write_notebook(tmp_path / f"0{i}_heavy.ipynb", seeds, budget_s=b)
        for i, b in [(4, 90), (5, 150)]
    ]
    light = [
        write_notebook(tmp_path / f"0{i}_light.ipynb", "x = 1", budget_s=b)
        for i, b in [(1, 20), (3, 99)]
    ]
    assert all(build_book.uses_workers(nbformat.read(p, as_version=4)) for p in heavy)
    pending = [
        (90, heavy[0], True),
        (150, heavy[1], True),
        (20, light[0], False),
        (99, light[1], False),
    ]
    assert build_book._lanes(pending, 2) == [(1, heavy[::-1]), (1, light[::-1])]  # longest first
    assert build_book._lanes(pending, 4) == [(1, heavy[::-1]), (3, light[::-1])]
    assert build_book._lanes(pending[2:], 2) == [(2, light[::-1])]  # no workers: jobs at a time
    assert build_book._lanes(pending[:2], 3) == [(1, heavy[::-1])]
    assert not build_book.uses_workers(nbformat.read(light[0], as_version=4))


def test_jobs_must_be_a_positive_number(capsys):
    with pytest.raises(SystemExit):
        build_book.main(["--jobs", "0"])
    assert "--jobs must be at least 1" in capsys.readouterr().err
