"""Tests of the checkers of notebooks 02 (feature extraction) and 03 (fine-tuning).

Every checker: the right answer passes, each typical mistake gets its own explanation, and
hostile answers (None, wrong types, NaN, wrong shapes, objects that raise) give a verdict
instead of an exception.
"""

import importlib
import math

import keras
import numpy as np
import pytest

from checker_testing import VERDICT, Hostile, verdict  # noqa: F401
from tltutor import data, exercises, models, train
from tltutor.checks import nb02, nb03


@pytest.fixture(scope="module", autouse=True)
def registered():
    """Register the checkers again: other test modules may have called exercises.reset()."""
    importlib.reload(nb02)
    importlib.reload(nb03)
    yield


class RaisingModel(keras.Model):
    """A Keras model whose call always fails."""

    def call(self, x):
        raise ValueError("broken on purpose")


HOSTILE = [
    "features",
    b"bytes",
    3,
    2.5,
    float("nan"),
    float("inf"),
    True,
    [],
    {},
    {"a": 1},
    [[1, 2], [3]],
    np.array([]),
    np.full((2, 2), np.nan),
    np.zeros((10**3, 10**4), dtype="uint8"),
    object(),
    Hostile(),
    keras.layers.Dense(5),
    print,
]

ALL_IDS = ["02.1", "02.2", "02.3", "03.1", "03.2", "03.3"]


@pytest.mark.parametrize("exercise_id", ALL_IDS)
def test_none_is_not_attempted(exercise_id):
    ok, line = verdict(exercise_id, None)
    assert not ok and "not attempted" in line


@pytest.mark.parametrize("exercise_id", ALL_IDS)
@pytest.mark.parametrize("answer", HOSTILE, ids=lambda a: type(a).__name__)
def test_hostile_answers_get_a_verdict(exercise_id, answer):
    ok, line = verdict(exercise_id, answer)
    assert not ok and "not yet" in line


@pytest.mark.parametrize("exercise_id", ["02.2", "02.3", "03.3"])
def test_a_model_that_raises_gets_a_verdict(exercise_id):
    ok, line = verdict(exercise_id, RaisingModel())
    assert not ok and "not yet" in line


# --------------------------------------------------------------------------- 02.1


def test_features_correct():
    features = np.abs(np.random.default_rng(0).normal(size=(100, 64))).astype("float32")
    ok, line = verdict("02.1", features)
    assert ok and "100 images, 64 features" in line


@pytest.mark.parametrize(
    "answer, expected",
    [
        (np.zeros((100, 32, 32, 3), "uint8"), "look like images"),
        (np.full((100, 5), 0.2, "float32"), "class probabilities"),
        (np.ones((100, 32), "float32"), "outputs 64"),
        (np.ones((3, 64), "float32"), "only 3 row"),
        (np.ones((100,), "float32"), "2-D array"),
        (-np.ones((100, 64), "float32"), "negative"),
        (np.ones((100, 64), "float32"), "same features"),
        (np.full((100, 64), np.nan, "float32"), "NaN"),
        (np.ones((100, 64), "int64"), "floats"),
        (np.array([["a"] * 64] * 2), "text"),
    ],
)
def test_features_mistakes_are_explained(answer, expected):
    ok, line = verdict("02.1", answer)
    assert not ok and expected in line, line


# --------------------------------------------------------------------------- 02.2 and 02.3 (course base)


@pytest.fixture(scope="module")
def course_base():
    return models.get_base("TLNet", weights="course")


@pytest.fixture(scope="module")
def trained_head(course_base):
    X_pool, y_pool, _, _ = data.lab_target()
    X, y = data.sample_per_class(X_pool, y_pool, 20, seed=0)
    return train.train_head(train.extract_features(course_base, X, cache_dir=False), y, num_classes=5, seed=0)


def test_head_correct(trained_head):
    ok, line = verdict("02.2", trained_head)
    assert ok and "well above chance" in line


def dense_head(num_inputs=64, num_outputs=5, *, kernel=None):
    head = keras.Sequential([keras.Input((num_inputs,)), keras.layers.Dense(num_outputs, activation="softmax")])
    if kernel is not None:
        head.layers[-1].set_weights([kernel, np.zeros(num_outputs, "float32")])
    return head


def test_untrained_head_is_near_chance():
    ok, line = verdict("02.2", dense_head(kernel=np.zeros((64, 5), "float32")))
    assert not ok and "near chance" in line


def test_head_with_nan_weights():
    ok, line = verdict("02.2", dense_head(kernel=np.full((64, 5), np.nan, "float32")))
    assert not ok and "NaN" in line


def test_head_on_images_is_explained(course_base):
    ok, line = verdict("02.2", models.build_model(course_base, 5))
    assert not ok and "takes images" in line


@pytest.mark.parametrize("inputs, outputs, expected", [(64, 10, "expected 5 values"), (32, 5, "cannot take inputs")])
def test_head_of_the_wrong_shape(inputs, outputs, expected):
    ok, line = verdict("02.2", dense_head(inputs, outputs))
    assert not ok and expected in line, line


def gap_of(base, layer_name):
    pooled = keras.layers.GlobalAveragePooling2D()(base.get_layer(layer_name).output)
    return keras.Model(base.input, pooled)


def test_block2_extractor_correct(course_base):
    ok, line = verdict("02.3", gap_of(course_base, "block2_pool"))
    assert ok and "block2_pool" in line


@pytest.mark.parametrize(
    "layer_name, expected",
    [("block2_relu2", "features of `block2_relu2`"), ("block3_pool", "(that is block3)"), ("block1_pool", "(that is block1)")],
)
def test_block2_extractor_wrong_layer(course_base, layer_name, expected):
    ok, line = verdict("02.3", gap_of(course_base, layer_name))
    assert not ok and expected in line, line


def test_block2_extractor_without_pooling(course_base):
    ok, line = verdict("02.3", keras.Model(course_base.input, course_base.get_layer("block2_pool").output))
    assert not ok and "GlobalAveragePooling2D" in line


def test_block2_extractor_on_a_random_base():
    ok, line = verdict("02.3", gap_of(models.get_base("TLNet", weights=None), "block2_pool"))
    assert not ok and "random base" in line


def test_block2_extractor_with_several_outputs(course_base):
    outputs = [keras.layers.GlobalAveragePooling2D()(course_base.get_layer(n).output) for n in ("block1_pool", "block2_pool")]
    ok, line = verdict("02.3", keras.Model(course_base.input, outputs))
    assert not ok and "2 outputs" in line


# --------------------------------------------------------------------------- 03.1


def test_trainable_params_correct():
    counts = nb03.param_counts()
    ok, line = verdict("03.1", counts["block3"])
    assert ok and f"{counts['block3']:,}" in line
    assert verdict("03.1", np.int64(counts["block3"]))[0]
    assert verdict("03.1", float(counts["block3"]))[0]


@pytest.mark.parametrize(
    "key, expected",
    [
        ("head", "feature extraction"),
        ("block3_without_head", "head must learn"),
        ("block3_with_bn", "BatchNorm"),
        ("top1", "unfreeze=1"),
        ("all", "every convolution"),
        ("everything", "trainable and frozen"),
        ("all_with_bn", "nothing frozen"),
    ],
)
def test_trainable_params_mistakes_are_explained(key, expected):
    ok, line = verdict("03.1", nb03.param_counts()[key])
    assert not ok and expected in line, line


@pytest.mark.parametrize("answer, expected", [(12345, "not the count"), (-1, "outside"), ("55621", "without quotes")])
def test_trainable_params_other_answers(answer, expected):
    ok, line = verdict("03.1", answer)
    assert not ok and expected in line, line


def test_trainable_params_summary_dict():
    ok, line = verdict("03.1", {"trainable_params": 55621, "trainable_layers": []})
    assert not ok and "'trainable_params' entry" in line


def test_param_counts_match_the_course_base():
    model = models.freeze(models.build_model(models.get_base("TLNet", weights="course"), 5), unfreeze="block3")
    assert models.trainable_summary(model)["trainable_params"] == nb03.param_counts()["block3"]


# --------------------------------------------------------------------------- 03.2


@pytest.mark.parametrize("lr", [1e-5, 1e-4, 3e-4, 1e-3, np.float32(3e-4)])
def test_lr_in_the_safe_range(lr):
    ok, line = verdict("03.2", lr)
    assert ok, line


@pytest.mark.parametrize(
    "lr, expected",
    [
        (1e-2, "wrecked the pretrained features"),
        (3e-3, "training from scratch"),
        (1e-7, "barely move"),
        (0, "must be positive"),
        (-1e-3, "must be positive"),
        (5.0, "far too large"),
        (math.nan, "NaN"),
        (math.inf, "infinite"),
        ("3e-4", "without quotes"),
        (True, "bool"),
    ],
)
def test_lr_mistakes_are_explained(lr, expected):
    ok, line = verdict("03.2", lr)
    assert not ok and expected in line, line


# --------------------------------------------------------------------------- 03.3


def course_model():
    return models.build_model(models.get_base("TLNet", weights="course"), 5)


def test_fixed_model_correct():
    ok, line = verdict("03.3", models.freeze(course_model(), unfreeze="all"))
    assert ok and "inference mode" in line


def test_fixed_model_with_frozen_batchnorm_in_a_scratch_model():
    model = train.scratch_model(models.get_base("TLNet", weights="course"), 5)
    assert verdict("03.3", models.freeze(model, unfreeze="all"))[0]  # freeze keeps BatchNorm frozen: also a fix


def test_broken_setup_is_explained():
    base = models.get_base("TLNet", weights="course")
    broken = train.scratch_model(base, 5)
    base.trainable = True
    ok, line = verdict("03.3", broken)
    assert not ok and "6 of 6 BatchNorm layers" in line and "training=False" in line


def test_frozen_model_is_feature_extraction():
    ok, line = verdict("03.3", models.freeze(course_model(), unfreeze=0))
    assert not ok and "feature extraction" in line


def test_random_base_is_explained():
    model = models.freeze(models.build_model(models.get_base("TLNet", weights=None), 5), unfreeze="all")
    ok, line = verdict("03.3", model)
    assert not ok and "course-pretrained" in line


def test_model_without_batchnorm():
    model = keras.Sequential([keras.Input((32, 32, 3)), keras.layers.Conv2D(4, 3), keras.layers.GlobalAveragePooling2D(),
                              keras.layers.Dense(5, activation="softmax")])
    ok, line = verdict("03.3", model)
    assert not ok and "no BatchNorm layers" in line


@pytest.mark.parametrize("answer, expected", [(lambda: models.build_model(models.get_base("TLNet", weights=None), 3), "expected 5 values")])
def test_fixed_model_wrong_outputs(answer, expected):
    ok, line = verdict("03.3", answer())
    assert not ok and expected in line, line


# --------------------------------------------------------------------------- widgets


def test_check_button_reruns_the_check():
    exercises.check("03.2", 1e-2)
    box = exercises.panel("03.2")
    buttons = [child for child in box.children if hasattr(child, "children")][0].children
    feedback = box.children[2]
    buttons[0].click()  # no notebook namespace here: the panel re-checks the answer it was shown with
    assert "not yet" in feedback.value
    buttons[1].click()
    assert "<li>" in box.children[3].value
