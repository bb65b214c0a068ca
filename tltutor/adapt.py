"""Domain shift and unsupervised domain adaptation: measure the shift, then reduce it.

The setting: labelled images ``Xs, ys`` from a *source* domain, unlabelled images ``Xt``
from a *target* domain (the same classes, other looks), and a model that should work on
the target.

- **Measure** how far apart two domains are in a feature space: :func:`mmd` (maximum mean
  discrepancy, Gretton et al. 2012) and :func:`proxy_a_distance` (how well a linear classifier
  tells the domains apart, Ben-David et al. 2010).
- **AdaBN** (Li et al. 2016), :func:`adabn`: re-estimate BatchNorm statistics on target images.
- **Deep CORAL** (Sun & Saenko 2016), :func:`coral_loss` and :func:`fit_coral`: train with a
  penalty on the difference of the source and target feature covariances.
- **DANN** (Ganin et al. 2016), :class:`GradientReversal` and :func:`fit_dann`: train the
  features so that a domain classifier cannot tell the domains apart.

Model math is in ``keras.ops`` and training uses plain ``model.fit`` (an added output with its
own loss, no custom ``train_step``), so everything runs on the TensorFlow, JAX and PyTorch
backends. A typical run:

>>> import numpy as np
>>> from tltutor import adapt, models
>>> rng = np.random.default_rng(0)
>>> Xs, ys = rng.integers(0, 256, (64, 32, 32, 3), dtype="uint8"), np.arange(64) % 2
>>> Xt = rng.integers(0, 128, (64, 32, 32, 3), dtype="uint8")
>>> model, history = adapt.fit_dann(models.tlnet(width=4), Xs, ys, Xt, num_epochs=1, verbose=0)
>>> model.output_shape, sorted(history.history)[:2]
((None, 2), ['domain_accuracy', 'domain_loss'])
"""

from __future__ import annotations

import math

import keras
import numpy as np
from keras import ops

from tltutor.validation import (
    check_base,
    check_batch_size,
    check_feature_pair,
    check_images,
    check_inputs,
    check_int,
    check_labels,
    check_lr,
    check_num_classes,
    check_number,
    check_seed,
)

__all__ = [
    "CoralLoss",
    "GradientReversal",
    "adabn",
    "coral_loss",
    "coral_model",
    "dann_model",
    "fit_coral",
    "fit_dann",
    "mmd",
    "proxy_a_distance",
]


# --------------------------------------------------------------------------- measuring the shift


def mmd(Fs, Ft, *, kernel: str = "rbf", bandwidth: float | None = None) -> float:
    """Squared maximum mean discrepancy between two feature sets (N, D) and (M, D).

    ``MMD² = mean k(s, s') + mean k(t, t') - 2 mean k(s, t)`` (the biased estimate of
    Gretton et al. 2012, always >= 0 and exactly 0 for identical sets). ``kernel="rbf"`` uses
    ``k(a, b) = exp(-|a - b|² / (2 bandwidth²))``; ``bandwidth=None`` takes the median distance
    between all pooled pairs (the median heuristic), so the value does not depend on the
    features' scale. ``kernel="linear"`` uses ``k(a, b) = a·b``: MMD² is then the squared
    distance between the two means. Memory grows as (N + M)²: a few thousand rows are fine.

    >>> rng = np.random.default_rng(0)
    >>> A, B = rng.normal(size=(200, 4)), rng.normal(size=(200, 4))
    >>> mmd(A, A)
    0.0
    >>> round(mmd(A, B), 3) < 0.02 < round(mmd(A, B + 1.0), 3)
    True
    >>> mmd([[0.0], [2.0]], [[5.0], [7.0]], kernel="linear")   # (1 - 6)²
    25.0
    """
    Fs, Ft = check_feature_pair(Fs, Ft)
    if kernel not in ("rbf", "linear"):
        raise ValueError(f"kernel must be 'rbf' or 'linear'; got {kernel!r}")
    if bandwidth is not None:
        check_number(
            bandwidth,
            "bandwidth",
            low=0,
            low_open=True,
            example="1.0 (or None: the median heuristic)",
        )
    if kernel == "linear":
        gap = Fs.mean(axis=0) - Ft.mean(axis=0)
        return float(gap @ gap)
    pooled, scale = _centred(np.concatenate([Fs, Ft]))
    pooled = ops.convert_to_tensor(pooled, dtype="float64" if _x64() else "float32")
    squared = _squared_distances(pooled, pooled)
    if bandwidth is None:
        distances = ops.convert_to_numpy(squared)[np.triu_indices(len(Fs) + len(Ft), k=1)]
        median = float(np.median(distances))
        bandwidth = math.sqrt(median) if median > 0 else 1.0  # all points equal: any bandwidth
    else:
        bandwidth = float(bandwidth) / scale  # in the units of the rescaled features
    gram = ops.convert_to_numpy(ops.exp(-squared / (2.0 * float(bandwidth) ** 2))).astype("float64")
    n = len(Fs)
    value = gram[:n, :n].mean() + gram[n:, n:].mean() - 2.0 * gram[:n, n:].mean()
    return float(max(value, 0.0)) if abs(value) > 1e-12 else 0.0


def proxy_a_distance(Fs, Ft, *, seed: int = 0) -> float:
    """Proxy A-distance ``2 (1 - 2 err)``: how well a linear classifier tells the domains apart.

    Ben-David et al. (2010): train a classifier to say "source or target" from the features;
    ``err`` is its error on held-out examples. The larger set is first subsampled to the size
    of the smaller one (so chance is 0.5), the features are standardised, and a logistic
    regression is trained on one half and tested on the other (stratified, ``seed``). A
    classifier worse than chance is flipped (``err = min(err, 1 - err)``), so the value is in
    [0, 2]: 0 means indistinguishable domains, 2 perfectly separable ones.

    >>> rng = np.random.default_rng(0)
    >>> A, B = rng.normal(size=(300, 5)), rng.normal(size=(300, 5))
    >>> proxy_a_distance(A, B) < 0.4, round(proxy_a_distance(A, B + 3.0), 1)
    (True, 2.0)
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    Fs, Ft = check_feature_pair(Fs, Ft, min_rows=2)
    seed = check_seed(seed)
    rng = np.random.default_rng(seed)
    n = min(len(Fs), len(Ft))
    Fs, Ft = Fs[np.sort(rng.permutation(len(Fs))[:n])], Ft[np.sort(rng.permutation(len(Ft))[:n])]
    X, domain = np.concatenate([Fs, Ft]), np.repeat([0, 1], n)
    X_train, X_test, d_train, d_test = train_test_split(
        X, domain, test_size=0.5, stratify=domain, random_state=seed
    )
    classifier = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    error = float(np.mean(classifier.fit(X_train, d_train).predict(X_test) != d_test))
    return 2.0 * (1.0 - 2.0 * min(error, 1.0 - error))


# --------------------------------------------------------------------------- AdaBN


def adabn(model: keras.Model, X_target, *, batch_size: int = 256) -> keras.Model:
    """AdaBN (Li et al. 2016): a copy of ``model`` whose BatchNorm statistics come from ``X_target``.

    BatchNorm normalises each channel with a mean and variance estimated on the training (source)
    data. Under a domain shift the target's activations have other statistics; AdaBN simply
    re-estimates them on unlabelled target images, with no training. The weights are unchanged
    and ``model`` itself keeps its source statistics. This is
    :func:`tltutor.models.recalibrate_bn` on a copy: the whole method is *which data* the
    statistics come from.

    >>> from tltutor import models
    >>> base = models.tlnet(width=4)
    >>> X_target = np.random.default_rng(0).integers(0, 256, (8, 32, 32, 3), dtype="uint8")
    >>> adapted = adabn(base, X_target)
    >>> def variance(m): return keras.ops.convert_to_numpy(m.get_layer("block1_bn1").moving_variance)
    >>> bool(np.allclose(variance(base), 1.0)), bool(np.allclose(variance(adapted), 1.0))
    (True, False)
    """
    from tltutor import models

    if not isinstance(model, keras.Model):
        raise TypeError(
            f"model must be a keras.Model (a base or a classifier); got {type(model).__name__}"
        )
    X_target = check_images(X_target, model=model, name="X_target")
    copy = keras.models.clone_model(model)
    copy.set_weights(model.get_weights())
    return models.recalibrate_bn(copy, X_target, batch_size=batch_size)


# --------------------------------------------------------------------------- Deep CORAL


def coral_loss(fs, ft):
    """Deep CORAL loss (Sun & Saenko 2016): ``|C_s - C_t|_F² / (4 d²)``, in ``keras.ops``.

    ``fs`` (n_s, d) and ``ft`` (n_t, d) are source and target features; ``C_s`` and ``C_t`` are
    their covariance matrices (divided by n - 1). Returns a scalar tensor, differentiable on every
    Keras backend; 0 when the two covariances are equal (even if the means differ).

    >>> fs = np.array([[0.0, 0.0], [2.0, 0.0]])          # covariance [[2, 0], [0, 0]]
    >>> ft = np.array([[0.0, 0.0], [0.0, 2.0]])          # covariance [[0, 0], [0, 2]]
    >>> float(coral_loss(fs, ft))                       # (2² + 2²) / (4 · 2²)
    0.5
    >>> float(coral_loss(fs, fs + 5.0))
    0.0
    """
    fs, ft = ops.convert_to_tensor(fs), ops.convert_to_tensor(ft)
    if len(fs.shape) != 2 or len(ft.shape) != 2 or fs.shape[1] != ft.shape[1]:
        raise ValueError(
            f"fs and ft must be feature matrices (n, d) with the same d; got shapes {tuple(fs.shape)} and {tuple(ft.shape)}"
        )
    dtype = "float64" if "64" in str(fs.dtype) or "64" in str(ft.dtype) else "float32"
    fs, ft = ops.cast(fs, dtype), ops.cast(ft, dtype)
    d = fs.shape[1]
    gap = _covariance(fs, ops.ones((ops.shape(fs)[0],), dtype)) - _covariance(
        ft, ops.ones((ops.shape(ft)[0],), dtype)
    )
    return ops.sum(ops.square(gap)) / (4.0 * d * d)


def _covariance(f, weights):
    """Covariance (d, d) of the rows of ``f`` that have weight 1 (weights are 0 or 1), divided by n - 1."""
    n = ops.sum(weights)
    w = ops.expand_dims(weights, -1)
    centred = (f - ops.sum(w * f, axis=0, keepdims=True) / ops.maximum(n, 1.0)) * w
    return ops.matmul(ops.transpose(centred), centred) / ops.maximum(n - 1.0, 1.0)


@keras.saving.register_keras_serializable(package="tltutor")
class CoralLoss(keras.losses.Loss):
    """The CORAL loss for a batch that mixes both domains: ``y_true`` is the domain (0 source, 1 target).

    ``y_pred`` are the batch's features (B, d); the loss compares the covariance of the source
    rows with that of the target rows (see :func:`coral_loss`), so it trains with ``model.fit``
    like any other loss, on every backend.

    >>> loss = CoralLoss()
    >>> features = np.array([[0.0, 0.0], [2.0, 0.0], [0.0, 0.0], [0.0, 2.0]])
    >>> float(loss(np.array([0, 0, 1, 1]), features))
    0.5
    """

    def __init__(self, name: str = "coral", **kwargs):
        super().__init__(name=name, **kwargs)

    def call(self, y_true, y_pred):
        target = ops.cast(ops.reshape(y_true, (-1,)), y_pred.dtype)
        gap = _covariance(y_pred, 1.0 - target) - _covariance(y_pred, target)
        d = y_pred.shape[-1]
        return ops.sum(ops.square(gap)) / (4.0 * d * d)


# --------------------------------------------------------------------------- DANN


@keras.saving.register_keras_serializable(package="tltutor")
class GradientReversal(keras.layers.Layer):
    """Identity on the way forward; multiplies the gradient by ``-lambda`` on the way back.

    Ganin et al. (2016): a domain classifier after this layer learns to tell the domains apart,
    while the layers *before* it are pushed to make that impossible. The trick, on every
    backend: ``stop_gradient(x * (1 + lambda)) - lambda * x`` has the value ``x`` and the
    gradient ``-lambda``. With ``schedule_steps``, lambda rises from 0 to ``strength`` as
    ``2 / (1 + exp(-10 p)) - 1`` with the training progress ``p = step / schedule_steps``
    (the paper's schedule: the domain classifier is weak at first, so its gradients are noise);
    the layer counts its own training steps.

    >>> layer = GradientReversal(strength=0.5)
    >>> x = keras.ops.convert_to_tensor([1.0, -2.0])
    >>> keras.ops.convert_to_numpy(layer(x)).tolist()
    [1.0, -2.0]
    """

    def __init__(self, strength: float = 1.0, schedule_steps: int | None = None, **kwargs):
        super().__init__(**kwargs)
        check_number(strength, "strength", low=0, example="1.0 (the reversed gradient's scale)")
        if schedule_steps is not None:
            check_int(
                schedule_steps,
                "schedule_steps",
                minimum=1,
                example=" such as 1000, or None (constant strength)",
            )
        self.strength = float(strength)
        self.schedule_steps = None if schedule_steps is None else int(schedule_steps)
        self.step = self.add_weight(shape=(), initializer="zeros", trainable=False, name="step")

    def current_strength(self):
        """Lambda now: ``strength``, or its scheduled value after the training steps so far."""
        if self.schedule_steps is None:
            return ops.convert_to_tensor(self.strength, "float32")
        progress = ops.minimum(ops.cast(self.step, "float32") / self.schedule_steps, 1.0)
        return self.strength * (2.0 / (1.0 + ops.exp(-10.0 * progress)) - 1.0)

    def call(self, x, training=None):
        strength = ops.cast(self.current_strength(), x.dtype)
        if training:
            self.step.assign(self.step + 1.0)
        return ops.stop_gradient(x * (1.0 + strength)) - strength * x

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {
            **super().get_config(),
            "strength": self.strength,
            "schedule_steps": self.schedule_steps,
        }


# --------------------------------------------------------------------------- models and training


def coral_model(base: keras.Model, num_classes: int) -> keras.Model:
    """A Deep CORAL training model: pixels -> base -> {"label": class probabilities, "domain": features}.

    Train it on batches that mix source and target images (see :func:`fit_coral`): the
    ``"label"`` output gets the cross-entropy on source images only (target rows have sample
    weight 0), the ``"domain"`` output the :class:`CoralLoss` with the domain as its label. The
    base is called in training mode (its BatchNorm sees the mixed batches), as in
    :func:`tltutor.train.scratch_model`.

    >>> from tltutor import models
    >>> {name: tuple(output.shape) for name, output in coral_model(models.tlnet(width=4), 3).output.items()}
    {'label': (None, 3), 'domain': (None, 16)}
    """
    check_base(base)
    num_classes = check_num_classes(num_classes)
    inputs = keras.Input(base.input_shape[1:], name="pixels")
    features = base(inputs)
    label = keras.layers.Dense(num_classes, activation="softmax", name="head", dtype="float32")(
        features
    )
    domain = keras.layers.Identity(name="domain_features", dtype="float32")(features)
    return keras.Model(inputs, {"label": label, "domain": domain}, name="coral_model")


def dann_model(
    base: keras.Model,
    num_classes: int,
    *,
    strength: float = 1.0,
    schedule_steps: int | None = None,
    domain_units: int = 64,
) -> keras.Model:
    """A DANN training model: pixels -> base -> {"label": class probabilities, "domain": logit}.

    The domain branch is :class:`GradientReversal` -> Dense(``domain_units``, relu) -> Dense(1):
    a small domain classifier whose logit says "target" (> 0) or "source" (< 0). Train it on
    batches that mix both domains (see :func:`fit_dann`).

    >>> from tltutor import models
    >>> {name: tuple(output.shape) for name, output in dann_model(models.tlnet(width=4), 3).output.items()}
    {'label': (None, 3), 'domain': (None, 1)}
    """
    check_base(base)
    num_classes = check_num_classes(num_classes)
    check_int(domain_units, "domain_units", minimum=1)
    inputs = keras.Input(base.input_shape[1:], name="pixels")
    features = base(inputs)
    label = keras.layers.Dense(num_classes, activation="softmax", name="head", dtype="float32")(
        features
    )
    x = GradientReversal(strength, schedule_steps, name="gradient_reversal")(features)
    x = keras.layers.Dense(int(domain_units), activation="relu", name="domain_hidden")(x)
    domain = keras.layers.Dense(1, name="domain_logit", dtype="float32")(x)
    return keras.Model(inputs, {"label": label, "domain": domain}, name="dann_model")


def fit_coral(
    base: keras.Model,
    Xs,
    ys,
    Xt,
    *,
    weight: float = 1.0,
    num_classes: int | None = None,
    num_epochs: int = 5,
    lr: float = 1e-3,
    batch_size: int = 32,
    seed: int = 0,
    verbose: int | str = "auto",
) -> tuple[keras.Model, keras.callbacks.History]:
    """Train ``base`` and a new head with Deep CORAL; return ``(classifier, history)``.

    The loss is the cross-entropy on the labelled source images plus ``weight`` times the CORAL
    loss between the source and target features of each batch. ``classifier`` maps pixels to
    class probabilities (evaluate it with :func:`tltutor.train.evaluate`); ``base`` is trained in
    place. Every epoch sees each source image once and as many target images, drawn anew, in
    shuffled batches of ``batch_size`` images from both domains (small batches mean more steps:
    at lab scale, batches of 32 adapted clearly better than batches of 128 for the same epochs).
    BatchNorm statistics follow the mixed batches: re-estimate them afterwards with
    ``models.recalibrate_bn(base, np.concatenate([Xs, Xt]))``, or with ``adabn(classifier, Xt)``
    for the target's own statistics.

    >>> from tltutor import models
    >>> rng = np.random.default_rng(0)
    >>> Xs, ys = rng.integers(0, 256, (32, 32, 32, 3), dtype="uint8"), np.arange(32) % 2
    >>> classifier, history = fit_coral(models.tlnet(width=4), Xs, ys, Xs[::-1], num_epochs=1, verbose=0)
    >>> "domain_loss" in history.history
    True
    """
    check_number(weight, "weight", low=0, example="1.0 (the adaptation loss's weight)")
    Xs, ys, Xt, num_classes = _check_domains(base, Xs, ys, Xt, num_classes)
    keras.utils.set_random_seed(check_seed(seed))
    model = coral_model(base, num_classes)
    history = _fit(
        model, CoralLoss(), None, Xs, ys, Xt, weight, num_epochs, lr, batch_size, seed, verbose
    )
    return _classifier(model), history


def fit_dann(
    base: keras.Model,
    Xs,
    ys,
    Xt,
    *,
    weight: float = 1.0,
    strength: float = 1.0,
    ramp_up: bool = True,
    num_classes: int | None = None,
    num_epochs: int = 5,
    lr: float = 1e-3,
    batch_size: int = 32,
    seed: int = 0,
    verbose: int | str = "auto",
) -> tuple[keras.Model, keras.callbacks.History]:
    """Train ``base`` and a new head with DANN (Ganin et al. 2016); return ``(classifier, history)``.

    The loss is the cross-entropy on the labelled source images plus ``weight`` times the domain
    classifier's binary cross-entropy on every image; the gradient reversal between the features
    and the domain classifier makes the features work *against* it, with lambda rising from 0 to
    ``strength`` over the training (``ramp_up=False``: constant ``strength``). The history's
    ``domain_accuracy`` near 0.5 means the domains look alike to the domain classifier. Data,
    epochs and BatchNorm as in :func:`fit_coral`.

    >>> from tltutor import models
    >>> rng = np.random.default_rng(0)
    >>> Xs, ys = rng.integers(0, 256, (32, 32, 32, 3), dtype="uint8"), np.arange(32) % 2
    >>> classifier, history = fit_dann(models.tlnet(width=4), Xs, ys, 255 - Xs, num_epochs=1, verbose=0)
    >>> classifier.output_shape
    (None, 2)
    """
    check_number(weight, "weight", low=0, example="1.0 (the adaptation loss's weight)")
    if not isinstance(ramp_up, bool):
        raise TypeError(
            f"ramp_up must be True (lambda ramps up from 0) or False (constant strength); got {ramp_up!r}"
        )
    Xs, ys, Xt, num_classes = _check_domains(base, Xs, ys, Xt, num_classes)
    check_int(num_epochs, "num_epochs", minimum=1)
    check_batch_size(batch_size, minimum=2, why=" such as 32 (each batch mixes both domains)")
    keras.utils.set_random_seed(check_seed(seed))
    steps = num_epochs * math.ceil(2 * len(Xs) / batch_size)
    model = dann_model(
        base, num_classes, strength=strength, schedule_steps=steps if ramp_up else None
    )
    metric = keras.metrics.BinaryAccuracy(name="accuracy", threshold=0.0)  # on logits
    loss = keras.losses.BinaryCrossentropy(from_logits=True)
    history = _fit(
        model, loss, metric, Xs, ys, Xt, weight, num_epochs, lr, batch_size, seed, verbose
    )
    return _classifier(model), history


def _fit(
    model, domain_loss, domain_metric, Xs, ys, Xt, weight, num_epochs, lr, batch_size, seed, verbose
):
    """Compile ``model`` (outputs "label" and "domain") and fit it on freshly mixed domains every epoch."""
    from tltutor import train

    check_int(num_epochs, "num_epochs", minimum=1)
    check_batch_size(batch_size, minimum=2, why=" such as 32 (each batch mixes both domains)")
    check_lr(lr)
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=lr),
        loss={
            "label": keras.losses.SparseCategoricalCrossentropy(
                reduction="mean_with_sample_weight"
            ),
            "domain": domain_loss,
        },
        loss_weights={"label": 1.0, "domain": float(weight)},
        weighted_metrics={"label": ["accuracy"]},
        metrics={"domain": [domain_metric]} if domain_metric is not None else None,
    )
    rng = np.random.default_rng(seed)
    history = None
    for epoch in range(num_epochs):
        X, y, sample_weight = _mix(Xs, ys, Xt, rng)
        if epoch == 0:
            train.create_state(model, X, y, sample_weight)
        epoch_history = model.fit(
            X,
            y,
            sample_weight=sample_weight,
            batch_size=batch_size,
            epochs=epoch + 1,
            initial_epoch=epoch,
            verbose=train.verbosity(verbose),
            shuffle=True,
        )
        if history is None:
            history = epoch_history
        else:
            for key, values in epoch_history.history.items():
                history.history.setdefault(key, []).extend(values)
    history.epoch = list(range(num_epochs))
    return history


def _mix(Xs, ys, Xt, rng):
    """One epoch's data: every source image and as many target images (drawn without replacement
    when there are enough), shuffled together; target rows get label 0 with sample weight 0."""
    n = len(Xs)
    chosen = rng.permutation(len(Xt))[:n] if len(Xt) >= n else rng.integers(len(Xt), size=n)
    X = np.concatenate([Xs, Xt[chosen]]).astype("float32")
    domain = np.repeat(np.array([0.0, 1.0], "float32"), n)[:, None]
    y = {"label": np.concatenate([ys, np.zeros(n, "int64")]), "domain": domain}
    order = rng.permutation(2 * n)
    y = {key: value[order] for key, value in y.items()}
    sample_weight = {"label": (1.0 - domain[order, 0]), "domain": np.ones(2 * n, "float32")}
    return X[order], y, sample_weight


def _classifier(model: keras.Model) -> keras.Model:
    """The pixels -> class probabilities part of a coral_model/dann_model (shares its weights)."""
    return keras.Model(
        model.inputs,
        model.get_layer("head").output,
        name=model.name.replace("_model", "_classifier"),
    )


# --------------------------------------------------------------------------- validation


def _x64() -> bool:
    """Whether the backend computes in float64 (JAX only does with jax_enable_x64)."""
    if keras.backend.backend() != "jax":
        return True
    import jax

    return bool(jax.config.jax_enable_x64)


def _centred(F: np.ndarray) -> tuple[np.ndarray, float]:
    """``F`` minus its mean, times a power of two that brings its largest value into [0.5, 1); and
    that factor's inverse.

    Distances do not change with a common offset, but ``|a|² + |b|² - 2 a·b`` computed with a
    large offset (features all near 1e4, say) loses the difference to rounding, badly so in
    float32 (JAX's default): 1 % wrong at an offset of 1e3 and 75-97 % at 1e4. Centred, the
    squared norms are as small as the distances themselves.
    """
    F = F - F.mean(axis=0)
    _, exponent = np.frexp(np.abs(F).max())
    return np.ldexp(F, -int(exponent)), float(np.ldexp(1.0, int(exponent)))


def _squared_distances(A, B):
    """All pairwise squared Euclidean distances between the rows of A and B, in keras.ops."""
    squared = (
        ops.sum(A * A, axis=1)[:, None]
        + ops.sum(B * B, axis=1)[None, :]
        - 2.0 * ops.matmul(A, ops.transpose(B))
    )
    return ops.maximum(squared, 0.0)


def _check_domains(base, Xs, ys, Xt, num_classes):
    """Source images and labels and target images that fit ``base``; the number of classes."""
    check_base(base)
    Xs, Xt = check_inputs(base, Xs, name="Xs"), check_inputs(base, Xt, name="Xt")
    ys = check_labels(ys, len(Xs), name="ys", num_classes=num_classes)
    if num_classes is None:
        num_classes = max(int(ys.max()) + 1, 2)
    return Xs, ys, Xt, check_num_classes(num_classes)
