"""Test-wide settings: a private feature cache, quiet training, and notebook wall times."""

import collections
import os
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TLTUTOR_QUIET", "1")
os.environ.setdefault("TLTUTOR_CACHE", tempfile.mkdtemp(prefix="tltutor-test-cache-"))

_NOTEBOOK_SECONDS: dict = collections.defaultdict(float)


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
