"""``import tltutor`` keeps TensorFlow's C++ start-up notices out of the notebooks (they ignore
TF_CPP_MIN_LOG_LEVEL on some CPUs), and TF_CPP_MIN_LOG_LEVEL=0 shows them again."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
NOTICE = "All log messages before absl::InitializeLog() is called are written to STDERR"


@pytest.fixture
def fake_tensorflow(tmp_path):
    """A stand-in ``tensorflow`` package that writes to file descriptor 2 as it loads, as the real
    one's C++ libraries do, then prints to stdout (so that a test sees it was imported)."""
    package = tmp_path / "tensorflow"
    package.mkdir()
    (package / "__init__.py").write_text(
        f"import os, sys\nos.write(2, b{NOTICE!r} + b'\\n')\nprint('loaded')\n"
        "raise_later = os.environ.get('FAKE_TF_RAISE')\n"
        "if raise_later:\n    raise ImportError(raise_later)\n"
    )
    return tmp_path


def _run(code, path, **env):
    environment = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    environment["PYTHONPATH"] = os.pathsep.join([str(path), str(ROOT)])
    environment.update(env)
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=environment, timeout=60
    )


def test_import_tltutor_mutes_tensorflows_start_up_notices(fake_tensorflow):
    done = _run("import tltutor, tensorflow, sys; print('after', file=sys.stderr)", fake_tensorflow)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "loaded\n"
    assert done.stderr == "after\n"  # the notice is gone, and standard error works again after


def test_level_zero_shows_them_and_an_import_error_still_reaches_the_user(fake_tensorflow):
    shown = _run("import tltutor, tensorflow", fake_tensorflow, TF_CPP_MIN_LOG_LEVEL="0")
    assert NOTICE in shown.stderr and shown.returncode == 0
    failed = _run("import tltutor, tensorflow", fake_tensorflow, FAKE_TF_RAISE="broken install")
    assert failed.returncode == 1
    assert "ImportError: broken install" in failed.stderr and NOTICE not in failed.stderr
