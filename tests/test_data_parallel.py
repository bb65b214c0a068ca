"""Data-parallel training (``gpu.data_parallel``) over 2 virtual CPU devices matches 1 device.

Virtual devices must be configured before the backend starts, so every run is a fresh Python
process: TensorFlow splits its CPU into logical devices; JAX gets
``XLA_FLAGS=--xla_force_host_platform_device_count=N``.
"""

import importlib.util
import json
import os
import subprocess
import sys

import numpy as np
import pytest

SCRIPT = r"""
import json, os, sys
backend, n = sys.argv[1], int(sys.argv[2])
if backend == "tensorflow":
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * n)
import keras, numpy as np
from tltutor import gpu, train
rng = np.random.default_rng(0)
X = rng.integers(0, 256, (128, 32, 32, 3), dtype="uint8")
y = (X[..., 0].mean(axis=(1, 2)) > 127.5).astype("int64")
with gpu.data_parallel() as used:
    keras.utils.set_random_seed(0)
    model = keras.Sequential([  # no BatchNorm: TensorFlow's replicas would normalise by half-batches
        keras.Input((32, 32, 3)), keras.layers.Rescaling(1 / 255),
        keras.layers.Conv2D(8, 3, strides=2, activation="relu"), keras.layers.GlobalAveragePooling2D(),
        keras.layers.Dense(2, activation="softmax"),
    ])
    history = train.fit(model, X, y, num_epochs=2, batch_size=32, lr=1e-3, verbose=0)
probabilities = keras.ops.convert_to_numpy(model(X[:16].astype("float32"), training=False))
print("RESULT " + json.dumps({"devices": used, "loss": history.history["loss"], "p": probabilities.tolist()}))
"""


def run(backend: str, num_devices: int) -> dict:
    # CPU devices only: on a machine with a GPU, data_parallel() would take the GPU(s) instead
    env = dict(
        os.environ,
        KERAS_BACKEND=backend,
        TF_CPP_MIN_LOG_LEVEL="2",
        CUDA_VISIBLE_DEVICES="",
        JAX_PLATFORMS="cpu",
    )
    if backend == "jax":
        env["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={num_devices}"
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, backend, str(num_devices)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    line = next(line for line in done.stdout.splitlines() if line.startswith("RESULT "))
    return json.loads(line[len("RESULT ") :])


@pytest.mark.parametrize(
    "backend",
    [
        pytest.param(
            "tensorflow",
            marks=pytest.mark.skipif(
                importlib.util.find_spec("tensorflow") is None, reason="TensorFlow not installed"
            ),
        ),
        pytest.param(
            "jax",
            marks=pytest.mark.skipif(
                importlib.util.find_spec("jax") is None, reason="JAX not installed"
            ),
        ),
    ],
)
def test_two_virtual_devices_train_like_one(backend):
    one, two = run(backend, 1), run(backend, 2)
    assert len(one["devices"]) == 1 and len(two["devices"]) == 2, (one["devices"], two["devices"])
    # Same global batch, gradients averaged over replicas: the same training up to float round-off.
    np.testing.assert_allclose(two["loss"], one["loss"], rtol=1e-4)
    np.testing.assert_allclose(two["p"], one["p"], atol=1e-4)


def test_data_parallel_rejects_bad_devices():
    from tltutor import gpu

    with pytest.raises(TypeError, match="device names"):
        with gpu.data_parallel(devices="GPU:0"):
            pass
