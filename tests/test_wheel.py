"""The installed package runs the course: build the wheel, install it (not editable) into a fresh
virtual environment, and execute notebook 00 copied outside the repository against it.

An editable install (``pip install -e .``, what CI and ``make`` use) reads the source tree, so
it cannot notice files a wheel leaves out; tltutor/checks was missing from the wheel, and every
notebook's Colab cell (which installs from git, i.e. builds this wheel) failed on its import.
The fresh environment gets tltutor from the wheel only; the third-party dependencies are made
visible from this environment's site-packages by a path file (no download, no .pth processing,
so this environment's editable tltutor is not visible there).
"""

import importlib.util
import json
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE_FILES = sorted(
    p.relative_to(ROOT).as_posix()
    for p in (ROOT / "tltutor").rglob("*")
    if p.is_file() and "__pycache__" not in p.parts and not p.name.startswith(".")
)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """The wheel built from a copy of the sources (so the build leaves nothing in the repository)."""
    source = tmp_path_factory.mktemp("source")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    shutil.copytree(
        ROOT / "tltutor", source / "tltutor", ignore=shutil.ignore_patterns("__pycache__", ".*")
    )
    out = tmp_path_factory.mktemp("wheel")
    # offline with this environment's setuptools and wheel; else pip fetches the build requirements
    local = all(importlib.util.find_spec(name) for name in ("setuptools", "wheel"))
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            *(["--no-build-isolation"] if local else []),
            "-q",
            "-w",
            str(out),
            str(source),
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    (path,) = out.glob("tltutor-*.whl")
    return path


def test_wheel_holds_every_package_file(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    missing = [name for name in PACKAGE_FILES if name not in names]
    assert not missing, f"the wheel leaves out {missing}"
    assert any(name.startswith("tltutor/checks/nb0") for name in names)
    assert any(name.startswith("tltutor/_data/") and name.endswith(".weights.h5") for name in names)
    metadata = next(name for name in names if name.endswith(".dist-info/METADATA"))
    assert "Project-URL: Repository, https://" in zipfile.ZipFile(wheel).read(metadata).decode()


def test_notebook_00_runs_against_the_installed_wheel(wheel, tmp_path):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    venv_site = Path(
        subprocess.run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
    )
    # the dependencies from this environment (a plain path entry: its .pth files, such as the
    # editable tltutor's, are not processed), tltutor itself from the wheel
    (venv_site / "course-dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(
            venv_site
        )  # a pure-Python wheel installs by unpacking it into site-packages
    course = tmp_path / "course"  # outside the repository: nothing there but the notebook
    course.mkdir()
    shutil.copy(ROOT / "notebooks" / "00_setup.ipynb", course / "00_setup.ipynb")
    where = subprocess.run(
        [
            str(python),
            "-c",
            "import tltutor, tltutor.checks.nb00; print(tltutor.__file__); print(tltutor.REPOSITORY)",
        ],
        cwd=course,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    assert where[0].startswith(str(venv_site)), where  # the wheel's copy, not the repository's
    assert where[1].startswith("https://")
    result = subprocess.run(
        [
            str(python),
            "-m",
            "nbconvert",
            "--to",
            "notebook",
            "--execute",
            "--output",
            "executed.ipynb",
            "--ExecutePreprocessor.timeout=600",
            "--ExecutePreprocessor.kernel_name=python3",
            "00_setup.ipynb",
        ],
        cwd=course,
        capture_output=True,
        text=True,
        env={
            "PATH": str(venv / "bin"),
            "HOME": str(tmp_path),
            "TLTUTOR_QUIET": "1",
            "MPLBACKEND": "Agg",
        },
    )
    assert result.returncode == 0, result.stderr[-3000:]
    executed = json.loads((course / "executed.ipynb").read_text())
    errors = [
        output
        for cell in executed["cells"]
        for output in cell.get("outputs", [])
        if output["output_type"] == "error"
    ]
    assert not errors, errors
