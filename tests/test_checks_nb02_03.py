"""Tests of the checkers of notebook 02 (feature extraction); notebook 03's are in test_checks_nb03.py.

Every checker: the right answer passes, each typical mistake gets its own explanation, and
hostile answers (None, wrong types, NaN, wrong shapes, objects that raise) give a verdict
instead of an exception.
"""

import importlib

import keras
import numpy as np
import pytest

from tltutor import data, exercises, models, train
from tltutor.checks import nb02

from checker_testing import VERDICT, Hostile, RaisingModel, verdict  # noqa: F401


@pytest.fixture(scope="module", autouse=True)
def registered():
    """Register the checkers again: other test modules may have called exercises.reset()."""
    importlib.reload(nb02)
    yield


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

ALL_IDS = ["02.1", "02.2", "02.3"]


@pytest.mark.parametrize("exercise_id", ALL_IDS)
def test_none_is_not_attempted(exercise_id):
    ok, line = verdict(exercise_id, None)
    assert not ok and "not attempted" in line


@pytest.mark.parametrize("exercise_id", ALL_IDS)
@pytest.mark.parametrize("answer", HOSTILE, ids=lambda a: type(a).__name__)
def test_hostile_answers_get_a_verdict(exercise_id, answer):
    ok, line = verdict(exercise_id, answer)
    assert not ok and "not yet" in line


@pytest.mark.parametrize("exercise_id", ["02.2", "02.3"])
def test_a_model_that_raises_gets_a_verdict(exercise_id):
    ok, line = verdict(exercise_id, RaisingModel())
    assert not ok and "not yet" in line


# --------------------------------------------------------------------------- 02.1


@pytest.fixture(scope="module")
def few_features():
    """The course base's features of a few labelled pool images (as in the notebook), and their indices."""
    F_pool, y_pool = nb02.reference_pool_features()
    index, _ = data.sample_per_class(np.arange(len(y_pool)), y_pool, 20, seed=0)
    return F_pool[index], index


def test_features_correct(few_features):
    ok, line = verdict("02.1", few_features[0])
    assert ok and "100 images (20 per class)" in line, line


def test_features_written_by_hand_pass(few_features):
    X_pool, _, _, _ = data.lab_target()
    base = models.get_base("TLNet", weights="course")
    X = X_pool[few_features[1]].astype("float32")
    by_hand = np.concatenate(
        [
            keras.ops.convert_to_numpy(base(X[i : i + 32], training=False))
            for i in range(0, len(X), 32)
        ]
    )
    assert verdict("02.1", by_hand)[0]


def test_features_of_the_random_base_are_not_yet(few_features):
    X_pool, _, _, _ = data.lab_target()
    random_features = train.extract_features(
        models.get_base("TLNet", weights=None), X_pool[few_features[1]], cache_dir=False
    )
    ok, line = verdict("02.1", random_features)
    assert not ok and "random_base" in line, line


def test_features_in_training_mode_are_not_yet(few_features):
    X_pool, _, _, _ = data.lab_target()
    base = models.get_base("TLNet", weights="course")
    X = X_pool[few_features[1]].astype("float32")
    training = np.concatenate(
        [
            keras.ops.convert_to_numpy(base(X[i : i + 32], training=True))
            for i in range(0, len(X), 32)
        ]
    )
    ok, line = verdict("02.1", training)
    assert not ok and "not the course base's features" in line, line


def test_features_of_test_images_are_not_yet():
    features, _ = nb02.reference_test_features()
    ok, line = verdict("02.1", features[:100])
    assert not ok and "*test* images" in line, line


def test_features_of_unbalanced_or_repeated_images_are_not_yet(few_features):
    F_pool, _ = nb02.reference_pool_features()
    ok, line = verdict("02.1", F_pool[:100])  # the first 100 pool images: not a few per class
    assert not ok and "per class" in line, line
    ok, line = verdict("02.1", np.concatenate([few_features[0], few_features[0][:5]]))
    assert not ok and "more than once" in line, line
    ok, line = verdict("02.1", F_pool)
    assert not ok and "whole pool" in line, line


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
        (
            np.abs(np.random.default_rng(0).normal(size=(100, 64))).astype("float32"),
            "not the course base's",
        ),
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
    features = train.extract_features(course_base, X, cache_dir=False)
    keras.utils.set_random_seed(0)
    norm = keras.layers.Normalization()
    norm.adapt(features)
    head = keras.Sequential([keras.Input((64,)), norm, keras.layers.Dense(5, activation="softmax")])
    head.compile(optimizer=keras.optimizers.Adam(1e-2), loss="sparse_categorical_crossentropy")
    head.fit(features, y, epochs=60, batch_size=64, verbose=0)
    return head, features, y


def test_head_correct(trained_head):
    ok, line = verdict("02.2", trained_head[0])
    assert ok and "well above chance" in line


def test_train_head_is_not_the_exercise(trained_head):
    _, features, y = trained_head
    ok, line = verdict("02.2", train.train_head(features, y, num_classes=5, seed=0))
    assert not ok and "write the head yourself" in line, line


def test_a_hidden_layer_is_not_a_linear_head(trained_head):
    _, features, y = trained_head
    mlp = keras.Sequential(
        [
            keras.Input((64,)),
            keras.layers.Dense(32, activation="relu"),
            keras.layers.Dense(5, activation="softmax"),
        ]
    )
    mlp.compile(optimizer=keras.optimizers.Adam(1e-2), loss="sparse_categorical_crossentropy")
    mlp.fit(features, y, epochs=30, verbose=0)
    ok, line = verdict("02.2", mlp)
    assert not ok and "2 Dense layers" in line, line


def dense_head(num_inputs=64, num_outputs=5, *, kernel=None):
    head = keras.Sequential(
        [keras.Input((num_inputs,)), keras.layers.Dense(num_outputs, activation="softmax")]
    )
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


@pytest.mark.parametrize(
    "inputs, outputs, expected", [(64, 10, "expected 5 values"), (32, 5, "cannot take inputs")]
)
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
    [
        ("block2_relu2", "features of `block2_relu2`"),
        ("block3_pool", "(that is block3)"),
        ("block1_pool", "(that is block1)"),
    ],
)
def test_block2_extractor_wrong_layer(course_base, layer_name, expected):
    ok, line = verdict("02.3", gap_of(course_base, layer_name))
    assert not ok and expected in line, line


def test_block2_extractor_without_pooling(course_base):
    ok, line = verdict(
        "02.3", keras.Model(course_base.input, course_base.get_layer("block2_pool").output)
    )
    assert not ok and "GlobalAveragePooling2D" in line


def test_block2_extractor_on_a_random_base():
    ok, line = verdict("02.3", gap_of(models.get_base("TLNet", weights=None), "block2_pool"))
    assert not ok and "random base" in line


def test_block2_extractor_with_several_outputs(course_base):
    outputs = [
        keras.layers.GlobalAveragePooling2D()(course_base.get_layer(n).output)
        for n in ("block1_pool", "block2_pool")
    ]
    ok, line = verdict("02.3", keras.Model(course_base.input, outputs))
    assert not ok and "2 outputs" in line


def test_02_quizzes_are_defined_in_the_checker_module():
    assert exercises.quiz("02.q1", choice=1, widget=False)
    for wrong in (0, 2, 3):
        assert not exercises.quiz("02.q1", choice=wrong, widget=False)
    assert exercises.quiz("02.q2", choice={0, 2}, widget=False)
    for wrong in ({0}, {0, 2, 3}, {1, 3}):
        assert not exercises.quiz("02.q2", choice=wrong, widget=False)
