"""Devices: what Keras will run on, GPU memory growth and mixed precision, on every backend.

>>> from tltutor import gpu
>>> report = gpu.device_report()
>>> report["backend"] in ("tensorflow", "jax", "torch")
True
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator

import keras


def _tensorflow_devices() -> list[str]:
    import tensorflow as tf

    return [f"{d.device_type}:{d.name.split(':')[-1]}" for d in tf.config.list_physical_devices()]


def _jax_devices() -> list[str]:
    import jax

    return [f"{d.platform.upper()}:{d.id}" for d in jax.devices()]


def _torch_devices() -> list[str]:
    import torch

    gpus = [f"GPU:{i} ({torch.cuda.get_device_name(i)})" for i in range(torch.cuda.device_count())]
    return ["CPU:0", *gpus]


_DEVICES = {"tensorflow": _tensorflow_devices, "jax": _jax_devices, "torch": _torch_devices}


def device_report() -> dict:
    """Which backend and devices Keras uses, whether a GPU is there, and the dtype policy.

    Never raises: a backend that cannot list its devices is reported as such.

    >>> sorted(device_report())
    ['backend', 'devices', 'gpu', 'mixed_precision']
    """
    backend = keras.backend.backend()
    try:
        devices = _DEVICES[backend]()
    except Exception as error:  # report, do not crash a doctor or a notebook's first cell
        devices = [f"unknown ({type(error).__name__}: {error})"]
    return {
        "backend": backend,
        "devices": devices,
        "gpu": any(d.startswith("GPU") for d in devices),
        "mixed_precision": keras.mixed_precision.dtype_policy().name,
    }


def setup(
    *, memory_growth: bool = True, mixed_precision: str | bool = "auto", verbose: bool = True
) -> dict:
    """Prepare the accelerator: memory growth, mixed precision; print one line saying what is used.

    - TensorFlow: ``memory_growth`` lets several notebooks share one GPU instead of each taking all
      of its memory (must run before the GPU is first used).
    - JAX preallocates 75 % of GPU memory unless ``XLA_PYTHON_CLIENT_PREALLOCATE=false`` is set
      *before* JAX is imported; ``setup`` sets it when it can and warns when it is too late.
    - PyTorch allocates on demand: nothing to do.
    - ``mixed_precision="auto"`` turns on ``mixed_float16`` only when a GPU exists (on a CPU it is
      slower); ``True`` forces it, ``False`` keeps float32.

    Returns :func:`device_report` after the changes.

    >>> setup(mixed_precision=False, verbose=False)["mixed_precision"]
    'float32'
    """
    if mixed_precision not in ("auto", True, False):
        raise ValueError(f"mixed_precision must be 'auto', True or False; got {mixed_precision!r}")
    backend = keras.backend.backend()
    notes = []
    if memory_growth and backend == "tensorflow":
        import tensorflow as tf

        for device in tf.config.list_physical_devices("GPU"):
            try:
                tf.config.experimental.set_memory_growth(device, True)
            except RuntimeError:  # the GPU is already in use: the setting is fixed for this process
                notes.append(
                    "memory growth could not be changed (GPU already initialised; call setup first)"
                )
    if memory_growth and backend == "jax":
        if "jax" in sys.modules and os.environ.get("XLA_PYTHON_CLIENT_PREALLOCATE") != "false":
            notes.append(
                "JAX was imported before setup: set XLA_PYTHON_CLIENT_PREALLOCATE=false before starting Python"
            )
        os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
    has_gpu = device_report()["gpu"]
    use_mixed = has_gpu if mixed_precision == "auto" else mixed_precision
    keras.mixed_precision.set_global_policy("mixed_float16" if use_mixed else "float32")
    report = device_report()
    if verbose:
        where = ", ".join(d for d in report["devices"] if d.startswith("GPU")) or "CPU only"
        print(
            f"Keras {keras.__version__} on {report['backend']}: {where}; dtype policy {report['mixed_precision']}"
        )
        for note in notes:
            print(f"note: {note}")
    return report


def _accelerators_or_cpus(names: list[str]) -> list[str]:
    gpus = [n for n in names if "GPU" in n.upper()]
    return gpus or [n for n in names if "CPU" in n.upper()]


@contextlib.contextmanager
def data_parallel(devices: list[str] | None = None) -> Iterator[list[str]]:
    """Train on several devices at once: one model replica per device, each batch split between them.

    Build, compile and fit the model *inside* the ``with`` block. Uses what the backend offers:
    ``tf.distribute.MirroredStrategy`` on TensorFlow and ``keras.distribution.DataParallel`` on
    JAX. ``devices`` defaults to every GPU, else every CPU device (one, unless virtual devices
    were configured). The gradients of the replicas are averaged, so one step on N devices
    equals one step on one device with the same global batch. PyTorch has no in-process data
    parallelism in Keras: with more than one device it raises and says to use JAX or TensorFlow.
    Yields the devices used. On TensorFlow each replica's BatchNorm normalises by its own share
    of the batch (JAX normalises by the global batch), so BN models differ slightly.

    >>> import numpy as np
    >>> from tltutor import models, train
    >>> with data_parallel() as used:
    ...     model = models.build_model(models.get_base("TLNet", weights=None), num_classes=2)
    ...     _ = train.fit(model, np.zeros((8, 32, 32, 3), "uint8"), np.arange(8) % 2, num_epochs=1, verbose=0)
    >>> len(used) >= 1
    True
    """
    backend = keras.backend.backend()
    if devices is not None and (
        not isinstance(devices, (list, tuple))
        or not devices
        or not all(isinstance(d, str) for d in devices)
    ):
        raise TypeError(
            f"devices must be None or a non-empty list of device names such as ['GPU:0', 'GPU:1']; got {devices!r}"
        )
    if backend == "tensorflow":
        import tensorflow as tf

        devices = list(
            devices or _accelerators_or_cpus([d.name for d in tf.config.list_logical_devices()])
        )
        strategy = tf.distribute.MirroredStrategy(devices=devices)
        with strategy.scope():
            yield devices
    elif backend == "jax":
        import jax

        devices = list(
            devices or _accelerators_or_cpus([f"{d.platform}:{d.id}" for d in jax.devices()])
        )
        with keras.distribution.DataParallel(devices=devices).scope():
            yield devices
    else:
        devices = list(devices or ["CPU:0"])
        if len(devices) > 1:
            raise RuntimeError(
                f"data-parallel training on the {backend} backend is not supported inside one Python process; "
                "set KERAS_BACKEND=jax or tensorflow (or use torchrun with PyTorch's DistributedDataParallel)"
            )
        yield devices
