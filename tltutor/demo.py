"""The main job, ``python -m tltutor demo``: scratch vs feature extraction vs fine-tuning on a target.

This module checks the arguments and the target folder before any training, reads the target,
reports progress while :func:`tltutor.train.compare_transfer` runs, and words the verdict under
the table: which strategy to use and why, and how far the test set lets the numbers be trusted.

>>> round(accuracy_margin(0.8, 100), 3)     # 0.8 measured on 100 test images: 0.80 ± 0.08
0.078
>>> print(verdict({"scratch": {20: 0.40}, "features": {20: 0.71}}, test_per_class=[300] * 5)[1])
Use feature extraction: with 20 labels per class it beat training from scratch by 31 points (0.71 vs 0.40).
"""

from __future__ import annotations

import functools
import json
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

TEST_FRACTION = (
    0.3  # of each class, for the test set, when --target is not split into train/ and val/
)
IMAGENET_IMAGE_SIZE = (
    96  # default input size of the ImageNet backbones here: quick on a CPU (224 on a GPU)
)
STRATEGY_NAMES = {
    "scratch": "training from scratch",
    "features": "feature extraction",
    "finetune": "fine-tuning",
}


# --------------------------------------------------------------------------- arguments


@dataclass
class Options:
    """The demo's checked arguments."""

    target: Path | None
    arch: str
    weights: str
    image_size: int
    sizes: list[int]
    num_epochs: int
    max_per_class: int
    seed: int
    out: Path


def check_options(
    *,
    target=None,
    arch: str = "TLNet",
    weights: str | None = None,
    image_size: int | None = None,
    sizes=(5, 20, 100),
    num_epochs: int = 30,
    max_per_class: int = 300,
    seed: int = 0,
    out="out",
) -> Options:
    """Every argument of ``demo`` checked, with the defaults that depend on the backbone filled in.

    ``weights`` defaults to ``"course"`` for TLNet (the shipped checkpoint) and ``"imagenet"`` for the
    other backbones; ``image_size`` to 32 for TLNet and :data:`IMAGENET_IMAGE_SIZE` for the others.
    Raises ValueError (or FileNotFoundError) with the option's name and what to pass instead.

    >>> options = check_options(arch="mobilenetv2", sizes=[20, 5, 20])
    >>> options.arch, options.weights, options.image_size, options.sizes
    ('MobileNetV2', 'imagenet', 96, [5, 20])
    >>> check_options(sizes=[0])
    Traceback (most recent call last):
    ...
    ValueError: --sizes must be positive numbers of labels per class, e.g. --sizes 5 20 100; got 0
    """
    from tltutor import models
    from tltutor.validation import check_backbone

    try:
        arch = check_backbone(arch, models.BACKBONES)
    except (ValueError, TypeError):
        raise ValueError(
            f"unknown --arch {arch!r}; choose one of {', '.join(models.BACKBONES)}"
        ) from None
    if weights is None:
        weights = "course" if arch == "TLNet" else "imagenet"
    if weights == "imagenet" and arch == "TLNet":
        raise ValueError(
            "--arch TLNet is the course's own backbone and has no ImageNet weights: use --weights course, "
            f"or an ImageNet backbone such as --arch MobileNetV2 (one of {', '.join(models.BACKBONES[1:])})"
        )
    if weights not in ("imagenet", "course") and not Path(weights).expanduser().is_file():
        raise FileNotFoundError(
            f"--weights {weights}: no such file; pass imagenet, course or the path of a weights file "
            "(.weights.h5 from base.save_weights, .keras, or a keras.applications ImageNet .h5 file)"
        )
    minimum = 8 if arch == "TLNet" else 32
    if image_size is None:
        image_size = 32 if arch == "TLNet" else IMAGENET_IMAGE_SIZE
    if (
        isinstance(image_size, bool)
        or not isinstance(image_size, int)
        or not minimum <= image_size <= 1024
    ):
        raise ValueError(
            f"--image-size must be a number of pixels from {minimum} to 1024 for {arch}; got {image_size}"
        )
    sizes = [sizes] if isinstance(sizes, int) else list(sizes)
    bad = [n for n in sizes if isinstance(n, bool) or not isinstance(n, int) or n < 1]
    if bad or not sizes:
        raise ValueError(
            "--sizes must be positive numbers of labels per class, e.g. --sizes 5 20 100; got "
            + " ".join(map(str, bad or sizes))
        )
    for name, value, low in (
        ("--num-epochs", num_epochs, 1),
        ("--max-per-class", max_per_class, 2),
        ("--seed", seed, 0),
    ):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ValueError(f"{name} must be an integer >= {low}; got {value}")
    out = Path(out).expanduser()
    if out.exists() and not out.is_dir():
        raise ValueError(
            f"--out {out} is a file; give a folder (the plot and demo_results.json are written into it)"
        )
    if target is not None:
        target = Path(target).expanduser()
        if target.is_file():
            raise ValueError(
                f"--target {target} is a file; give a folder with one subfolder of images per class"
            )
        if not target.is_dir():
            raise FileNotFoundError(
                f"--target {target} does not exist; give a folder with one subfolder of images per class"
            )
    return Options(
        target,
        arch,
        str(weights),
        image_size,
        sorted(set(sizes)),
        num_epochs,
        max_per_class,
        seed,
        out,
    )


# --------------------------------------------------------------------------- the target


@dataclass
class FolderPlan:
    """Which files of a target folder train and which test, listed before any image is read."""

    root: Path
    names: list[str]
    train_files: list[list[Path]]  # per class; empty lists when the test set is split off `files`
    test_files: list[list[Path]]
    files: list[list[Path]]  # per class, for a folder without train/ and val/
    split: tuple[Path, Path] | None

    def counts(self) -> tuple[list[int], list[int]]:
        """Images per class for training and for testing."""
        if self.split:
            return [len(f) for f in self.train_files], [len(f) for f in self.test_files]
        tests = [int(round(len(f) * TEST_FRACTION)) for f in self.files]
        return [len(f) - t for f, t in zip(self.files, tests)], tests


def plan_folder(target, *, sizes, max_per_class: int = 300) -> FolderPlan:
    """List a target folder and check it against ``sizes`` before any image is read.

    ``target`` holds one subfolder per class, or ``train/`` and ``val/`` (or ``test/``) folders that
    each hold one subfolder per class. Without such a split, :data:`TEST_FRACTION` of each class
    is kept for the test set. Raises ValueError naming the folder, the class and ``--sizes`` when a
    class has too few images.

    >>> import tempfile, PIL.Image
    >>> root = Path(tempfile.mkdtemp())
    >>> for name in ["cat", "dog"]:
    ...     (root / name).mkdir()
    ...     for i in range(10):
    ...         PIL.Image.new("RGB", (8, 8)).save(root / name / f"{i}.png")
    >>> plan_folder(root, sizes=[5]).counts()
    ([7, 7], [3, 3])
    >>> plan_folder(root, sizes=[5, 20])
    Traceback (most recent call last):
    ...
    ValueError: --sizes 20 asks for more labels per class than the folder has: class 'cat' has 10 images in ..., 7 to train after 3 (30%) go to the test set; use --sizes up to 7, e.g. --sizes 5
    """
    from tltutor import data

    root = Path(target).expanduser()
    split = data.split_folders(root)
    if split:
        train = data.image_files(split[0], max_per_class=max_per_class)
        test = data.image_files(split[1], max_per_class=max_per_class)
        plan = FolderPlan(root, list(train), list(train.values()), list(test.values()), [], split)
    else:
        files = data.image_files(root, max_per_class=max_per_class)
        plan = FolderPlan(root, list(files), [], [], list(files.values()), None)
    train_counts, test_counts = plan.counts()
    where = f"{split[0]}" if split else f"{root}"
    for name, n_train, n_test in zip(plan.names, train_counts, test_counts):
        if n_train < 1 or n_test < 1:
            raise ValueError(
                f"class {name!r} in {where} has too few images ({n_train + n_test}) to keep some for training "
                "and some for testing; add images (20 or more per class) or remove the class"
            )
    smallest = int(np.argmin(train_counts))
    too_many = [n for n in sizes if n > train_counts[smallest]]
    if too_many:
        limit = train_counts[smallest]
        detail = (
            f"{limit} images in {split[0]}"
            if split
            else f"{limit + test_counts[smallest]} images in {root}, {limit} to train after {test_counts[smallest]} "
            f"({TEST_FRACTION:.0%}) go to the test set"
        )
        fitting = [n for n in sizes if n <= limit] or [max(1, limit // 4), limit]
        raise ValueError(
            f"--sizes {' '.join(map(str, too_many))} asks for more labels per class than the folder has: "
            f"class {plan.names[smallest]!r} has {detail}; use --sizes up to {limit}, "
            f"e.g. --sizes {' '.join(map(str, sorted(set(fitting))))}"
        )
    return plan


def read_folder(plan: FolderPlan, *, image_size: int, seed: int = 0):
    """Read a planned folder: ``X_train, y_train, X_test, y_test`` as uint8 images and int64 labels.

    Every file is read (all unreadable ones are listed in one ValueError), resized to
    ``image_size``; without a train/val split, each class is split as :func:`tltutor.data.train_test_split` does.
    """
    from tltutor import data

    if plan.split:
        X_train, y_train, _ = data.folder_to_arrays(
            plan.split[0], size=image_size, max_per_class=max(map(len, plan.train_files))
        )
        X_test, y_test, _ = data.folder_to_arrays(
            plan.split[1], size=image_size, max_per_class=max(map(len, plan.test_files))
        )
        return X_train, y_train, X_test, y_test
    X, y, _ = data.folder_to_arrays(
        plan.root, size=image_size, max_per_class=max(map(len, plan.files))
    )
    return data.train_test_split(X, y, test_fraction=TEST_FRACTION, seed=seed)


# --------------------------------------------------------------------------- the verdict


def accuracy_margin(accuracy: float, num_test: int) -> float:
    """Half-width of the 95% interval of an accuracy measured on ``num_test`` test images.

    The binomial standard error ``sqrt(p (1 - p) / n)`` times 1.96 (normal approximation), with
    ``p`` kept at least ``0.5 / n`` from 0 and 1 so that a perfect score is not taken as exact.

    >>> round(accuracy_margin(0.5, 1500), 3), round(accuracy_margin(0.5, 50), 2)
    (0.025, 0.14)
    """
    p = min(max(float(accuracy), 0.5 / num_test), 1 - 0.5 / num_test)
    return 1.96 * math.sqrt(p * (1 - p) / num_test)


def verdict(
    results: dict,
    *,
    test_per_class,
    source: str = "the source model's images",
    imagenet: bool = False,
) -> list[str]:
    """The demo's conclusion in words, one sentence per line, built from ``results`` only.

    ``results`` is ``{strategy: {n: accuracy}}`` from :func:`tltutor.train.compare_transfer` and
    ``test_per_class`` the test images of each class. The recommendation is for the largest
    number of labels per class tried; a difference counts only when it is larger than the noise
    of two accuracies measured on this test set (``sqrt(2)`` times :func:`accuracy_margin`).

    >>> lines = verdict({"scratch": {5: 0.60}, "features": {5: 0.45}, "finetune": {5: 0.50}},
    ...                 test_per_class=[40] * 4, source="Fashion-MNIST")
    >>> lines[1].split(":")[0]
    'Transfer hurt here'
    """
    test_per_class = [int(k) for k in test_per_class]
    num_test = sum(test_per_class)
    sizes = sorted({int(n) for curve in results.values() for n in curve})
    n = sizes[-1]
    at_n = {strategy: float(curve[n]) for strategy, curve in results.items() if n in curve}
    typical = float(np.mean(list(at_n.values())))
    margin = accuracy_margin(typical, num_test)
    noise = math.sqrt(2) * margin  # two accuracies, each uncertain by `margin`
    lines = [
        f"Test set: {min(test_per_class)}"
        + (f"-{max(test_per_class)}" if max(test_per_class) != min(test_per_class) else "")
        + f" images per class ({num_test} in all): an accuracy near {typical:.2f} measured on it is uncertain by "
        f"about ±{margin:.2f} (95% interval), so differences under {noise:.2f} between two strategies can be chance."
    ]
    if noise > 0.05:
        needed = math.ceil(2 * 1.96**2 * typical * (1 - typical) / 0.05**2 / len(test_per_class))
        lines[0] += (
            f" That is too few test images for small differences to mean anything: about {needed} per class "
            "would resolve 5 points."
        )
    transfer = [s for s in ("finetune", "features") if s in at_n]
    if not transfer or "scratch" not in at_n:
        best = max(at_n, key=at_n.get)
        lines.append(f"Best with {n} labels per class: {STRATEGY_NAMES[best]} ({at_n[best]:.2f}).")
        return lines
    best = max(transfer, key=at_n.get)
    if "features" in at_n and best == "finetune" and at_n["finetune"] - at_n["features"] <= noise:
        best = "features"  # as good within the noise, and far cheaper
    gain = at_n[best] - at_n["scratch"]
    points = f"{_points(gain)} ({at_n[best]:.2f} vs {at_n['scratch']:.2f})"
    if gain > noise:
        lines.append(
            f"Use {STRATEGY_NAMES[best]}: with {n} labels per class it beat training from scratch by {points}."
        )
        if best == "features" and "finetune" in at_n:
            lines.append(
                f"Fine-tuning reached {at_n['finetune']:.2f}, no better within the noise, and costs far more: "
                "the frozen features already fit this target."
            )
        elif best == "finetune" and "features" in at_n:
            lines.append(
                f"Fine-tuning beat feature extraction ({at_n['features']:.2f}) by "
                f"{_points(at_n['finetune'] - at_n['features'])}: adapting the features to the target's images paid off."
            )
    elif gain < -noise:
        hint = (
            "try another ImageNet backbone (--arch) or a larger --image-size, or train from scratch."
            if imagenet
            else "try an ImageNet backbone: --arch MobileNetV2 --weights imagenet."
        )
        lines.append(
            f"Transfer hurt here: training from scratch beat the best transfer strategy ({STRATEGY_NAMES[best]}) by "
            f"{points} with {n} labels per class. Your images are unlike {source}; {hint}"
        )
    else:
        lines.append(
            f"No strategy is clearly better with {n} labels per class: {STRATEGY_NAMES[best]} and training from "
            f"scratch differ by {points}, within the noise. Feature extraction is the cheapest to train."
        )
    if len(sizes) > 1:
        first = sizes[0]
        gains = {
            m: max(results[s][m] for s in transfer if m in results[s]) - results["scratch"][m]
            for m in (first, n)
        }
        if gains[first] - gains[n] > noise:
            lines.append(
                f"Transfer matters most with few labels: its best gain over scratch was {gains[first] * 100:+.0f} points "
                f"with {first} labels per class and {gains[n] * 100:+.0f} with {n}."
            )
    return lines


def _points(difference: float) -> str:
    """An accuracy difference in percentage points, e.g. "1 point", "12 points"."""
    value = round(abs(difference) * 100)
    return f"{value} point" + ("" if value == 1 else "s")


# --------------------------------------------------------------------------- the run


def _quiet() -> bool:
    return os.environ.get("TLTUTOR_QUIET") == "1"


def describe_weights(arch: str, weights: str) -> tuple[str, str]:
    """(what the backbone is, what its pretraining saw), for the report and the verdict.

    >>> describe_weights("TLNet", "course")[0]
    'TLNet with the course weights'
    """
    from tltutor import data

    if weights == "course":
        return (
            f"{arch} with the course weights",
            f"the course source's images ({data.LAB_SOURCE_DESCRIPTION}, 32×32)",
        )
    if weights == "imagenet":
        return f"{arch} with ImageNet weights", "ImageNet's photos"
    return (
        f"{arch} with the weights in {weights}",
        f"the images the weights in {weights} were trained on",
    )


def run(options: Options) -> int:
    """Run the demo with checked ``options``: print the table and verdict, save the plot and results.

    Order: the backbone's weights first (offline, a missing ImageNet file is named within
    seconds), then the folder's layout and ``--sizes`` (no image read yet), then the images,
    then the training. Ctrl-C keeps the finished results in ``demo_results.partial.json``.
    """
    from tltutor import data, models, train

    start = time.perf_counter()
    show = functools.partial(
        print, flush=True
    )  # flushed: progress reaches a log file as it happens
    say = (lambda *a, **k: None) if _quiet() else show
    shape = (options.image_size, options.image_size, 3)
    models.get_base(
        options.arch, weights=options.weights, input_shape=shape
    )  # fails fast: weights missing or unfit
    backbone, seen = describe_weights(options.arch, options.weights)
    if options.target is not None:
        plan = plan_folder(options.target, sizes=options.sizes, max_per_class=options.max_per_class)
        train_counts, test_counts = plan.counts()
        say(f"reading {sum(train_counts) + sum(test_counts)} images from {options.target} ...")
        X_train, y_train, X_test, y_test = read_folder(
            plan, image_size=options.image_size, seed=options.seed
        )
        layout = (
            f"{plan.split[0].name}/ to train, {plan.split[1].name}/ to test"
            if plan.split
            else f"{TEST_FRACTION:.0%} of each class kept to test"
        )
        target = f"your folder {options.target} ({len(plan.names)} classes: {', '.join(plan.names)}; {layout})"
    else:
        X_train, y_train, X_test, y_test = data.lab_target()
        if options.image_size != X_train.shape[1]:
            X_train, X_test = (
                data.to_lab(X_train, size=options.image_size),
                data.to_lab(X_test, size=options.image_size),
            )
        target = data.LAB_TARGET_DESCRIPTION
        smallest = int(np.bincount(y_train).min())
        if max(options.sizes) > smallest:
            raise ValueError(
                f"--sizes {' '.join(str(n) for n in options.sizes if n > smallest)} asks for more labels per class "
                f"than the course's target task has ({smallest} training images per class); use --sizes up to {smallest}"
            )
    test_per_class = np.bincount(y_test).tolist()
    show(f"target task: {target}")
    show(
        f"labelled pool {len(X_train)}, test {len(X_test)} ({min(test_per_class)}-{max(test_per_class)} per class); "
        f"backbone: {backbone}; images resized to {options.image_size}×{options.image_size}"
    )
    total = len(options.sizes) * len(train.STRATEGIES)
    finished: dict = {}

    def progress(strategy, n, accuracy, seconds):
        if accuracy is None:
            say(f"[{len(finished) + 1}/{total}] {strategy:<8} {n:>4} labels/class ...", end=" ")
            return
        finished[f"{strategy} {n}"] = accuracy
        say(f"test accuracy {accuracy:.3f} ({seconds:.0f} s)")

    try:
        results = train.compare_transfer(
            X_train,
            y_train,
            X_test,
            y_test,
            sizes=options.sizes,
            arch=options.arch,
            weights=options.weights,
            num_epochs=options.num_epochs,
            seed=options.seed,
            progress=progress,
        )
    except KeyboardInterrupt:
        if not finished:
            raise KeyboardInterrupt("no model had finished; nothing saved") from None
        options.out.mkdir(parents=True, exist_ok=True)
        partial = options.out / "demo_results.partial.json"
        partial.write_text(json.dumps(finished, indent=2))
        raise KeyboardInterrupt(
            f"{len(finished)} of {total} models had finished; their accuracies are in {partial}"
        ) from None
    show()
    show(train.results_table(results))
    show()
    for line in verdict(
        results, test_per_class=test_per_class, source=seen, imagenet=options.weights == "imagenet"
    ):
        show(line)
    options.out.mkdir(parents=True, exist_ok=True)
    figure = train.learning_curve_plot(
        results, title=f"Scratch vs transfer ({options.arch}) on the target task"
    )
    plot = options.out / "demo_learning_curve.png"
    figure.savefig(plot, dpi=120, bbox_inches="tight")
    saved = {
        "results": results,
        "arch": options.arch,
        "weights": options.weights,
        "image_size": options.image_size,
        "test_per_class": test_per_class,
        "seed": options.seed,
    }
    (options.out / "demo_results.json").write_text(json.dumps(saved, indent=2))
    show(f"\nplot: {plot}\nresults: {options.out / 'demo_results.json'}")
    show(f"demo took {time.perf_counter() - start:.0f} s")
    return 0
