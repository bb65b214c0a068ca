"""Root pytest configuration: applies to tests/ and to the notebooks that nbval collects.

nbval runs every cell with ``store_history=False``. IPython then ignores a trailing ``;``,
so a check cell such as ``exercises.check("02.1", features);`` would show ``True`` under
nbval but not in JupyterLab, and nbval would report a different number of outputs. Running
cells with history, as Jupyter does, makes nbval see what students see.

It also gives the tests a private feature cache, quiet training, and prints each notebook's
wall time (the sum of nbval's per-cell durations) at the end of the run.

When ``TLTUTOR_EXECUTED`` names a folder of notebooks that the book build has already executed
(CI builds the book first), nbval does not execute the notebooks a second time:
``tests/test_notebooks.py`` checks those executed copies instead (same code, no error, the
``# NBVAL_CHECK_OUTPUT`` outputs as stored).
"""

import collections
import os
import pathlib
import tempfile

import nbval.kernel

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TLTUTOR_QUIET", "1")
os.environ.setdefault("TLTUTOR_CACHE", tempfile.mkdtemp(prefix="tltutor-test-cache-"))


def _execute_like_jupyter(self, cell_input, allow_stdin=None):
    return self.kc.execute(
        cell_input, store_history=True, allow_stdin=allow_stdin, stop_on_error=False
    )


nbval.kernel.RunningKernel.execute_cell_input = _execute_like_jupyter

_NOTEBOOK_SECONDS: dict = collections.defaultdict(float)
_COURSE = pathlib.Path(__file__).resolve().parent / "notebooks"


def pytest_ignore_collect(collection_path, config):
    """Skip nbval's run of the course notebooks when the book build's executed copies are checked."""
    if os.environ.get("TLTUTOR_EXECUTED") and collection_path.suffix == ".ipynb":
        return collection_path.parent == _COURSE or None
    return None


def pytest_runtest_logreport(report):
    """Add up nbval's per-cell durations into one wall time per notebook."""
    path = report.nodeid.split("::")[0]
    if path.endswith(".ipynb"):
        _NOTEBOOK_SECONDS[path] += report.duration


def pytest_terminal_summary(terminalreporter):
    if not _NOTEBOOK_SECONDS:
        return
    terminalreporter.section("notebook wall times (nbval, solution version)")
    for path, seconds in sorted(_NOTEBOOK_SECONDS.items()):
        terminalreporter.write_line(f"{seconds:7.1f} s  {path}")
    terminalreporter.write_line(f"{sum(_NOTEBOOK_SECONDS.values()):7.1f} s  total")
