"""Tests of notebook 03's checkers (fine-tuning): the right answer passes, the plausible wrong answers
a student would write get "not yet" with their own explanation, hostile answers get a verdict."""

import importlib
import math

import keras
import numpy as np
import pytest

from tltutor import data, exercises, models, train
from tltutor.checks import nb03

from checker_testing import Hostile, RaisingModel, verdict


@pytest.fixture(scope="module", autouse=True)
def registered():
    """Register the checkers again: other test modules may have called exercises.reset()."""
    importlib.reload(nb03)
    yield


HOSTILE = [
    "model",
    b"bytes",
    3,
    2.5,
    float("nan"),
    float("inf"),
    True,
    [],
    {},
    {"a": 1},
    np.array([]),
    np.full((2, 2), np.nan),
    object(),
    Hostile(),
    keras.layers.Dense(5),
    print,
]
ALL_IDS = ["03.0", "03.1", "03.2", "03.3"]


@pytest.mark.parametrize("exercise_id", ALL_IDS)
def test_none_is_not_attempted(exercise_id):
    ok, line = verdict(exercise_id, None)
    assert not ok and "not attempted" in line


@pytest.mark.parametrize("exercise_id", ALL_IDS)
@pytest.mark.parametrize("answer", HOSTILE, ids=lambda a: type(a).__name__)
def test_hostile_answers_get_a_verdict(exercise_id, answer):
    ok, line = verdict(exercise_id, answer)
    assert not ok and "not yet" in line


@pytest.mark.parametrize("exercise_id", ["03.0", "03.1", "03.3"])
def test_a_model_that_raises_gets_a_verdict(exercise_id):
    ok, line = verdict(exercise_id, RaisingModel())
    assert not ok and "not yet" in line


def course_model(weights="course"):
    return models.build_model(models.get_base("TLNet", weights=weights), 5)


# --------------------------------------------------------------------------- 03.0: plain Keras


@pytest.fixture(scope="module")
def few():
    X_pool, y_pool, _, _ = data.lab_target()
    X, y = data.sample_per_class(X_pool, y_pool, 20, seed=0)
    return X.astype("float32"), y


def compile_adam(model, lr):
    model.compile(
        optimizer=keras.optimizers.Adam(lr),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )


def raw_recipe(
    X,
    y,
    *,
    training=False,
    rescale=False,
    unfreeze=True,
    recompile=True,
    fine_lr=1e-4,
    train_head=True,
    weights="course",
):
    """The notebook's plain-Keras solution, with one step changed or left out."""
    keras.utils.set_random_seed(
        1
    )  # not 0: the course base was pretrained from seed 0's initial weights
    base = models.get_base("TLNet", weights=weights)
    base.trainable = False
    inputs = keras.Input((32, 32, 3))
    x = keras.layers.Rescaling(1 / 255)(inputs) if rescale else inputs
    features = base(x, training=False) if not training else base(x)
    model = keras.Model(inputs, keras.layers.Dense(5, activation="softmax")(features))
    compile_adam(model, 1e-2)
    if train_head:
        model.fit(X, y, epochs=15, batch_size=32, verbose=0)
    if unfreeze:
        base.trainable = True
    if recompile:
        compile_adam(model, fine_lr)
    return model


def test_raw_model_correct(few):
    ok, line = verdict("03.0", raw_recipe(*few))
    assert ok and "runs at 0.0001" in line, line
    assert verdict("03.0", raw_recipe(*few, fine_lr=3e-4))[
        0
    ]  # beat the probe on every seed in the notebook


@pytest.mark.parametrize(
    "change, expected",
    [
        ({"training": True}, "training=False"),
        ({"unfreeze": False}, "cannot learn"),
        ({"recompile": False}, "optimizer was built when only the head"),
        ({"fine_lr": 1e-2}, "not for the pretrained base"),
        ({"fine_lr": 1e-3}, "not for the pretrained base"),
        ({"fine_lr": 1e-9}, "barely moves"),
        ({"rescale": True}, "255 times too dark"),
        ({"weights": None}, "course-pretrained"),
    ],
)
def test_raw_model_mistakes_are_explained(few, change, expected):
    ok, line = verdict("03.0", raw_recipe(*few, **change))
    assert not ok and expected in line, line


def test_raw_model_never_compiled():
    base = models.get_base("TLNet", weights="course")
    inputs = keras.Input((32, 32, 3))
    model = keras.Model(
        inputs, keras.layers.Dense(5, activation="softmax")(base(inputs, training=False))
    )
    ok, line = verdict("03.0", model)
    assert not ok and "not compiled" in line


def test_raw_model_lr_set_without_recompiling(few):
    model = raw_recipe(*few, recompile=False)
    model.optimizer.learning_rate.assign(
        1e-4
    )  # a new rate, but the optimizer still knows only the head
    ok, line = verdict("03.0", model)
    assert not ok and "compile" in line


# --------------------------------------------------------------------------- 03.1: the block3 model


def test_block3_model_correct():
    ok, line = verdict("03.1", models.freeze(course_model(), unfreeze="block3"))
    assert ok and f"{nb03.param_counts()['block3']:,}" in line
    assert verdict("03.1", models.freeze(course_model(), unfreeze=2))[0]  # the same layers


@pytest.mark.parametrize(
    "unfreeze, expected",
    [
        (0, "feature extraction"),
        (1, "block3 has two convolutions"),
        (4, "outside block3"),
        ("all", "outside block3"),
        ("block2", "outside block3"),
    ],
)
def test_block3_model_wrong_freezing(unfreeze, expected):
    ok, line = verdict("03.1", models.freeze(course_model(), unfreeze=unfreeze))
    assert not ok and expected in line, line


@pytest.mark.parametrize("count", [55621, 16560, 72101])
def test_block3_model_a_number_is_not_enough(count):
    ok, line = verdict("03.1", count)
    assert not ok and "the model itself" in line


def test_block3_model_whole_base_trainable():
    model = course_model()
    model.layers[1].trainable = True  # everything, BatchNorm included
    ok, line = verdict("03.1", model)
    assert not ok and "BatchNorm" in line


def test_block3_model_frozen_head():
    model = models.freeze(course_model(), unfreeze="block3")
    model.get_layer("head").trainable = False
    ok, line = verdict("03.1", model)
    assert not ok and "head cannot learn" in line


def test_block3_model_random_base():
    ok, line = verdict("03.1", models.freeze(course_model(weights=None), unfreeze="block3"))
    assert not ok and "course-pretrained" in line


def test_param_counts_match_the_course_base():
    model = models.freeze(course_model(), unfreeze="block3")
    assert models.trainable_summary(model)["trainable_params"] == nb03.param_counts()["block3"]


# --------------------------------------------------------------------------- 03.2: the learning rate


@pytest.mark.parametrize("lr", [1e-5, 1e-4, 3e-4, np.float32(3e-4)])
def test_lr_in_the_safe_range(lr):
    ok, line = verdict("03.2", lr)
    assert ok, line


@pytest.mark.parametrize(
    "lr, expected",
    [
        (1e-2, "below the linear probe"),
        (3e-2, "below the linear probe"),
        (1e-3, "did not beat 3e-4 on every seed"),
        (2e-3, "from-scratch rate"),
        (3e-3, "nothing there shows it is safe"),
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


# --------------------------------------------------------------------------- 03.3: BatchNorm


def test_fixed_model_correct():
    ok, line = verdict("03.3", models.freeze(course_model(), unfreeze="all"))
    assert ok and "inference mode" in line


def test_fixed_model_with_frozen_batchnorm_in_a_scratch_model():
    model = train.scratch_model(models.get_base("TLNet", weights="course"), 5)
    assert verdict("03.3", models.freeze(model, unfreeze="all"))[
        0
    ]  # freeze keeps BatchNorm frozen: also a fix


def test_broken_setup_is_explained():
    base = models.get_base("TLNet", weights="course")
    broken = train.scratch_model(base, 5)
    base.trainable = True
    ok, line = verdict("03.3", broken)
    assert not ok and "6 of 6 BatchNorm layers" in line and "training=False" in line


@pytest.mark.parametrize("unfreeze", ["block3", 2, 4])
def test_fixed_model_partly_unfrozen(unfreeze):
    ok, line = verdict("03.3", models.freeze(course_model(), unfreeze=unfreeze))
    assert not ok and "every convolution" in line, line


def test_frozen_model_is_feature_extraction():
    ok, line = verdict("03.3", models.freeze(course_model(), unfreeze=0))
    assert not ok and "feature extraction" in line


def test_random_base_is_explained():
    ok, line = verdict("03.3", models.freeze(course_model(weights=None), unfreeze="all"))
    assert not ok and "course-pretrained" in line


def test_model_without_batchnorm():
    model = keras.Sequential(
        [
            keras.Input((32, 32, 3)),
            keras.layers.Conv2D(4, 3),
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(5, activation="softmax"),
        ]
    )
    ok, line = verdict("03.3", model)
    assert not ok and "no BatchNorm layers" in line


def test_fixed_model_wrong_outputs():
    ok, line = verdict("03.3", models.build_model(models.get_base("TLNet", weights=None), 3))
    assert not ok and "expected 5 values" in line, line


# --------------------------------------------------------------------------- quizzes and widgets


def test_quiz_and_match_keys_live_in_the_module():
    assert exercises.quiz("03.q1", choice=1, widget=False)
    assert not exercises.quiz("03.q1", choice=0, widget=False)
    assert exercises.match("03.m1", choices=dict(nb03.STRATEGY_PAIRS), widget=False)
    swapped = dict(zip(nb03.STRATEGY_PAIRS, reversed(list(nb03.STRATEGY_PAIRS.values()))))
    assert not exercises.match("03.m1", choices=swapped, widget=False)


def test_check_button_reruns_the_check():
    exercises.check("03.2", 1e-2)
    box = exercises.panel("03.2")
    buttons = next(child for child in box.children if hasattr(child, "children")).children
    feedback = box.children[2]
    buttons[
        0
    ].click()  # no notebook namespace here: the panel re-checks the answer it was shown with
    assert "not yet" in feedback.value
    buttons[1].click()
    assert "<li>" in box.children[3].value
