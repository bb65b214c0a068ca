"""Training: compile, fit, evaluate, schedules, linear-probe-then-fine-tune and cached features.

>>> import numpy as np
>>> from tltutor.models import build_model, freeze, get_base
>>> X = np.random.default_rng(0).integers(0, 256, (32, 32, 32, 3), dtype="uint8")
>>> y = np.arange(32) % 2
>>> model = freeze(build_model(get_base("TLNet", weights=None), num_classes=2))
>>> history = fit(model, X, y, num_epochs=2, verbose=0)
>>> sorted(history.history)
['accuracy', 'loss']
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import pathlib
import sys
import tempfile
import time
import warnings
import zipfile
from collections.abc import Iterable, Iterator

import keras
import numpy as np

from tltutor.models import freeze
from tltutor.validation import (
    check_batch_size,
    check_images,
    check_int,
    check_labels,
    check_lr,
    check_seed,
    check_xy,
)

# --------------------------------------------------------------------------- compile and schedules


def compile_model(
    model: keras.Model,
    *,
    lr: float = 1e-3,
    lr_schedule=None,
    optimizer: str = "adam",
    label_smoothing: float = 0.0,
) -> keras.Model:
    """Compile for integer labels: sparse categorical cross-entropy and accuracy; returns ``model``.

    ``optimizer`` is "adam", "adamw", "sgd" (momentum 0.9) or "rmsprop"; ``lr_schedule`` (a
    ``LearningRateSchedule`` such as ``cosine_warmup``) replaces the constant ``lr`` (``fit``'s
    ``schedule`` is the *name* of one, "cosine" or "plateau"). Everything is
    passed by keyword: ``model.compile(opt, "loss", ["accuracy"])`` would pass the metrics as
    ``loss_weights`` (the third positional parameter) and fail with an obscure dtype error.

    >>> from tltutor.models import build_model, get_base
    >>> model = compile_model(build_model(get_base("TLNet", weights=None), 2), lr=1e-4, optimizer="sgd")
    >>> type(model.optimizer).__name__
    'SGD'
    """
    if not isinstance(model, keras.Model):
        raise TypeError(f"model must be a keras.Model; got {type(model).__name__}")
    if lr_schedule is not None and not isinstance(
        lr_schedule, keras.optimizers.schedules.LearningRateSchedule
    ):
        raise TypeError(
            f"lr_schedule must be a keras LearningRateSchedule such as cosine_warmup(...); got {type(lr_schedule).__name__}"
            + (
                " (a schedule's name, 'cosine' or 'plateau', goes to fit(schedule=...))"
                if isinstance(lr_schedule, str)
                else ""
            )
        )
    check_lr(lr)
    if not 0.0 <= label_smoothing < 1.0:
        raise ValueError(f"label_smoothing must be in [0, 1), e.g. 0.1; got {label_smoothing!r}")
    learning_rate = lr_schedule if lr_schedule is not None else lr
    optimizers = {
        "adam": lambda: keras.optimizers.Adam(learning_rate=learning_rate),
        "adamw": lambda: keras.optimizers.AdamW(learning_rate=learning_rate),
        "sgd": lambda: keras.optimizers.SGD(learning_rate=learning_rate, momentum=0.9),
        "rmsprop": lambda: keras.optimizers.RMSprop(learning_rate=learning_rate),
    }
    if optimizer not in optimizers:
        raise ValueError(f"optimizer must be one of {sorted(optimizers)}; got {optimizer!r}")
    num_classes = model.output_shape[-1]
    if label_smoothing:
        loss = SmoothedSparseCrossentropy(num_classes=num_classes, label_smoothing=label_smoothing)
    else:
        loss = keras.losses.SparseCategoricalCrossentropy()
    model.compile(optimizer=optimizers[optimizer](), loss=loss, metrics=["accuracy"])
    return model


@keras.saving.register_keras_serializable(package="tltutor")
class SmoothedSparseCrossentropy(keras.losses.Loss):
    """Cross-entropy with label smoothing for integer labels (Keras' sparse loss has no smoothing).

    >>> loss = SmoothedSparseCrossentropy(num_classes=2, label_smoothing=0.2)
    >>> round(float(loss(np.array([0]), np.array([[0.9, 0.1]]))), 4)
    0.3251
    """

    def __init__(
        self,
        num_classes: int,
        label_smoothing: float = 0.1,
        name: str = "smoothed_sparse_crossentropy",
        **kwargs,
    ):
        super().__init__(name=name, **kwargs)
        self.num_classes = int(num_classes)
        self.label_smoothing = float(label_smoothing)

    def call(self, y_true, y_pred):
        labels = keras.ops.cast(keras.ops.reshape(y_true, (-1,)), "int32")
        one_hot = keras.ops.one_hot(labels, self.num_classes)
        return keras.losses.categorical_crossentropy(
            one_hot, y_pred, label_smoothing=self.label_smoothing
        )

    def get_config(self):
        return {
            **super().get_config(),
            "num_classes": self.num_classes,
            "label_smoothing": self.label_smoothing,
        }


@keras.saving.register_keras_serializable(package="tltutor")
class CosineWarmup(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warmup from 0 to ``lr`` over ``warmup_steps``, then cosine decay to ``final_lr_fraction * lr``."""

    def __init__(
        self, lr: float, total_steps: int, warmup_steps: int = 0, final_lr_fraction: float = 0.0
    ):
        self.lr = float(lr)
        self.total_steps = int(total_steps)
        self.warmup_steps = int(warmup_steps)
        self.final_lr_fraction = float(final_lr_fraction)

    def __call__(self, step):
        step = keras.ops.cast(step, "float32")
        warmup = self.lr * step / max(self.warmup_steps, 1)
        progress = keras.ops.clip(
            (step - self.warmup_steps) / max(self.total_steps - self.warmup_steps, 1), 0.0, 1.0
        )
        cosine = 0.5 * (1.0 + keras.ops.cos(math.pi * progress))
        decay = self.lr * (self.final_lr_fraction + (1.0 - self.final_lr_fraction) * cosine)
        return keras.ops.where(step < self.warmup_steps, warmup, decay)

    def get_config(self):
        return {
            "lr": self.lr,
            "total_steps": self.total_steps,
            "warmup_steps": self.warmup_steps,
            "final_lr_fraction": self.final_lr_fraction,
        }


def cosine_warmup(
    lr: float, *, total_steps: int, warmup_steps: int = 0, final_lr_fraction: float = 0.0
) -> keras.optimizers.schedules.LearningRateSchedule:
    """A learning rate that rises linearly from 0 to ``lr`` in ``warmup_steps`` steps, then follows a
    half cosine down to ``final_lr_fraction * lr`` at ``total_steps``.

    >>> schedule = cosine_warmup(1e-3, total_steps=100, warmup_steps=10)
    >>> [round(float(schedule(step)), 6) for step in (0, 5, 10, 55, 100)]
    [0.0, 0.0005, 0.001, 0.0005, 0.0]
    """
    check_lr(lr)
    if (
        isinstance(total_steps, bool)
        or not isinstance(total_steps, (int, np.integer))
        or total_steps < 1
    ):
        raise ValueError(
            f"total_steps must be a positive int (epochs x batches per epoch); got {total_steps!r}"
        )
    if (
        isinstance(warmup_steps, bool)
        or not isinstance(warmup_steps, (int, np.integer))
        or not 0 <= warmup_steps < total_steps
    ):
        raise ValueError(
            f"warmup_steps must be an int in [0, total_steps={total_steps}); got {warmup_steps!r}"
        )
    if not 0.0 <= final_lr_fraction <= 1.0:
        raise ValueError(f"final_lr_fraction must be in [0, 1]; got {final_lr_fraction!r}")
    return CosineWarmup(lr, total_steps, warmup_steps, final_lr_fraction)


# --------------------------------------------------------------------------- fit and evaluate


def fit(
    model: keras.Model,
    X,
    y,
    *,
    num_epochs: int = 10,
    lr: float = 1e-3,
    batch_size: int = 64,
    validation_data=None,
    validation_split: float = 0.0,
    schedule: str | None = None,
    early_stopping: int | None = None,
    augment=None,
    seed: int = 0,
    verbose: int | str = "auto",
    compile: bool = True,
    callbacks: list | None = None,
) -> keras.callbacks.History:
    """Train ``model`` on images (or features) ``X`` and integer labels ``y``; returns the History.

    Checks the data first (shapes, dtypes, NaN, labels within the model's classes), seeds every
    random generator with ``seed``, compiles (Adam at ``lr``; ``compile=False`` keeps your own
    compile) and calls ``model.fit`` on shuffled float32 batches (:func:`training_batches`).

    - ``schedule``: None (constant ``lr``), "cosine" (5% warmup, then cosine to 0) or "plateau"
      (halve ``lr`` when the validation loss stalls).
    - ``early_stopping``: patience in epochs on the validation loss (the training loss without
      validation data); the best weights are restored.
    - ``augment``: Keras preprocessing layers applied to training batches only, e.g.
      ``keras.Sequential([keras.layers.RandomFlip("horizontal"), keras.layers.RandomTranslation(0.1, 0.1)])``.
    - ``verbose="auto"``: a progress bar, silent under pytest or with ``TLTUTOR_QUIET=1``.

    >>> from tltutor.models import build_model, get_base
    >>> X = np.random.default_rng(0).integers(0, 256, (40, 32, 32, 3), dtype="uint8")
    >>> model = build_model(get_base("TLNet", weights=None), num_classes=2)
    >>> history = fit(model, X, np.arange(40) % 2, num_epochs=3, validation_split=0.25, early_stopping=1, verbose=0)
    >>> "val_loss" in history.history
    True
    """
    X, y = check_xy(model, X, y)
    if validation_data is not None:
        if not isinstance(validation_data, (tuple, list)) or len(validation_data) != 2:
            raise TypeError("validation_data must be a tuple (X_val, y_val)")
        validation_data = check_xy(model, *validation_data, names=("X_val", "y_val"))
        validation_data = (validation_data[0].astype("float32"), validation_data[1])
    if not 0.0 <= validation_split < 1.0:
        raise ValueError(f"validation_split must be in [0, 1), e.g. 0.2; got {validation_split!r}")
    if validation_split and validation_data is not None:
        raise ValueError("pass either validation_data or validation_split, not both")
    if (
        isinstance(num_epochs, bool)
        or not isinstance(num_epochs, (int, np.integer))
        or num_epochs < 1
    ):
        raise ValueError(f"num_epochs must be a positive int; got {num_epochs!r}")
    check_lr(lr)
    check_batch_size(batch_size)
    if schedule not in (None, "cosine", "plateau"):
        raise ValueError(f"schedule must be None, 'cosine' or 'plateau'; got {schedule!r}")
    if early_stopping is not None and (
        isinstance(early_stopping, bool)
        or not isinstance(early_stopping, int)
        or early_stopping < 1
    ):
        raise ValueError(
            f"early_stopping must be None or a patience in epochs (int >= 1); got {early_stopping!r}"
        )
    if augment is not None and not isinstance(augment, keras.layers.Layer):
        raise TypeError(
            "augment must be a Keras layer, e.g. keras.Sequential([keras.layers.RandomFlip('horizontal')]); "
            f"got {type(augment).__name__}"
        )
    if not compile and (schedule == "cosine" or augment is not None):
        raise ValueError(
            "schedule='cosine' and augment compile the model for you: they need compile=True"
        )

    keras.utils.set_random_seed(seed)
    has_validation = validation_data is not None or validation_split > 0
    monitor = "val_loss" if has_validation else "loss"
    callbacks = list(callbacks or [])
    if early_stopping is not None:
        callbacks.append(
            keras.callbacks.EarlyStopping(
                monitor=monitor, patience=early_stopping, restore_best_weights=True
            )
        )
    if schedule == "plateau":
        callbacks.append(
            keras.callbacks.ReduceLROnPlateau(
                monitor=monitor, factor=0.5, patience=2, min_lr=lr / 100
            )
        )
    trained = model
    if augment is not None:  # augmentation runs on training batches only; the weights are shared
        trained = keras.Sequential(
            [keras.Input(model.input_shape[1:]), augment, model], name=f"{model.name}_augmented"
        )
    if compile:
        steps = math.ceil(len(X) * (1 - validation_split) / batch_size) * num_epochs
        lr_schedule = (
            cosine_warmup(lr, total_steps=steps, warmup_steps=int(0.05 * steps))
            if schedule == "cosine"
            else None
        )
        compile_model(trained, lr=lr, lr_schedule=lr_schedule)
        if trained is not model:
            compile_model(model, lr=lr)  # so that model.evaluate works afterwards
    elif not trained.compiled:
        raise ValueError("compile=False needs a compiled model: call compile_model(model) first")
    if validation_split:  # Keras' rule: the last fraction of the examples, before shuffling
        split_at = math.floor(len(X) * (1 - validation_split))
        X, y, validation_data = (
            X[:split_at],
            y[:split_at],
            (X[split_at:].astype("float32"), y[split_at:]),
        )
    create_state(trained, X, y)
    return trained.fit(
        **training_batches(X, y, batch_size=batch_size, seed=seed),
        epochs=num_epochs,
        validation_data=validation_data,
        callbacks=callbacks,
        verbose=verbosity(verbose),
    )


def training_batches(X, y, *, batch_size: int, seed: int = 0) -> dict:
    """``model.fit`` keywords for shuffled training batches that make one data iterator in all.

    ``model.fit`` on arrays builds a new data iterator every epoch; for the course's small training
    sets that is a good part of the time (40 epochs on 100 images: 1.2x faster without it, on 2 CPU
    cores; section ``fit`` of ``bench/bench.py``), and on TensorFlow it replays the same batch order
    in every epoch after ``keras.utils.set_random_seed``. Instead this returns an endless ``tf.data``
    pipeline, reshuffled from ``seed`` each epoch (the last batch of an epoch may be smaller, as in
    ``model.fit``), with ``steps_per_epoch``: Keras then keeps one iterator for every epoch
    (``shuffle=False``: the pipeline shuffles itself). Images travel as they are (uint8) and become
    float32 per batch. ``X`` may be a list of arrays (a model with several inputs) and ``y`` a list
    of label arrays (several outputs), all with one row per example. Without TensorFlow (Keras on
    PyTorch alone), and inside a ``tf.distribute`` strategy (``gpu.data_parallel()``, where this
    pipeline gave one of two losses from run to run on 2 CPU devices, 1 run in 6), it returns the
    arrays for ``model.fit`` to batch and shuffle.

    >>> kw = training_batches(np.zeros((10, 4), "float32"), np.arange(10) % 2, batch_size=4)
    >>> kw["steps_per_epoch"], [tuple(x.shape) for x, _ in kw["x"].take(4)]
    (3, [(4, 4), (4, 4), (2, 4), (4, 4)])
    >>> kw = training_batches([np.zeros((10, 4)), np.ones((10, 2))], [np.arange(10), -np.arange(10)], batch_size=4)
    >>> [[tuple(part.shape) for part in batch] for batch in next(iter(kw["x"]))]
    [[(4, 4), (4, 2)], [(4,), (4,)]]
    """
    several_inputs, several_outputs = isinstance(X, (list, tuple)), isinstance(y, (list, tuple))
    inputs = [np.asarray(part) for part in X] if several_inputs else [np.asarray(X)]
    labels = [np.asarray(part) for part in y] if several_outputs else [np.asarray(y)]
    rows = {len(part) for part in inputs + labels}
    if len(rows) != 1:
        raise ValueError(
            f"every input and label array needs one row per example; got {sorted(rows)} rows: "
            "pass arrays of the same length"
        )
    (num_examples,) = rows
    try:
        import tensorflow as tf
    except ImportError:
        tf = None
    if tf is None or tf.distribute.has_strategy():  # Keras batches (see above)
        x = [part.astype("float32") for part in inputs]
        return {
            "x": x if several_inputs else x[0],
            "y": labels if several_outputs else labels[0],
            "batch_size": batch_size,
        }
    batches = (
        tf.data.Dataset.from_tensor_slices(
            (
                tuple(inputs) if several_inputs else inputs[0],
                tuple(labels) if several_outputs else labels[0],
            )
        )
        .shuffle(num_examples, seed=seed, reshuffle_each_iteration=True)
        .batch(batch_size)
        .map(
            lambda x, targets: (
                tf.nest.map_structure(lambda part: tf.cast(part, "float32"), x),
                targets,
            )
        )
        .repeat()
        .prefetch(tf.data.AUTOTUNE)
    )
    return {
        "x": batches,
        "steps_per_epoch": math.ceil(num_examples / batch_size),
        "shuffle": False,
    }


def reset_optimizer(model: keras.Model) -> keras.Model:
    """Zero ``model``'s optimizer state (step count and moments; the learning rate stays); returns ``model``.

    Like compiling the model again, without tracing its training step again: reuse one compiled
    model for many short runs by loading each run's starting weights and resetting the optimizer.
    Layers that draw random numbers (Dropout) go on from where their generator stood, so such a
    run repeats exactly when the same runs come before it.

    >>> from tltutor.models import build_model, get_base
    >>> model = compile_model(build_model(get_base("TLNet", weights=None), num_classes=2))
    >>> X = np.zeros((8, 32, 32, 3), "uint8")
    >>> _ = fit(model, X, np.arange(8) % 2, num_epochs=1, verbose=0, compile=False)
    >>> int(model.optimizer.iterations), int(reset_optimizer(model).optimizer.iterations)
    (1, 0)
    """
    if getattr(model, "optimizer", None) is None:
        raise ValueError(f"{model.name} has no optimizer: compile it first (train.compile_model)")
    for variable in model.optimizer.variables:
        if not variable.path.endswith("learning_rate"):
            variable.assign(np.zeros(variable.shape, variable.dtype))
    return model


def create_state(model: keras.Model, X, y, sample_weight=None) -> keras.Model:
    """Create a compiled ``model``'s optimizer and metric variables now; returns ``model``.

    ``model.fit`` creates them inside its first traced training step, and TensorFlow traces a
    function that creates variables twice: creating them first saves the second trace, 1.3-1.7 s
    per new TLNet on 2 CPU cores (``bench/bench.py``, section ``trace``). :func:`fit` and
    :func:`train_head` call it for you; call it before your own ``model.fit`` on a new model.
    ``X``, ``y`` (and ``sample_weight``) are training arrays, or lists or dicts of arrays, as
    ``model.fit`` takes them; only their first row is used. The variables start at zero either
    way, so no result changes. Under a distribution (a ``tf.distribute`` strategy, or
    ``keras.distribution`` on JAX) it does nothing: Keras then creates them itself, before tracing.

    >>> from tltutor.models import build_model, get_base
    >>> model = compile_model(build_model(get_base("TLNet", weights=None), num_classes=2))
    >>> create_state(model, np.zeros((4, 32, 32, 3), "uint8"), np.arange(4) % 2).optimizer.built
    True
    """
    if getattr(model, "optimizer", None) is None:
        raise ValueError(f"{model.name} has no optimizer: compile it first (train.compile_model)")
    if _distributed(model):
        return model
    if model.optimizer.built and all(getattr(m, "built", True) for m in model.metrics):
        return model  # created already (a model compiled once and trained again)
    if not model.optimizer.built:
        model.optimizer.build(model.trainable_variables)
    X, y, sample_weight = keras.tree.map_structure(
        lambda part: np.asarray(part)[:1], (X, y, sample_weight), none_is_leaf=False
    )
    y_pred = model(keras.tree.map_structure(lambda part: part.astype("float32"), X), training=False)
    model.compute_loss(X, y, y_pred, sample_weight, training=False)
    model.compute_metrics(X, y, y_pred, sample_weight)
    model.reset_metrics()
    return model


def evaluate(model: keras.Model, X, y, *, batch_size: int = 256) -> float:
    """Accuracy of ``model`` on ``(X, y)`` (inference mode; no compile needed).

    >>> from tltutor.models import build_model, get_base
    >>> model = build_model(get_base("TLNet", weights=None), num_classes=2)
    >>> 0.0 <= evaluate(model, np.zeros((4, 32, 32, 3), "uint8"), [0, 1, 0, 1]) <= 1.0
    True
    """
    X, y = check_xy(model, X, y)
    check_batch_size(batch_size)
    probabilities = _predict(model, X, batch_size)
    return float(np.mean(np.argmax(probabilities, axis=-1) == y))


def _distributed(model: keras.Model) -> bool:
    """Whether ``model`` runs under a distribution (``gpu.data_parallel()``): Keras' own loops then."""
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        return (
            tf.distribute.has_strategy()
            or model.distribute_strategy is not tf.distribute.get_strategy()
        )
    return keras.distribution.distribution() is not None


def _predict(model: keras.Model, X: np.ndarray, batch_size: int):
    """``model.predict`` in plain batches: the same numbers without building a ``tf.data``
    pipeline on every call (1.7-2.7 times faster on 1000-150 images, 2 CPU cores; section
    ``predict`` of ``bench/bench.py``)."""
    X = X.astype("float32")
    if _distributed(model):
        return model.predict(X, batch_size=batch_size, verbose=0)
    parts = [model.predict_on_batch(X[i : i + batch_size]) for i in range(0, len(X), batch_size)]
    return keras.tree.map_structure(lambda *part: np.concatenate(part), *parts)


def linear_probe_then_finetune(
    model: keras.Model,
    X,
    y,
    *,
    probe_epochs: int = 10,
    finetune_epochs: int = 10,
    probe_lr: float = 1e-3,
    finetune_lr: float = 1e-4,
    unfreeze: int | str = "all",
    **fit_kwargs,
) -> tuple[keras.callbacks.History, keras.callbacks.History]:
    """LP-FT (Kumar et al. 2022): train the head with the base frozen, then unfreeze and fine-tune.

    Starting fine-tuning from a trained head keeps the large early gradients of a random head
    from distorting the pretrained features, which helps most out of distribution. ``model``
    comes from ``build_model``; ``unfreeze`` is passed to ``freeze`` for the second stage; other
    keywords (batch_size, validation_data, early_stopping, seed, ...) go to ``fit``.

    >>> from tltutor.models import build_model, get_base
    >>> X = np.random.default_rng(0).integers(0, 256, (16, 32, 32, 3), dtype="uint8")
    >>> model = build_model(get_base("TLNet", weights=None), num_classes=2)
    >>> probe, finetune = linear_probe_then_finetune(model, X, np.arange(16) % 2, probe_epochs=1, finetune_epochs=1, verbose=0)
    >>> len(probe.history["loss"]), len(finetune.history["loss"])
    (1, 1)
    """
    if not isinstance(model, keras.Model) or "head" not in [layer.name for layer in model.layers]:
        raise ValueError(
            "linear_probe_then_finetune needs a model from build_model(base, num_classes) (with a 'head' layer)"
        )
    reserved = {"num_epochs", "lr", "compile"} & set(fit_kwargs)
    if reserved:
        raise TypeError(
            f"{sorted(reserved)} are set by linear_probe_then_finetune: use probe_epochs/finetune_epochs and probe_lr/finetune_lr"
        )
    freeze(model, unfreeze=0)
    probe = fit(model, X, y, num_epochs=probe_epochs, lr=probe_lr, **fit_kwargs)
    freeze(model, unfreeze=unfreeze)
    finetune = fit(model, X, y, num_epochs=finetune_epochs, lr=finetune_lr, **fit_kwargs)
    return probe, finetune


def finetune_from_probe(
    model: keras.Model,
    head: keras.Model,
    X,
    y,
    *,
    num_epochs: int = 10,
    lr: float = 3e-4,
    batch_size: int = 32,
    unfreeze: int | str = "all",
    **fit_kwargs,
) -> keras.callbacks.History:
    """LP-FT's second step from a probe trained on cached features: copy, unfreeze, fine-tune.

    ``head`` is a linear probe from :func:`train_head` (trained on the base's cached features,
    the cheap first step); its weights go into ``model``'s ``"head"`` layer (``model`` from
    :func:`tltutor.models.build_model` on the same base), then ``freeze(model, unfreeze=unfreeze)``
    and :func:`fit` for ``num_epochs`` at ``lr`` (other keywords: seed, verbose, validation_data,
    ...). BatchNorm stays in inference mode. Returns the fine-tuning History; ``model`` is trained
    in place.

    >>> from tltutor.models import build_model, get_base
    >>> X = np.random.default_rng(0).integers(0, 256, (16, 32, 32, 3), dtype="uint8")
    >>> y = np.arange(16) % 2
    >>> base = get_base("TLNet", weights=None)
    >>> head = train_head(extract_features(base, X, cache_dir=False), y, num_epochs=2)
    >>> model = build_model(base, num_classes=2)
    >>> history = finetune_from_probe(model, head, X, y, num_epochs=1, verbose=0)
    >>> len(history.history["loss"]), len(model.trainable_weights) > len(head.trainable_weights)
    (1, True)
    """
    if not isinstance(model, keras.Model) or "head" not in [layer.name for layer in model.layers]:
        raise TypeError(
            "model must come from models.build_model(base, num_classes) (a model with a 'head' layer)"
        )
    if not isinstance(head, keras.Model):
        raise TypeError(
            f"head must be a linear probe from train.train_head; got {type(head).__name__}"
        )
    weights = probe_weights(head)
    target = model.get_layer("head")
    expected = [tuple(w.shape) for w in target.get_weights()]
    if [tuple(w.shape) for w in weights] != expected:
        raise ValueError(
            f"head's weights have shapes {[tuple(w.shape) for w in weights]} but the model's head needs {expected}: "
            "train the probe on features of this model's base, with the same number of classes"
        )
    target.set_weights(weights)
    freeze(model, unfreeze=unfreeze)
    return fit(model, X, y, num_epochs=num_epochs, lr=lr, batch_size=batch_size, **fit_kwargs)


def training_mode_accuracy(model: keras.Model, X, y, *, batch_size: int = 256) -> float:
    """Accuracy with BatchNorm normalising by batch statistics (``training=True``), the BN-gap check.

    Far above :func:`evaluate`'s inference-mode accuracy, it says the moving statistics lag
    behind the weights (:func:`tltutor.models.recalibrate_bn` fixes that). A call with
    ``training=True`` would also move the moving statistics towards these batches; they are
    restored, so measuring leaves ``model`` as it was (Dropout is active, as in training).

    >>> from tltutor.models import tlnet
    >>> X = np.random.default_rng(0).integers(0, 256, (8, 32, 32, 3), dtype="uint8")
    >>> model = scratch_model(tlnet(width=4), 2)
    >>> before = [w.copy() for w in model.get_weights()]
    >>> 0.0 <= training_mode_accuracy(model, X, np.arange(8) % 2) <= 1.0
    True
    >>> all(np.array_equal(a, b) for a, b in zip(before, model.get_weights()))   # statistics restored
    True
    """
    X, y = check_xy(model, X, y)
    check_batch_size(batch_size)
    saved = [keras.ops.convert_to_numpy(variable) for variable in model.non_trainable_variables]
    correct = 0
    try:
        for start in range(0, len(X), batch_size):
            probabilities = model(X[start : start + batch_size].astype("float32"), training=True)
            correct += int(
                np.sum(
                    np.argmax(keras.ops.convert_to_numpy(probabilities), axis=-1)
                    == y[start : start + batch_size]
                )
            )
    finally:
        for variable, value in zip(model.non_trainable_variables, saved):
            variable.assign(value)
    return correct / len(X)


# --------------------------------------------------------------------------- cached features and heads


def extract_features(base: keras.Model, X, *, batch_size: int = 256, cache_dir=None) -> np.ndarray:
    """Features (N, D) float32 of ``X`` from ``base`` in inference mode, cached on disk.

    The cache key is a sha256 over the base's weights and layer types, its input shape and the
    bytes, shape and dtype of ``X``: change any of them and the features are recomputed.
    ``cache_dir`` defaults to ``$TLTUTOR_CACHE`` or ``~/.cache/tltutor/features``; ``False``
    turns caching off. Files are written atomically and carry a checksum, so kernels may share
    the cache; a damaged file is deleted and recomputed; an unwritable folder only warns.

    >>> from tltutor.models import tlnet
    >>> X = np.zeros((4, 32, 32, 3), "uint8")
    >>> extract_features(tlnet(width=8), X, cache_dir=False).shape
    (4, 32)
    """
    if not isinstance(base, keras.Model):
        raise TypeError(
            f"base must be a keras.Model such as get_base('TLNet'); got {type(base).__name__}"
        )
    if len(base.output_shape) != 2:
        raise ValueError(
            f"base must output pooled features (N, D); its output shape is {base.output_shape} — "
            "add keras.layers.GlobalAveragePooling2D() on top of it"
        )
    X = check_images(X, model=base)
    check_batch_size(batch_size)
    if cache_dir is False:
        return _predict_features(base, X, batch_size)
    folder = pathlib.Path(
        cache_dir
        if cache_dir is not None
        else os.environ.get("TLTUTOR_CACHE") or "~/.cache/tltutor/features"
    ).expanduser()
    path = folder / f"{_features_key(base, X)}.npz"
    features = _read_features(path, num_images=len(X))
    if features is None:
        features = _predict_features(base, X, batch_size)
        _write_features(path, features)
    return features


def _predict_features(base: keras.Model, X: np.ndarray, batch_size: int) -> np.ndarray:
    return np.asarray(_predict(base, X, batch_size), dtype="float32")


def _features_key(base: keras.Model, X: np.ndarray) -> str:
    digest = hashlib.sha256()
    digest.update(
        repr((tuple(base.input_shape), [type(layer).__name__ for layer in base.layers])).encode()
    )
    for weight in base.weights:
        digest.update(np.ascontiguousarray(keras.ops.convert_to_numpy(weight)).tobytes())
    digest.update(repr((X.shape, str(X.dtype))).encode())
    digest.update(np.ascontiguousarray(X).tobytes())
    return digest.hexdigest()


def _read_features(path: pathlib.Path, *, num_images: int) -> np.ndarray | None:
    """The cached features, or None when missing; a damaged file is deleted (None)."""
    if not path.exists():
        return None
    try:
        with np.load(path, allow_pickle=False) as data:
            features, checksum = data["features"], str(data["sha256"])
        if (
            features.ndim == 2
            and len(features) == num_images
            and _array_sha256(features) == checksum
        ):
            return features
        problem = "its checksum or shape does not match"
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as error:
        problem = f"it cannot be read ({error})"
    warnings.warn(
        f"feature cache {path} is damaged: {problem}; recomputing the features", stacklevel=3
    )
    try:
        path.unlink()
    except OSError:
        pass  # another process removed or replaced it, or the folder is read-only
    return None


def _write_features(path: pathlib.Path, features: np.ndarray) -> None:
    """Write atomically (a temporary file in the same folder, then os.replace); warn if impossible."""
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=".tmp")
        with os.fdopen(fd, "wb") as file:
            np.savez(file, features=features, sha256=np.array(_array_sha256(features)))
        os.replace(tmp, path)
    except OSError as error:
        warnings.warn(
            f"cannot write the feature cache in {path.parent} ({error}); computed without caching. "
            "Set TLTUTOR_CACHE or pass cache_dir= to a writable folder (or cache_dir=False)",
            stacklevel=3,
        )
    finally:
        if tmp is not None and os.path.exists(tmp):
            os.remove(tmp)


def _array_sha256(array: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()


def train_head(
    features,
    y,
    *,
    num_classes: int | None = None,
    num_epochs: int = 60,
    lr: float = 1e-2,
    batch_size: int = 64,
    seed: int = 0,
    l2: float = 0.0,
) -> keras.Model:
    """A linear probe: a Dense softmax head trained on cached ``features`` (N, D); returns the head.

    The head first standardises each feature with the mean and variance of ``features`` (a fixed
    ``Normalization`` layer, so still a linear model): feature scales differ by orders of magnitude
    between backbones, and without it one learning rate cannot suit them all (measured here on
    random-init TLNet features, 5 classes, 5/20/100 labels per class: 0.41/0.46/0.58 raw vs
    0.77/0.83/0.90 standardised, as good as scikit-learn's LogisticRegression). Adam at
    ``lr=1e-2`` for 60 epochs then fits a few to a few thousand examples (1e-2 matched or beat
    2e-2, 3e-2 and 5e-2 in the same test, 3 seeds); ``l2`` adds weight decay
    on the kernel. ``num_classes`` defaults to ``max(y) + 1``. For images, stack it on the base:
    ``keras.Sequential([base, head])``.

    >>> rng = np.random.default_rng(0)
    >>> features, y = rng.normal(size=(40, 8)), np.arange(40) % 2
    >>> features[:, 0] += 6 * y                       # class 1 lies further along feature 0
    >>> head = train_head(features, y)
    >>> evaluate(head, features, y) >= 0.9
    True
    """
    features = np.asarray(features)
    if features.ndim != 2 or features.dtype.kind not in "uif":
        raise ValueError(
            f"features must be a numeric array (N, D), e.g. from extract_features; got shape {features.shape}, dtype {features.dtype}"
        )
    labels = check_labels(y, len(features), num_classes=num_classes)
    if num_classes is None:
        num_classes = max(int(labels.max()) + 1, 2)
    check_lr(lr)
    check_batch_size(batch_size)
    check_int(num_epochs, "num_epochs", minimum=1, example=" such as 60")
    if l2 < 0:
        raise ValueError(f"l2 must be >= 0; got {l2!r}")
    if not np.isfinite(features).all():
        raise ValueError(
            "features contain NaN or infinite values; recompute them (is the base diverged?)"
        )
    variance = features.var(axis=0)
    variance = (
        variance + 1e-3 * variance.mean() + 1e-12
    )  # floor: features constant here stay ~0 later
    regularizer = keras.regularizers.L2(l2) if l2 else None
    keras.utils.set_random_seed(seed)
    head = keras.Sequential(
        [
            keras.Input((features.shape[1],)),
            keras.layers.Normalization(
                mean=features.mean(axis=0), variance=variance, name="standardize"
            ),
            keras.layers.Dense(
                num_classes, activation="softmax", kernel_regularizer=regularizer, name="head"
            ),
        ],
        name="linear_probe",
    )
    compile_model(head, lr=lr)
    create_state(head, features, labels)
    order, batch = epoch_order(
        len(features), num_epochs=num_epochs, batch_size=batch_size, seed=seed
    )
    features = features.astype("float32", copy=False)
    rows_per_call = max(len(features), _PROBE_CHUNK_BYTES // features[0].nbytes)
    for start in range(0, len(order), rows_per_call):  # one call (one data iterator) per chunk
        rows = order[start : start + rows_per_call]
        head.fit(
            features[rows],
            labels[rows],
            batch_size=batch,
            epochs=1,
            shuffle=False,
            verbose=0,
        )
    return head


_PROBE_CHUNK_BYTES = 64 * 2**20  # train_head feeds at most this much float32 data per call


def epoch_order(
    n: int, *, num_epochs: int, batch_size: int, seed: int = 0
) -> tuple[np.ndarray, int]:
    """``num_epochs`` shuffled passes over ``n`` examples as one index array, and an even batch size.

    ``model.fit(epochs=60)`` builds a new data iterator every epoch, which costs more than a linear
    probe's arithmetic on a CPU; one pass over these indices takes the same steps in a third of
    the time or less (section ``probe`` of ``bench/bench.py``). The batch size splits each epoch into the same
    number of steps as ``batch_size`` would, as evenly as possible, so that up to ``batch_size``
    examples every step is the whole data set, exactly as in ``num_epochs`` epochs.

    >>> order, batch = epoch_order(5, num_epochs=2, batch_size=64, seed=0)
    >>> sorted(order[:5]) == sorted(order[5:]) == [0, 1, 2, 3, 4], batch
    (True, 5)
    >>> epoch_order(500, num_epochs=1, batch_size=64)[1]     # 8 steps of 63 instead of 7 x 64 + 52
    63
    """
    steps_per_epoch = math.ceil(n / batch_size)
    rng = np.random.default_rng(seed)
    order = np.concatenate([rng.permutation(n) for _ in range(num_epochs)])
    return order, math.ceil(n / steps_per_epoch)


def probe_weights(head: keras.Model) -> list[np.ndarray]:
    """Kernel and bias of a :func:`train_head` probe with its standardisation folded in.

    ``head`` computes ``softmax(W·(f - mean)/std + b)``; the returned ``[W / std, b - (mean/std)·W]``
    gives the same output on raw features, so a ``Dense`` layer on the base (the ``"head"`` of
    :func:`tltutor.models.build_model`) can start from the probe: linear probe, then fine-tune.

    >>> rng = np.random.default_rng(0)
    >>> features, y = rng.normal(3, 2, size=(40, 4)), np.arange(40) % 2
    >>> head = train_head(features, y, num_epochs=2)
    >>> dense = keras.layers.Dense(2, activation="softmax")
    >>> _ = dense(features[:1]); dense.set_weights(probe_weights(head))
    >>> to_numpy = keras.ops.convert_to_numpy
    >>> bool(np.allclose(to_numpy(dense(features)), to_numpy(head(features)), atol=1e-5))
    True
    """
    norm, dense = head.get_layer("standardize"), head.get_layer("head")
    mean = np.ravel(keras.ops.convert_to_numpy(norm.mean))
    std = np.maximum(
        np.sqrt(np.ravel(keras.ops.convert_to_numpy(norm.variance))), keras.backend.epsilon()
    )
    kernel, bias = dense.get_weights()
    return [kernel / std[:, None], bias - (mean / std) @ kernel]


# --------------------------------------------------------------------------- plots


def plot_history(history, *, metrics=("loss", "accuracy"), ax=None):
    """Training (and validation) curves per epoch, one panel per metric; returns the figure.

    ``history`` is what ``fit`` returns (or its ``.history`` dict); ``ax`` an Axes for one metric
    or a sequence of Axes, one per metric.

    >>> figure = plot_history({"loss": [1.0, 0.5], "val_loss": [1.1, 0.7], "accuracy": [0.5, 0.8]})
    >>> [axes.get_title() for axes in figure.axes]
    ['loss', 'accuracy']
    """
    import matplotlib.pyplot as plt

    logs = history.history if isinstance(history, keras.callbacks.History) else history
    if not isinstance(logs, dict):
        raise TypeError(
            f"history must be a keras History or its .history dict; got {type(history).__name__}"
        )
    metrics = [metrics] if isinstance(metrics, str) else list(metrics)
    missing = [metric for metric in metrics if metric not in logs]
    if missing:
        raise ValueError(f"{missing} not in the history; it has {sorted(logs)}")
    if ax is None:
        figure, axes = plt.subplots(
            1, len(metrics), figsize=(4.5 * len(metrics), 3.2), squeeze=False
        )
        axes = list(axes[0])
    else:
        axes = list(ax) if isinstance(ax, (list, tuple, np.ndarray)) else [ax]
        if len(axes) != len(metrics):
            raise ValueError(f"pass one Axes per metric: {len(metrics)} metrics, {len(axes)} Axes")
        figure = axes[0].figure
    for axes_, metric in zip(axes, metrics):
        epochs = np.arange(1, len(logs[metric]) + 1)
        axes_.plot(epochs, logs[metric], marker="o", label="train")
        if f"val_{metric}" in logs:
            axes_.plot(epochs, logs[f"val_{metric}"], marker="o", label="validation")
        axes_.set(title=metric, xlabel="epoch")
        axes_.legend()
    figure.tight_layout()
    return figure


def learning_curve_plot(results: dict, *, title: str | None = None, ax=None):
    """Accuracy against labels per class (log scale), one line per method; returns the figure.

    >>> figure = learning_curve_plot({"scratch": {5: 0.4, 20: 0.6}, "features": {5: 0.6, 20: 0.7}})
    >>> figure.axes[0].get_xscale()
    'log'
    """
    import matplotlib.pyplot as plt

    if (
        not isinstance(results, dict)
        or not results
        or not all(isinstance(curve, dict) and curve for curve in results.values())
    ):
        raise ValueError(
            'results must look like {"scratch": {5: 0.4, 20: 0.6}, "features": {5: 0.6, 20: 0.7}}'
        )
    if ax is None:
        figure, ax = plt.subplots(figsize=(5, 3.5))
    else:
        figure = ax.figure
    sizes = sorted({int(n) for curve in results.values() for n in curve})
    for label, curve in results.items():
        points = sorted((int(n), float(accuracy)) for n, accuracy in curve.items())
        ax.plot(*zip(*points), marker="o", label=str(label))
    ax.set_xscale("log")
    ax.set_xticks(sizes, [str(n) for n in sizes])
    ax.minorticks_off()
    ax.set(xlabel="labels per class", ylabel="test accuracy", title=title or "")
    ax.legend()
    figure.tight_layout()
    return figure


# --------------------------------------------------------------------------- validation


def verbosity(verbose):
    """``verbose`` for Keras' fit, with ``"auto"`` silenced under pytest, ``TLTUTOR_QUIET=1`` or
    in the book build.

    >>> verbosity(2)
    2
    """
    if verbose != "auto":
        return verbose
    return 0 if _quiet() else "auto"


def _quiet() -> bool:
    """No progress output: under pytest, with ``TLTUTOR_QUIET=1``, or while the book is built
    (``TLTUTOR_BOOK=1``: the pages keep only results)."""
    return (
        "PYTEST_CURRENT_TEST" in os.environ
        or os.environ.get("TLTUTOR_QUIET") == "1"
        or os.environ.get("TLTUTOR_BOOK") == "1"
    )


def progress(items: Iterable, label: str = "running") -> Iterator:
    """Yield ``items`` while one line says what runs and how far, e.g. ``lr 1e-3: 2/3 done, 14 s``.

    Wrap the loop of a long cell (a run per seed) with it. In Jupyter the line updates in place
    and is emptied when the loop ends, so the cell keeps only its results; in a terminal it goes
    to stderr. Silent under pytest, with ``TLTUTOR_QUIET=1`` and in the book build.

    >>> [seed for seed in progress([0, 1, 2], "fine-tuning")]
    [0, 1, 2]
    """
    items = list(items)
    if _quiet():
        yield from items
        return
    show, clear = _status_line()
    start = time.perf_counter()
    try:
        for done, item in enumerate(items):
            show(f"{label}: {done}/{len(items)} done, {time.perf_counter() - start:.0f} s")
            yield item
    finally:
        clear()


def _status_line():
    """``(show, clear)`` for one line that is rewritten in place: a Jupyter display or stderr."""
    try:
        from IPython import get_ipython
        from IPython.display import display
    except ImportError:
        get_ipython = None
    shell = get_ipython() if get_ipython else None
    if shell is not None and hasattr(shell, "kernel"):
        handle = display({"text/plain": ""}, raw=True, display_id=True)

        def show(line: str) -> None:
            handle.update({"text/plain": line}, raw=True)

        return show, lambda: handle.update({"text/plain": ""}, raw=True)

    def write(line: str) -> None:
        sys.stderr.write(f"\r{line:<60}")
        sys.stderr.flush()

    return write, lambda: write("") or sys.stderr.write("\r")


def map_seeds(
    run,
    seeds: Iterable[int],
    label: str = "seeds",
    *,
    processes: int | None = None,
    wait: bool = True,
):
    """``[run(seed) for seed in seeds]``, with the seeds side by side in worker processes.

    On a CPU, Keras spreads the steps of one small network over the cores poorly (TLNet trains
    at about 800 images/s with two threads and 790 with one, on two cores), but separate
    processes, one thread each, keep every core busy (``bench/bench.py``, section ``seeds``,
    prints the ratio). Each worker is a fresh Python that receives ``run`` with the variables it
    uses (pickled with cloudpickle, so a function defined in a notebook works), hence:

    - ``run(seed)`` must depend only on ``seed`` and those variables, **build its models
      itself** (a model made outside reaches each worker as a separate copy, cut off from any
      other variable that holds its layers) and return plain values: numbers, arrays, dicts;
    - what ``run`` prints comes from the workers, interleaved (return results instead); their
      TensorFlow log level is the caller's, so a notebook that silenced retracing warnings
      keeps them silent;
    - every run starts from ``keras.utils.set_random_seed(seed)`` (Python's, NumPy's and the
      backend's generators, hence the seeds of the layers ``run`` builds, e.g. Dropout's), so
      what a worker ran before cannot change a result: the same seed gives the same result again;
    - a worker computes with one thread, so its numbers can differ from an in-process run in
      the last digits, as they do between two CPUs.

    ``processes`` defaults to one per seed (at most two per core), and to 1 on a single core,
    with a GPU, or when ``TLTUTOR_PROCESSES=1``; ``processes=1`` runs the seeds here, one after
    the other, like the list comprehension. The workers stay for the next call (5 idle minutes).

    ``wait=False`` returns at once a ``concurrent.futures.Future`` of that list: the seeds train
    in the workers while the notebook goes on (a cell's own training then shares the cores with
    them), and ``.result()`` waits for them and raises what a seed raised. With one process there
    is nowhere else to run, so the seeds run before the call returns.

    >>> map_seeds(lambda seed: seed * seed, [1, 2, 3], processes=1)
    [1, 4, 9]
    >>> map_seeds(lambda seed: seed * seed, [1, 2], processes=1, wait=False).result()
    [1, 4]
    """
    seeds = [check_seed(seed) for seed in seeds]
    processes = _seed_processes(len(seeds), processes)
    if processes == 1:
        here = lambda: [_seeded(run, seed) for seed in progress(seeds, label)]  # noqa: E731
        return here() if wait else _run_now(here)
    from concurrent.futures import FIRST_EXCEPTION
    from concurrent.futures import wait as wait_for

    from joblib.externals.loky import get_reusable_executor

    executor = get_reusable_executor(max_workers=processes, timeout=300, env=_worker_env())
    state = keras.mixed_precision.dtype_policy().name, logging.getLogger("tensorflow").level
    futures = [executor.submit(_run_seed, run, seed, *state) for seed in seeds]
    if not wait:
        return _gathered(futures)
    show, clear = (lambda line: None, lambda: None) if _quiet() else _status_line()
    start = time.perf_counter()
    try:
        pending = futures
        while pending and not any(map(_failed, futures)):
            done = len(futures) - len(pending)
            seconds = time.perf_counter() - start
            show(f"{label}: {done}/{len(futures)} done, {processes} processes, {seconds:.0f} s")
            pending = wait_for(pending, timeout=1, return_when=FIRST_EXCEPTION).not_done
        return [future.result() for future in futures]
    except Exception as error:
        if not _is_pickling_error(error):
            raise
        raise _cannot_travel(error) from None
    finally:
        clear()
        if any(not f.done() or _failed(f) for f in futures):  # a failed seed, or Stop
            for future in futures:
                future.cancel()
            executor.shutdown(wait=False, kill_workers=True)


def _run_now(compute):
    """A finished ``Future`` holding ``compute()``, or what it raised."""
    from concurrent.futures import Future

    future = Future()
    try:
        future.set_result(compute())
    except Exception as error:
        future.set_exception(error)
    return future


def _gathered(futures: list):
    """One ``Future`` of the list of the ``futures``' results; the first failure cancels the rest."""
    import threading
    from concurrent.futures import Future

    gathered, lock = Future(), threading.RLock()  # cancel() below calls settle again

    def settle(_):
        with lock:
            failed = next((f for f in futures if _failed(f)), None)
            if gathered.done() or (failed is None and not all(f.done() for f in futures)):
                return
            if failed is None:
                gathered.set_result([future.result() for future in futures])
                return
            if failed.cancelled():
                error = RuntimeError("a seed was cancelled before it ran; call map_seeds again")
            else:
                error = failed.exception()
                error = _cannot_travel(error) if _is_pickling_error(error) else error
            gathered.set_exception(error)
            for future in futures:
                future.cancel()

    for future in futures:
        future.add_done_callback(settle)
    return gathered


def _cannot_travel(error: BaseException) -> TypeError:
    """The error for a ``run`` that cannot be sent to a worker, saying what to do."""
    lines = [line for line in str(error.__cause__ or error).splitlines() if line.strip('" ')]
    cause = lines[-1].strip() if lines else "unknown"
    return TypeError(
        f"map_seeds could not send run to a worker process: it uses a value that cannot be "
        f"copied ({cause}). Create that value inside run, or pass processes=1 to run the "
        "seeds here, one after the other."
    )


def _is_pickling_error(error: BaseException) -> bool:
    """Whether ``error`` is a ``pickle.PicklingError``, told by name: the package never imports
    ``pickle`` (``tests/test_security.py``), it only lets loky send ``run`` to its workers."""
    return any(kind.__name__ == "PicklingError" for kind in type(error).__mro__)


def _failed(future) -> bool:
    """A finished future that raised or was cancelled (``exception()`` raises for the latter)."""
    return future.done() and (future.cancelled() or future.exception() is not None)


def _seed_processes(num_seeds: int, processes) -> int:
    """How many worker processes :func:`map_seeds` starts (1: none, run here)."""
    if processes is None and os.environ.get("TLTUTOR_PROCESSES"):
        processes = os.environ["TLTUTOR_PROCESSES"]
        if not processes.isdigit() or int(processes) < 1:
            raise ValueError(
                f"TLTUTOR_PROCESSES must be a whole number >= 1, e.g. 1; got {processes!r}"
            )
        processes = int(processes)
    if processes is not None:
        check_int(processes, "processes", minimum=1)
        return min(processes, max(num_seeds, 1))
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    if (cores or 1) < 2 or _on_accelerator():
        return 1  # one GPU is shared badly by several processes; one core gains nothing
    return max(1, min(num_seeds, 2 * cores))


def _on_accelerator() -> bool:
    """Whether Keras computes on a GPU or TPU here (several processes would share it badly)."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        return bool(
            tf.config.list_physical_devices("GPU") or tf.config.list_physical_devices("TPU")
        )
    if backend == "jax":
        import jax

        return jax.default_backend() != "cpu"
    if backend == "torch":
        import torch

        return torch.cuda.is_available()
    return False


def _worker_env() -> dict:
    """One thread per worker on every backend, the parent's backend, no progress lines."""
    xla = os.environ.get("XLA_FLAGS", "")
    return {
        "TF_NUM_INTRAOP_THREADS": "1",
        "TF_NUM_INTEROP_THREADS": "1",
        "OMP_NUM_THREADS": "1",
        "XLA_FLAGS": f"{xla} --xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1".strip(),
        "KERAS_BACKEND": keras.backend.backend(),
        "TLTUTOR_QUIET": "1",
    }


def _run_seed(run, seed, policy: str, tensorflow_log_level: int):
    """In a worker: the parent's dtype policy and TensorFlow log level, then ``run(seed)``."""
    keras.mixed_precision.set_global_policy(policy)
    logging.getLogger("tensorflow").setLevel(tensorflow_log_level)
    return _seeded(run, seed)


def _seeded(run, seed: int):
    """``run(seed)`` from the random state of ``seed``, whatever ran before in this process."""
    keras.utils.set_random_seed(seed)
    return run(seed)


# --------------------------------------------------------------------------
# The headline experiment: scratch vs feature extraction vs fine-tuning
# --------------------------------------------------------------------------

STRATEGIES = ("scratch", "features", "finetune")


def scratch_model(base: keras.Model, num_classes: int) -> keras.Model:
    """Put a softmax head on a base that is trained *from scratch*: pixels -> base -> Dense.

    Unlike :func:`tltutor.models.build_model`, the base is called without
    ``training=False``, so its BatchNorm layers normalise with batch statistics while
    fitting and learn their moving statistics. Call
    :func:`tltutor.models.recalibrate_bn` after a short training run.

    >>> from tltutor.models import get_base
    >>> scratch_model(get_base("TLNet", weights=None), 5).output_shape
    (None, 5)
    """
    inputs = keras.Input(base.input_shape[1:])
    features = base(inputs)
    outputs = keras.layers.Dense(
        int(num_classes), activation="softmax", name="head", dtype="float32"
    )(features)
    return keras.Model(inputs, outputs, name="scratch_model")


def compare_transfer(
    X_train,
    y_train,
    X_test,
    y_test,
    *,
    sizes=(5, 20, 100),
    arch: str = "TLNet",
    weights="course",
    strategies=STRATEGIES,
    num_epochs: int = 30,
    seed: int = 0,
    verbose: int = 0,
    progress=None,
) -> dict:
    """Accuracy on ``X_test`` of each strategy after training on ``n`` labels per class, for n in ``sizes``.

    - ``"scratch"``: the same architecture, random weights, all layers trained.
    - ``"features"``: the pretrained base frozen; a linear head on its (cached) features.
    - ``"finetune"``: that linear head first, then every layer but BatchNorm
      fine-tuned at a 10x lower learning rate (linear probe, then fine-tune).

    ``arch`` and ``weights`` go to :func:`tltutor.models.get_base` (e.g. ``"MobileNetV2"`` with
    ``"imagenet"``, or a weights file); the base preprocesses the raw pixels itself, and its input
    size is the images' size. Scratch and fine-tuning train for ``num_epochs`` epochs, 10 more
    (at most ``num_epochs`` more) on training sets under 200 images. ``progress(strategy, n, accuracy, seconds)`` is called
    before each model is trained (``accuracy`` None) and after it is tested.
    Every argument is checked before any training. Returns ``{strategy: {n: accuracy}}``.

    >>> from tltutor import data
    >>> X_train, y_train, X_test, y_test = data.lab_target()
    >>> r = compare_transfer(X_train, y_train, X_test[:200], y_test[:200], sizes=[5], strategies=["features"])
    >>> 0.2 < r["features"][5] <= 1.0
    True
    """
    from time import perf_counter

    from tltutor import data, models

    strategies = [strategies] if isinstance(strategies, str) else list(strategies)
    unknown = set(strategies) - set(STRATEGIES)
    if unknown or not strategies:
        raise ValueError(f"unknown strategies {sorted(unknown)}; choose from {STRATEGIES}")
    X_train, y_train, X_test, y_test = (np.asarray(a) for a in (X_train, y_train, X_test, y_test))
    if len(X_test) == 0 or len(X_train) == 0:
        raise ValueError("X_train and X_test must not be empty")
    sizes = _check_sizes(sizes, y_train)
    if (
        isinstance(num_epochs, bool)
        or not isinstance(num_epochs, (int, np.integer))
        or num_epochs < 1
    ):
        raise ValueError(f"num_epochs must be a positive int; got {num_epochs!r}")
    if progress is not None and not callable(progress):
        raise TypeError(
            f"progress must be a function (strategy, n, accuracy, seconds) or None; got {progress!r}"
        )
    report = progress or (lambda *args: None)
    num_classes = int(max(y_train.max(), y_test.max())) + 1
    source = models.get_base(arch, weights=weights, input_shape=X_test.shape[1:])
    test_features = extract_features(source, X_test)
    results: dict = {name: {} for name in strategies}

    def run(strategy: str, n: int, train_and_test) -> None:
        report(strategy, n, None, 0.0)
        start = perf_counter()
        results[strategy][n] = accuracy = train_and_test()
        report(strategy, n, accuracy, perf_counter() - start)

    for n in sizes:
        X, y = data.sample_per_class(X_train, y_train, n, seed=seed)
        epochs = num_epochs + min(10, num_epochs) * (len(X) < 200)  # tiny sets need more passes

        def scratch() -> float:
            keras.utils.set_random_seed(
                seed
            )  # the same initial weights for every run with this seed
            model = scratch_model(
                models.get_base(arch, weights=None, input_shape=X.shape[1:]), num_classes
            )
            fit(model, X, y, num_epochs=epochs, lr=2e-3, batch_size=32, seed=seed, verbose=0)
            models.recalibrate_bn(model, X)
            return _accuracy(model, X_test, y_test)

        head = None

        def features() -> float:
            nonlocal head
            head = train_head(extract_features(source, X), y, num_classes=num_classes, seed=seed)
            return _accuracy(head, test_features, y_test)

        def finetune() -> float:
            model = models.build_model(
                models.get_base(arch, weights=weights, input_shape=X.shape[1:]), num_classes
            )
            finetune_from_probe(model, head, X, y, num_epochs=epochs, lr=3e-4, seed=seed, verbose=0)
            return _accuracy(model, X_test, y_test)

        if "scratch" in strategies:
            run("scratch", n, scratch)
        if "features" in strategies:
            run("features", n, features)
        elif "finetune" in strategies:
            head = train_head(extract_features(source, X), y, num_classes=num_classes, seed=seed)
        if "finetune" in strategies:
            run("finetune", n, finetune)
        if verbose:
            print(
                f"{n:>4} labels/class: " + "  ".join(f"{s} {results[s][n]:.3f}" for s in strategies)
            )
    return results


def _check_sizes(sizes, y_train) -> list[int]:
    """Labels per class as a sorted list of ints, each at most the smallest class of ``y_train``."""
    sizes = [sizes] if isinstance(sizes, (int, np.integer)) else list(sizes)
    if not sizes or any(
        isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1 for n in sizes
    ):
        raise ValueError(
            f"sizes must be positive numbers of labels per class, e.g. (5, 20, 100); got {sizes!r}"
        )
    counts = np.bincount(np.asarray(y_train, dtype="int64"))
    present = np.flatnonzero(counts)
    smallest = int(present[np.argmin(counts[present])])
    too_many = sorted(int(n) for n in set(sizes) if n > counts[smallest])
    if too_many:
        raise ValueError(
            f"sizes {too_many} ask for more labels per class than X_train has: its smallest class ({smallest}) "
            f"has {counts[smallest]} images; use sizes up to {counts[smallest]}"
        )
    return sorted({int(n) for n in sizes})


def _accuracy(model: keras.Model, X, y, *, batch_size: int = 256) -> float:
    """Accuracy of ``model`` on ``(X, y)``, called eagerly batch by batch (``training=False``).

    Unlike ``model.predict`` this compiles nothing, so evaluating many freshly built models once
    each costs no tf.function tracing and triggers no TensorFlow "retracing" warning.
    """
    correct = 0
    for start in range(0, len(X), batch_size):
        probabilities = model(
            keras.ops.convert_to_tensor(X[start : start + batch_size], "float32"), training=False
        )
        correct += int(
            np.sum(
                np.argmax(keras.ops.convert_to_numpy(probabilities), axis=-1)
                == y[start : start + batch_size]
            )
        )
    return correct / len(X)


def results_table(results: dict) -> str:
    """Format ``{strategy: {n: accuracy}}`` as a text table, one row per labels-per-class.

    >>> print(results_table({"scratch": {5: 0.3}, "features": {5: 0.5}}))
    labels/class    scratch  features  best gain
               5      0.300     0.500     +20.0
    """
    strategies = list(results)
    sizes = sorted({n for row in results.values() for n in row})
    lines = ["labels/class " + "".join(f"{s:>10}" for s in strategies) + "  best gain"]
    for n in sizes:
        accs = [results[s].get(n, float("nan")) for s in strategies]
        gain = ""
        if "scratch" in results and len(strategies) > 1:
            best = max(results[s][n] for s in strategies if s != "scratch")
            gain = f"{100 * (best - results['scratch'][n]):+10.1f}"
        lines.append(f"{n:>12} " + "".join(f"{a:>10.3f}" for a in accs) + gain)
    return "\n".join(lines)
