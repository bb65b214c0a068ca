"""tltutor.train: fit, schedules, evaluation, feature cache, heads, LP-FT, plots."""

import multiprocessing
import os
import stat

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
        runs.append(train.fit(model, X, y, num_epochs=2, seed=3, verbose=0).history["loss"])  # ... the same training
    np.testing.assert_allclose(runs[0], runs[1], rtol=1e-5)


def test_early_stopping_stops_and_cosine_schedule_runs():
    model = models.freeze(small_model(), unfreeze="all")
    history = train.fit(model, X, y, num_epochs=50, lr=1e-6, batch_size=32, validation_split=0.25,
                        early_stopping=1, schedule="cosine", verbose=0)
    assert len(history.history["loss"]) < 50


@pytest.mark.parametrize("bad_X, bad_y, match", [
    (np.full((96, 32, 32, 3), np.nan, "float32"), y, "NaN"),
    (X, np.arange(96) % 7, "label|class"),
    (X[0], y[:1], "shape|rank|dimension"),
    (X, y[:10], "length|same number|match"),
    (X[:0], y[:0], "empty"),
])
def test_fit_rejects_bad_input_clearly(bad_X, bad_y, match):
    with pytest.raises((ValueError, TypeError), match=f"(?i){match}"):
        train.fit(small_model(), bad_X, bad_y, num_epochs=1, verbose=0)


def test_cosine_warmup_shape():
    schedule = train.cosine_warmup(1e-3, total_steps=100, warmup_steps=10)
    values = [float(schedule(step)) for step in (0, 10, 55, 100)]
    assert values[0] < values[1] and abs(values[1] - 1e-3) < 1e-9
    assert values[1] > values[2] > values[3] and values[3] < 1e-6


def test_evaluate_returns_accuracy():
    assert 0.0 <= train.evaluate(small_model(), X, y) <= 1.0


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
    np.testing.assert_allclose(train.extract_features(base, X, cache_dir=tmp_path), first, rtol=1e-6)
    assert calls == [1]  # detected and recomputed


def test_extract_features_key_changes_with_weights(tmp_path):
    base = models.tlnet(width=4)
    train.extract_features(base, X, cache_dir=tmp_path)
    base.get_layer("block1_conv1").kernel.assign(np.ones(base.get_layer("block1_conv1").kernel.shape, "float32"))
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

    from tltutor import models as m, train as t

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
    features = np.concatenate([RNG.normal(-2, 1, (50, 8)), RNG.normal(2, 1, (50, 8))]).astype("float32")
    labels = np.repeat([0, 1], 50)
    head = train.train_head(features, labels, num_epochs=30, seed=0)
    assert train.evaluate(head, features, labels) > 0.95


def test_linear_probe_then_finetune_returns_two_histories():
    probe, finetune = train.linear_probe_then_finetune(small_model(), X, y, probe_epochs=1, finetune_epochs=1, verbose=0)
    assert "loss" in probe.history and "loss" in finetune.history


def test_plots_return_figures():
    history = train.fit(small_model(), X, y, num_epochs=1, verbose=0)
    assert train.plot_history(history).axes
    assert train.learning_curve_plot({"scratch": {5: 0.3, 20: 0.5}, "finetune": {5: 0.5, 20: 0.6}}).axes


def test_scratch_model_trains_batchnorm_statistics():
    base = models.tlnet(width=4)
    model = train.scratch_model(base, 3)
    before = base.get_layer("block1_bn1").moving_mean.numpy().copy()
    train.fit(model, X, y, num_epochs=1, verbose=0)
    assert not np.allclose(before, base.get_layer("block1_bn1").moving_mean.numpy())
