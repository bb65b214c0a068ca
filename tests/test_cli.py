"""python -m tltutor: help, doctor, data, demo on a folder, errors.

The commands run in-process through ``cli.main`` (no TensorFlow import per test); two tests start a
real process because they are about the process: the ``python -m tltutor`` wiring and Ctrl-C.
"""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from tltutor import cli

ENV = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", TLTUTOR_QUIET="1")


def run(capsys, *args):
    """Run a command in-process; return (exit status, stdout, stderr)."""
    status = cli.main([str(a) for a in args])
    out, err = capsys.readouterr()
    return status, out, err


def test_python_m_tltutor_lists_every_command():
    result = subprocess.run(
        [sys.executable, "-m", "tltutor", "--help"],
        capture_output=True,
        text=True,
        timeout=120,
        env=ENV,
    )
    assert result.returncode == 0
    for command in ("doctor", "data", "pretrain", "demo", "student-copy"):
        assert command in result.stdout
    assert "``" not in result.stdout and "<command>" not in result.stdout


def test_demo_help_shows_defaults_and_the_resizing(capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main(["demo", "--help"])
    assert exit_.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    for expected in (
        "(default: 5 20 100)",
        "(default: 30)",
        "(default: TLNet)",
        "(default: out)",
        "(default: 300)",
        "resized to the backbone's input size",
        "default: course for TLNet",
        "--arch",
        "--image-size N",
    ):
        assert expected in text, expected
    assert "``" not in text and "(default: None)" not in text


def test_doctor_reports_offline_within_seconds(monkeypatch):
    """With the network cut (every socket connection and name lookup fails), doctor still finds
    the bundled data and weights, says it is offline, and does not wait for the network."""
    import socket

    import keras  # noqa: F401  (the import is not part of the budget)

    attempts = []

    def no_network(*args, **kwargs):
        attempts.append(args[:1])
        raise OSError("network is unreachable (cut by the test)")

    monkeypatch.setattr(socket, "create_connection", no_network)
    monkeypatch.setattr(socket, "getaddrinfo", no_network)
    monkeypatch.setattr(socket.socket, "connect", no_network)
    start = time.perf_counter()
    report = cli.doctor_report()
    assert time.perf_counter() - start <= 15
    assert report["backend"] in ("tensorflow", "jax", "torch")
    assert report["data"]["fashion_mnist_bundled"].startswith("ok")
    assert report["weights"]["TLNet"].startswith("ok")
    assert report["online"] is False
    assert attempts  # it did try the network (and was refused), not a constant answer


def test_is_online_when_the_weights_host_answers(monkeypatch):
    import contextlib
    import socket

    hosts = []

    def connects(address, timeout=None, *args, **kwargs):
        hosts.append(address)
        return contextlib.nullcontext()

    monkeypatch.setattr(socket, "create_connection", connects)
    assert cli.is_online() is True
    assert hosts == [cli.WEIGHTS_HOST]


def test_doctor_command_prints_json(capsys):
    status, out, _ = run(capsys, "doctor", "--json")
    assert status == 0
    report = json.loads(out)
    assert {"python", "packages", "backend", "data", "weights", "online"} <= set(report)


def test_doctor_flags_a_corrupted_checkpoint(tmp_path, capsys, monkeypatch):
    from tltutor import models

    for path in models.checkpoint_paths("TLNet"):
        (tmp_path / path.name).write_bytes(path.read_bytes())
    (tmp_path / "TLNet_source.weights.h5").write_bytes(b"truncated")
    monkeypatch.setenv("TLTUTOR_WEIGHTS_DIR", str(tmp_path))
    status, out, _ = run(capsys, "doctor")
    assert status == 1
    assert "PROBLEM" in out


def test_is_online_answers_quickly_for_an_unreachable_host():
    start = time.perf_counter()
    assert cli.is_online(("192.0.2.1", 9), timeout=1.0) is False  # TEST-NET-1: never routed
    assert time.perf_counter() - start < 3


def test_data_verify(capsys):
    status, out, _ = run(capsys, "data", "verify")
    assert status == 0
    assert "checksum ok" in out


def _image_folder(root, num_classes=3, per_class=24, size=40):
    import keras

    rng = np.random.default_rng(0)
    for label in range(num_classes):
        folder = root / f"class_{label}"
        folder.mkdir(parents=True)
        for i in range(per_class):
            image = rng.integers(0, 60, (size, size, 3)).astype("uint8")
            image[:, label * size // num_classes : (label + 1) * size // num_classes] += (
                150  # a class-specific stripe
            )
            keras.utils.save_img(folder / f"{i}.png", image)
    return root


def test_demo_on_a_folder_prints_progress_table_verdict_and_saves_plot(
    tmp_path, capsys, monkeypatch
):
    monkeypatch.delenv("TLTUTOR_QUIET", raising=False)
    folder = _image_folder(tmp_path / "photos")
    status, out, err = run(
        capsys,
        "demo",
        "--target",
        folder,
        "--sizes",
        "2",
        "8",
        "--num-epochs",
        "3",
        "--out",
        tmp_path / "out",
    )
    assert status == 0, err
    for strategy in ("scratch", "features", "finetune"):
        assert f"{strategy:<8}    8 labels/class ... test accuracy" in out
    assert (
        "[6/6]" in out
        and "labels/class" in out
        and "Test set: 7 images per class (21 in all)" in out
    )
    assert (tmp_path / "out" / "demo_learning_curve.png").stat().st_size > 10_000
    saved = json.loads((tmp_path / "out" / "demo_results.json").read_text())
    assert set(saved["results"]) == {"scratch", "features", "finetune"}
    assert (
        saved["arch"] == "TLNet"
        and saved["weights"] == "course"
        and saved["test_per_class"] == [7, 7, 7]
    )


def test_demo_on_an_empty_folder_says_what_to_do(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    status, _, err = run(capsys, "demo", "--target", tmp_path / "empty")
    assert status == 2
    assert "error:" in err and "subfolder" in err


def test_ctrl_c_stops_the_demo_with_one_line_and_status_130(tmp_path):
    folder = _image_folder(tmp_path / "photos", per_class=6)
    env = {k: v for k, v in ENV.items() if k != "TLTUTOR_QUIET"}
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tltutor",
            "demo",
            "--target",
            str(folder),
            "--sizes",
            "2",
            "--out",
            str(tmp_path / "out"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        preexec_fn=lambda: signal.signal(
            signal.SIGINT, signal.SIG_DFL
        ),  # a shell's `cmd &` ignores SIGINT
    )
    seen = ""
    while "[1/3]" not in seen and process.poll() is None:  # training has started
        seen += process.stdout.read(1)
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=120)
    assert process.returncode == 130, err
    assert "Traceback" not in err
    assert err.strip().splitlines()[-1].startswith("interrupted (Ctrl-C)")


def test_student_copy_command(tmp_path, capsys):
    fixture = os.path.join(os.path.dirname(__file__), "fixtures", "exercise_demo.ipynb")
    status, _, _ = run(capsys, "student-copy", fixture, "-o", tmp_path / "student")
    assert status == 0
    copy = next((tmp_path / "student").rglob("*.ipynb")).read_text()
    assert "BEGIN SOLUTION" not in copy
