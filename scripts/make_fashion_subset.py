"""Regenerate the Fashion-MNIST subset that ships with tltutor.

Reads the 4 official idx files (found by ``tltutor.data.find_fashion_mnist``
or given with ``--source``), keeps a seeded, class-balanced subset (1000
training images per class from the train file, 300 test images per class from
the t10k file), and writes, byte-identical on every run:

- ``tltutor/_data/fashion_subset.npz``: ``x_train``, ``y_train``, ``x_test``,
  ``y_test`` as native 28x28 uint8 images and uint8 labels;
- ``tltutor/_data/fashion_subset.json``: counts, seed, the source files'
  sha256 and the npz's sha256 (checked by ``tltutor.data.load_bundled_fashion``).

Usage::

    python scripts/make_fashion_subset.py [--source DIR] [--out DIR] [--seed 0]
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import tempfile
import zipfile
from pathlib import Path

import numpy as np

from tltutor.data import FASHION_CLASSES, FASHION_FILES, _read_idx, find_fashion_mnist

DEFAULT_OUT = Path(__file__).resolve().parents[1] / "tltutor" / "_data"
FIXED_DATE = (1980, 1, 1, 0, 0, 0)  # zip timestamps fixed so the bytes never change


def sha256_of(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def balanced_indices(y: np.ndarray, per_class: int, seed: int) -> np.ndarray:
    """``per_class`` seeded indices of each class, returned in file order."""
    rng = np.random.default_rng(seed)
    chosen = []
    for label in range(len(FASHION_CLASSES)):
        members = np.flatnonzero(y == label)
        if len(members) < per_class:
            raise ValueError(
                f"class {label} has only {len(members)} examples; lower the per-class count"
            )
        chosen.append(rng.choice(members, size=per_class, replace=False))
    return np.sort(np.concatenate(chosen))


def atomic_write(path: Path, data: bytes) -> None:
    """Write to a temporary file in the same folder, then rename it over ``path``."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o644)  # mkstemp creates 0600 files; package data must be world-readable
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def npz_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    """A compressed .npz (readable by np.load) with fixed timestamps: same arrays, same bytes."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, array in arrays.items():
            npy = io.BytesIO()
            np.lib.format.write_array(npy, np.ascontiguousarray(array), allow_pickle=False)
            info = zipfile.ZipInfo(f"{name}.npy", date_time=FIXED_DATE)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            archive.writestr(info, npy.getvalue(), compresslevel=6)
    return buffer.getvalue()


def make_subset(
    source: Path,
    out: Path,
    *,
    seed: int = 0,
    train_per_class: int = 1000,
    test_per_class: int = 300,
) -> dict:
    """Write fashion_subset.npz and fashion_subset.json into ``out``; return the metadata."""
    arrays, counts = {}, {}
    for split, per_class in [("train", train_per_class), ("test", test_per_class)]:
        images, labels = (_read_idx(source / name) for name in FASHION_FILES[split])
        keep = balanced_indices(labels, per_class, seed)
        arrays[f"x_{split}"], arrays[f"y_{split}"] = images[keep], labels[keep].astype(np.uint8)
        counts[split] = {"total": int(len(keep)), "per_class": per_class}
    out.mkdir(parents=True, exist_ok=True)
    npz_path = out / "fashion_subset.npz"
    atomic_write(npz_path, npz_bytes(arrays))
    meta = {
        "file": npz_path.name,
        "sha256": sha256_of(npz_path),
        "seed": seed,
        "counts": counts,
        "classes": list(FASHION_CLASSES),
        "arrays": {
            name: {"shape": list(a.shape), "dtype": str(a.dtype)} for name, a in arrays.items()
        },
        "source_sha256": {
            name: sha256_of(source / name) for files in FASHION_FILES.values() for name in files
        },
        "made_by": "python scripts/make_fashion_subset.py",
    }
    atomic_write(
        out / "fashion_subset.json", (json.dumps(meta, indent=2, sort_keys=True) + "\n").encode()
    )
    return meta


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--source",
        type=Path,
        default=None,
        help="folder with the 4 official idx .gz files (default: find_fashion_mnist())",
    )
    parser.add_argument(
        "--out", type=Path, default=DEFAULT_OUT, help=f"output folder (default: {DEFAULT_OUT})"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--train-per-class", type=int, default=1000)
    parser.add_argument("--test-per-class", type=int, default=300)
    args = parser.parse_args(argv)
    source = args.source or find_fashion_mnist()
    if source is None:
        parser.error(
            "full Fashion-MNIST files not found: pass --source DIR, set TLTUTOR_DATA, "
            "or `apt install dataset-fashion-mnist`"
        )
    meta = make_subset(
        source,
        args.out,
        seed=args.seed,
        train_per_class=args.train_per_class,
        test_per_class=args.test_per_class,
    )
    size_mb = (args.out / meta["file"]).stat().st_size / 1e6
    print(
        f"wrote {args.out / meta['file']} ({size_mb:.2f} MB, "
        f"{meta['counts']['train']['total']} train + {meta['counts']['test']['total']} test)"
    )
    print(f"sha256 {meta['sha256']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
