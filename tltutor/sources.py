"""Source models: the recipes and the command that pretrain the course's source models.

Pretraining needs the source domains (:mod:`tltutor.data`), a backbone and the checkpoint files
(:mod:`tltutor.models`) and the training loop (:mod:`tltutor.train`), so it lives here, above all
three; the modules import in one direction only: ``validation <- data <- models <- train <- sources``.
The registry of source domains, :data:`SOURCE_DOMAINS` (the model zoo of notebooks 05 and 06), is
defined with the data that makes them and named here too.

>>> course_architectures()[0]
'TLNet'
>>> sorted(SOURCE_DOMAINS)[:2]
['backgrounds', 'clean']
"""

from __future__ import annotations

import pathlib
import time

import keras

from tltutor import data, models, train
from tltutor.data import SOURCE_DOMAINS, source_domain
from tltutor.validation import check_backbone, check_int, check_seed

__all__ = [
    "DEFAULT_SOURCE",
    "SOURCE_DOMAINS",
    "SOURCE_RECIPES",
    "course_architectures",
    "pretrain",
    "source_domain",
]

DEFAULT_SOURCE = "TLNet"  # the architecture whose course checkpoint ships with the package
SOURCE_RECIPES: dict[str, dict] = {
    # chosen by the study in docs/source_study.md
    "TLNet": {"num_epochs": 6, "lr": 2e-3, "batch_size": 128, "bn_momentum": 0.9},
    "MobileNetV3Small": {"num_epochs": 6, "lr": 2e-3, "batch_size": 128, "bn_momentum": 0.9},
}


def course_architectures() -> tuple[str, ...]:
    """Architectures that have a pretraining recipe (``python -m tltutor pretrain --arch NAME``)."""
    return tuple(SOURCE_RECIPES)


def pretrain(
    arch: str = "TLNet",
    *,
    source: str = "backgrounds",
    num_epochs: int | None = None,
    num_images: int | None = None,
    seed: int = 0,
    out_dir=None,
    full: bool | str = "auto",
    verbose: int = 0,
) -> pathlib.Path:
    """Train a source model on a source domain and save its weights and metadata.

    The default source task is :func:`tltutor.data.lab_source` (Fashion classes 0-4 on photo
    backgrounds); ``source`` names another of :data:`SOURCE_DOMAINS` (the model zoo) and
    ``num_images`` trains on the first that many images only (a weaker source). BatchNorm uses
    momentum 0.9 and its statistics are re-estimated exactly at the end
    (:func:`tltutor.models.recalibrate_bn`, on up to 20000 training images), so the model
    evaluates in inference mode as well as in training mode; the checkpoint keeps exactly those
    statistics (measuring the training-mode accuracy does not move them). The metadata records
    the recipe, the data, both test accuracies, ``keras_version`` and ``backend``. Returns the
    path of the weights file.

    Example (several minutes on 2 CPU cores)::

        pretrain("TLNet", out_dir="my_weights")
    """
    arch = check_backbone(arch, models.BACKBONES)
    if arch not in SOURCE_RECIPES:
        raise ValueError(
            f"no pretraining recipe for {arch!r}; choose from {course_architectures()}"
        )
    if num_epochs is not None:
        check_int(num_epochs, "num_epochs", minimum=1)
    if num_images is not None:
        check_int(num_images, "num_images", minimum=1, example=" such as 10000, or None for all")
    seed = check_seed(seed)
    recipe = dict(SOURCE_RECIPES[arch], **({"num_epochs": num_epochs} if num_epochs else {}))
    weights_path, _ = models.checkpoint_paths(
        arch, out_dir, source
    )  # an unknown source fails here, before any work
    X, y = source_domain(source, "train", full=full, seed=seed)
    X_test, y_test = source_domain(source, "test", full=full, seed=seed)
    if num_images is not None:
        X, y = X[:num_images], y[:num_images]
    keras.utils.set_random_seed(seed)
    base = models.get_base(arch, weights=None, bn_momentum=recipe["bn_momentum"])
    model = train.scratch_model(base, int(max(y.max(), y_test.max())) + 1)
    start = time.perf_counter()
    train.fit(
        model,
        X,
        y,
        num_epochs=recipe["num_epochs"],
        lr=recipe["lr"],
        batch_size=recipe["batch_size"],
        schedule="cosine",
        seed=seed,
        verbose=verbose,
    )
    seconds = time.perf_counter() - start
    models.recalibrate_bn(base, X[:20000])
    metadata = {  # save_source adds input_shape, width, sha256, created and keras_version
        "architecture": arch,
        "source_domain": source,
        "source": SOURCE_DOMAINS[source],
        "num_classes": int(model.output_shape[-1]),
        "train_images": len(X),
        "test_images": len(X_test),
        "full_fashion_mnist": data.find_fashion_mnist() is not None and full is not False,
        "recipe": recipe,
        "seed": seed,
        "train_seconds": round(seconds, 1),
        "test_accuracy_inference": train.evaluate(model, X_test, y_test),
        "test_accuracy_training_mode": train.training_mode_accuracy(model, X_test, y_test),
        "backend": keras.backend.backend(),
    }
    return models.save_source(base, metadata, out_dir=weights_path.parent)
