"""python -m tltutor: help, doctor, data, demo on a folder, errors."""

import json
import os
import subprocess
import sys
import time

import numpy as np
import pytest

from tltutor import cli

ENV = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", TLTUTOR_QUIET="1")


def run(*args, timeout=300, env=None):
    return subprocess.run([sys.executable, "-m", "tltutor", *args], capture_output=True, text=True,
                          timeout=timeout, env=env or ENV)


def test_help_lists_every_command():
    result = run("--help")
    assert result.returncode == 0
    for command in ("doctor", "data", "pretrain", "demo", "student-copy"):
        assert command in result.stdout


def test_doctor_reports_offline_within_seconds():
    import keras  # noqa: F401  (the import is not part of the budget)

    start = time.perf_counter()
    report = cli.doctor_report()
    assert time.perf_counter() - start <= 15
    assert report["backend"] in ("tensorflow", "jax", "torch")
    assert report["data"]["fashion_mnist_bundled"].startswith("ok")
    assert report["weights"]["TLNet"].startswith("ok")
    assert isinstance(report["online"], bool)


def test_doctor_command_prints_json():
    result = run("doctor", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert {"python", "packages", "backend", "data", "weights", "online"} <= set(report)


def test_doctor_flags_a_corrupted_checkpoint(tmp_path):
    from tltutor import models

    for path in models._checkpoint_paths("TLNet", None):
        (tmp_path / path.name).write_bytes(path.read_bytes())
    (tmp_path / "TLNet_source.weights.h5").write_bytes(b"truncated")
    result = run("doctor", env=dict(ENV, TLTUTOR_WEIGHTS_DIR=str(tmp_path)))
    assert result.returncode == 1
    assert "PROBLEM" in result.stdout


def test_is_online_answers_quickly_for_an_unreachable_host():
    start = time.perf_counter()
    assert cli.is_online(("192.0.2.1", 9), timeout=1.0) is False  # TEST-NET-1: never routed
    assert time.perf_counter() - start < 3


def test_data_verify():
    result = run("data", "verify")
    assert result.returncode == 0, result.stderr
    assert "checksum ok" in result.stdout


def _image_folder(root, num_classes=3, per_class=24, size=40):
    import keras

    rng = np.random.default_rng(0)
    for label in range(num_classes):
        folder = root / f"class_{label}"
        folder.mkdir(parents=True)
        for i in range(per_class):
            image = rng.integers(0, 60, (size, size, 3)).astype("uint8")
            image[:, label * size // num_classes:(label + 1) * size // num_classes] += 150  # a class-specific stripe
            keras.utils.save_img(folder / f"{i}.png", image)
    return root


@pytest.mark.slow
def test_demo_on_a_folder_prints_table_and_saves_plot(tmp_path):
    folder = _image_folder(tmp_path / "photos")
    result = run("demo", "--target", str(folder), "--sizes", "2", "8", "--out", str(tmp_path / "out"))
    assert result.returncode == 0, result.stderr
    assert "labels/class" in result.stdout and "finetune" in result.stdout
    assert (tmp_path / "out" / "demo_learning_curve.png").stat().st_size > 10_000
    results = json.loads((tmp_path / "out" / "demo_results.json").read_text())
    assert set(results) == {"scratch", "features", "finetune"}


def test_demo_on_an_empty_folder_says_what_to_do(tmp_path):
    (tmp_path / "empty").mkdir()
    result = run("demo", "--target", str(tmp_path / "empty"), timeout=120)
    assert result.returncode == 2
    assert "error:" in result.stderr and "subfolder" in result.stderr


def test_student_copy_command(tmp_path):
    fixture = os.path.join(os.path.dirname(__file__), "fixtures", "exercise_demo.ipynb")
    result = run("student-copy", fixture, "-o", str(tmp_path / "student"), timeout=120)
    assert result.returncode == 0, result.stderr
    copy = next((tmp_path / "student").rglob("*.ipynb")).read_text()
    assert "BEGIN SOLUTION" not in copy
