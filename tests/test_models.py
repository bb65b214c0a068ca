"""tltutor.models: backbones, weights, heads, freezing, BatchNorm diagnostics."""

import keras
import numpy as np
import pytest

from tltutor import adapt, models, sources

RNG = np.random.default_rng(0)
X = RNG.integers(0, 256, (64, 32, 32, 3), dtype="uint8")


@pytest.mark.parametrize(
    "name", ["TLNet", "MobileNetV3Small", "MobileNetV2", "EfficientNetB0", "ResNet50"]
)
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
    np.testing.assert_allclose(
        base.predict(X[:4], verbose=0), again.predict(X[:4], verbose=0), rtol=1e-5
    )


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


@pytest.mark.parametrize(
    "unfreeze, expected",
    [(0, []), (2, ["block3_conv1", "block3_conv2"]), ("block3", ["block3_conv1", "block3_conv2"])],
)
def test_freeze_counts(unfreeze, expected):
    model = models.freeze(
        models.build_model(models.get_base("TLNet", weights=None), 3), unfreeze=unfreeze
    )
    assert models.trainable_summary(model)["trainable_layers"] == expected + ["head"]


def test_freeze_all_never_unfreezes_batchnorm():
    model = models.freeze(
        models.build_model(models.get_base("TLNet", weights=None), 3), unfreeze="all"
    )
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
    assert len(before) == 6 and {"layer", "trainable", "mode", "mean_shift", "var_ratio"} <= set(
        before[0]
    )
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
    np.testing.assert_allclose(
        base.predict(X[:2], verbose=0), again.predict(X[:2], verbose=0), rtol=1e-5
    )


def test_bn_tools_accept_a_model_without_batchnorm():
    model = keras.Sequential(
        [keras.Input((32, 32, 3)), keras.layers.Conv2D(4, 3), keras.layers.GlobalAveragePooling2D()]
    )
    assert models.bn_report(model, X[:4]) == []
    assert models.recalibrate_bn(model, X[:4]) is model


# ---------------------------------------------------------------- course checkpoints


def _saved_source(folder):
    base = models.tlnet(width=4)
    weights = models.save_source(
        base, {"architecture": "tlnet", "epochs": np.int64(3)}, out_dir=folder
    )
    return base, weights


def test_save_source_writes_metadata_atomically(tmp_path):
    _, weights = _saved_source(tmp_path)
    metadata = models.source_metadata("TLNet", weights_dir=tmp_path)
    assert weights.name == "TLNet_source.weights.h5"
    assert (
        metadata["architecture"] == "TLNet" and metadata["epochs"] == 3 and metadata["width"] == 4
    )
    assert (
        metadata["input_shape"] == [32, 32, 3]
        and len(metadata["sha256"]) == 64
        and metadata["created"]
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "TLNet_source.json",
        "TLNet_source.weights.h5",
    ]


def test_course_weights_from_the_environment_variable(tmp_path, monkeypatch):
    base, _ = _saved_source(tmp_path)
    monkeypatch.setenv("TLTUTOR_WEIGHTS_DIR", str(tmp_path))
    again = models.get_base("TLNet")  # weights="course" is the default
    np.testing.assert_allclose(
        base.predict(X[:2], verbose=0), again.predict(X[:2], verbose=0), rtol=1e-5
    )


def test_missing_course_checkpoint_says_how_to_make_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="pretrain --arch MobileNetV2"):
        models.get_base("MobileNetV2", weights="course", weights_dir=tmp_path)
    with pytest.raises(FileNotFoundError, match="pretrain"):
        models.source_metadata("TLNet", weights_dir=tmp_path)


def test_missing_course_weights_file_next_to_its_metadata(tmp_path):
    _, weights = _saved_source(tmp_path)
    weights.unlink()
    with pytest.raises(FileNotFoundError, match="TLNet_source.weights.h5"):
        models.get_base("TLNet", weights_dir=tmp_path)


def test_corrupted_course_weights_are_refused(tmp_path):
    _, weights = _saved_source(tmp_path)
    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 0xFF  # flip one byte
    weights.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="corrupted.*re-run .*pretrain.* or reinstall"):
        models.get_base("TLNet", weights_dir=tmp_path)


def test_corrupted_metadata_is_refused(tmp_path):
    _saved_source(tmp_path)
    (tmp_path / "TLNet_source.json").write_text("{not json")
    with pytest.raises(ValueError, match="corrupted"):
        models.get_base("TLNet", weights_dir=tmp_path)


def test_save_source_rejects_bad_metadata(tmp_path):
    with pytest.raises(ValueError, match="architecture"):
        models.save_source(models.tlnet(width=4), {"epochs": 3}, out_dir=tmp_path)
    with pytest.raises(ValueError, match="unknown backbone"):
        models.save_source(models.tlnet(width=4), {"architecture": "VGG16"}, out_dir=tmp_path)
    with pytest.raises(TypeError, match="serialisable"):
        models.save_source(
            models.tlnet(width=4), {"architecture": "TLNet", "bad": object()}, out_dir=tmp_path
        )
    assert not list(tmp_path.iterdir())  # nothing half-written


# ---------------------------------------------------------------- other weights


def test_keras_file_round_trip(tmp_path):
    base = models.get_base("TLNet", weights=None)
    base.save(tmp_path / "base.keras")
    again = models.get_base("TLNet", weights=tmp_path / "base.keras")
    np.testing.assert_allclose(
        base.predict(X[:2], verbose=0), again.predict(X[:2], verbose=0), rtol=1e-5
    )


def test_weights_of_another_architecture_are_a_clear_error(tmp_path):
    models.tlnet(width=4).save_weights(tmp_path / "small.weights.h5")
    with pytest.raises(ValueError, match="do not fit"):
        models.get_base("TLNet", weights=tmp_path / "small.weights.h5")


def test_imagenet_weights_already_downloaded_skip_the_network(tmp_path, monkeypatch):
    """A file in ~/.keras/models is loaded without asking the network."""
    path = tmp_path / "weights_mobilenet_v3_small_224_1.0_float_no_top_v2.h5"
    built = []
    monkeypatch.setattr(
        models, "_weights_host_reachable", lambda timeout=3.0: pytest.fail("network asked")
    )
    monkeypatch.setattr(
        models, "_keras_cached_file", lambda name: path if name == path.name else None
    )
    monkeypatch.setattr(
        models, "_build", lambda arch, shape, weights=None: built.append(weights) or "base"
    )
    assert models.get_base("MobileNetV3Small", weights="imagenet") == "base"
    assert built == [str(path)]


def test_imagenet_download_failure_explains_what_to_do(monkeypatch):
    def failing_build(arch, shape, weights=None):
        raise Exception("URL fetch failure: 403 Forbidden")  # what keras.utils.get_file raises

    monkeypatch.setattr(models, "_keras_cached_file", lambda name: None)
    monkeypatch.setattr(models, "_weights_host_reachable", lambda timeout=3.0: True)
    monkeypatch.setattr(models, "_build", failing_build)
    with pytest.raises(
        RuntimeError, match="403 Forbidden.*resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5"
    ):
        models.get_base("ResNet50", weights="imagenet")


@pytest.mark.parametrize(
    "weights, error",
    [(42, TypeError), ("imagenet21k", FileNotFoundError), ("notes.txt", FileNotFoundError)],
)
def test_bad_weights_arguments(weights, error):
    with pytest.raises(error, match="weights"):
        models.get_base("TLNet", weights=weights)


@pytest.mark.parametrize("input_shape", [(32, 32), (32, 32, 1), (4, 4, 3), "big"])
def test_bad_input_shapes(input_shape):
    with pytest.raises((ValueError, TypeError), match="input_shape"):
        models.get_base("TLNet", weights=None, input_shape=input_shape)


def test_bn_momentum_is_applied_to_every_batchnorm():
    base = models.get_base("MobileNetV3Small", weights=None, bn_momentum=0.9)
    momenta = {
        layer.momentum
        for layer in base.layers
        if isinstance(layer, keras.layers.BatchNormalization)
    }
    assert momenta == {0.9}
    with pytest.raises(ValueError, match="bn_momentum"):
        models.get_base("TLNet", weights=None, bn_momentum=1.5)


# ---------------------------------------------------------------- freezing


def test_freeze_can_go_back_and_forth():
    """With TensorFlow, `base.trainable = True` is skipped when the flag is already True: freeze sets layers one by one."""
    model = models.build_model(models.tlnet(width=4), 3)
    for unfreeze, count in [(2, 3), ("all", 7), (0, 1), (1, 2), ("all", 7)]:
        assert (
            len(
                models.trainable_summary(models.freeze(model, unfreeze=unfreeze))[
                    "trainable_layers"
                ]
            )
            == count
        )


def test_freeze_a_bare_base_and_count_parameters():
    base = models.freeze(models.tlnet(width=4), unfreeze=1)
    summary = models.trainable_summary(base)
    assert summary == {
        "trainable_params": 16 * 16 * 9,
        "non_trainable_params": summary["non_trainable_params"],
        "trainable_layers": ["block3_conv2"],
    }
    total = sum(int(np.prod(w.shape)) for w in base.weights)
    assert summary["trainable_params"] + summary["non_trainable_params"] == total
    assert models.freeze(base).trainable is False


def test_freeze_inside_a_keras_application():
    model = models.build_model(models.get_base("MobileNetV2", weights=None), 3)
    names = models.trainable_summary(models.freeze(model, unfreeze=3))["trainable_layers"]
    assert names == ["block_16_depthwise", "block_16_project", "Conv_1", "head"]
    names = models.trainable_summary(models.freeze(model, unfreeze="block_16"))["trainable_layers"]
    assert names[0] == "block_16_expand" and not any(
        name.endswith("_BN") or "bn" in name.lower() for name in names
    )


# ---------------------------------------------------------------- BatchNorm diagnostics


def test_bn_report_modes_follow_trainable_and_training_false():
    base = models.tlnet(width=4)
    assert {row["mode"] for row in models.bn_report(base, X[:8])} == {
        "training"
    }  # as in pretraining
    model = models.build_model(base, 3)  # base(x, training=False) inside
    rows = models.bn_report(model, X[:8])
    assert (
        len(rows) == 6
        and {row["mode"] for row in rows} == {"inference"}
        and all(row["trainable"] for row in rows)
    )
    models.freeze(base)
    assert {row["mode"] for row in models.bn_report(base, X[:8])} == {"inference"}


def test_bn_report_reaches_doubly_nested_bases():
    inputs = keras.Input((32, 32, 3))
    outer = keras.Model(inputs, models.build_model(models.tlnet(width=4), 3)(inputs))
    assert [row["layer"] for row in models.bn_report(outer, X[:8])][:2] == [
        "block1_bn1",
        "block1_bn2",
    ]


def test_trained_batchnorm_with_momentum_099_lags_and_recalibration_fixes_it():
    keras.utils.set_random_seed(0)  # seeds 0-5 gave a largest shift of 0.26 to 0.65 before
    base = models.tlnet(width=4, bn_momentum=0.99)
    model = keras.Sequential(
        [base, keras.layers.Dense(3, activation="softmax")]
    )  # BN in training mode
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss="sparse_categorical_crossentropy")
    model.fit(X.astype("float32"), np.arange(len(X)) % 3, batch_size=16, epochs=1, verbose=0)
    assert max(row["mean_shift"] for row in models.bn_report(base, X)) > 0.2  # the pitfall
    models.recalibrate_bn(base, X)
    rows = models.bn_report(base, X)
    assert max(row["mean_shift"] for row in rows) < 1e-3 and all(
        abs(r["var_ratio"] - 1) < 1e-3 for r in rows
    )


def test_recalibration_is_exact_whatever_the_batch_size():
    first, second = models.tlnet(width=4), models.tlnet(width=4)
    second.set_weights(first.get_weights())
    models.recalibrate_bn(first, X, batch_size=64)
    models.recalibrate_bn(second, X, batch_size=7)
    for a, b in zip(first.get_weights(), second.get_weights()):
        # float32 kernels sum in a different order for another batch size; a moving average
        # instead of the exact statistics would differ by several percent
        np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-5)


def _trained_tlnet():
    base = models.tlnet(width=4)
    model = models.build_model(base, 3)
    models.freeze(model, unfreeze="all")
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss="sparse_categorical_crossentropy")
    model.fit(X.astype("float32"), np.arange(len(X)) % 3, batch_size=8, epochs=1, verbose=0)
    return model, base


@pytest.mark.parametrize("whole_model", [False, True])
def test_one_pass_recalibration_of_a_chain_gives_the_same_numbers_as_one_pass_per_layer(
    monkeypatch, whole_model
):
    """TLNet (and the model around it) is a chain of layers: recalibrate_bn keeps every batch's
    activations and makes one pass; the general path (one pass over X per BatchNorm layer) must
    give the same statistics to the last bit."""
    model, base = _trained_tlnet()
    target = model if whole_model else base
    assert models._chain(target) is not None
    start = base.get_weights()
    models.recalibrate_bn(target, X, batch_size=7)
    one_pass = base.get_weights()
    base.set_weights(start)
    monkeypatch.setattr(models, "_CHAIN_BYTES", 0)  # too large to keep in memory: the general path
    models.recalibrate_bn(target, X, batch_size=7)
    changed = 0
    for a, b, before in zip(one_pass, base.get_weights(), start):
        np.testing.assert_array_equal(a, b)
        changed += not np.array_equal(a, before)
    assert changed == 12  # moving mean and variance of all 6 BatchNorm layers


def test_graphs_that_are_not_chains_take_the_general_path():
    inputs = keras.Input((32, 32, 3))
    x = keras.layers.Conv2D(4, 3, padding="same")(inputs)
    y = keras.layers.BatchNormalization()(keras.layers.Conv2D(4, 3, padding="same")(x))
    residual = keras.Model(inputs, keras.layers.GlobalAveragePooling2D()(x + y))
    assert models._chain(residual) is None
    assert models._chain(adapt.coral_model(models.tlnet(width=4), 3)) is None  # two outputs
    models.recalibrate_bn(residual, X)
    rows = models.bn_report(residual, X)
    assert rows[0]["mean_shift"] < 1e-3 and abs(rows[0]["var_ratio"] - 1) < 1e-3


def test_bn_diagnostics_check_their_input():
    base = models.tlnet(width=4)
    with pytest.raises(ValueError, match="expects"):
        models.bn_report(base, np.zeros((2, 28, 28, 3), "uint8"))
    with pytest.raises(ValueError, match="batch_size"):
        models.recalibrate_bn(base, X, batch_size=0)


def test_pretrain_a_zoo_source_and_load_it_by_name(tmp_path):
    path = sources.pretrain(
        "TLNet", source="inverted", num_epochs=1, num_images=64, out_dir=tmp_path, full=False
    )
    assert path.name == "TLNet_source-inverted.weights.h5"
    metadata = models.verify_source("TLNet", weights_dir=tmp_path, source="inverted")
    assert metadata["source_domain"] == "inverted" and metadata["train_images"] == 64
    base = models.get_base("TLNet", weights="course", weights_dir=tmp_path, source="inverted")
    assert base.output_shape == (None, metadata["width"] * 4)
    with pytest.raises(FileNotFoundError, match="--source clean"):
        models.get_base("TLNet", weights="course", weights_dir=tmp_path, source="clean")
    with pytest.raises(ValueError, match="unknown source domain"):
        sources.pretrain("TLNet", source="imagenet", out_dir=tmp_path)
    with pytest.raises(ValueError, match="num_images"):
        sources.pretrain("TLNet", source="inverted", num_images=0, out_dir=tmp_path)
