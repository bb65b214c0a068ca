"""Tests for tltutor.data: datasets, shifts, pipelines and folders (fast, offline)."""

import gzip
import hashlib
import importlib.util
import json
import shutil
import socket
import time
from pathlib import Path

import numpy as np
import pytest

from tltutor import data

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def images():
    """64 bundled test images, lab format (64, 32, 32, 3), and their labels."""
    X, y = data.load_fashion_mnist("test", full=False)
    return X[:64], y[:64]


def sha256(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def write_idx(path, array):
    """Write a uint8 array as a gzipped idx file (the MNIST format)."""
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(d.to_bytes(4, "big") for d in array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


def fake_fashion_folder(folder, n=20):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for split, (images, labels) in data.FASHION_FILES.items():
        write_idx(folder / images, rng.integers(0, 256, (n, 28, 28)))
        write_idx(folder / labels, np.arange(n) % 10)
    return folder


def make_png_folder(root, classes=("cat", "dog"), per_class=6, size=(20, 24)):
    import PIL.Image

    for k, name in enumerate(classes):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            colour = (255 * (k == 0), 255 * (k == 1), 10 * i)
            PIL.Image.new("RGB", size, colour).save(root / name / f"{i:02d}.png")
    return root


# ----------------------------------------------------------------- constants


def test_constants():
    assert len(data.FASHION_CLASSES) == 10 and data.FASHION_CLASSES[0] == "T-shirt/top"
    assert data.FASHION_CLASSES[-1] == "Ankle boot"
    assert data.DIGIT_CLASSES == tuple("0123456789")
    assert data.SHIFTS == ("backgrounds", "invert", "noise", "blur", "contrast", "rotate")


# ----------------------------------------------------------- bundled subset


def test_bundled_subset_checksum_and_balance():
    npz = REPO / "tltutor" / "_data" / "fashion_subset.npz"
    meta = json.loads(npz.with_suffix(".json").read_text())
    assert sha256(npz) == meta["sha256"]
    assert npz.stat().st_size <= 6_000_000
    for split, per_class in [("train", 1000), ("test", 300)]:
        X, y = data.load_bundled_fashion(split)
        assert X.shape == (10 * per_class, 28, 28, 1) and X.dtype == np.uint8
        assert y.dtype == np.int64
        assert np.bincount(y).tolist() == [per_class] * 10
        assert meta["counts"][split] == {"total": 10 * per_class, "per_class": per_class}
        assert X.max() == 255 and X.min() == 0


def test_bundled_subset_returns_fresh_arrays():
    X, y = data.load_bundled_fashion("test")
    X[:] = 0
    y[:] = 0
    X2, y2 = data.load_bundled_fashion("test")
    assert X2.max() == 255 and y2.max() == 9


def test_bundled_subset_corrupted_or_missing(tmp_path, monkeypatch):
    bundled = REPO / "tltutor" / "_data" / "fashion_subset.npz"
    copy = tmp_path / "fashion_subset.npz"
    shutil.copy(bundled, copy)
    shutil.copy(bundled.with_suffix(".json"), tmp_path / "fashion_subset.json")
    raw = bytearray(copy.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    copy.write_bytes(bytes(raw))
    monkeypatch.setattr(data, "_BUNDLE_NPZ", copy)
    with pytest.raises(RuntimeError, match="corrupted.*make_fashion_subset"):
        data.load_bundled_fashion("train")
    monkeypatch.setattr(data, "_BUNDLE_NPZ", tmp_path / "missing" / "fashion_subset.npz")
    with pytest.raises(FileNotFoundError, match="reinstall tltutor"):
        data.load_bundled_fashion("train")


def test_bundled_subset_bad_split():
    with pytest.raises(ValueError, match="'train', 'test'"):
        data.load_bundled_fashion("validation")


def test_make_subset_script_is_deterministic(tmp_path):
    source = data.find_fashion_mnist()
    if source is None:
        pytest.skip("the full Fashion-MNIST files are not installed")
    spec = importlib.util.spec_from_file_location(
        "make_fashion_subset", REPO / "scripts" / "make_fashion_subset.py"
    )
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    assert script.main(["--source", str(source), "--out", str(tmp_path)]) == 0
    bundled = json.loads((REPO / "tltutor" / "_data" / "fashion_subset.json").read_text())
    assert sha256(tmp_path / "fashion_subset.npz") == bundled["sha256"]
    assert json.loads((tmp_path / "fashion_subset.json").read_text()) == bundled


# ------------------------------------------------------------ Fashion-MNIST


def test_find_fashion_mnist_honours_tltutor_data(tmp_path, monkeypatch):
    monkeypatch.setenv("TLTUTOR_DATA", str(tmp_path))
    names = [name for files in data.FASHION_FILES.values() for name in files]
    sub = tmp_path / "fashion-mnist"
    sub.mkdir()
    for name in names:
        (sub / name).write_bytes(b"")
    assert data.find_fashion_mnist() == sub
    for name in names:
        (tmp_path / name).write_bytes(b"")
    assert data.find_fashion_mnist() == tmp_path
    (tmp_path / names[0]).unlink()  # incomplete folder: skipped
    assert data.find_fashion_mnist() == sub


def test_load_full_set_from_tltutor_data(tmp_path, monkeypatch):
    monkeypatch.setenv("TLTUTOR_DATA", str(fake_fashion_folder(tmp_path / "fm")))
    X, y = data.load_fashion_mnist("test", full=True, size=28, channels=1)
    assert X.shape == (20, 28, 28, 1) and y.tolist() == [i % 10 for i in range(20)]
    X32, _ = data.load_fashion_mnist("test", full="auto")
    assert X32.shape == (20, 32, 32, 3)
    assert np.array_equal(X32[:, 2:30, 2:30, 0], X[..., 0])


def test_load_fashion_mnist_subset_shapes(monkeypatch):
    monkeypatch.setattr(data, "find_fashion_mnist", lambda: None)
    X, y = data.load_fashion_mnist("test")  # "auto" falls back to the bundled subset
    native, y_native = data.load_bundled_fashion("test")
    assert X.shape == (3000, 32, 32, 3) and X.dtype == np.uint8 and y.dtype == np.int64
    assert np.array_equal(y, y_native)
    assert np.array_equal(
        X[:, 2:30, 2:30, :], np.repeat(native, 3, axis=-1)
    )  # zero padding, exact pixels
    assert X[:, :2].max() == 0 and X[:, :, -2:].max() == 0
    X28, _ = data.load_fashion_mnist("test", size=28, channels=1, full=False)
    assert np.array_equal(X28, native)
    X16, _ = data.load_fashion_mnist("test", size=16, channels=1, full=False)
    assert X16.shape == (3000, 16, 16, 1) and X16.dtype == np.uint8


def test_full_set_when_installed():
    if data.find_fashion_mnist() is None:
        pytest.skip("the full Fashion-MNIST files are not installed")
    X, y = data.load_fashion_mnist("test", full=True, size=28, channels=1)
    assert X.shape == (10000, 28, 28, 1) and np.bincount(y).tolist() == [1000] * 10


def test_full_true_offline_fails_fast(monkeypatch):
    monkeypatch.setattr(data, "find_fashion_mnist", lambda: None)
    timeouts = []

    def offline(address, timeout=None):
        timeouts.append(timeout)
        raise OSError("network unreachable")

    monkeypatch.setattr(socket, "create_connection", offline)
    start = time.perf_counter()
    for download in (False, True):
        with pytest.raises(RuntimeError, match="apt install dataset-fashion-mnist.*TLTUTOR_DATA"):
            data.load_fashion_mnist("train", full=True, download=download)
    assert time.perf_counter() - start < 2
    assert timeouts and all(t <= 5 for t in timeouts)
    X, _ = data.load_fashion_mnist("test", full="auto", download=True)  # falls back to the subset
    assert len(X) == 3000


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        (dict(split="val"), ValueError, "'train', 'test'"),
        (dict(size=0), ValueError, "size"),
        (dict(size=32.0), TypeError, "size"),
        (dict(channels=2), ValueError, "channels"),
        (dict(full="yes"), ValueError, "full"),
        (dict(full=1), ValueError, "full"),
    ],
)
def test_load_fashion_mnist_bad_input(kwargs, error, match):
    with pytest.raises(error, match=match):
        data.load_fashion_mnist(**kwargs)


# ------------------------------------------------------------------ to_lab


def test_to_lab_formats():
    gray = np.arange(2 * 8 * 8, dtype=np.uint8).reshape(2, 8, 8)
    assert data.to_lab(gray, size=8, channels=1)[..., 0].tolist() == gray.tolist()
    rgb = data.to_lab(gray, size=8)
    assert rgb.shape == (2, 8, 8, 3) and np.array_equal(rgb[..., 0], rgb[..., 2])
    assert np.array_equal(
        data.to_lab(gray / 255.0, size=8, channels=1)[..., 0], gray
    )  # floats 0..1
    assert np.array_equal(
        data.to_lab(gray.astype(float), size=8, channels=1)[..., 0], gray
    )  # floats 0..255
    red = np.zeros((1, 4, 4, 3), np.uint8)
    red[..., 0] = 255
    assert data.to_lab(red, size=4, channels=1)[0, 0, 0, 0] == 76  # luminance 0.299 * 255
    big = data.to_lab(np.full((3, 10, 12, 1), 90, np.uint8), size=24)
    assert big.shape == (3, 24, 24, 3) and np.all(big == 90)  # resizing keeps flat images flat
    small = data.to_lab(np.full((3, 64, 64), 200, np.uint8), size=16)
    assert np.all(small == 200)
    original = gray.copy()
    data.to_lab(gray, size=32)
    assert np.array_equal(gray, original)


@pytest.mark.parametrize(
    "X, kwargs, error, match",
    [
        (np.zeros((28, 28), np.uint8), {}, ValueError, r"X\[None\]"),
        (np.zeros((2, 8, 8, 2), np.uint8), {}, ValueError, "C = 1 or 3"),
        (np.zeros((0, 8, 8), np.uint8), {}, ValueError, "empty"),
        (np.full((2, 8, 8), np.nan), {}, ValueError, "NaN"),
        (np.full((2, 8, 8), np.inf), {}, ValueError, "NaN or inf"),
        (np.full((2, 8, 8), 300.0), {}, ValueError, "0..255"),
        (np.full((2, 8, 8), -1), {}, ValueError, "0..255"),
        (np.zeros((2, 8, 8), bool), {}, TypeError, "dtype"),
        (np.zeros((2, 8, 8), np.uint8), dict(channels=4), ValueError, "channels"),
        (np.zeros((2, 8, 8), np.uint8), dict(size=-3), ValueError, "size"),
    ],
)
def test_to_lab_bad_input(X, kwargs, error, match):
    with pytest.raises(error, match=match):
        data.to_lab(X, **kwargs)


# ------------------------------------------------- task_split / sample_per_class


def test_task_split_relabels_in_given_order():
    y = np.array([3, 5, 7, 5, 3, 7, 1])
    X = np.arange(7) * 10
    Xt, yt = data.task_split(X, y, classes=[7, 3])
    assert Xt.tolist() == [0, 20, 40, 50] and yt.tolist() == [1, 0, 1, 0] and yt.dtype == np.int64


def test_task_split_per_class_and_seed(images):
    X, y = data.load_fashion_mnist("train", full=False, size=28, channels=1)
    Xt, yt = data.task_split(X, y, classes=[5, 6, 7, 8, 9], per_class=20, seed=0)
    assert Xt.shape == (100, 28, 28, 1) and np.bincount(yt).tolist() == [20] * 5
    again, _ = data.task_split(X, y, classes=[5, 6, 7, 8, 9], per_class=20, seed=0)
    other, _ = data.task_split(X, y, classes=[5, 6, 7, 8, 9], per_class=20, seed=1)
    assert np.array_equal(Xt, again) and not np.array_equal(Xt, other)


def test_sample_per_class_counts_seed_and_nesting():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 4, 400)
    X = np.arange(400)
    X5, y5 = data.sample_per_class(X, y, 5, seed=3)
    assert np.bincount(y5).tolist() == [5] * 4 and np.array_equal(y[X5], y5)
    assert np.array_equal(X5, data.sample_per_class(X, y, 5, seed=3)[0])
    assert not np.array_equal(X5, data.sample_per_class(X, y, 5, seed=4)[0])
    X20, _ = data.sample_per_class(X, y, 20, seed=3)
    assert set(X5) <= set(X20)  # growing budgets give nested subsets


@pytest.mark.parametrize(
    "call, error, match",
    [
        (lambda X, y: data.task_split(X, y, classes=[0, 9]), ValueError, r"\[9\] do not occur"),
        (lambda X, y: data.task_split(X, y, classes=[0, 0]), ValueError, "repeat"),
        (lambda X, y: data.task_split(X, y, classes=[]), ValueError, "non-empty"),
        (lambda X, y: data.task_split(X, y, classes=["a"]), ValueError, "integer"),
        (lambda X, y: data.task_split(X, y, classes=[0, 1], per_class=0), ValueError, "per_class"),
        (
            lambda X, y: data.task_split(X, y, classes=[2, 1], per_class=3),
            ValueError,
            "class 1 has only 2",
        ),
        (lambda X, y: data.sample_per_class(X, y, 3), ValueError, "class 1 has only 2"),
        (lambda X, y: data.sample_per_class(X, y, -1), ValueError, "per_class"),
        (lambda X, y: data.sample_per_class(X, y, 1.5), TypeError, "per_class"),
        (lambda X, y: data.sample_per_class(X, y, 1, seed=-1), ValueError, "seed"),
        (lambda X, y: data.sample_per_class(X[:5], y, 1), ValueError, "same length"),
        (lambda X, y: data.sample_per_class(X, y + 0.5, 1), ValueError, "integer"),
        (lambda X, y: data.sample_per_class(X, y - 1, 1), ValueError, ">= 0"),
        (lambda X, y: data.sample_per_class(X, y.astype(str), 1), TypeError, "integer"),
        (
            lambda X, y: data.sample_per_class(X, np.stack([y, y], axis=1), 1),
            ValueError,
            r"shape \(N,\)",
        ),
        (lambda X, y: data.sample_per_class(X[:0], y[:0], 1), ValueError, "non-empty"),
    ],
)
def test_split_bad_input(call, error, match):
    X, y = np.zeros((9, 4, 4, 1), np.uint8), np.array([0, 1, 2, 0, 1, 2, 0, 2, 0])
    with pytest.raises(error, match=match):
        call(X, y)


def test_labels_of_shape_n_by_1_are_accepted_as_everywhere():
    """One label rule for every module (tltutor.validation.check_labels): (N, 1) is (N,)."""
    X, y = np.zeros((9, 4, 4, 1), np.uint8), np.array([0, 1, 2, 0, 1, 2, 0, 2, 0])
    X1, y1 = data.sample_per_class(X, y[:, None], 2, seed=0)
    X2, y2 = data.sample_per_class(X, y, 2, seed=0)
    assert np.array_equal(y1, y2) and y1.shape == (6,)


# ------------------------------------------------------------------- shift


@pytest.mark.parametrize("kind", data.SHIFTS)
def test_shift_keeps_shape_and_changes_images(images, kind):
    X, _ = images
    out = data.shift(X, kind)
    assert out.shape == X.shape and out.dtype == np.uint8
    assert np.abs(out.astype(int) - X).mean() > 5
    assert np.array_equal(out, data.shift(X, kind))  # deterministic
    gray = data.shift(X[..., :1], kind)
    assert gray.dtype == np.uint8 and gray.shape == (
        X.shape[:3] + (3 if kind == "backgrounds" else 1,)
    )


@pytest.mark.parametrize("kind", ["backgrounds", "noise", "rotate"])
def test_random_shifts_depend_on_seed(images, kind):
    X, _ = images
    assert not np.array_equal(data.shift(X, kind, seed=0), data.shift(X, kind, seed=1))


@pytest.mark.parametrize("kind", ["noise", "blur", "contrast", "rotate"])
def test_severity_zero_is_identity(images, kind):
    X, _ = images
    assert np.array_equal(data.shift(X, kind, severity=0), X)


def test_shift_values():
    X = np.full((2, 8, 8, 3), 200, np.uint8)
    assert np.all(data.shift(X, "invert") == 55)
    contrast = data.shift(X, "contrast")
    assert np.all(contrast == np.rint(127.5 + 72.5 * 0.3))
    stronger = data.shift(X, "contrast", severity=2)
    assert abs(int(stronger[0, 0, 0, 0]) - 127) < abs(int(contrast[0, 0, 0, 0]) - 127)


def test_backgrounds_differ_per_image():
    out = data.shift(np.zeros((16, 32, 32, 1), np.uint8), "backgrounds")
    assert out.shape == (16, 32, 32, 3)
    flat = out.reshape(16, -1).astype(int)
    assert len({row.tobytes() for row in flat}) == 16
    assert out.std(axis=(1, 2)).mean() > 5  # real photo texture, not flat colour
    assert not np.array_equal(out[..., 0], out[..., 1])  # colour, not gray


def test_shifts_are_fast():
    X = np.random.default_rng(0).integers(0, 256, (5000, 32, 32, 3), dtype=np.uint8)
    data.shift(X[:2], "backgrounds")  # load and cache the photos once
    for kind in data.SHIFTS:
        start = time.perf_counter()
        data.shift(X, kind)
        assert time.perf_counter() - start < 5, kind


@pytest.mark.parametrize(
    "X, kwargs, error, match",
    [
        (np.zeros((2, 8, 8, 3), np.uint8), dict(kind="fog"), ValueError, "'backgrounds', 'invert'"),
        (np.zeros((2, 8, 8, 3), np.float32), dict(kind="invert"), TypeError, "uint8"),
        (np.zeros((2, 8, 8), np.uint8), dict(kind="invert"), ValueError, r"X\[\.\.\., None\]"),
        (np.zeros((0, 8, 8, 3), np.uint8), dict(kind="invert"), ValueError, "empty"),
        (np.zeros((2, 8, 8, 3), np.uint8), dict(kind="noise", severity=-1), ValueError, "severity"),
        (
            np.zeros((2, 8, 8, 3), np.uint8),
            dict(kind="noise", severity=float("nan")),
            ValueError,
            "severity",
        ),
        (np.zeros((2, 8, 8, 3), np.uint8), dict(kind="noise", seed=-2), ValueError, "seed"),
    ],
)
def test_shift_bad_input(X, kwargs, error, match):
    with pytest.raises(error, match=match):
        data.shift(X, **kwargs)


# ------------------------------------------------------------------ digits


def test_load_digits():
    X, y = data.load_digits("mnist")
    assert X.shape == (5000, 32, 32, 3) and X.dtype == np.uint8 and X.max() == 255
    assert np.bincount(y).tolist() == [500] * 10 and y.dtype == np.int64
    Xs, ys = data.load_digits("sklearn", size=16, channels=1)
    assert Xs.shape == (1797, 16, 16, 1) and Xs.max() == 255 and set(ys.tolist()) == set(range(10))
    with pytest.raises(ValueError, match="'mnist', 'sklearn'"):
        data.load_digits("emnist")


# ---------------------------------------------------------- tf.data / folders


def test_make_dataset(images):
    pytest.importorskip("tensorflow", reason="tf.data needs TensorFlow")
    X, y = images
    ds = data.make_dataset(X, y, batch_size=16)
    batches = list(ds.as_numpy_iterator())
    assert [len(b[0]) for b in batches] == [16] * 4
    assert np.array_equal(np.concatenate([b[1] for b in batches]), y)

    def order(seed):
        ds = data.make_dataset(X, y, batch_size=64, shuffle=True, seed=seed)
        return next(iter(ds))[0].numpy()

    assert np.array_equal(order(0), order(0)) and not np.array_equal(order(0), order(1))
    inverted = data.make_dataset(X, y, batch_size=64, augment=lambda x: 255 - x)
    assert np.array_equal(next(iter(inverted))[0].numpy(), 255 - X)
    only_x = next(iter(data.make_dataset(X, batch_size=8, augment=lambda x: x)))
    assert tuple(only_x.shape) == (8, 32, 32, 3)


@pytest.mark.parametrize(
    "args, kwargs, error, match",
    [
        ((np.zeros((4, 2)), np.zeros(3)), {}, ValueError, "same length"),
        ((np.zeros((0, 2)),), {}, ValueError, "non-empty"),
        ((np.zeros((4, 2)),), dict(batch_size=0), ValueError, "batch_size"),
        ((np.zeros((4, 2)),), dict(augment="flip"), TypeError, "augment"),
    ],
)
def test_make_dataset_bad_input(args, kwargs, error, match):
    with pytest.raises(error, match=match):
        data.make_dataset(*args, **kwargs)


def test_load_image_folder(tmp_path):
    pytest.importorskip("tensorflow", reason="tf.data needs TensorFlow")
    root = make_png_folder(tmp_path / "photos")
    train_ds, val_ds, names = data.load_image_folder(root, image_size=(16, 16), batch_size=4)
    assert names == ["cat", "dog"]
    x, _ = next(iter(train_ds))
    assert tuple(x.shape[1:]) == (16, 16, 3)
    count = sum(len(b[1]) for ds in (train_ds, val_ds) for b in ds)
    assert count == 12
    train_all, none, _ = data.load_image_folder(
        root, image_size=(8, 8), validation_split=None, cache=True
    )
    assert none is None and sum(len(b[1]) for b in train_all) == 12


def test_a_cached_image_folder_is_still_reshuffled_every_epoch(tmp_path):
    # .cache() after image_dataset_from_directory's shuffle would replay the first epoch's order
    pytest.importorskip("tensorflow", reason="tf.data needs TensorFlow")
    import PIL.Image

    for label, name in enumerate(["cat", "dog"]):
        (tmp_path / name).mkdir()
        for i in range(8):  # every image has its own grey level: its identity
            grey = np.full((8, 8, 3), 10 * (8 * label + i) + 5, dtype=np.uint8)
            PIL.Image.fromarray(grey).save(tmp_path / name / f"{i}.png")
    train_ds, _, _ = data.load_image_folder(
        tmp_path, image_size=(8, 8), batch_size=4, validation_split=None, cache=True
    )

    def one_epoch():
        return [round(float(x[0, 0, 0])) for images, _ in train_ds for x in images]

    first, second = one_epoch(), one_epoch()
    assert sorted(first) == sorted(second) == [10 * k + 5 for k in range(16)]
    assert first != second


def test_folder_to_arrays(tmp_path):
    root = make_png_folder(tmp_path / "photos")
    X, y, names = data.folder_to_arrays(root)
    assert X.shape == (12, 32, 32, 3) and X.dtype == np.uint8 and y.dtype == np.int64
    assert y.tolist() == [0] * 6 + [1] * 6 and names == ["cat", "dog"]
    assert X[0, 5, 5].tolist() == [255, 0, 0] and X[6, 5, 5, :2].tolist() == [0, 255]
    Xg, yg, _ = data.folder_to_arrays(root, size=8, channels=1, max_per_class=2)
    assert Xg.shape == (4, 8, 8, 1) and yg.tolist() == [0, 0, 1, 1]


@pytest.mark.parametrize("loader", [data.load_image_folder, data.folder_to_arrays])
def test_folder_layout_errors(tmp_path, loader):
    with pytest.raises(FileNotFoundError, match="one subfolder per class"):
        loader(tmp_path / "nowhere")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ValueError, match="0 class subfolder"):
        loader(empty)
    one = make_png_folder(tmp_path / "one", classes=("cat",))
    with pytest.raises(ValueError, match="1 class subfolder"):
        loader(one)
    no_images = tmp_path / "text"
    for name in ("a", "b"):
        (no_images / name).mkdir(parents=True)
        (no_images / name / "notes.txt").write_text("not an image")
    with pytest.raises(ValueError, match="contain no image files"):
        loader(no_images)


def test_folder_to_arrays_unreadable_file(tmp_path):
    root = make_png_folder(tmp_path / "photos")
    (root / "dog" / "broken.png").write_bytes(b"this is not a png")
    with pytest.raises(ValueError, match="broken.png"):
        data.folder_to_arrays(root)


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        (dict(validation_split=1.5), ValueError, "validation_split"),
        (dict(image_size=(16,)), ValueError, "image_size"),
        (dict(batch_size=0), ValueError, "batch_size"),
    ],
)
def test_load_image_folder_bad_input(tmp_path, kwargs, error, match):
    root = make_png_folder(tmp_path / "photos", per_class=2)
    with pytest.raises(error, match=match):
        data.load_image_folder(root, **kwargs)


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        (dict(size=0), ValueError, "size"),
        (dict(channels=2), ValueError, "channels"),
        (dict(max_per_class=0), ValueError, "max_per_class"),
    ],
)
def test_folder_to_arrays_bad_input(tmp_path, kwargs, error, match):
    root = make_png_folder(tmp_path / "photos", per_class=2)
    with pytest.raises(error, match=match):
        data.folder_to_arrays(root, **kwargs)


@pytest.mark.parametrize("name", list(data.SOURCE_DOMAINS))
def test_every_source_domain_is_lab_images_with_labels(name):
    X, y = data.source_domain(name, "test", full=False)
    assert X.dtype == np.uint8 and X.shape[1:] == (32, 32, 3) and len(X) == len(y) > 0
    assert y.dtype == np.int64 and y.min() == 0 and y.max() == (9 if name == "digits" else 4)
    X2, y2 = data.source_domain(name, "test", full=False)
    np.testing.assert_array_equal(X, X2)  # deterministic
    np.testing.assert_array_equal(y, y2)


def test_source_domains_differ_as_described():
    clean, y_clean = data.source_domain("clean", "test", full=False)
    inverted, _ = data.source_domain("inverted", "test", full=False)
    np.testing.assert_array_equal(inverted, 255 - clean)
    backgrounds, y_bg = data.source_domain("backgrounds", "test", full=False)
    _, y_random = data.source_domain("random_labels", "test", full=False)
    assert (
        np.mean(y_random == y_bg) < 0.4
    )  # random labels agree with the true ones about 1 time in 5
    rotated, _ = data.source_domain("rotated", "test", full=False)
    assert rotated.shape == backgrounds.shape and not np.array_equal(rotated, backgrounds)


@pytest.mark.parametrize("name, fraction", [("noisy_0", 0.0), ("noisy_20", 0.2), ("noisy_50", 0.5)])
def test_noisy_sources_make_exactly_that_fraction_of_training_labels_wrong(name, fraction):
    X, y = data.source_domain(name, "train", full=False)
    X_clean, y_clean = data.source_domain("backgrounds", "train", full=False)
    np.testing.assert_array_equal(X, X_clean)  # the same images, only labels change
    assert np.sum(y != y_clean) == round(fraction * len(y))
    _, y_test = data.source_domain(name, "test", full=False)
    _, y_test_clean = data.source_domain("backgrounds", "test", full=False)
    np.testing.assert_array_equal(y_test, y_test_clean)  # tested on the true labels


def test_dominant_source_has_one_class_at_60_percent_and_a_balanced_test_split():
    _, y = data.source_domain("dominant", "train", full=False)
    counts = np.bincount(y)
    assert abs(counts[0] / len(y) - 0.6) < 0.01 and len(set(counts[1:].tolist())) == 1, counts
    assert len(set(np.bincount(data.source_domain("dominant", "test", full=False)[1]))) == 1


def test_wrong_labels_moves_each_chosen_label_to_another_class():
    y = np.arange(1000) % 5
    wrong = data.wrong_labels(y, 0.3, seed=1)
    assert np.sum(wrong != y) == 300 and wrong.min() >= 0 and wrong.max() <= 4
    assert np.bincount(wrong[wrong != y]).min() > 30  # every class receives wrong labels
    np.testing.assert_array_equal(data.wrong_labels(y, 0.0), y)
    assert np.all(data.wrong_labels(y, 1.0) != y)
    with pytest.raises(ValueError, match="between 0 and 1"):
        data.wrong_labels(y, 1.5)
    with pytest.raises(ValueError, match="two classes"):
        data.wrong_labels(np.zeros(4, int), 0.5)


def test_source_domain_rejects_unknown_names():
    with pytest.raises(ValueError, match="source domain"):
        data.source_domain("imagenet")
    with pytest.raises(ValueError, match="split"):
        data.source_domain("clean", "validation")


def test_pipelines_without_tensorflow_say_what_to_install(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_tensorflow(name, *args, **kwargs):
        if name == "tensorflow" or name.startswith("tensorflow."):
            raise ModuleNotFoundError("No module named 'tensorflow'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_tensorflow)
    with pytest.raises(ImportError, match="pip install tensorflow-cpu"):
        data.make_dataset(np.zeros((4, 8, 8, 3), np.uint8), np.arange(4))
