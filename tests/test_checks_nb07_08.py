"""Tests of the checkers of notebooks 07 (the real world) and 08 (beyond).

Every checker: the reference answer passes, each typical mistake gets its own explanation, and
hostile answers (None, wrong types, NaN, functions that raise or never return) give a verdict
instead of an exception.
"""

import importlib
import importlib.util

import keras
import numpy as np
import pytest

from tltutor import models
from tltutor.checks import nb07, nb08

from checker_testing import VERDICT, Hostile, verdict  # noqa: F401

NEEDS_TF = pytest.mark.skipif(
    importlib.util.find_spec("tensorflow") is None,
    reason="exercise 07.2 reads a tf.data pipeline",
)

ALL_IDS = ["07.1", "07.2", "07.3", "08.1", "08.2", "08.3"]


@pytest.fixture(scope="module", autouse=True)
def registered():
    """Register the checkers again: other test modules may have called exercises.reset()."""
    importlib.reload(nb07)
    importlib.reload(nb08)
    yield


def raises(*args, **kwargs):
    raise ValueError("broken on purpose")


HOSTILE = [
    "mixed_float16",
    b"bytes",
    3,
    float("nan"),
    True,
    [],
    {},
    {"gpu": True},
    np.zeros((3, 3)),
    object(),
    Hostile(),
    keras.layers.Dense(5),
    print,
    raises,
    lambda *args: Hostile(),
    lambda *args: None,
]


@pytest.mark.parametrize("exercise_id", ALL_IDS)
def test_none_is_not_attempted(exercise_id):
    ok, line = verdict(exercise_id, None)
    assert not ok and "not attempted" in line


@pytest.mark.parametrize("exercise_id", ALL_IDS)
@pytest.mark.parametrize("answer", HOSTILE, ids=lambda a: type(a).__name__)
def test_hostile_answers_get_a_verdict(exercise_id, answer):
    ok, line = verdict(exercise_id, answer)
    assert not ok and "not yet" in line


def test_a_function_that_never_returns_gets_a_verdict():
    def forever(tokens):
        while True:
            pass

    ok, line = verdict("08.3", forever)
    assert not ok and "took longer" in line


# --------------------------------------------------------------------------- 07.1


def measured(seconds):
    return "mixed_float16" if seconds["float32"] / seconds["mixed_float16"] >= 1.1 else "float32"


@pytest.mark.parametrize(
    "answer",
    [
        measured,
        nb07.choose_policy,
        lambda seconds: keras.DTypePolicy(measured(seconds)),
        lambda seconds: (
            "mixed_float16" if seconds["mixed_float16"] <= seconds["float32"] / 1.1 else "float32"
        ),
    ],
)
def test_policy_correct(answer):
    ok, line = verdict("07.1", answer)
    assert ok and "follows the measurement" in line, line


def gpu_rule(seconds):  # the old rule: mixed precision whenever there is a GPU
    return "mixed_float16" if seconds.get("gpu", True) else "float32"


@pytest.mark.parametrize(
    "answer, expected",
    [
        (lambda seconds: "mixed_float16", "times *slower*"),
        (gpu_rule, "times *slower*"),
        (lambda seconds: seconds["gpu"], "not a device report"),
        (lambda seconds: "float32", "keeps 'float32'"),
        (
            lambda seconds: min(seconds, key=seconds.get),
            "within the noise",
        ),  # any gain, however small
        (
            lambda seconds: max(seconds, key=seconds.get),
            "times *slower*",
        ),  # the slower one
        (
            lambda seconds: (
                "float16" if seconds["mixed_float16"] < seconds["float32"] else "float32"
            ),
            "weights in 16 bits",
        ),
        (lambda seconds: "fp16", "not a Keras dtype policy"),
        (lambda seconds: 16, "return the policy's name"),
        (
            lambda seconds: seconds["float32"] / seconds["mixed_float16"],
            "return the policy's name",
        ),
    ],
)
def test_policy_wrong_answers_are_not_yet(answer, expected):
    ok, line = verdict("07.1", answer)
    assert not ok and "not yet" in line and expected in line, line


def test_a_policy_function_that_sets_the_policy_is_told_to_return_it_and_changes_nothing():
    def sets_it(report):
        keras.mixed_precision.set_global_policy("mixed_float16")

    ok, line = verdict("07.1", sets_it)
    assert not ok and "returns None" in line
    assert keras.mixed_precision.dtype_policy().name == "float32"


# --------------------------------------------------------------------------- 07.2


@NEEDS_TF
def test_features_and_labels_reference_passes():
    ok, line = verdict("07.2", nb07.features_and_labels)
    assert ok and "all 24 labels" in line


def two_passes(base, ds):
    return base.predict(ds.map(lambda x, y: x), verbose=0), np.concatenate(
        [y.numpy() for _, y in ds]
    )


def images_not_features(base, ds):
    pairs = list(ds)
    return np.concatenate([x.numpy() for x, _ in pairs]), np.concatenate(
        [y.numpy() for _, y in pairs]
    )


def one_hot_labels(base, ds):
    features, labels = nb07.features_and_labels(base, ds)
    return features, np.eye(3)[labels]


def first_batch_only(base, ds):
    x, y = next(iter(ds))
    return base.predict_on_batch(np.asarray(x)), y.numpy()


@NEEDS_TF
@pytest.mark.parametrize(
    "answer, expected",
    [
        (two_passes, "the same pass"),
        (images_not_features, "expected (N, D)"),
        (one_hot_labels, "not one-hot"),
        (first_batch_only, "collect every batch"),
        (lambda base, ds: nb07.features_and_labels(base, ds)[0], "return two arrays"),
        (lambda base, ds: (np.full((24, 3), np.nan), np.zeros(24)), "NaN"),
    ],
)
def test_features_and_labels_mistakes_are_explained(answer, expected):
    ok, line = verdict("07.2", answer)
    assert not ok and expected in line, line


# --------------------------------------------------------------------------- 07.3


@pytest.mark.parametrize("monitor", ["val_loss", "val_accuracy"])
def test_early_stop_correct(monitor):
    ok, line = verdict(
        "07.3",
        keras.callbacks.EarlyStopping(monitor=monitor, patience=3, restore_best_weights=True),
    )
    assert ok and monitor in line


@pytest.mark.parametrize(
    "answer, expected",
    [
        (keras.callbacks.EarlyStopping, "that is the class"),
        (
            keras.callbacks.ReduceLROnPlateau(),
            "expected a keras.callbacks.EarlyStopping",
        ),
        (
            keras.callbacks.EarlyStopping(monitor="loss", patience=3, restore_best_weights=True),
            "training set",
        ),
        (
            keras.callbacks.EarlyStopping(monitor="val_acc", patience=3, restore_best_weights=True),
            "not logged",
        ),
        (
            keras.callbacks.EarlyStopping(patience=3, mode="max", restore_best_weights=True),
            "wrong direction",
        ),
        (keras.callbacks.EarlyStopping(restore_best_weights=True), "patience=0"),
        (
            keras.callbacks.EarlyStopping(patience=50, restore_best_weights=True),
            "almost never stop",
        ),
        (
            keras.callbacks.EarlyStopping(patience=2.5, restore_best_weights=True),
            "whole number",
        ),
        (keras.callbacks.EarlyStopping(patience=3), "restore_best_weights=True"),
    ],
)
def test_early_stop_mistakes_are_explained(answer, expected):
    ok, line = verdict("07.3", answer)
    assert not ok and expected in line, line


# --------------------------------------------------------------------------- 08.1


def test_two_heads_reference_passes():
    ok, line = verdict("08.1", nb08.two_heads)
    assert ok and "against" in line


def heads_on(features, inputs, *, num_classes=5, activation="softmax", shared_head=False):
    head = keras.layers.Dense(num_classes, activation=activation)
    other = head if shared_head else keras.layers.Dense(num_classes, activation=activation)
    return keras.Model(inputs, [head(features), other(features)])


def two_bases(base):
    inputs = keras.Input((32, 32, 3))
    copy = models.tlnet(width=4, name="copy")
    return heads_on(keras.layers.Concatenate()([base(inputs), copy(inputs)]), inputs)


def own_base(base):
    inputs = keras.Input((32, 32, 3))
    return heads_on(models.tlnet(width=4, name="other")(inputs), inputs)


def frozen(base):
    base.trainable = False
    return nb08.two_heads(base)


@pytest.mark.parametrize(
    "answer, expected",
    [
        (
            lambda base: keras.Model(
                base.input, keras.layers.Dense(5, activation="softmax")(base.output)
            ),
            "needs two",
        ),
        (lambda base: nb08.two_heads(base, num_classes=3), "num_classes=5"),
        (two_bases, "two copies of the base"),
        (own_base, "does not use the base"),
        (
            lambda base: heads_on(base(keras.Input((32, 32, 3))), keras.Input((32, 32, 3))),
            "raised",
        ),
        (
            lambda base: (lambda i: heads_on(base(i), i, shared_head=True))(
                keras.Input((32, 32, 3))
            ),
            "share one head",
        ),
        (
            lambda base: (lambda i: heads_on(base(i), i, activation=None))(
                keras.Input((32, 32, 3))
            ),
            "softmax",
        ),
        (
            lambda base: (lambda i: heads_on(base(i, training=False), i))(keras.Input((32, 32, 3))),
            "training=False",
        ),
        (frozen, "frozen"),
        (lambda base: base, "1 output"),
    ],
)
def test_two_heads_mistakes_are_explained(answer, expected):
    ok, line = verdict("08.1", answer)
    assert not ok and expected in line, line


# --------------------------------------------------------------------------- 08.2


def recipe():
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))


def by_hand(features, y):
    from sklearn.model_selection import StratifiedKFold

    result = np.zeros((len(y), len(np.unique(y))))
    for fit_rows, held_out in StratifiedKFold(5, shuffle=True, random_state=0).split(features, y):
        result[held_out] = (
            recipe().fit(features[fit_rows], y[fit_rows]).predict_proba(features[held_out])
        )
    return result


@pytest.mark.parametrize("answer", [nb08.out_of_fold, by_hand])
def test_out_of_fold_reference_passes(answer):
    ok, line = verdict("08.2", answer)
    assert ok and "true out-of-fold" in line, line


def in_sample(features, y):
    return recipe().fit(features, y).predict_proba(features)


def in_sample_regularised(
    features, y
):  # in-sample, but too smooth to look perfect: thresholds alone missed it
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(C=0.002, max_iter=2000).fit(features, y).predict_proba(features)


def unshuffled_folds(features, y):
    from sklearn.model_selection import cross_val_predict

    return cross_val_predict(recipe(), features, y, cv=5, method="predict_proba")


def other_seed(features, y):
    return nb08.out_of_fold(features, y, seed=1)


def unscaled(features, y):
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    folds = StratifiedKFold(5, shuffle=True, random_state=0)
    return cross_val_predict(
        LogisticRegression(C=0.01, max_iter=2000),
        features,
        y,
        cv=folds,
        method="predict_proba",
    )


def half_in_sample(features, y):  # out of fold for half the rows only
    result = nb08.out_of_fold(features, y)
    result[::2] = in_sample(features, y)[::2]
    return result


def rows_reordered(features, y):
    return nb08.out_of_fold(features, y)[np.argsort(y, kind="stable")]


def scores_not_probabilities(features, y):
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import cross_val_predict

    return cross_val_predict(
        LogisticRegression(max_iter=2000), features, y, cv=5, method="decision_function"
    )


@pytest.mark.parametrize(
    "answer, expected",
    [
        (in_sample, "in-sample"),
        (in_sample_regularised, "not yet"),
        (half_in_sample, "in-sample"),
        (unshuffled_folds, "recipe the task asks for"),
        (other_seed, "recipe the task asks for"),
        (unscaled, "recipe the task asks for"),
        (rows_reordered, "its own row"),
        (scores_not_probabilities, "not probabilities"),
        (
            lambda features, y: nb08.out_of_fold(features, y).argmax(1),
            "expected (120, 4)",
        ),
        (lambda features, y: np.full((len(y), 4), np.nan), "NaN"),
        (lambda features, y: np.full((len(y), 4), 0.25), "not yet"),
    ],
)
def test_out_of_fold_wrong_answers_are_not_yet(answer, expected):
    ok, line = verdict("08.2", answer)
    assert not ok and "not yet" in line and expected in line, line


# --------------------------------------------------------------------------- 08.3


def test_next_token_pairs_reference_and_variants_pass():
    assert verdict("08.3", nb08.next_token_pairs)[0]

    def as_tuples(tokens):
        return tuple((tuple(tokens[:i]), tokens[i]) for i in range(1, len(tokens)))

    assert verdict("08.3", as_tuples)[0]

    def as_generator(tokens):
        return ((tokens[:i], tokens[i]) for i in range(1, len(tokens)))

    assert verdict("08.3", as_generator)[0]


@pytest.mark.parametrize(
    "answer, expected",
    [
        (lambda t: [(t[:i], t[i]) for i in range(len(t))], "empty prefix"),
        (lambda t: [(t[: i + 1], t[i]) for i in range(1, len(t))], "only copy"),
        (
            lambda t: [([t[i - 1]], t[i]) for i in range(1, len(t))],
            "only the previous word",
        ),
        (
            lambda t: [(t[:i] + t[i + 1 :], t[i]) for i in range(1, len(t))],
            "masked-word",
        ),
        (
            lambda t: [(t[:i], t[i]) for i in range(1, len(t))] if len(t) == 4 else [(["x"], "y")],
            "for []",
        ),
        (lambda t: [t[:i] for i in range(1, len(t))], "each item must be a pair"),
        (lambda t: [(["?"], w) for w in t], "expected"),
    ],
)
def test_next_token_pairs_mistakes_are_explained(answer, expected):
    ok, line = verdict("08.3", answer)
    assert not ok and expected in line, line
