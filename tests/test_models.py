"""tltutor.models: backbones, weights, heads, freezing, BatchNorm diagnostics."""

import numpy as np
import pytest

import keras
from tltutor import models

RNG = np.random.default_rng(0)
X = RNG.integers(0, 256, (64, 32, 32, 3), dtype="uint8")


@pytest.mark.parametrize("name", ["TLNet", "MobileNetV3Small", "MobileNetV2", "EfficientNetB0", "ResNet50"])
def test_every_backbone_maps_pixels_to_pooled_features(name):
    base = models.get_base(name, weights=None)
    features = base.predict(X[:2], verbose=0)
    assert features.ndim == 2 and features.shape[0] == 2 and np.isfinite(features).all()


def test_preprocessing_is_inside_the_base():
    base = models.get_base("MobileNetV2", weights=None)
    as_uint8 = base.predict(X[:2], verbose=0)
    as_float = base.predict(X[:2].astype("float32"), verbose=0)
    np.testing.assert_allclose(as_uint8, as_float, rtol=1e-5)


def test_names_are_case_insensitive_and_unknown_names_list_the_choices():
    assert models.get_base("tlnet", weights=None).output_shape == (None, 64)
    with pytest.raises(ValueError, match="MobileNetV3Small"):
        models.get_base("VGG-99", weights=None)


def test_weights_path_round_trip(tmp_path):
    base = models.get_base("TLNet", weights=None)
    path = tmp_path / "mine.weights.h5"
    base.save_weights(path)
    again = models.get_base("TLNet", weights=path)
    np.testing.assert_allclose(base.predict(X[:4], verbose=0), again.predict(X[:4], verbose=0), rtol=1e-5)


def test_missing_weights_file_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="mine.weights.h5"):
        models.get_base("TLNet", weights=tmp_path / "mine.weights.h5")


def test_imagenet_weights_offline_answer_within_seconds(monkeypatch):
    import time

    monkeypatch.setattr(models, "_weights_host_reachable", lambda timeout=3.0: False)
    monkeypatch.setattr(models, "_keras_cached_file", lambda name: None)
    start = time.perf_counter()
    with pytest.raises(RuntimeError, match="(?i)offline|internet|download"):
        models.get_base("MobileNetV2", weights="imagenet")
    assert time.perf_counter() - start < 10


def test_tlnet_has_no_imagenet_weights():
    with pytest.raises(ValueError):
        models.get_base("TLNet", weights="imagenet")


def test_build_model_keeps_batchnorm_in_inference_mode():
    model = models.build_model(models.get_base("TLNet", weights=None), num_classes=3, dropout=0.0)
    models.freeze(model, unfreeze="all")
    train_out = keras.ops.convert_to_numpy(model(X[:8].astype("float32"), training=True))
    infer_out = keras.ops.convert_to_numpy(model(X[:8].astype("float32"), training=False))
    np.testing.assert_allclose(train_out, infer_out, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("unfreeze, expected", [(0, []), (2, ["block3_conv1", "block3_conv2"]),
                                                ("block3", ["block3_conv1", "block3_conv2"])])
def test_freeze_counts(unfreeze, expected):
    model = models.freeze(models.build_model(models.get_base("TLNet", weights=None), 3), unfreeze=unfreeze)
    assert models.trainable_summary(model)["trainable_layers"] == expected + ["head"]


def test_freeze_all_never_unfreezes_batchnorm():
    model = models.freeze(models.build_model(models.get_base("TLNet", weights=None), 3), unfreeze="all")
    names = models.trainable_summary(model)["trainable_layers"]
    assert len(names) == 7 and not any("bn" in name for name in names)


@pytest.mark.parametrize("unfreeze", [-1, "block9", 1.5, True])
def test_freeze_rejects_bad_choices(unfreeze):
    with pytest.raises((ValueError, TypeError)):
        models.freeze(models.get_base("TLNet", weights=None), unfreeze=unfreeze)


def test_build_model_rejects_bad_arguments():
    base = models.get_base("TLNet", weights=None)
    with pytest.raises(ValueError, match="num_classes"):
        models.build_model(base, 1)
    with pytest.raises(TypeError):
        models.build_model("TLNet", 3)


def test_bn_report_shows_the_pitfall_and_recalibration_fixes_it():
    """Keras's default momentum 0.99 after a few steps: moving statistics far from the data's."""
    base = models.get_base("TLNet", weights=None, bn_momentum=0.99)
    before = models.bn_report(base, X)
    assert len(before) == 6 and {"layer", "trainable", "mode", "mean_shift", "var_ratio"} <= set(before[0])
    assert min(row["var_ratio"] for row in before) < 0.1  # untouched statistics (0, 1) vs real data
    models.recalibrate_bn(base, X)
    after = models.bn_report(base, X)
    assert max(row["mean_shift"] for row in after) < 0.05
    assert all(abs(row["var_ratio"] - 1) < 0.05 for row in after)


def test_bn_report_rejects_bad_images():
    base = models.get_base("TLNet", weights=None)
    with pytest.raises((ValueError, TypeError)):
        models.bn_report(base, np.full((4, 32, 32, 3), np.nan, "float32"))
    with pytest.raises((ValueError, TypeError)):
        models.bn_report(base, X[0])


def test_save_source_then_load_course_weights(tmp_path):
    base = models.tlnet(width=4)
    models.save_source(base, {"architecture": "TLNet", "width": 4}, out_dir=tmp_path)
    assert models.verify_source("TLNet", weights_dir=tmp_path)["width"] == 4
    again = models.get_base("TLNet", weights="course", weights_dir=tmp_path)
    np.testing.assert_allclose(base.predict(X[:2], verbose=0), again.predict(X[:2], verbose=0), rtol=1e-5)


def test_bn_tools_accept_a_model_without_batchnorm():
    model = keras.Sequential([keras.Input((32, 32, 3)), keras.layers.Conv2D(4, 3), keras.layers.GlobalAveragePooling2D()])
    assert models.bn_report(model, X[:4]) == []
    assert models.recalibrate_bn(model, X[:4]) is model
