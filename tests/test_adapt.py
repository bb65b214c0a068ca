"""Tests of tltutor.adapt: distances, AdaBN, CORAL, gradient reversal, DANN; hand-computed cases and bad input.

Everything trains through ``model.fit`` on tiny data, so the file also runs on the JAX and
PyTorch backends (``KERAS_BACKEND=jax pytest tests/test_adapt.py``).
"""

import math

import keras
import numpy as np
import pytest

from tltutor import adapt, models, train

RNG = np.random.default_rng(0)


def images(n, seed=0, low=0, high=256):
    return np.random.default_rng(seed).integers(low, high, (n, 32, 32, 3), dtype="uint8")


def to_numpy(x):
    return keras.ops.convert_to_numpy(x)


# --------------------------------------------------------------------------- mmd


def test_mmd_of_identical_sets_is_zero():
    A = RNG.normal(size=(50, 3))
    assert adapt.mmd(A, A) == 0.0
    assert adapt.mmd(A, A, kernel="linear") == 0.0
    assert adapt.mmd(A, A.copy(), bandwidth=0.5) == 0.0


def test_mmd_rbf_hand_computed():
    # one point each at distance 1, bandwidth 1: k(s,s) = k(t,t) = 1, k(s,t) = exp(-1/2)
    assert adapt.mmd([[0.0]], [[1.0]], bandwidth=1.0) == pytest.approx(2 - 2 * math.exp(-0.5))
    # median heuristic on {0, 1}: the only pair is at distance 1, so the bandwidth is 1 too
    assert adapt.mmd([[0.0]], [[1.0]]) == pytest.approx(2 - 2 * math.exp(-0.5))
    # two source points {0, 2}, one target point {1}, bandwidth 1
    k = lambda d: math.exp(-(d**2) / 2)  # noqa: E731
    expected = (2 * k(0) + 2 * k(2)) / 4 + 1 - 2 * (k(1) + k(1)) / 2
    assert adapt.mmd([[0.0], [2.0]], [[1.0]], bandwidth=1.0) == pytest.approx(expected)


def test_mmd_linear_is_squared_mean_gap():
    assert adapt.mmd([[0.0, 1.0], [2.0, 1.0]], [[4.0, 3.0]], kernel="linear") == pytest.approx(
        9.0 + 4.0
    )


def test_mmd_is_symmetric_scale_free_and_grows_with_the_shift():
    A, B = RNG.normal(size=(100, 4)), RNG.normal(size=(80, 4))
    assert adapt.mmd(A, B) == pytest.approx(adapt.mmd(B, A))
    assert adapt.mmd(10 * A, 10 * B) == pytest.approx(adapt.mmd(A, B), rel=1e-6)  # median heuristic
    values = [adapt.mmd(A, B + shift) for shift in (0.0, 0.5, 1.0, 2.0)]
    assert values == sorted(values) and values[0] < 0.05 < values[-1]


@pytest.mark.parametrize("x64", [True, False], ids=["float64", "float32"])
@pytest.mark.parametrize("offset", [1e3, 1e4, 1e8])
def test_mmd_ignores_a_large_common_offset(offset, x64, monkeypatch):
    """|a|² + |b|² - 2a·b with features near 1e4 lost the distances to rounding: 75-97 % wrong in
    float32 (JAX's default; forced here with x64=False on any backend), and at 1e8 in float64 too."""
    monkeypatch.setattr(adapt, "_x64", lambda: x64)
    A, B = RNG.normal(size=(60, 8)), RNG.normal(size=(50, 8)) + 0.5
    for kwargs in ({}, {"bandwidth": 2.0}):
        expected = adapt.mmd(A, B, **kwargs)
        assert adapt.mmd(A + offset, B + offset, **kwargs) == pytest.approx(
            expected, rel=1e-6 if x64 else 1e-3
        )


@pytest.mark.parametrize(
    "Fs, Ft, kwargs, error, message",
    [
        (np.zeros(5), np.zeros((5, 1)), {}, ValueError, "batch axis"),
        (np.zeros((5, 2, 2)), np.zeros((5, 4)), {}, ValueError, "reshape"),
        (np.zeros((5, 2)), np.zeros((5, 3)), {}, ValueError, "same number of features"),
        (np.zeros((0, 2)), np.zeros((5, 2)), {}, ValueError, "at least 1 row"),
        (np.array([[np.nan, 1.0]]), np.zeros((5, 2)), {}, ValueError, "NaN"),
        (np.array([["a", "b"]]), np.zeros((5, 2)), {}, TypeError, "numbers"),
        ("features", np.zeros((5, 2)), {}, TypeError, "feature matrix"),
        (None, np.zeros((5, 2)), {}, TypeError, "feature matrix"),
        (np.zeros((5, 2)), np.zeros((5, 2)), {"kernel": "poly"}, ValueError, "kernel"),
        (np.zeros((5, 2)), np.zeros((5, 2)), {"bandwidth": 0.0}, ValueError, "bandwidth"),
        (np.zeros((5, 2)), np.zeros((5, 2)), {"bandwidth": float("nan")}, ValueError, "bandwidth"),
        (np.zeros((5, 2)), np.zeros((5, 2)), {"bandwidth": "1"}, TypeError, "bandwidth"),
    ],
)
def test_mmd_bad_input(Fs, Ft, kwargs, error, message):
    with pytest.raises(error, match=message):
        adapt.mmd(Fs, Ft, **kwargs)


# --------------------------------------------------------------------------- proxy A-distance


def test_proxy_a_distance_separable_and_identical_domains():
    A = RNG.normal(size=(400, 5))
    assert adapt.proxy_a_distance(A, A + 10.0) == 2.0
    assert adapt.proxy_a_distance(A[:200], RNG.normal(size=(300, 5))) < 0.4  # sizes may differ
    assert adapt.proxy_a_distance(A[:200], A[200:]) < 0.4  # two halves of one sample


def test_proxy_a_distance_grows_with_the_shift_and_is_seeded():
    A, B = RNG.normal(size=(300, 4)), RNG.normal(size=(300, 4))
    near, far = adapt.proxy_a_distance(A, B + 0.3), adapt.proxy_a_distance(A, B + 1.5)
    assert near < far
    assert adapt.proxy_a_distance(A, B, seed=3) == adapt.proxy_a_distance(A, B, seed=3)
    # ... and the seed is used: other seeds split the examples differently
    assert len({adapt.proxy_a_distance(A, B + 0.3, seed=seed) for seed in range(5)}) > 1


@pytest.mark.parametrize(
    "Fs, Ft, kwargs, error, message",
    [
        (np.zeros((1, 2)), np.zeros((5, 2)), {}, ValueError, "at least 2 row"),
        (np.zeros((5, 2)), np.zeros((5, 3)), {}, ValueError, "same number of features"),
        (np.zeros((5, 2)), np.zeros((5, 2)), {"seed": -1}, ValueError, "seed"),
        (
            np.zeros((5, 2)),
            np.zeros((5, 2)),
            {"seed": 1.5},
            TypeError,
            "seed",
        ),  # a wrong kind: TypeError everywhere
    ],
)
def test_proxy_a_distance_bad_input(Fs, Ft, kwargs, error, message):
    with pytest.raises(error, match=message):
        adapt.proxy_a_distance(Fs, Ft, **kwargs)


# --------------------------------------------------------------------------- CORAL


def test_coral_loss_hand_computed():
    fs = np.array([[0.0, 0.0], [2.0, 0.0]])  # covariance [[2, 0], [0, 0]]
    ft = np.array([[0.0, 0.0], [0.0, 2.0]])  # covariance [[0, 0], [0, 2]]
    assert float(adapt.coral_loss(fs, ft)) == pytest.approx(8 / 16)
    fs = np.array([[1.0], [3.0], [5.0]])  # variance 4 (divided by n - 1)
    ft = np.array([[0.0], [1.0]])  # variance 0.5
    assert float(adapt.coral_loss(fs, ft)) == pytest.approx((4 - 0.5) ** 2 / 4)


def test_coral_loss_is_zero_for_equal_covariances_and_matches_numpy():
    fs = RNG.normal(size=(40, 6))
    assert float(adapt.coral_loss(fs, fs + 7.0)) == pytest.approx(
        0.0, abs=1e-12
    )  # means do not count
    assert float(adapt.coral_loss(fs, -fs)) == pytest.approx(0.0, abs=1e-12)
    ft = RNG.normal(size=(30, 6)) * 2
    expected = np.sum((np.cov(fs, rowvar=False) - np.cov(ft, rowvar=False)) ** 2) / (4 * 36)
    assert float(adapt.coral_loss(fs, ft)) == pytest.approx(expected, rel=1e-6)
    assert float(adapt.coral_loss(fs.astype("float32"), ft.astype("float32"))) == pytest.approx(
        expected, rel=1e-4
    )


def test_coral_loss_class_splits_the_batch_by_domain():
    fs, ft = RNG.normal(size=(10, 3)), RNG.normal(size=(14, 3)) * 3
    order = RNG.permutation(24)
    features, domain = np.concatenate([fs, ft])[order], np.repeat([0, 1], [10, 14])[order]
    loss = adapt.CoralLoss()(domain, features.astype("float32"))
    assert float(loss) == pytest.approx(float(adapt.coral_loss(fs, ft)), rel=1e-4)


def test_coral_loss_trains_covariances_together():
    """Minimising the CORAL loss with model.fit (any backend) makes the covariances match."""
    scale = keras.layers.Dense(2, use_bias=False, kernel_initializer="identity", name="scale")
    inputs = keras.Input((2,))
    model = keras.Model(inputs, scale(inputs))
    model.compile(optimizer=keras.optimizers.Adam(0.1), loss=adapt.CoralLoss())
    X = np.concatenate([RNG.normal(size=(64, 2)), RNG.normal(size=(64, 2)) * [3.0, 0.5]]).astype(
        "float32"
    )
    domain = np.repeat([0.0, 1.0], 64)[:, None]
    before = float(adapt.CoralLoss()(domain, model.predict(X, verbose=0)))
    model.fit(
        np.tile(X, (20, 1)),
        np.tile(domain, (20, 1)),
        batch_size=128,
        epochs=1,
        shuffle=False,
        verbose=0,
    )  # 20 steps
    after = float(adapt.CoralLoss()(domain, model.predict(X, verbose=0)))
    assert after < 0.05 * before, (before, after)


def test_coral_loss_bad_input():
    with pytest.raises(ValueError, match="same d"):
        adapt.coral_loss(np.zeros((4, 2)), np.zeros((4, 3)))
    with pytest.raises(ValueError, match="feature matrices"):
        adapt.coral_loss(np.zeros(4), np.zeros(4))


# --------------------------------------------------------------------------- gradient reversal


def one_weight_model(middle):
    """x -> w·x (w starts at 1) -> middle -> output; the loss is the mean output."""
    inputs = keras.Input((1,))
    before = keras.layers.Dense(1, use_bias=False, kernel_initializer="ones", name="before")
    model = keras.Model(inputs, middle(before(inputs)))
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss=lambda y_true, y_pred: y_pred)
    return model


@pytest.mark.parametrize("strength", [0.5, 2.0])
def test_gradient_reversal_flips_and_scales_the_gradient(strength):
    X, y = np.ones((8, 1), "float32"), np.zeros((8, 1), "float32")
    plain = one_weight_model(keras.layers.Identity())
    plain.fit(X, y, batch_size=8, epochs=1, verbose=0)  # d(mean w·x)/dw = 1: w = 1 - 0.1
    assert to_numpy(plain.get_layer("before").kernel).item() == pytest.approx(0.9)
    reversed_ = one_weight_model(adapt.GradientReversal(strength))
    reversed_.fit(
        X, y, batch_size=8, epochs=1, verbose=0
    )  # gradient -strength: w = 1 + 0.1 * strength
    assert to_numpy(reversed_.get_layer("before").kernel).item() == pytest.approx(
        1 + 0.1 * strength
    )


def test_gradient_reversal_is_the_identity_forward():
    x = RNG.normal(size=(4, 3)).astype("float32")
    layer = adapt.GradientReversal(strength=0.7)
    np.testing.assert_allclose(to_numpy(layer(x)), x, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(to_numpy(layer(x, training=True)), x, rtol=1e-6, atol=1e-6)


def test_gradient_reversal_schedule_counts_training_steps():
    layer = adapt.GradientReversal(strength=2.0, schedule_steps=4)
    assert float(to_numpy(layer.current_strength())) == 0.0
    model = one_weight_model(layer)
    model.fit(
        np.ones((8, 1), "float32"), np.zeros((8, 1)), batch_size=4, epochs=1, verbose=0
    )  # 2 steps
    assert float(to_numpy(layer.step)) == 2.0
    p = 0.5
    assert float(to_numpy(layer.current_strength())) == pytest.approx(
        2.0 * (2 / (1 + math.exp(-10 * p)) - 1), rel=1e-5
    )
    model.fit(np.ones((16, 1), "float32"), np.zeros((16, 1)), batch_size=4, epochs=1, verbose=0)
    assert float(to_numpy(layer.current_strength())) == pytest.approx(
        2.0 * (2 / (1 + math.exp(-10)) - 1), rel=1e-5
    )
    layer(np.ones((1, 1), "float32"))  # inference calls do not count
    assert float(to_numpy(layer.step)) == 6.0


def test_gradient_reversal_config_round_trip():
    layer = adapt.GradientReversal(strength=0.3, schedule_steps=10, name="grl")
    clone = adapt.GradientReversal.from_config(layer.get_config())
    assert (clone.strength, clone.schedule_steps, clone.name) == (0.3, 10, "grl")


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({"strength": -1.0}, ValueError, "strength"),
        ({"strength": float("inf")}, ValueError, "strength"),
        ({"strength": "1"}, TypeError, "strength"),
        ({"schedule_steps": 0}, ValueError, "schedule_steps"),
        ({"schedule_steps": 2.5}, TypeError, "schedule_steps"),
    ],
)
def test_gradient_reversal_bad_arguments(kwargs, error, message):
    with pytest.raises(error, match=message):
        adapt.GradientReversal(**kwargs)


# --------------------------------------------------------------------------- AdaBN


def test_adabn_moves_the_statistics_to_the_target_on_a_copy():
    base = models.tlnet(width=4)
    X_source, X_target = images(32, seed=1, high=100), images(32, seed=2, low=150)
    models.recalibrate_bn(base, X_source)
    adapted = adabn_model = adapt.adabn(base, X_target)
    assert adapted is not base
    target_shift = max(row["mean_shift"] for row in models.bn_report(base, X_target))
    assert target_shift > 0.5  # the source statistics do not fit the target
    assert max(row["mean_shift"] for row in models.bn_report(adabn_model, X_target)) < 1e-3
    assert (
        max(row["mean_shift"] for row in models.bn_report(base, X_source)) < 1e-3
    )  # the original is untouched
    conv = "block2_conv1"
    np.testing.assert_array_equal(
        adapted.get_layer(conv).get_weights()[0], base.get_layer(conv).get_weights()[0]
    )


def test_adabn_works_on_a_whole_classifier():
    model = train.scratch_model(models.tlnet(width=4), 3)
    X_target = images(16, seed=3)
    adapted = adapt.adabn(model, X_target)
    assert adapted.output_shape == (None, 3)
    assert max(row["mean_shift"] for row in models.bn_report(adapted, X_target)) < 1e-3


def test_adabn_bad_input():
    base = models.tlnet(width=4)
    with pytest.raises(TypeError, match="keras.Model"):
        adapt.adabn("base", images(4))
    with pytest.raises(ValueError, match="expects"):
        adapt.adabn(base, np.zeros((4, 28, 28, 3), "uint8"))
    with pytest.raises(ValueError, match="empty"):
        adapt.adabn(base, np.zeros((0, 32, 32, 3), "uint8"))
    with pytest.raises(ValueError, match="NaN"):
        adapt.adabn(base, np.full((2, 32, 32, 3), np.nan))


# --------------------------------------------------------------------------- training models


def test_mixed_batches_hide_target_labels():
    Xs, ys, Xt = (
        np.arange(6)[:, None] * 1.0,
        np.array([1, 2, 1, 2, 1, 2]),
        100 + np.arange(4)[:, None] * 1.0,
    )
    X, y, weight = adapt._mix(Xs, ys, Xt, np.random.default_rng(0))
    is_target = X[:, 0] >= 100
    assert len(X) == 12 and is_target.sum() == 6  # as many target rows as source rows
    np.testing.assert_array_equal(y["domain"][:, 0], is_target)
    np.testing.assert_array_equal(weight["label"], ~is_target)  # no class loss on target rows
    assert sorted(y["label"][~is_target]) == sorted(ys)


@pytest.mark.parametrize("fit", [adapt.fit_coral, adapt.fit_dann])
def test_fit_returns_a_trained_classifier(fit):
    # three classes told apart by brightness (dark, mid, bright); the target images span all of it
    Xs = np.concatenate([images(8, seed=4 + k, low=85 * k, high=85 * k + 85) for k in range(3)])
    ys, Xt = np.repeat(np.arange(3), 8), images(16, seed=5)
    keras.utils.set_random_seed(0)
    base = models.tlnet(width=4)
    before = base.get_layer("block1_conv1").get_weights()[0].copy()
    classifier, history = fit(base, Xs, ys, Xt, num_epochs=3, batch_size=16, lr=1e-2, verbose=0)
    assert classifier.output_shape == (None, 3)
    assert len(history.history["label_loss"]) == 3 and len(history.history["domain_loss"]) == 3
    assert not np.allclose(
        before, base.get_layer("block1_conv1").get_weights()[0]
    )  # the base learned
    assert history.history["label_loss"][-1] < history.history["label_loss"][0]
    assert train.evaluate(classifier, Xs, ys) >= 0.8  # chance is 1/3
    assert all(np.isfinite(v).all() for v in history.history.values())


def test_fit_dann_reports_domain_accuracy():
    Xs, ys = images(16, seed=6), np.arange(16) % 2
    classifier, history = adapt.fit_dann(
        models.tlnet(width=4), Xs, ys, images(16, seed=7), num_epochs=1, batch_size=16, verbose=0
    )
    assert set(history.history) >= {"domain_accuracy", "label_accuracy"}
    layer = [layer for layer in classifier.layers if isinstance(layer, adapt.GradientReversal)]
    assert not layer  # the classifier has no domain branch


@pytest.mark.parametrize("strength", [0.0, 1.0])
def test_dann_model_pushes_features_against_the_domain_classifier(strength):
    """With the domain classifier frozen and no class loss, training the base through the gradient reversal
    *raises* the domain loss (the features move to fool the classifier); with strength 0 nothing moves."""
    keras.utils.set_random_seed(0)
    inputs = keras.Input((3,))
    base = keras.Model(inputs, keras.layers.Dense(4, name="features")(inputs))
    model = adapt.dann_model(base, 2, strength=strength, domain_units=8)
    for name in ("domain_hidden", "domain_logit"):
        model.get_layer(name).trainable = False
    model.compile(
        optimizer=keras.optimizers.SGD(0.05),
        loss={
            "label": "sparse_categorical_crossentropy",
            "domain": keras.losses.BinaryCrossentropy(from_logits=True),
        },
        loss_weights={"label": 0.0, "domain": 1.0},
    )
    X = np.concatenate([RNG.normal(size=(64, 3)), RNG.normal(1.0, 1.0, size=(64, 3))]).astype(
        "float32"
    )
    y = {"label": np.zeros(128, "int64"), "domain": np.repeat([0.0, 1.0], 64)[:, None]}
    before = model.evaluate(X, y, verbose=0, return_dict=True)["domain_loss"]
    model.fit(X, y, batch_size=128, epochs=5, verbose=0)
    after = model.evaluate(X, y, verbose=0, return_dict=True)["domain_loss"]
    if strength == 0.0:
        assert after == pytest.approx(before, rel=1e-6)
    else:
        assert after > before + 1e-3, (before, after)


def test_coral_and_dann_models_bad_input():
    base = models.tlnet(width=4)
    with pytest.raises(TypeError, match="keras.Model"):
        adapt.coral_model(None, 3)
    with pytest.raises(ValueError, match="num_classes"):
        adapt.dann_model(base, 1)
    with pytest.raises(ValueError, match="domain_units"):
        adapt.dann_model(base, 3, domain_units=0)
    conv = keras.Model(base.input, base.get_layer("block1_pool").output)
    with pytest.raises(ValueError, match="pooled features"):
        adapt.coral_model(conv, 3)


@pytest.mark.parametrize(
    "change, error, message",
    [
        ({"ys": np.arange(10)}, ValueError, "labels"),
        ({"ys": np.full(8, -1)}, ValueError, "labels"),
        ({"Xs": np.zeros((8, 28, 28, 3), "uint8")}, ValueError, "expects"),
        ({"Xt": np.zeros((0, 32, 32, 3), "uint8")}, ValueError, "empty"),
        ({"Xt": np.full((4, 32, 32, 3), np.nan)}, ValueError, "NaN"),
        ({"Xt": "images"}, TypeError, "array of images"),
        ({"weight": -1.0}, ValueError, "weight"),
        ({"weight": None}, TypeError, "weight"),
        ({"num_epochs": 0}, ValueError, "num_epochs"),
        ({"batch_size": 1}, ValueError, "batch_size"),
        ({"lr": 0.0}, ValueError, "lr"),
        ({"seed": -2}, ValueError, "seed"),
        ({"num_classes": 1}, ValueError, "labels|num_classes"),
    ],
)
@pytest.mark.parametrize("fit", [adapt.fit_coral, adapt.fit_dann])
def test_fit_bad_input(fit, change, error, message):
    arguments = {"Xs": images(8), "ys": np.arange(8) % 2, "Xt": images(4), "verbose": 0}
    arguments.update(change)
    with pytest.raises(error, match=message):
        fit(
            models.tlnet(width=4),
            arguments.pop("Xs"),
            arguments.pop("ys"),
            arguments.pop("Xt"),
            **arguments,
        )


def test_fit_dann_bad_schedule_and_strength():
    with pytest.raises(TypeError, match="ramp_up"):
        adapt.fit_dann(
            models.tlnet(width=4), images(8), np.arange(8) % 2, images(4), ramp_up="yes", verbose=0
        )
    with pytest.raises(ValueError, match="strength"):
        adapt.fit_dann(
            models.tlnet(width=4), images(8), np.arange(8) % 2, images(4), strength=-1.0, verbose=0
        )


# --------------------------------------------------------------------------- the notebook's experiment, 3 seeds


def notebook_04_accuracies(seed, *, source_size=2000, num_epochs=3, width=8, batch_size=16):
    """Target test accuracies of notebook 04's runs: source-only, CORAL, DANN (also with AdaBN) and the oracle."""
    from tltutor import data

    X, y = data.load_digits("mnist")
    source, target, test = np.split(
        np.random.default_rng(seed).permutation(len(X)), [source_size, 2 * source_size]
    )
    X_source, y_source = X[source], y[source]
    X_target = data.shift(X[target], "backgrounds", seed=seed + 100)
    X_test, y_test = data.shift(X[test], "backgrounds", seed=seed + 200), y[test]

    def new_base():
        keras.utils.set_random_seed(seed)
        return models.tlnet(width=width)

    accuracy = {}
    for name, (X_train, y_train) in {
        "source-only": (X_source, y_source),
        "target oracle": (X_target, y[target]),
    }.items():
        base = new_base()
        model = train.scratch_model(base, 10)
        train.fit(
            model,
            X_train,
            y_train,
            num_epochs=num_epochs,
            lr=2e-3,
            batch_size=batch_size,
            seed=seed,
            verbose=0,
        )
        models.recalibrate_bn(base, X_train)
        accuracy[name] = train.evaluate(model, X_test, y_test)
    settings = dict(num_epochs=num_epochs, lr=2e-3, batch_size=2 * batch_size, seed=seed, verbose=0)
    for name, fit, kwargs in [
        ("CORAL", adapt.fit_coral, {"weight": 1.0}),
        ("DANN", adapt.fit_dann, {"strength": 0.3}),
    ]:
        base = new_base()
        model, _ = fit(base, X_source, y_source, X_target, **kwargs, **settings)
        models.recalibrate_bn(base, np.concatenate([X_source, X_target]))
        accuracy[name] = train.evaluate(model, X_test, y_test)
        accuracy[f"{name} + AdaBN"] = train.evaluate(adapt.adabn(model, X_target), X_test, y_test)
    return accuracy


@pytest.mark.slow
def test_notebook_04_gap_closing_over_three_seeds():
    """Issue 5's must-show, measured: the fraction of the gap between source-only and the target oracle that
    CORAL or DANN closes on the MNIST-M-style shift, over seeds 0, 1 and 2 (about 3 minutes on 2 CPU cores).

    Measured here: the best of CORAL and DANN closes 29-35% (mean about 33%); evaluated with the target's
    BatchNorm statistics (AdaBN on top) 35-39%. Ganin et al. closed about 56% at full scale."""
    methods = ["CORAL", "DANN", "CORAL + AdaBN", "DANN + AdaBN"]
    closed = {name: [] for name in methods}
    for seed in (0, 1, 2):
        accuracy = notebook_04_accuracies(seed)
        gap = accuracy["target oracle"] - accuracy["source-only"]
        for name in methods:
            closed[name].append((accuracy[name] - accuracy["source-only"]) / gap)
        print(
            f"seed {seed}: " + ", ".join(f"{name} {value:.3f}" for name, value in accuracy.items())
        )
    for name, values in closed.items():
        print(
            f"{name:>14} closes {np.mean(values):.0%} ± {np.std(values):.0%} of the gap (mean ± std, seeds 0-2): {np.round(values, 2)}"
        )
    best = np.maximum(closed["CORAL"], closed["DANN"])
    best_with_adabn = np.maximum(closed["CORAL + AdaBN"], closed["DANN + AdaBN"])
    assert best.min() > 0.25 and best_with_adabn.min() > 0.3, closed
    assert best_with_adabn.mean() >= 1 / 3, closed
