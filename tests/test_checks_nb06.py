"""Tests of the checkers of notebook 06 (choosing a source model).

Every checker: the right answer passes, each typical mistake gets its own explanation, and
hostile answers (None, wrong types, NaN, functions that raise or hang) give a verdict instead
of an exception.
"""

import importlib
import time

import numpy as np
import pytest

from tltutor import metrics
from tltutor.checks import nb06

from checker_testing import VERDICT, Hostile, verdict  # noqa: F401


@pytest.fixture(scope="module", autouse=True)
def registered():
    """Register the checkers again: other test modules may have called exercises.reset()."""
    importlib.reload(nb06)
    yield


HOSTILE = [
    "h_score",
    3,
    2.5,
    float("nan"),
    True,
    [],
    {},
    np.zeros(3),
    object(),
    Hostile(),
]
IDS = ["06.1", "06.2"]


@pytest.mark.parametrize("exercise_id", IDS)
def test_none_is_not_attempted(exercise_id):
    ok, line = verdict(exercise_id, None)
    assert not ok and "not attempted" in line


@pytest.mark.parametrize("exercise_id", IDS)
@pytest.mark.parametrize("answer", HOSTILE, ids=lambda a: type(a).__name__)
def test_hostile_answers_get_a_verdict(exercise_id, answer):
    ok, line = verdict(exercise_id, answer)
    assert not ok and "not yet" in line and "expected a function" in line


def raises(*args):
    raise RuntimeError("broken on purpose")


def hangs(*args):
    time.sleep(8)


def returns_hostile(*args):
    return Hostile()


@pytest.mark.parametrize("exercise_id", IDS)
@pytest.mark.parametrize(
    "function, expected",
    [
        (raises, "raised RuntimeError: broken on purpose"),
        (hangs, "longer than 5 s"),
        (returns_hostile, "not yet"),
    ],
)
def test_functions_that_fail_get_a_verdict(exercise_id, function, expected):
    ok, line = verdict(exercise_id, function)
    assert not ok and expected in line, line


# --------------------------------------------------------------------------- 06.1


def reference_h_score(features, y):
    F = features - features.mean(axis=0)
    classes, index = np.unique(y, return_inverse=True)
    G = np.stack([F[index == i].mean(axis=0) for i in range(len(classes))])[index]
    return np.trace(np.linalg.pinv(F.T @ F / len(F)) @ (G.T @ G / len(F)))


def test_h_score_correct():
    ok, line = verdict("06.1", reference_h_score)
    assert ok and "4 cases" in line
    ok, _ = verdict("06.1", metrics.h_score)
    assert ok


def test_h_score_cases_are_hand_computed():
    values = [value for _, _, _, value in nb06.h_score_cases()]
    assert values[:2] == pytest.approx([0.8, 1.0])
    assert values[2] == pytest.approx(values[3])  # dead units change nothing


def uncentred(features, y):
    classes, index = np.unique(y, return_inverse=True)
    F = features - features.mean(axis=0)
    G = np.stack([F[index == i].mean(axis=0) for i in range(len(classes))])[index]
    return np.trace(np.linalg.pinv(features.T @ features / len(F)) @ (G.T @ G / len(F)))


def swapped(features, y):
    F = features - features.mean(axis=0)
    classes, index = np.unique(y, return_inverse=True)
    G = np.stack([F[index == i].mean(axis=0) for i in range(len(classes))])[index]
    return np.trace(np.linalg.pinv(G.T @ G / len(F)) @ (F.T @ F / len(F)))


def per_class(features, y):
    F = features - features.mean(axis=0)
    means = np.stack([F[y == c].mean(axis=0) for c in np.unique(y)])
    return np.trace(np.linalg.pinv(F.T @ F / len(F)) @ np.atleast_2d(np.cov(means.T, bias=True)))


def ddof(features, y):
    F = features - features.mean(axis=0)
    classes, index = np.unique(y, return_inverse=True)
    G = np.stack([F[index == i].mean(axis=0) for i in range(len(classes))])[index]
    return np.trace(np.linalg.pinv(np.atleast_2d(np.cov(F.T))) @ (G.T @ G / len(F)))


def with_inv(features, y):
    F = features - features.mean(axis=0)
    classes, index = np.unique(y, return_inverse=True)
    G = np.stack([F[index == i].mean(axis=0) for i in range(len(classes))])[index]
    return np.trace(np.linalg.inv(F.T @ F / len(F)) @ (G.T @ G / len(F)))


def returns_array(features, y):
    return np.full(3, reference_h_score(features, y))


@pytest.mark.parametrize(
    "function, expected",
    [
        (uncentred, "Centre the features"),
        (swapped, "inverse goes on the total covariance"),
        (per_class, "over *images*"),
        (ddof, "same normalisation"),
        (with_inv, "pinv"),
        (lambda F, y: -1.0, "never negative"),
        (lambda F, y: 0.5, "Check each step"),
        (lambda F, y: "0.8", "not one number"),
        (lambda F, y: float("nan"), "NaN"),
        (returns_array, "not one number"),
        (lambda F: 0.8, "raised TypeError"),
    ],
)
def test_h_score_mistakes_are_explained(function, expected):
    ok, line = verdict("06.1", function)
    assert not ok and expected in line, line


def test_h_score_no_inverse_is_explained():
    def no_inverse(features, y):
        F = features - features.mean(axis=0)
        classes, index = np.unique(y, return_inverse=True)
        G = np.stack([F[index == i].mean(axis=0) for i in range(len(classes))])[index]
        return np.trace(G.T @ G / len(F))

    ok, line = verdict("06.1", no_inverse)
    assert not ok and "scale" in line, line


def test_h_score_function_may_not_modify_shared_cases():
    def vandal(features, y):
        features[:] = 0
        return reference_h_score(features, y)

    verdict("06.1", vandal)
    ok, _ = verdict("06.1", reference_h_score)  # the cases are copied for every call
    assert ok


# --------------------------------------------------------------------------- 06.2


def regret(scores, accuracy, metric, k):
    shortlist = sorted(scores, key=lambda name: scores[name][metric], reverse=True)[:k]
    return max(accuracy.values()) - max(accuracy[name] for name in shortlist)


def test_shortlist_regret_correct():
    ok, line = verdict("06.2", regret)
    assert ok and "regret of every shortlist" in line, line


def test_shortlist_regret_reference_agrees_with_the_hand_worked_cases():
    for metric, k, expected in nb06.REGRET_CASES:
        assert np.isclose(
            nb06.shortlist_regret(nb06.REGRET_SCORES, nb06.REGRET_ACCURACY, metric, k),
            expected,
        )


def lowest(scores, accuracy, metric, k):
    shortlist = sorted(scores, key=lambda name: scores[name][metric])[:k]
    return max(accuracy.values()) - max(accuracy[name] for name in shortlist)


def kept(scores, accuracy, metric, k):
    return max(accuracy.values()) - regret(scores, accuracy, metric, k)


def first_pick_only(scores, accuracy, metric, k):
    return regret(scores, accuracy, metric, 1)


def kth_only(scores, accuracy, metric, k):
    ranked = sorted(scores, key=lambda name: scores[name][metric], reverse=True)
    return max(accuracy.values()) - accuracy[ranked[k - 1]]


def by_accuracy(scores, accuracy, metric, k):
    shortlist = sorted(accuracy, key=accuracy.get, reverse=True)[:k]
    return max(accuracy.values()) - max(accuracy[name] for name in shortlist)


def names(scores, accuracy, metric, k):
    return sorted(scores, key=lambda name: scores[name][metric], reverse=True)[:k]


def mutates(scores, accuracy, metric, k):
    accuracy.pop("digits")
    return regret(scores, accuracy, metric, k)


@pytest.mark.parametrize(
    "function, expected",
    [
        (lowest, "*lowest* scores"),
        (kept, "the candidate you keep"),
        (lambda *args: -regret(*args), "sign is reversed"),
        (lambda *args: 100 * regret(*args), "not percentage points"),
        (first_pick_only, "keeps only the score's first pick"),
        (kth_only, "the k-th candidate only"),
        (by_accuracy, "must come from the *score*"),
        (names, "return the regret, a number"),
        (lambda *args: None, "got None"),
        (mutates, "changed the tables"),
        (lambda scores, metric, k: 0.0, "raised TypeError"),
        (lambda *args: 0.5, "Check each step"),
    ],
)
def test_shortlist_regret_wrong_answers_are_not_yet(function, expected):
    ok, line = verdict("06.2", function)
    assert not ok and "not yet" in line and expected in line, line


def test_module_doctests():
    import doctest

    assert doctest.testmod(nb06).failed == 0
