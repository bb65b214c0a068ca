"""Device report and set-up on a machine without a GPU (the GPU path is checked on a lent GPU)."""

import keras
import pytest

from tltutor import gpu

HAS_GPU = gpu.device_report()["gpu"]
cpu_only = pytest.mark.skipif(
    HAS_GPU, reason="asserts the CPU-only behaviour; this machine has a GPU (see the GPU test)"
)


@cpu_only
def test_device_report_on_cpu():
    report = gpu.device_report()
    assert report["backend"] == keras.backend.backend()
    assert any(d.startswith("CPU") for d in report["devices"])
    assert report["gpu"] is False


@cpu_only
def test_setup_keeps_float32_without_gpu(capsys):
    report = gpu.setup()
    assert report["mixed_precision"] == "float32"
    assert "CPU only" in capsys.readouterr().out


@pytest.mark.skipif(not HAS_GPU, reason="needs a GPU (the CPU-only path is tested above)")
def test_setup_turns_on_mixed_precision_with_a_gpu(capsys):
    try:
        report = gpu.setup()
        assert report["gpu"] is True and report["mixed_precision"] == "mixed_float16"
        assert "GPU" in capsys.readouterr().out
    finally:
        keras.mixed_precision.set_global_policy("float32")


def test_setup_can_force_and_reset_mixed_precision():
    try:
        assert gpu.setup(mixed_precision=True, verbose=False)["mixed_precision"] == "mixed_float16"
    finally:
        assert gpu.setup(mixed_precision=False, verbose=False)["mixed_precision"] == "float32"


def test_setup_rejects_unknown_policy():
    with pytest.raises(ValueError, match="mixed_precision"):
        gpu.setup(mixed_precision="bfloat16-please")


def test_device_report_survives_a_broken_backend(monkeypatch):
    def broken():
        raise RuntimeError("driver missing")

    monkeypatch.setitem(gpu._DEVICES, keras.backend.backend(), broken)
    report = gpu.device_report()
    assert report["gpu"] is False and "driver missing" in report["devices"][0]
