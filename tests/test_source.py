"""The shipped source checkpoint: verified, accurate, and free of the BatchNorm gap."""

import hashlib
import json
import shutil

import keras
import numpy as np
import pytest

from tltutor import data, models, sources, train

SHIPPED = models.checkpoint_paths("TLNet")


@pytest.fixture(scope="module")
def source_test():
    """The bundled source test images (not used for pretraining: they come from the t10k file)."""
    return data.lab_source("test", full=False)


@pytest.fixture(scope="module")
def source_model():
    base = models.get_base("TLNet", weights="course")
    return train.scratch_model(base, len(data.SOURCE_CLASSES)), base


def test_metadata_records_accuracy_without_bn_gap():
    meta = models.source_metadata("TLNet")
    assert meta["architecture"] == "TLNet"
    assert (
        meta["source_domain"] == "backgrounds"
        and meta["source"] == data.SOURCE_DOMAINS["backgrounds"]
    )
    assert meta["num_classes"] == len(data.SOURCE_CLASSES)
    assert meta["test_accuracy_inference"] >= 0.85
    assert abs(meta["test_accuracy_inference"] - meta["test_accuracy_training_mode"]) <= 0.02
    weights_path, _ = SHIPPED
    assert hashlib.sha256(weights_path.read_bytes()).hexdigest() == meta["sha256"]


METADATA_KEYS = {  # what sources.pretrain and models.save_source write today
    "architecture",
    "width",
    "input_shape",
    "source_domain",
    "source",
    "num_classes",
    "train_images",
    "test_images",
    "full_fashion_mnist",
    "recipe",
    "seed",
    "train_seconds",
    "test_accuracy_inference",
    "test_accuracy_training_mode",
    "backend",
    "sha256",
    "created",
    "keras_version",
}


@pytest.mark.parametrize("source", sorted(data.SOURCE_DOMAINS))
def test_every_shipped_metadata_has_the_current_schema(source):
    """The shipped JSON is what `pretrain` writes now: one Keras version key, the source domain."""
    meta = models.verify_source("TLNet", source=source)
    assert set(meta) == METADATA_KEYS, set(meta) ^ METADATA_KEYS
    assert meta["source_domain"] == source and meta["source"] == data.SOURCE_DOMAINS[source]


def _bn_statistics(base):
    return [
        keras.ops.convert_to_numpy(v)
        for layer in base.layers
        if isinstance(layer, keras.layers.BatchNormalization)
        for v in (layer.moving_mean, layer.moving_variance)
    ]


def test_pretrain_saves_the_recalibrated_statistics(tmp_path):
    """The checkpoint's BN statistics are those recalibrate_bn computed on the training images,
    not moved towards the test images by measuring the training-mode accuracy (they were)."""
    path = sources.pretrain(
        "TLNet", source="inverted", num_epochs=1, num_images=256, out_dir=tmp_path, full=False
    )
    saved = models.get_base("TLNet", weights=path)
    X, _ = data.source_domain("inverted", "train", full=False)
    recalibrated = models.recalibrate_bn(models.get_base("TLNet", weights=path), X[:256])
    for got, want in zip(_bn_statistics(saved), _bn_statistics(recalibrated), strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


def test_training_mode_accuracy_leaves_the_statistics_alone(source_test):
    X, y = source_test
    base = models.get_base("TLNet", weights="course")
    model = train.scratch_model(base, len(data.SOURCE_CLASSES))
    before = _bn_statistics(base)
    train.training_mode_accuracy(model, X[:512], y[:512])
    for got, want in zip(_bn_statistics(base), before, strict=True):
        np.testing.assert_array_equal(got, want)


def test_checkpoint_is_small():
    weights_path, _ = SHIPPED
    assert weights_path.stat().st_size < 2_000_000


def test_linear_probe_on_source_features_reaches_metadata_accuracy(source_test):
    """Re-measure instead of trusting the metadata: the features separate the source classes."""
    X, y = source_test
    base = models.get_base("TLNet", weights="course")
    features = train.extract_features(base, X, cache_dir=False)
    half = len(X) // 2
    head = train.train_head(features[:half], y[:half], num_epochs=40, seed=0)
    assert train.evaluate(head, features[half:], y[half:]) >= 0.85


def test_inference_and_training_mode_agree(source_test):
    """The pitfall of COURSE.md (0.93 in training mode, 0.38 in inference mode) is absent."""
    X, y = source_test
    base = models.get_base("TLNet", weights="course")
    features = train.extract_features(base, X, cache_dir=False)
    head = train.train_head(features, y, num_epochs=40, seed=0)
    model = train.scratch_model(base, len(data.SOURCE_CLASSES))
    model.get_layer("head").set_weights(train.probe_weights(head))
    inference = train.evaluate(model, X, y)
    training_mode = train.training_mode_accuracy(model, X, y)
    assert inference >= 0.85
    assert abs(inference - training_mode) <= 0.02, (inference, training_mode)


def test_bn_statistics_match_source_data(source_test):
    X, _ = source_test
    report = models.bn_report(models.get_base("TLNet", weights="course"), X[:512])
    assert len(report) == 6
    assert max(row["mean_shift"] for row in report) < 0.5
    assert all(0.5 < row["var_ratio"] < 2.0 for row in report)


def test_corrupted_checkpoint_is_refused(tmp_path):
    for path in SHIPPED:
        shutil.copy(path, tmp_path / path.name)
    weights = tmp_path / SHIPPED[0].name
    raw = bytearray(weights.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    weights.write_bytes(bytes(raw))
    with pytest.raises(Exception, match="(?i)corrupt|checksum|sha256"):
        models.get_base("TLNet", weights="course", weights_dir=tmp_path)


def test_missing_checkpoint_says_how_to_make_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="pretrain"):
        models.get_base("TLNet", weights="course", weights_dir=tmp_path)


@pytest.mark.slow
@pytest.mark.skipif(
    data.find_fashion_mnist() is None,
    reason="needs the full Fashion-MNIST (apt install dataset-fashion-mnist)",
)
def test_pretrain_reproduces_the_shipped_checkpoint(tmp_path):
    """`python -m tltutor pretrain` with the shipped seed gives the same quality (about 4 minutes)."""
    shipped = models.source_metadata("TLNet")
    path = sources.pretrain("TLNet", seed=shipped["seed"], out_dir=tmp_path)
    meta = json.loads(path.with_name("TLNet_source.json").read_text())
    assert meta["test_accuracy_inference"] >= 0.85
    assert abs(meta["test_accuracy_inference"] - meta["test_accuracy_training_mode"]) <= 0.02
    assert abs(meta["test_accuracy_inference"] - shipped["test_accuracy_inference"]) <= 0.02
    base = models.get_base("TLNet", weights=path)  # the new file loads as a base
    assert base.output_shape == (None, 64)
    assert np.isfinite(base.predict(np.zeros((2, 32, 32, 3), "uint8"), verbose=0)).all()
