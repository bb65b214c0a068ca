"""The real-scale path of notebook 07, offline: ImageNet-style weight files, photo folders, mixed precision.

No download happens: a ``keras.applications.MobileNetV2(weights=None)`` saved as an HDF5 file
stands in for the ImageNet file, and the photos are PNG files written into a temporary folder.
(``tests/test_models.py`` covers the offline error itself and a download failure.)
"""

import json
import warnings

import keras
import numpy as np
import PIL.Image
import pytest

from tltutor import data, gpu, models, train
from tltutor.checks import nb07

SIZE = 96  # the smallest input size with its own MobileNetV2 ImageNet file
IMAGENET_FILE = f"mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_{SIZE}_no_top.h5"


@pytest.fixture(scope="module")
def imagenet_style_file(tmp_path_factory):
    """A MobileNetV2 without top saved as keras.applications' ImageNet files are (HDF5), and the model."""
    application = keras.applications.MobileNetV2(
        weights=None, input_shape=(SIZE, SIZE, 3), include_top=False
    )
    path = tmp_path_factory.mktemp("keras_home") / "models" / IMAGENET_FILE
    path.parent.mkdir()
    with warnings.catch_warnings():  # the legacy HDF5 format, as the ImageNet files are
        warnings.simplefilter("ignore")
        application.save(path)
    return path, application


def application_of(base):
    """The keras.applications model inside a tltutor base."""
    return next(layer for layer in base.layers if isinstance(layer, keras.Model))


def same_weights(a, b, layer="Conv1"):
    return np.array_equal(a.get_layer(layer).get_weights()[0], b.get_layer(layer).get_weights()[0])


def write_photos(root, classes=("cat", "dog"), per_class=6):
    """PNG photos of different sizes in root/<class>/; class k is mostly colour k."""
    rng = np.random.default_rng(0)
    for k, name in enumerate(classes):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            pixels = rng.integers(0, 80, (30 + 4 * i, 40, 3), dtype=np.uint8)
            pixels[..., k] += 150
            PIL.Image.fromarray(pixels).save(root / name / f"{i:03d}.png")
    return root


def test_an_imagenet_style_file_loads_from_its_path(imagenet_style_file):
    path, application = imagenet_style_file
    base = models.get_base("MobileNetV2", weights=path, input_shape=(SIZE, SIZE, 3))
    assert base.output_shape == (None, 1280)
    assert same_weights(application_of(base), application)
    fresh = models.get_base("MobileNetV2", weights=None, input_shape=(SIZE, SIZE, 3))
    assert not same_weights(
        application_of(fresh), application
    )  # so the equality above means "loaded"


def test_an_imagenet_file_copied_into_the_keras_cache_is_used_offline(
    imagenet_style_file, monkeypatch
):
    """What notebook 07 tells an offline student: copy the file into ~/.keras/models/."""
    path, application = imagenet_style_file
    monkeypatch.setenv("KERAS_HOME", str(path.parent.parent))
    monkeypatch.setattr(
        models, "_weights_host_reachable", lambda timeout=3.0: pytest.fail("the network was asked")
    )
    base = models.get_base("MobileNetV2", weights="imagenet", input_shape=(SIZE, SIZE, 3))
    assert same_weights(application_of(base), application)


@pytest.mark.parametrize(
    "arch, size, file_name",
    [
        ("MobileNetV2", 96, "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_96_no_top.h5"),
        ("MobileNetV2", 160, "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_160_no_top.h5"),
        ("MobileNetV2", 200, "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224_no_top.h5"),
        ("EfficientNetB0", 224, "efficientnetb0_notop.h5"),
    ],
)
def test_offline_the_message_names_the_file_for_this_input_size(
    arch, size, file_name, tmp_path, monkeypatch
):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))  # an empty cache
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    monkeypatch.setattr(models, "_weights_host_reachable", lambda timeout=3.0: False)
    with pytest.raises(RuntimeError) as error:
        models.get_base(arch, weights="imagenet", input_shape=(size, size, 3))
    message = str(error.value)
    assert file_name in message and "~/.keras/models/" in message, message
    assert "weights='course'" in message  # and what works offline


def test_a_photo_folder_streams_into_feature_extraction_and_a_data_parallel_fit(
    imagenet_style_file, tmp_path
):
    path, _ = imagenet_style_file
    root = write_photos(tmp_path / "photos")
    train_ds, val_ds, names = data.load_image_folder(
        root, image_size=(SIZE, SIZE), batch_size=4, validation_split=0.25, seed=0
    )
    assert names == ["cat", "dog"]
    base = models.get_base("MobileNetV2", weights=path, input_shape=(SIZE, SIZE, 3))
    features, labels = nb07.features_and_labels(
        base, train_ds
    )  # one pass: rows and labels stay together
    assert (
        features.shape == (9, 1280) and features.dtype == np.float32 and np.isfinite(features).all()
    )
    assert sorted(labels.tolist()) == sorted(
        y for _, batch in train_ds for y in batch.numpy().tolist()
    )
    probe = train.train_head(features, labels, num_classes=2, num_epochs=2)
    with gpu.data_parallel() as devices:
        model = models.build_model(
            models.get_base("MobileNetV2", weights=path, input_shape=(SIZE, SIZE, 3)), 2
        )
        model.get_layer("head").set_weights(train.probe_weights(probe))
        models.freeze(model, unfreeze=2)
        train.compile_model(model, lr=1e-4)
        stop = keras.callbacks.EarlyStopping(
            monitor="val_loss", patience=1, restore_best_weights=True
        )
        history = model.fit(train_ds, validation_data=val_ds, epochs=1, callbacks=[stop], verbose=0)
    assert len(devices) >= 1
    assert (
        np.isfinite(history.history["loss"]).all()
        and np.isfinite(history.history["val_loss"]).all()
    )
    loss, accuracy = model.evaluate(val_ds, verbose=0)
    assert np.isfinite(loss) and 0.0 <= accuracy <= 1.0


def test_mixed_precision_keeps_a_float32_head_and_trains(tmp_path):
    """The GPU setting of notebook 07, run on the CPU: float16 compute, float32 head, loss scaling."""
    root = write_photos(tmp_path / "photos", per_class=4)
    train_ds, _, _ = data.load_image_folder(
        root, image_size=(32, 32), batch_size=4, validation_split=None
    )
    try:
        assert gpu.setup(mixed_precision=True, verbose=False)["mixed_precision"] == "mixed_float16"
        model = models.freeze(
            models.build_model(models.get_base("TLNet", weights="course"), 2), unfreeze="block3"
        )
        train.compile_model(model, lr=1e-4)
        history = model.fit(train_ds, epochs=1, verbose=0)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert model.get_layer("head").compute_dtype == "float32"
    assert model.get_layer(models.get_base("TLNet", weights=None).name).compute_dtype == "float16"
    assert type(model.optimizer).__name__ == "LossScaleOptimizer"
    assert np.isfinite(history.history["loss"]).all()
    assert model.predict_on_batch(next(iter(train_ds))[0]).dtype == np.float32


# --------------------------------------------------------------------------- the demo with an ImageNet backbone, offline

DEMO_SIZE = 32  # MobileNetV2's smallest input: keras.applications then looks for its 224 file
DEMO_FILE = "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224_no_top.h5"


@pytest.fixture
def offline_keras_home(tmp_path, monkeypatch):
    """An empty Keras cache and no network: the weights host is never to be asked."""
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras_home"))
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    monkeypatch.setattr(models, "_weights_host_reachable", lambda timeout=3.0: False)
    return tmp_path / "keras_home" / "models"


def test_demo_offline_names_the_missing_imagenet_file_before_reading_images(
    offline_keras_home, tmp_path, capsys, monkeypatch
):
    from tltutor import cli

    root = write_photos(tmp_path / "photos")
    monkeypatch.setattr(
        data, "folder_to_arrays", lambda *a, **k: pytest.fail("the images were read")
    )
    status = cli.main(["demo", "--target", str(root), "--arch", "MobileNetV2"])
    err = capsys.readouterr().err
    assert status == 2 and err.startswith(
        "error: ImageNet weights for MobileNetV2 are not in ~/.keras/models/"
    )
    assert (
        f"mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_{SIZE}_no_top.h5" in err
    )  # the default --image-size 96


def test_demo_with_an_imagenet_backbone_offline_from_a_file_in_the_keras_cache(
    offline_keras_home, tmp_path, capsys, monkeypatch
):
    """The whole demo path on MobileNetV2 'ImageNet' weights, with a self-made file where Keras looks for it."""
    from tltutor import cli

    application = keras.applications.MobileNetV2(
        weights=None, input_shape=(DEMO_SIZE, DEMO_SIZE, 3), include_top=False
    )
    offline_keras_home.mkdir(parents=True)
    with warnings.catch_warnings():  # the legacy HDF5 format, as the ImageNet files are
        warnings.simplefilter("ignore")
        application.save(offline_keras_home / DEMO_FILE)
    loaded = []
    build = models._build
    monkeypatch.setattr(
        models,
        "_build",
        lambda arch, shape, weights=None: loaded.append(weights) or build(arch, shape, weights),
    )
    monkeypatch.delenv("TLTUTOR_QUIET", raising=False)
    root = write_photos(tmp_path / "photos", classes=("cat", "dog", "fox"), per_class=7)
    status = cli.main(
        [
            "demo",
            "--target",
            str(root),
            "--arch",
            "MobileNetV2",
            "--weights",
            "imagenet",
            "--image-size",
            str(DEMO_SIZE),
            "--sizes",
            "2",
            "--num-epochs",
            "1",
            "-o",
            str(tmp_path / "out"),
        ]
    )
    out, err = capsys.readouterr()
    assert status == 0, err
    assert (
        str(offline_keras_home / DEMO_FILE) in loaded
    )  # the file in the cache, not random weights
    assert "backbone: MobileNetV2 with ImageNet weights; images resized to 32×32" in out
    assert "[3/3] finetune    2 labels/class ... test accuracy" in out
    assert (
        "labels/class    scratch  features  finetune" in out
        and "Test set: 2 images per class (6 in all)" in out
    )
    saved = json.loads((tmp_path / "out" / "demo_results.json").read_text())
    assert (
        saved["arch"] == "MobileNetV2"
        and saved["weights"] == "imagenet"
        and saved["image_size"] == DEMO_SIZE
    )
