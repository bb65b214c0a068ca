"""tltutor.train: fit, schedules, evaluation, feature cache, heads, LP-FT, plots."""

import multiprocessing
import os
import stat
import time
from concurrent.futures import Future

import numpy as np
import pytest

from tltutor import models, train

RNG = np.random.default_rng(0)
X = RNG.integers(0, 256, (96, 32, 32, 3), dtype="uint8")
y = np.arange(96) % 3
X[y == 1, :16] = 255  # learnable: class 1 has a bright top half
X[y == 2, :, :16] = 0  # class 2 a dark left half


def small_model():
    return models.build_model(models.tlnet(width=4), num_classes=3)


def test_fit_reduces_the_loss():
    model = models.freeze(small_model(), unfreeze="all")
    history = train.fit(model, X, y, num_epochs=6, lr=3e-3, batch_size=32, seed=0, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]


def test_fit_is_deterministic_for_a_seed():
    import keras

    runs = []
    for _ in range(2):
        keras.utils.set_random_seed(3)  # the same initial weights ...
        model = models.freeze(small_model(), unfreeze="all")
        runs.append(
            train.fit(model, X, y, num_epochs=2, seed=3, verbose=0).history["loss"]
        )  # ... the same training
    np.testing.assert_allclose(runs[0], runs[1], rtol=1e-5)


def test_early_stopping_stops_and_cosine_schedule_runs():
    model = models.freeze(small_model(), unfreeze="all")
    history = train.fit(
        model,
        X,
        y,
        num_epochs=50,
        lr=1e-6,
        batch_size=32,
        validation_split=0.25,
        early_stopping=1,
        schedule="cosine",
        verbose=0,
    )
    assert len(history.history["loss"]) < 50


def test_training_batches_reshuffle_every_epoch_from_one_iterator():
    kw = train.training_batches(X[:10], np.arange(10), batch_size=4, seed=0)
    assert kw["steps_per_epoch"] == 3
    batches = iter(kw["x"])  # one iterator, as Keras keeps it with steps_per_epoch
    epochs = [[next(batches) for _ in range(kw["steps_per_epoch"])] for _ in range(3)]
    orders = [np.concatenate([labels.numpy() for _, labels in epoch]) for epoch in epochs]
    for epoch, order in zip(epochs, orders):
        assert [len(labels) for _, labels in epoch] == [4, 4, 2]  # model.fit's batches
        assert sorted(order) == list(range(10))  # every example once per epoch
        assert epoch[0][0].dtype.name == "float32"  # uint8 images become float32 per batch
    assert len({tuple(order) for order in orders}) == 3  # a new order every epoch
    again = train.training_batches(X[:10], np.arange(10), batch_size=4, seed=0)["x"]
    first = np.concatenate([labels.numpy() for _, labels in again.take(3)])
    np.testing.assert_array_equal(first, orders[0])  # the same seed, the same order


def test_training_batches_leave_batching_to_keras_under_tf_distribute():
    tf = pytest.importorskip("tensorflow")
    with tf.distribute.MirroredStrategy(["/cpu:0"]).scope():  # as in gpu.data_parallel()
        kw = train.training_batches(X[:10], np.arange(10), batch_size=4)
    assert set(kw) == {"x", "y", "batch_size"} and kw["x"].dtype == np.float32


def test_training_batches_keep_several_inputs_and_outputs_of_an_example_together():
    first, second = np.arange(10.0)[:, None] * np.ones((1, 3)), np.arange(10, dtype="uint8")
    kw = train.training_batches(
        [first, second], [np.arange(10), 100 + np.arange(10)], batch_size=4, seed=1
    )
    batches = iter(kw["x"])
    orders = []
    for _ in range(2):  # two epochs
        order = []
        for _ in range(kw["steps_per_epoch"]):
            (a, b), (label, other) = next(batches)
            assert a.dtype.name == "float32" and b.dtype.name == "float32"
            np.testing.assert_array_equal(a.numpy()[:, 0], b.numpy())  # rows stay aligned ...
            np.testing.assert_array_equal(label.numpy(), b.numpy().astype(int))
            np.testing.assert_array_equal(other.numpy(), 100 + label.numpy())  # ... labels too
            order.extend(label.numpy())
        assert sorted(order) == list(range(10))
        orders.append(order)
    assert orders[0] != orders[1]  # a new order every epoch


def test_training_batches_refuse_arrays_of_different_lengths():
    with pytest.raises(ValueError, match="one row per example"):
        train.training_batches([X[:10], X[:9]], y[:10], batch_size=4)
    with pytest.raises(ValueError, match="one row per example"):
        train.training_batches(X[:10], [y[:10], y[:8]], batch_size=4)


def test_a_two_input_two_output_model_trains_on_training_batches():
    import keras

    keras.utils.set_random_seed(0)
    images, flags = keras.Input((32, 32, 3)), keras.Input((1,))
    features = keras.layers.Concatenate()([models.tlnet(width=4)(images), flags])
    model = keras.Model(
        [images, flags],
        [keras.layers.Dense(3, activation="softmax")(features), keras.layers.Dense(2)(features)],
    )
    model.compile(
        optimizer=keras.optimizers.Adam(3e-3),
        loss=["sparse_categorical_crossentropy", "mse"],
    )
    inputs = [X, (y == 1).astype("float32")[:, None]]
    targets = [y, np.stack([y == 1, y == 2], axis=1).astype("float32")]
    kw = train.training_batches(inputs, targets, batch_size=32, seed=0)
    history = model.fit(**kw, epochs=5, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]


def traced_steps(model):
    """Count how often ``model``'s training step is traced (Keras calls it only while tracing)."""
    count = []
    step = model.train_step
    model.train_step = lambda data: count.append(1) or step(data)
    return count


@pytest.mark.skipif(
    __import__("keras").backend.backend() != "tensorflow", reason="tf.function's double trace"
)
def test_a_new_model_traces_its_training_step_once():
    from tltutor import adapt

    model = small_model()
    count = traced_steps(model)
    train.fit(model, X, y, num_epochs=2, validation_split=0.25, verbose=0)
    assert len(count) == 1  # Keras alone: 2 (its optimizer's variables appear in the first trace)

    head = train.train_head(RNG.normal(size=(40, 4)), np.arange(40) % 2, num_epochs=1)
    assert head.optimizer.built

    base = models.tlnet(width=4)
    original = adapt.dann_model
    dann_counts = []

    def counted(*args, **kwargs):
        built = original(*args, **kwargs)
        dann_counts.append(traced_steps(built))
        return built

    adapt.dann_model = counted
    try:
        adapt.fit_dann(base, X[:48], y[:48], X[48:], num_epochs=2, batch_size=32)
    finally:
        adapt.dann_model = original
    assert [len(count) for count in dann_counts] == [1]


def test_creating_the_training_state_first_changes_no_number(monkeypatch):
    import keras

    def trained(**kwargs):
        keras.utils.set_random_seed(1)  # the same weights and Dropout generator in both runs
        model = small_model()
        history = train.fit(model, X, y, num_epochs=2, seed=1, verbose=0, **kwargs)
        return model.get_weights(), history.history["val_loss"]

    ours = trained(validation_split=0.25)
    monkeypatch.setattr(train, "create_state", lambda *args, **kwargs: None)  # Keras' own way
    keras_own = trained(validation_split=0.25)
    for a, b in zip(ours[0], keras_own[0]):
        np.testing.assert_array_equal(a, b)
    assert ours[1] == keras_own[1]


def test_reset_optimizer_is_a_fresh_compile_without_tracing_again():
    import keras

    def no_dropout():  # Dropout's generator goes on where it stood: not part of the optimizer
        return keras.Sequential(
            [
                keras.Input(X.shape[1:]),
                models.tlnet(width=4),
                keras.layers.Dense(3, activation="softmax"),
            ]
        )

    keras.utils.set_random_seed(0)
    start = no_dropout().get_weights()
    model = train.compile_model(no_dropout(), lr=1e-3)
    model.set_weights(start)
    train.fit(model, X, y, num_epochs=2, seed=0, verbose=0, compile=False)  # moments, steps > 0
    assert int(model.optimizer.iterations) > 0

    model.set_weights(start)
    assert train.reset_optimizer(model) is model
    assert int(model.optimizer.iterations) == 0
    assert float(model.optimizer.learning_rate) == pytest.approx(1e-3)  # the rate stays
    train.fit(model, X, y, num_epochs=1, seed=0, verbose=0, compile=False)

    fresh = train.compile_model(no_dropout(), lr=1e-3)
    fresh.set_weights(start)
    train.fit(fresh, X, y, num_epochs=1, seed=0, verbose=0, compile=False)
    assert all(np.isfinite(w).all() for w in model.get_weights())
    for reset, compiled in zip(model.get_weights(), fresh.get_weights()):
        np.testing.assert_allclose(reset, compiled, rtol=1e-5, atol=1e-6)


def test_reset_optimizer_asks_for_a_compiled_model():
    with pytest.raises(ValueError, match="compile it first"):
        train.reset_optimizer(small_model())


def test_fit_validation_split_holds_out_the_last_examples_as_keras_does():
    import keras

    histories = []
    for n, kw in ((96, dict(validation_split=0.25)), (72, dict(validation_data=(X[72:], y[72:])))):
        keras.utils.set_random_seed(1)
        model = small_model()
        history = train.fit(model, X[:n], y[:n], num_epochs=2, seed=1, verbose=0, **kw)
        histories.append(history.history)
    np.testing.assert_allclose(histories[0]["val_loss"], histories[1]["val_loss"], rtol=1e-6)
    np.testing.assert_allclose(histories[0]["loss"], histories[1]["loss"], rtol=1e-6)


@pytest.mark.parametrize(
    "bad_X, bad_y, match",
    [
        (np.full((96, 32, 32, 3), np.nan, "float32"), y, "NaN"),
        (X, np.arange(96) % 7, "label|class"),
        (X[0], y[:1], "shape|rank|dimension"),
        (X, y[:10], "length|same number|match"),
        (X[:0], y[:0], "empty"),
    ],
)
def test_fit_rejects_bad_input_clearly(bad_X, bad_y, match):
    with pytest.raises((ValueError, TypeError), match=f"(?i){match}"):
        train.fit(small_model(), bad_X, bad_y, num_epochs=1, verbose=0)


def test_cosine_warmup_shape():
    schedule = train.cosine_warmup(1e-3, total_steps=100, warmup_steps=10)
    values = [float(schedule(step)) for step in (0, 10, 55, 100)]
    assert values[0] < values[1] and abs(values[1] - 1e-3) < 1e-9
    assert values[1] > values[2] > values[3] and values[3] < 1e-6


def test_evaluate_returns_accuracy():
    """The fraction of rows whose arg-max output is the label, in inference mode, over batches."""
    import keras

    head = keras.Sequential([keras.Input((3,)), keras.layers.Dense(3, activation="softmax")])
    head.layers[-1].set_weights([np.eye(3, dtype="float32") * 10, np.zeros(3, "float32")])
    predicted = np.array([0, 1, 2, 0, 1, 2, 0, 1])
    features = np.eye(3, dtype="float32")[predicted]  # one-hot: the head predicts `predicted`
    labels = np.array([0, 1, 2, 0, 1, 2, 2, 2])  # the last two wrong
    assert train.evaluate(head, features, labels) == pytest.approx(6 / 8)
    assert train.evaluate(head, features, labels, batch_size=3) == pytest.approx(6 / 8)
    assert train.evaluate(head, features, (predicted + 1) % 3) == 0.0
    model = small_model()
    expected = np.mean(np.argmax(model.predict(X.astype("float32"), verbose=0), axis=-1) == y)
    assert train.evaluate(model, X, y) == pytest.approx(expected)


def test_evaluate_and_features_predict_in_plain_batches_with_keras_numbers(monkeypatch):
    """No tf.data pipeline per call (Keras' predict builds one): the same outputs to the last bit,
    also for a last batch of another size; Keras' own predict under a distribution strategy."""
    import keras

    model, base = small_model(), models.tlnet(width=4)
    probabilities = model.predict(X.astype("float32"), batch_size=40, verbose=0)
    features = base.predict(X.astype("float32"), batch_size=40, verbose=0)
    expected = float(np.mean(np.argmax(probabilities, axis=-1) == y))
    calls = []
    monkeypatch.setattr(keras.Model, "predict", lambda *a, **k: calls.append(a) or 1 / 0)
    assert train.evaluate(model, X, y, batch_size=40) == expected  # batches of 40, 40 and 16
    np.testing.assert_array_equal(
        train.extract_features(base, X, batch_size=40, cache_dir=False), features
    )
    assert calls == []
    monkeypatch.undo()
    tf = pytest.importorskip("tensorflow")
    monkeypatch.setattr(keras.Model, "predict_on_batch", lambda *a, **k: calls.append(a) or 1 / 0)
    with tf.distribute.MirroredStrategy(["/cpu:0"]).scope():  # as in gpu.data_parallel()
        replicated = small_model()
        replicated.set_weights(model.get_weights())
    assert train.evaluate(replicated, X, y, batch_size=40) == expected
    assert calls == []


def test_extract_features_cache_hit_and_corruption(tmp_path, monkeypatch):
    base = models.tlnet(width=4)
    first = train.extract_features(base, X, cache_dir=tmp_path)
    calls = []
    real = train._predict_features
    monkeypatch.setattr(train, "_predict_features", lambda *a: calls.append(1) or real(*a))
    np.testing.assert_array_equal(train.extract_features(base, X, cache_dir=tmp_path), first)
    assert calls == []  # served from the cache
    (cached,) = list(tmp_path.glob("*.npz"))
    cached.write_bytes(cached.read_bytes()[:100])  # truncated file
    np.testing.assert_allclose(
        train.extract_features(base, X, cache_dir=tmp_path), first, rtol=1e-6
    )
    assert calls == [1]  # detected and recomputed


def test_extract_features_key_changes_with_weights(tmp_path):
    base = models.tlnet(width=4)
    train.extract_features(base, X, cache_dir=tmp_path)
    base.get_layer("block1_conv1").kernel.assign(
        np.ones(base.get_layer("block1_conv1").kernel.shape, "float32")
    )
    train.extract_features(base, X, cache_dir=tmp_path)
    assert len(list(tmp_path.glob("*.npz"))) == 2


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write to read-only folders")
def test_unwritable_cache_warns_and_still_returns(tmp_path):
    tmp_path.chmod(stat.S_IRUSR | stat.S_IXUSR)
    with pytest.warns(UserWarning):
        features = train.extract_features(models.tlnet(width=4), X[:8], cache_dir=tmp_path)
    assert features.shape == (8, 16)


def test_cache_dir_that_is_a_file_warns_and_still_returns(tmp_path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    with pytest.warns(UserWarning):
        features = train.extract_features(models.tlnet(width=4), X[:8], cache_dir=blocker)
    assert features.shape == (8, 16)


def _write_same_key(folder, seed):
    import keras

    from tltutor import models as m
    from tltutor import train as t

    keras.utils.set_random_seed(0)
    base = m.tlnet(width=4)
    images = np.random.default_rng(0).integers(0, 256, (64, 32, 32, 3), dtype="uint8")
    return t.extract_features(base, images, cache_dir=folder).sum()


def test_two_processes_sharing_the_cache_lose_nothing(tmp_path):
    with multiprocessing.get_context("spawn").Pool(2) as pool:
        sums = pool.starmap(_write_same_key, [(str(tmp_path), 0), (str(tmp_path), 1)])
    assert sums[0] == pytest.approx(sums[1])
    files = list(tmp_path.glob("*.npz"))
    assert len(files) == 1 and not list(tmp_path.glob("*.tmp*"))
    assert _write_same_key(str(tmp_path), 2) == pytest.approx(sums[0])  # the file is valid


def test_train_head_learns_separable_features():
    features = np.concatenate([RNG.normal(-2, 1, (50, 8)), RNG.normal(2, 1, (50, 8))]).astype(
        "float32"
    )
    labels = np.repeat([0, 1], 50)
    head = train.train_head(features, labels, num_epochs=30, seed=0)
    assert train.evaluate(head, features, labels) > 0.95


def test_train_head_takes_the_steps_of_num_epochs_epochs_in_one_pass():
    import keras

    # Up to batch_size examples every step is the whole data set, in one pass as in num_epochs
    # epochs of model.fit: the weights must match those of a plain per-epoch fit.
    rng = np.random.default_rng(2)
    features, labels = rng.normal(size=(40, 6)).astype("float32"), np.arange(40) % 3
    features[:, 0] += labels
    head = train.train_head(features, labels, num_epochs=25, seed=0)
    variance = features.var(axis=0)
    variance += 1e-3 * variance.mean() + 1e-12  # train_head's standardisation
    keras.utils.set_random_seed(0)  # train_head seeds the same way before it builds its head
    plain = keras.Sequential(
        [
            keras.Input((6,)),
            keras.layers.Normalization(mean=features.mean(axis=0), variance=variance),
            keras.layers.Dense(3, activation="softmax"),
        ]
    )
    train.fit(plain, features, labels, num_epochs=25, lr=1e-2, batch_size=64, seed=0, verbose=0)
    for ours, theirs in zip(head.get_weights(), plain.get_weights()):
        np.testing.assert_allclose(ours, theirs, atol=1e-4)
    # above batch_size: every example once per epoch, each epoch in as many steps as batch_size gives
    order, batch = train.epoch_order(130, num_epochs=3, batch_size=64, seed=1)
    assert batch == 44 and len(order) == 390  # 3 steps of 44 per epoch, as 64 + 64 + 2 would be
    for epoch in order.reshape(3, 130):
        assert sorted(epoch) == list(range(130))
    with pytest.raises(ValueError, match="num_epochs"):
        train.train_head(features, labels, num_epochs=0)


def test_linear_probe_then_finetune_returns_two_histories():
    probe, finetune = train.linear_probe_then_finetune(
        small_model(), X, y, probe_epochs=1, finetune_epochs=1, verbose=0
    )
    assert "loss" in probe.history and "loss" in finetune.history


def test_plots_return_figures():
    history = train.fit(small_model(), X, y, num_epochs=1, verbose=0)
    assert train.plot_history(history).axes
    assert train.learning_curve_plot(
        {"scratch": {5: 0.3, 20: 0.5}, "finetune": {5: 0.5, 20: 0.6}}
    ).axes


def test_scratch_model_trains_batchnorm_statistics():
    base = models.tlnet(width=4)
    model = train.scratch_model(base, 3)
    before = base.get_layer("block1_bn1").moving_mean.numpy().copy()
    train.fit(model, X, y, num_epochs=1, verbose=0)
    assert not np.allclose(before, base.get_layer("block1_bn1").moving_mean.numpy())


# ---------------------------------------------------------------- compile and schedules


def test_compile_model_choices():
    model = small_model()
    for name, cls in [("adam", "Adam"), ("adamw", "AdamW"), ("sgd", "SGD"), ("rmsprop", "RMSprop")]:
        assert type(train.compile_model(model, optimizer=name).optimizer).__name__ == cls
    schedule = train.cosine_warmup(1e-3, total_steps=10, warmup_steps=4)
    optimizer = train.compile_model(model, lr=5e-2, lr_schedule=schedule).optimizer
    assert float(optimizer.learning_rate) == 0.0  # the schedule's value at step 0 (warmup), not lr
    optimizer.iterations.assign(4)
    assert float(optimizer.learning_rate) == pytest.approx(1e-3)
    with pytest.raises(ValueError, match="optimizer"):
        train.compile_model(model, optimizer="adagrad-plus")
    with pytest.raises(TypeError, match="lr_schedule.*fit\\(schedule"):
        train.compile_model(model, lr_schedule="cosine")
    with pytest.raises(ValueError, match="lr"):
        train.compile_model(model, lr=-1)
    with pytest.raises(TypeError):
        train.compile_model(model, 1e-3)  # keyword-only, as everywhere in the course


def test_label_smoothing_loss():
    loss = train.SmoothedSparseCrossentropy(num_classes=3, label_smoothing=0.3)
    probabilities = np.array([[0.8, 0.1, 0.1]], "float32")
    expected = -(0.8 * np.log(0.8) + 2 * 0.1 * np.log(0.1))  # targets (0.8, 0.1, 0.1)
    assert float(loss(np.array([0]), probabilities)) == pytest.approx(expected, rel=1e-5)
    assert train.SmoothedSparseCrossentropy.from_config(loss.get_config()).label_smoothing == 0.3
    model = train.compile_model(small_model(), label_smoothing=0.1)
    assert isinstance(model.loss, train.SmoothedSparseCrossentropy)
    assert model.loss.label_smoothing == pytest.approx(0.1) and model.loss.num_classes == 3


def test_cosine_warmup_values_and_config():
    schedule = train.cosine_warmup(0.1, total_steps=100, warmup_steps=20, final_lr_fraction=0.1)
    values = {step: float(schedule(step)) for step in (0, 10, 20, 60, 100, 150)}
    assert (
        values[0] == 0.0 and values[10] == pytest.approx(0.05) and values[20] == pytest.approx(0.1)
    )
    assert values[60] == pytest.approx(0.1 * (0.1 + 0.9 * 0.5)) and values[100] == pytest.approx(
        0.01
    )
    assert values[150] == pytest.approx(0.01)  # stays at the floor after the end
    assert float(train.cosine_warmup(0.1, total_steps=10)(0)) == pytest.approx(0.1)  # no warmup
    again = train.CosineWarmup.from_config(schedule.get_config())
    assert float(again(60)) == pytest.approx(values[60])


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(total_steps=0),
        dict(total_steps=10, warmup_steps=10),
        dict(total_steps=10, final_lr_fraction=2.0),
    ],
)
def test_cosine_warmup_rejects_bad_arguments(kwargs):
    with pytest.raises(ValueError):
        train.cosine_warmup(1e-3, **kwargs)


# ---------------------------------------------------------------- fit options


def test_fit_with_augmentation_plateau_and_validation_data():
    import keras

    model = small_model()
    before = [w.copy() for w in model.get_weights()]
    augment = keras.Sequential(
        [keras.layers.RandomFlip("horizontal"), keras.layers.RandomTranslation(0.1, 0.1)]
    )
    history = train.fit(
        model,
        X[:64],
        y[:64],
        num_epochs=2,
        augment=augment,
        schedule="plateau",
        validation_data=(X[64:], y[64:]),
        verbose=0,
    )
    assert {"loss", "val_loss", "val_accuracy"} <= set(history.history)
    assert any(
        not np.allclose(a, b) for a, b in zip(before, model.get_weights())
    )  # the model itself learned
    # the validation metrics come from validation_data, on the final weights
    assert history.history["val_accuracy"][-1] == pytest.approx(
        train.evaluate(model, X[64:], y[64:])
    )
    assert "learning_rate" in history.history  # the plateau callback ran and logged the rate


def test_fit_compile_false_keeps_your_optimizer():
    model = train.compile_model(small_model(), optimizer="sgd", lr=1e-2)
    train.fit(model, X[:32], y[:32], num_epochs=1, compile=False, verbose=0)
    assert type(model.optimizer).__name__ == "SGD"
    with pytest.raises(ValueError, match="compile"):
        train.fit(small_model(), X[:32], y[:32], num_epochs=1, compile=False, verbose=0)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(schedule="linear"), "schedule"),
        (dict(early_stopping=0), "early_stopping"),
        (dict(validation_split=1.5), "validation_split"),
        (dict(validation_split=0.2, validation_data=(X, y)), "either"),
        (dict(validation_data=X), "validation_data"),
        (dict(augment=lambda x: x), "augment"),
        (dict(num_epochs=0), "num_epochs"),
        (dict(batch_size=0), "batch_size"),
    ],
)
def test_fit_rejects_bad_options(kwargs, match):
    with pytest.raises((ValueError, TypeError), match=match):
        train.fit(small_model(), X, y, verbose=0, **{"num_epochs": 1, **kwargs})


def test_labels_are_checked_with_hints():
    with pytest.raises(ValueError, match="one-hot"):
        train.evaluate(small_model(), X, np.eye(3)[y])
    with pytest.raises(ValueError, match="num_classes=7"):
        train.evaluate(small_model(), X, np.arange(96) % 7)
    with pytest.raises(ValueError, match="integer"):
        train.evaluate(small_model(), X, y + 0.5)
    with pytest.raises(ValueError, match="X\\[None\\]"):
        train.evaluate(small_model(), X[0], y[:1])


def test_verbose_auto_is_quiet_under_pytest(monkeypatch):
    assert train.verbosity("auto") == 0 and train.verbosity(2) == 2
    monkeypatch.delenv("PYTEST_CURRENT_TEST")
    monkeypatch.delenv("TLTUTOR_QUIET", raising=False)
    assert train.verbosity("auto") == "auto"


# ---------------------------------------------------------------- features and heads


def test_extract_features_default_cache_and_no_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TLTUTOR_CACHE", str(tmp_path / "cache"))
    base = models.tlnet(width=4)
    cached = train.extract_features(base, X[:8])
    assert cached.dtype == np.float32 and cached.shape == (8, 16)
    assert len(list((tmp_path / "cache").glob("*.npz"))) == 1
    np.testing.assert_allclose(
        train.extract_features(base, X[:8], cache_dir=False), cached, rtol=1e-6
    )
    assert len(list((tmp_path / "cache").glob("*.npz"))) == 1


def test_cache_file_with_a_wrong_checksum_is_recomputed(tmp_path):
    base = models.tlnet(width=4)
    first = train.extract_features(base, X[:8], cache_dir=tmp_path)
    (cached,) = tmp_path.glob("*.npz")
    np.savez(
        cached, features=np.zeros_like(first), sha256=np.array("0" * 64)
    )  # valid zip, wrong content
    with pytest.warns(UserWarning, match="damaged"):
        again = train.extract_features(base, X[:8], cache_dir=tmp_path)
    np.testing.assert_allclose(again, first, rtol=1e-6)


def test_extract_features_needs_pooled_features():
    import keras

    base = models.tlnet(width=4)
    maps = keras.Model(base.input, base.get_layer("block2_pool").output)
    with pytest.raises(ValueError, match="GlobalAveragePooling2D"):
        train.extract_features(maps, X[:2], cache_dir=False)


def test_train_head_options_and_bad_input():
    rng = np.random.default_rng(1)  # its own generator: the same blobs whichever tests ran before
    features = np.concatenate([rng.normal(-2, 1, (30, 4)), rng.normal(2, 1, (30, 4))])
    labels = np.repeat([0, 1], 30)
    head = train.train_head(features, labels, num_classes=4, l2=1e-3, num_epochs=40)
    assert head.output_shape == (None, 4)
    regularizer = head.get_layer("head").kernel_regularizer
    assert regularizer.get_config()["l2"] == pytest.approx(1e-3)  # the l2 that was asked for
    assert train.evaluate(head, features, labels) >= 0.9  # two well-separated blobs are learned
    with pytest.raises(ValueError, match="num_classes=2"):
        train.train_head(features, labels, num_classes=1, num_epochs=1)
    with pytest.raises(ValueError, match="NaN"):
        train.train_head(np.full((4, 2), np.nan), [0, 1, 0, 1], num_epochs=1)
    with pytest.raises(ValueError, match="\\(N, D\\)"):
        train.train_head(features[:, 0], labels, num_epochs=1)
    with pytest.raises(ValueError, match="match"):
        train.train_head(features, labels[:10], num_epochs=1)


def test_linear_probe_then_finetune_needs_a_model_with_a_head():
    with pytest.raises(ValueError, match="build_model"):
        train.linear_probe_then_finetune(models.tlnet(width=4), X, y)
    with pytest.raises(TypeError, match="probe_lr"):
        train.linear_probe_then_finetune(small_model(), X, y, lr=1e-3)


def test_plots_check_their_input():
    import matplotlib.pyplot as plt

    with pytest.raises(ValueError, match="accuracy"):
        train.plot_history({"loss": [1.0, 0.5]})
    figure = train.plot_history({"loss": [1.0, 0.5], "val_loss": [1.2, 0.9]}, metrics="loss")
    assert [line.get_label() for line in figure.axes[0].lines] == ["train", "validation"]
    _, ax = plt.subplots()
    assert (
        train.learning_curve_plot({"features": {5: 0.5, 100: 0.8}}, title="t", ax=ax) is ax.figure
    )
    with pytest.raises(ValueError, match="results"):
        train.learning_curve_plot({"features": 0.5})
    plt.close("all")


def test_full_disk_warns_leaves_no_partial_file_and_still_returns(tmp_path, monkeypatch):
    import errno

    base = models.tlnet(width=4)
    X = np.random.default_rng(0).integers(0, 256, (6, 32, 32, 3), dtype="uint8")

    def disk_full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(np, "savez", disk_full)
    with pytest.warns(UserWarning, match="No space left"):
        features = train.extract_features(base, X, cache_dir=tmp_path)
    assert features.shape == (6, 16)
    assert list(tmp_path.iterdir()) == []  # no half-written file left behind


def test_truncated_cache_file_is_detected_and_rebuilt(tmp_path):
    base = models.tlnet(width=4)
    X = np.random.default_rng(1).integers(0, 256, (6, 32, 32, 3), dtype="uint8")
    expected = train.extract_features(base, X, cache_dir=tmp_path)
    (path,) = tmp_path.glob("*.npz")
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])  # a kernel killed mid-copy
    with pytest.warns(UserWarning, match="damaged"):
        again = train.extract_features(base, X, cache_dir=tmp_path)
    np.testing.assert_array_equal(again, expected)
    np.testing.assert_array_equal(
        train.extract_features(base, X, cache_dir=tmp_path), expected
    )  # rebuilt file is good


def test_progress_shows_one_line_and_clears_it(monkeypatch, capsys):
    for name in ("PYTEST_CURRENT_TEST", "TLTUTOR_QUIET", "TLTUTOR_BOOK"):
        monkeypatch.delenv(name, raising=False)
    assert list(train.progress([3, 4], "seeds")) == [3, 4]
    err = capsys.readouterr().err
    assert "seeds: 0/2 done" in err and "seeds: 1/2 done" in err and err.endswith("\r")
    monkeypatch.setenv("TLTUTOR_BOOK", "1")  # the book's pages keep only results
    assert list(train.progress(range(2), "seeds")) == [0, 1]
    assert capsys.readouterr().err == ""


def test_progress_line_in_a_jupyter_kernel_is_emptied_at_the_end(monkeypatch):
    import nbformat
    from nbclient import NotebookClient

    for name in (
        "PYTEST_CURRENT_TEST",
        "TLTUTOR_QUIET",
        "TLTUTOR_BOOK",
    ):  # the kernel inherits these
        monkeypatch.delenv(name, raising=False)
    code = (
        "from tltutor import train\nfor seed in train.progress([0, 1], 'seeds'):\n    print(seed)"
    )
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(code)])
    NotebookClient(nb, timeout=120, kernel_name="python3").execute()
    outputs = nb.cells[0].outputs
    printed = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    shown = [o.data.get("text/plain") for o in outputs if o.output_type == "display_data"]
    assert printed == "0\n1\n" and shown == [""], outputs


# --------------------------------------------------------------------------- map_seeds


def test_map_seeds_runs_a_notebook_style_closure_in_workers_in_seed_order():
    table = np.arange(10.0)  # a variable of the caller: it travels with the function

    def run(seed):
        return seed, float(table[seed] ** 2), os.getpid(), os.environ["TF_NUM_INTRAOP_THREADS"]

    results = train.map_seeds(run, [3, 1, 4], processes=2)
    assert [r[:2] for r in results] == [(3, 9.0), (1, 1.0), (4, 16.0)]
    assert all(pid != os.getpid() and threads == "1" for _, _, pid, threads in results)


def test_map_seeds_gives_the_same_training_result_for_the_same_seed():
    import keras

    def run(seed):
        keras.utils.set_random_seed(seed)
        model = models.freeze(small_model(), unfreeze="all")  # built inside run
        train.fit(model, X, y, num_epochs=2, lr=3e-3, batch_size=32, seed=seed, verbose=0)
        return np.concatenate([w.ravel() for w in model.get_weights()])

    first = train.map_seeds(run, [0, 1], processes=2)
    again = train.map_seeds(run, [1, 0], processes=2)  # other order, reused workers
    np.testing.assert_array_equal(first[0], again[1])
    np.testing.assert_array_equal(first[1], again[0])
    assert not np.array_equal(first[0], first[1])


def test_map_seeds_starts_every_run_from_its_seeds_random_state():
    import random

    import keras

    def draw(seed):  # a layer built here takes its seed from Python's generator, as Dropout does
        layer = keras.layers.Dropout(0.5)
        state = keras.ops.convert_to_numpy(layer.seed_generator.state).tolist()
        return random.random(), float(np.random.rand()), state

    workers = train.map_seeds(draw, [3, 4, 3, 3], processes=2)  # a worker's second and third run
    here = train.map_seeds(draw, [3, 4], processes=1)
    assert workers[0] == workers[2] == workers[3] == here[0]
    assert workers[1] == here[1] != here[0]


def test_map_seeds_asks_for_valid_seeds():
    with pytest.raises(ValueError, match="seed must be an integer >= 0"):
        train.map_seeds(abs, [0, -1], processes=1)
    with pytest.raises(TypeError, match="seed must be an integer"):
        train.map_seeds(abs, [0.5])


def test_map_seeds_raises_a_seeds_error_and_works_again_after_it():
    def run(seed):
        if seed == 1:
            raise ValueError("seed 1 is broken")
        return seed

    with pytest.raises(ValueError, match="seed 1 is broken"):
        train.map_seeds(run, [0, 1, 2], processes=2)
    assert train.map_seeds(abs, [2, 5], processes=2) == [2, 5]


def test_map_seeds_says_what_to_do_with_a_value_that_cannot_travel():
    import threading

    lock = threading.Lock()

    def run(seed):
        with lock:
            return seed

    with pytest.raises(TypeError, match="cannot pickle '_thread.lock'.*processes=1"):
        train.map_seeds(run, [0, 1], processes=2)
    assert train.map_seeds(run, [0, 1], processes=1) == [0, 1]  # here, it is fine


def test_map_seeds_without_waiting_returns_a_future_while_the_seeds_run(tmp_path):
    go = tmp_path / "go"  # the workers wait for this file: the call must return before it exists

    def run(seed):
        while not go.exists():
            time.sleep(0.05)
        return seed * 10

    background = train.map_seeds(run, [1, 2, 3], processes=2, wait=False)
    assert isinstance(background, Future) and not background.done()
    go.touch()
    assert background.result(timeout=120) == [10, 20, 30]


def test_map_seeds_without_waiting_raises_a_seeds_error_from_result():
    def run(seed):
        if seed == 1:
            raise ValueError("seed 1 is broken")
        return seed

    with pytest.raises(ValueError, match="seed 1 is broken"):
        train.map_seeds(run, [0, 1, 2], processes=2, wait=False).result(timeout=120)
    import threading

    lock = threading.Lock()

    def locked(seed):
        with lock:
            return seed

    with pytest.raises(TypeError, match="cannot pickle '_thread.lock'.*processes=1"):
        train.map_seeds(locked, [0, 1], processes=2, wait=False).result(timeout=120)
    assert train.map_seeds(abs, [2, 5], processes=2, wait=False).result(timeout=120) == [2, 5]


def test_map_seeds_without_waiting_on_one_process_runs_before_it_returns():
    def run(seed):
        if seed == 2:
            raise ValueError("seed 2 is broken")
        return seed, os.getpid()

    done = train.map_seeds(run, [0, 1], processes=1, wait=False)
    assert done.done() and done.result() == [(0, os.getpid()), (1, os.getpid())]
    failed = train.map_seeds(run, [2], processes=1, wait=False)
    assert failed.done() and isinstance(failed.exception(), ValueError)


def test_map_seeds_checks_processes_and_runs_here_with_one(monkeypatch):
    with pytest.raises(ValueError, match="processes must be an integer >= 1"):
        train.map_seeds(abs, [1], processes=0)
    with pytest.raises(TypeError, match="processes must be an integer"):
        train.map_seeds(abs, [1], processes="2")
    monkeypatch.setenv("TLTUTOR_PROCESSES", "two")
    with pytest.raises(ValueError, match="TLTUTOR_PROCESSES must be a whole number"):
        train.map_seeds(abs, [1])
    monkeypatch.setenv("TLTUTOR_PROCESSES", "1")
    assert train.map_seeds(lambda seed: (seed, os.getpid()), [0, 1]) == [
        (0, os.getpid()),
        (1, os.getpid()),
    ]
    monkeypatch.delenv("TLTUTOR_PROCESSES")
    assert train.map_seeds(abs, []) == []
