"""Input checks shared by every tltutor module (in the spirit of scikit-learn's ``utils.validation``).

Each ``check_*`` function takes a user's argument, returns it in the form the caller computes
with (an int, a float64 matrix, ...), or raises an error that says what to pass instead. One
exception type per kind of mistake:

- ``TypeError``: the argument is the wrong *kind* of thing (``seed=1.5``, ``X="photos"``,
  labels of dtype str, a model that is not a ``keras.Model``);
- ``ValueError``: the right kind with a wrong *value* (``seed=-1``, an unknown name, a wrong
  shape, labels out of range, NaN features).

It also holds the two environment checks every module shares: :func:`sha256` (is a file intact?)
and :func:`host_reachable` (is a download host online?). This module imports no other tltutor
module, so every module can import it.

>>> check_int(3, "num_epochs", minimum=1)
3
>>> check_seed(1.5)
Traceback (most recent call last):
    ...
TypeError: seed must be an integer >= 0 such as 0; got 1.5
>>> check_labels([0, 1, 1], 3).dtype
dtype('int64')
"""

from __future__ import annotations

import hashlib
import math
import numbers
import socket
import warnings

import numpy as np

__all__ = [
    "check_backbone",
    "check_base",
    "check_batch",
    "check_batch_size",
    "check_channels",
    "check_choice",
    "check_feature_pair",
    "check_features",
    "check_images",
    "check_input_shape",
    "check_inputs",
    "check_int",
    "check_labels",
    "check_lr",
    "check_model",
    "check_momentum",
    "check_num_classes",
    "check_number",
    "check_pixels",
    "check_scores",
    "check_seed",
    "check_xy",
    "host_reachable",
    "sha256",
]


# --------------------------------------------------------------------------- numbers and names


def check_choice(value, valid, name: str):
    """``value`` if it is one of ``valid``, else a ValueError listing them.

    >>> check_choice("train", ("train", "test"), "split")
    'train'
    """
    try:
        known = value in valid
    except (TypeError, ValueError):  # an unhashable or array-like value
        known = False
    if not known:
        raise ValueError(f"unknown {name} {value!r}; valid: {', '.join(map(repr, valid))}")
    return value


def check_int(value, name: str, *, minimum: int | None = None, example: str = "") -> int:
    """``value`` as an int (not a bool); TypeError for a non-integer, ValueError below ``minimum``.

    >>> check_int(np.int64(5), "size", minimum=1)
    5
    """
    bound = f" >= {minimum}" if minimum is not None else ""
    example = example or f" such as {minimum if minimum is not None else 1}"
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer{bound}{example}; got {value!r}")
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be an integer{bound}{example}; got {value!r}")
    return int(value)


def check_number(
    value,
    name: str,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
    example: str = "",
) -> float:
    """``value`` as a finite float in [low, high] (``low_open``/``high_open``: exclusive bounds).

    >>> check_number(0.9, "bn_momentum", low=0, high=1, high_open=True)
    0.9
    """
    lower = "" if low is None else f"{'>' if low_open else '>='} {low:g}"
    upper = "" if high is None else f"{'<' if high_open else '<='} {high:g}"
    bounds = " and ".join(part for part in (lower, upper) if part)
    wanted = f"{name} must be a number{' ' + bounds if bounds else ''}{' such as ' + example if example else ''}"
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{wanted}; got {value!r}")
    value = float(value)
    too_low = low is not None and (value <= low if low_open else value < low)
    too_high = high is not None and (value >= high if high_open else value > high)
    if not math.isfinite(value) or too_low or too_high:
        raise ValueError(f"{wanted}; got {value!r}")
    return value


def check_seed(seed) -> int:
    """A random seed: an int >= 0."""
    return check_int(seed, "seed", minimum=0)


def check_batch_size(batch_size, *, minimum: int = 1, why: str = "") -> int:
    """A batch size: an int >= ``minimum``."""
    return check_int(batch_size, "batch_size", minimum=minimum, example=why or " such as 32")


def check_lr(lr) -> float:
    """A learning rate in (0, 10)."""
    return check_number(lr, "lr", low=0, high=10, low_open=True, high_open=True, example="1e-3")


def check_momentum(momentum) -> float:
    """A BatchNorm momentum in [0, 1)."""
    return check_number(momentum, "bn_momentum", low=0, high=1, high_open=True, example="0.9")


def check_num_classes(num_classes) -> int:
    """A number of classes: an int >= 2."""
    return check_int(num_classes, "num_classes", minimum=2)


def check_channels(channels) -> int:
    """1 (grey) or 3 (RGB)."""
    channels = check_int(channels, "channels", minimum=1)
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 (gray) or 3 (RGB); got {channels}")
    return channels


def check_backbone(name, backbones) -> str:
    """The canonical spelling (as in ``backbones``) of a backbone ``name``, matched case-insensitively.

    >>> check_backbone("tlnet", ("TLNet", "MobileNetV2"))
    'TLNet'
    """
    if not isinstance(name, str):
        raise TypeError(
            f"the backbone must be a string, one of {', '.join(backbones)}; got {type(name).__name__}"
        )
    for arch in backbones:
        if arch.lower() == name.lower():
            return arch
    raise ValueError(f"unknown backbone {name!r}; choose one of {', '.join(backbones)}")


def check_input_shape(input_shape, *, min_size: int) -> tuple:
    """``(H, W, 3)`` as a tuple of ints with H, W >= ``min_size``."""
    try:
        shape = tuple(int(d) for d in input_shape)
    except (TypeError, ValueError):
        raise TypeError(f"input_shape must be a tuple (H, W, 3); got {input_shape!r}") from None
    if len(shape) != 3 or shape[2] != 3 or min(shape[:2]) < min_size:
        raise ValueError(
            f"input_shape must be (H, W, 3) with H, W >= {min_size}; got {input_shape!r} "
            "(grey images: repeat the channel with np.repeat(X[..., None], 3, axis=-1))"
        )
    return shape


# --------------------------------------------------------------------------- arrays


def _as_array(X, name: str, what: str) -> np.ndarray:
    if (
        isinstance(X, (str, bytes))
        or X is None
        or not (hasattr(X, "__len__") or hasattr(X, "shape"))
    ):
        raise TypeError(f"{name} must be {what}; got {type(X).__name__}")
    return np.asarray(X)


def check_batch(X, name: str = "X") -> np.ndarray:
    """Any non-empty array with a batch axis (images or features)."""
    X = _as_array(X, name, "an array with a batch axis")
    if X.ndim == 0 or len(X) == 0:
        raise ValueError(f"{name} must be a non-empty array with a batch axis; got shape {X.shape}")
    return X


def check_pixels(X, *, name: str = "X") -> np.ndarray:
    """Raw images for the data transformations: uint8 pixels, shape (N, H, W, 1 or 3), N >= 1.

    >>> check_pixels(np.zeros((2, 28, 28, 1), "uint8")).shape
    (2, 28, 28, 1)
    """
    X = _as_array(X, name, "an array of uint8 images (N, H, W, C)")
    if X.dtype != np.uint8:
        raise TypeError(
            f"{name} must hold uint8 pixels (0..255); got dtype {X.dtype} — convert with tltutor.data.to_lab(X)"
        )
    if X.ndim != 4 or X.shape[-1] not in (1, 3):
        hint = " — add a channel axis with X[..., None]" if X.ndim == 3 else ""
        raise ValueError(
            f"{name} must have shape (N, H, W, C) with C = 1 or 3; got shape {X.shape}{hint}"
        )
    if len(X) == 0:
        raise ValueError(f"{name} is empty: it needs at least one image")
    return X


def check_images(X, *, model=None, name: str = "X") -> np.ndarray:
    """Images for a model: numbers (raw pixels in [0, 255]) of shape (N, H, W, C) that fit ``model``'s input.

    Warns when float images look rescaled to [0, 1] (tltutor models preprocess raw pixels).

    >>> check_images(np.zeros((1, 32, 32, 3), "uint8")).shape
    (1, 32, 32, 3)
    """
    X = _as_array(X, name, "an array of images (N, H, W, C)")
    if X.dtype.kind not in "uif":
        raise TypeError(f"{name} must hold numbers (uint8 pixels in [0, 255]); got dtype {X.dtype}")
    if X.ndim != 4:
        hint = {
            3: " — add a batch axis with X[None] for one image, or a channel axis for grey images "
            "with np.repeat(X[..., None], 3, axis=-1)",
            2: " — add a batch axis and a channel axis",
        }.get(X.ndim, "")
        raise ValueError(
            f"{name} must have shape (N, H, W, C) with uint8 pixels; got shape {X.shape}{hint}"
        )
    if len(X) == 0:
        raise ValueError(f"{name} is empty (shape {X.shape}); pass at least one image")
    if model is not None:
        expected = tuple(model.input_shape[1:])
        if any(e is not None and e != s for e, s in zip(expected, X.shape[1:])):
            raise ValueError(
                f"{name} has images of shape {X.shape[1:]} but {model.name} expects {expected}; "
                "resize them (e.g. keras.ops.image.resize) or build the base with input_shape=X.shape[1:]"
            )
    if X.dtype.kind == "f":
        if not np.isfinite(X).all():
            raise ValueError(
                f"{name} contains NaN or infinite values ({int((~np.isfinite(X)).sum())} of them); clean them first"
            )
        if 0.0 < X.max() <= 1.0:
            warnings.warn(
                f"{name} looks rescaled to [0, 1]; tltutor models expect raw pixels in [0, 255] "
                "and preprocess inside (pass X * 255 or the original uint8 images)",
                stacklevel=3,
            )
    return X


def check_inputs(model, X, *, name: str = "X") -> np.ndarray:
    """Inputs for ``model``: images (:func:`check_images`) for an image model, else a finite
    numeric array of the model's input shape (e.g. features for a head)."""
    if len(model.input_shape) == 4:
        return check_images(X, model=model, name=name)
    X = _as_array(X, name, "an array")
    expected = tuple(model.input_shape[1:])
    if X.dtype.kind not in "uif":
        raise TypeError(f"{name} must hold numbers; got dtype {X.dtype}")
    if X.ndim != len(expected) + 1 or any(
        e not in (None, s) for e, s in zip(expected, X.shape[1:])
    ):
        raise ValueError(
            f"{name} must be a numeric array of shape (N, {', '.join(map(str, expected))}); got shape {X.shape}"
        )
    if len(X) == 0:
        raise ValueError(f"{name} is empty; pass at least one example")
    if X.dtype.kind == "f" and not np.isfinite(X).all():
        raise ValueError(f"{name} contains NaN or infinite values; clean them first")
    return X


def check_labels(
    y,
    num_examples: int | None = None,
    *,
    name: str = "y",
    num_classes: int | None = None,
    min_classes: int = 1,
) -> np.ndarray:
    """Integer class labels (N,) >= 0 as int64; (N, 1) is accepted, one-hot (N, C) gets a hint.

    ``num_examples``: the number of images they label; ``num_classes``: labels must be below it;
    ``min_classes``: how many distinct classes are needed.

    >>> check_labels(np.array([[0.0], [2.0]]), 2)
    array([0, 2])
    """
    y = _as_array(y, name, "an array of integer class labels")
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1:
        hint = " — looks one-hot: use y.argmax(axis=1)" if y.ndim == 2 else ""
        raise ValueError(
            f"{name} must be integer class labels of shape (N,); got shape {y.shape}{hint}"
        )
    if y.dtype.kind not in "uif":
        raise TypeError(f"{name} must hold integer class labels 0..C-1; got dtype {y.dtype}")
    if y.dtype.kind == "f" and not np.all(np.isfinite(y) & (y == np.round(y))):
        raise ValueError(f"{name} must hold integer class labels 0..C-1; got values like {y[:5]}")
    if num_examples is not None and len(y) != num_examples:
        raise ValueError(
            f"X has {num_examples} rows (images or feature vectors) but {name} has {len(y)} labels; "
            "they must match, one label per row (the same length)"
        )
    if len(y) == 0:
        raise ValueError(f"{name} is empty: it needs at least one label")
    y = y.astype(np.int64)
    if y.min() < 0 or (num_classes is not None and y.max() >= num_classes):
        limit = f"in 0..{num_classes - 1}" if num_classes else ">= 0"
        raise ValueError(
            f"{name} has labels from {y.min()} to {y.max()}, but they must be {limit}"
            + (
                f" (the model has {num_classes} output units: build it with num_classes={y.max() + 1})"
                if num_classes
                else ""
            )
        )
    classes = np.unique(y)
    if len(classes) < min_classes:
        found = f"a single class ({classes[0]})" if len(classes) == 1 else f"{len(classes)} classes"
        raise ValueError(
            f"{name} has {found}; this needs at least {min_classes} classes to tell apart"
        )
    return y


def check_features(F, name: str = "features", *, min_rows: int = 1) -> np.ndarray:
    """A finite float64 feature matrix (N, D), N >= ``min_rows``, D >= 1.

    >>> check_features([[1, 2], [3, 4]]).dtype
    dtype('float64')
    """
    F = _as_array(
        F,
        name,
        "a numeric array (N, D), one row per image: a feature matrix, e.g. from train.extract_features",
    )
    if F.dtype.kind not in "uif":
        raise TypeError(f"{name} must hold numbers; got dtype {F.dtype}")
    if F.ndim != 2:
        hint = (
            " — one feature vector per row: pool or flatten them, e.g. F.reshape(len(F), -1)"
            if F.ndim > 2
            else ""
        )
        hint = (
            " — one image needs a batch axis, F[None]; one feature a feature axis, F[:, None]"
            if F.ndim == 1
            else hint
        )
        raise ValueError(
            f"{name} must be a feature matrix of shape (N, D), one row per image; got shape {F.shape}{hint}"
        )
    if len(F) < min_rows or F.shape[1] == 0:
        raise ValueError(
            f"{name} needs at least {min_rows} row(s) and 1 feature column; got shape {F.shape}"
        )
    if not np.isfinite(F).all():
        raise ValueError(
            f"{name} contains {int((~np.isfinite(F)).sum())} NaN or infinite value(s); recompute them (did the base diverge?)"
        )
    return F.astype(np.float64)


def check_feature_pair(Fs, Ft, *, min_rows: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Source and target features with the same number of columns."""
    Fs, Ft = (
        check_features(Fs, "Fs", min_rows=min_rows),
        check_features(Ft, "Ft", min_rows=min_rows),
    )
    if Fs.shape[1] != Ft.shape[1]:
        raise ValueError(
            f"Fs and Ft must have the same number of features; got {Fs.shape[1]} and {Ft.shape[1]} "
            "(extract both with the same base)"
        )
    return Fs, Ft


def check_scores(values, name: str) -> np.ndarray:
    """A 1-D list of finite numbers (one score per item) as float64."""
    if isinstance(values, dict):
        raise TypeError(
            f"{name} is a dict; pass the values in a fixed order, e.g. [scores[s] for s in sources]"
        )
    values = _as_array(values, name, "a list of numbers")
    if values.dtype.kind not in "uif":
        raise TypeError(f"{name} must be a 1-D list of numbers; got dtype {values.dtype}")
    if values.ndim != 1:
        raise ValueError(f"{name} must be a 1-D list of numbers; got shape {values.shape}")
    if not np.isfinite(values).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    return values.astype(np.float64)


# --------------------------------------------------------------------------- models


def check_model(model, name: str = "model"):
    """A ``keras.Model``."""
    import keras

    if not isinstance(model, keras.Model):
        raise TypeError(f"{name} must be a keras.Model; got {type(model).__name__}")
    return model


def check_base(base):
    """A base model that outputs pooled features (N, D)."""
    check_model(base, "base")
    if len(base.output_shape) != 2:
        raise ValueError(
            f"base must output pooled features (N, D); its output shape is {base.output_shape}"
        )
    return base


def check_xy(model, X, y, *, names=("X", "y")) -> tuple[np.ndarray, np.ndarray]:
    """``X`` and ``y`` that fit ``model``'s input and output (labels below its number of outputs)."""
    check_model(model)
    X = check_inputs(model, X, name=names[0])
    y = check_labels(y, len(X), name=names[1], num_classes=model.output_shape[-1])
    return X, y


# --------------------------------------------------------------------------- the environment


def sha256(path) -> str:
    """The SHA-256 hex digest of the file at ``path`` (read in 1 MiB blocks)."""
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def host_reachable(
    host: str = "storage.googleapis.com", *, port: int = 443, timeout: float = 3.0
) -> bool:
    """Whether a TCP connection to ``host:port`` opens within ``timeout`` seconds (are we online?)."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False
