"""The same seed gives the same numbers twice, in two separate processes (CPU, TensorFlow by default)."""

import os
import subprocess
import sys

SCRIPT = r"""
import json, keras, numpy as np
from tltutor import data, models, train
X, y, X_test, y_test = data.lab_target()
X, y = data.sample_per_class(X, y, 10, seed=0)
keras.utils.set_random_seed(0)  # the notebooks' imports cell: seeds the weights' initialisation too
model = models.freeze(models.build_model(models.get_base("TLNet", weights="course"), 5), unfreeze="all")
history = train.fit(model, X, y, num_epochs=2, lr=1e-3, seed=0, verbose=0)
head = model.get_layer("head").get_weights()[0]
print("RESULT " + json.dumps({"loss": history.history["loss"], "head": head[:4, :].tolist(),
                              "accuracy": train.evaluate(model, X_test[:300], y_test[:300])}))
"""


def run_once() -> str:
    # on the CPU even where there is a GPU: GPU kernels need not be bit-for-bit reproducible
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="", JAX_PLATFORMS="cpu")
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return next(line for line in done.stdout.splitlines() if line.startswith("RESULT "))


def test_same_seed_same_numbers_in_two_processes():
    first, second = run_once(), run_once()
    assert first == second  # bit for bit: losses, weights and accuracy
