"""Tests of the checkers of notebook 04 (domain shift and adaptation).

Every checker: the right answer passes, each typical mistake gets its own explanation, and
hostile answers (None, wrong types, NaN, functions that raise or loop) give a verdict instead of
an exception.
"""

import contextlib
import importlib
import io
import time

import keras
import numpy as np
import pytest
from keras import ops

from tltutor import adapt, exercises
from tltutor.checks import nb04

from checker_testing import VERDICT, Hostile, verdict  # noqa: F401


@pytest.fixture(scope="module", autouse=True)
def registered():
    """Register the checkers again: other test modules may have called exercises.reset()."""
    importlib.reload(nb04)
    yield


def hostile_result(*args):
    return Hostile()


def raises(*args):
    raise ValueError("broken on purpose")


def exits(*args):
    raise SystemExit(3)


def returns_nan(*args):
    return float("nan")


def returns_text(*args):
    return "0.5"


def returns_none(*args):
    return None


HOSTILE = [
    "linear_mmd",
    3,
    2.5,
    float("nan"),
    True,
    [],
    {},
    np.zeros(3),
    object(),
    Hostile(),
    keras.layers.Dense(2),
    raises,
    exits,
    returns_nan,
    returns_text,
    returns_none,
    hostile_result,
]
IDS = ["04.1", "04.2", "04.3"]


@pytest.mark.parametrize("exercise_id", IDS)
def test_none_is_not_attempted(exercise_id):
    ok, line = verdict(exercise_id, None)
    assert not ok and "not attempted" in line


@pytest.mark.parametrize("exercise_id", IDS)
@pytest.mark.parametrize("answer", HOSTILE, ids=[f"hostile{i}" for i in range(len(HOSTILE))])
def test_hostile_answers_get_a_verdict(exercise_id, answer):
    ok, line = verdict(exercise_id, answer)
    assert not ok and "not yet" in line


def test_a_function_that_loops_forever_times_out(monkeypatch):
    def slow(*args):
        while True:
            time.sleep(0.01)

    monkeypatch.setattr(nb04, "_call", lambda function, *args: _call_with_limit(function, *args))
    ok, line = verdict("04.1", slow)
    assert not ok and "longer than" in line


def _call_with_limit(function, *args):
    try:
        return exercises.call_with_timeout(function, *args, timeout=0.3), None
    except TimeoutError:
        return (
            None,
            "your function took longer than 0.3 s on a small example; is there an endless loop?",
        )


# --------------------------------------------------------------------------- 04.1


def linear_mmd(Fs, Ft):
    gap = Fs.mean(axis=0) - Ft.mean(axis=0)
    return float(gap @ gap)


def test_linear_mmd_correct():
    ok, line = verdict("04.1", linear_mmd)
    assert ok and "any size" in line
    assert verdict("04.1", lambda Fs, Ft: adapt.mmd(Fs, Ft, kernel="linear"))[
        0
    ]  # the package's version
    assert verdict("04.1", lambda Fs, Ft: np.float32(linear_mmd(Fs, Ft)))[0]  # any number type


@pytest.mark.parametrize(
    "answer, expected",
    [
        (lambda Fs, Ft: np.sqrt(linear_mmd(Fs, Ft)), "MMD² is its square"),
        (
            lambda Fs, Ft: float(np.mean((Fs.mean(0) - Ft.mean(0)) ** 2)),
            "averages the squared gaps",
        ),
        (lambda Fs, Ft: Fs.mean(0) - Ft.mean(0), "one number"),
        (lambda Fs, Ft: 0.0, "compare the mean feature vectors"),
        (lambda Fs, Ft: float(np.mean((Fs - Ft) ** 2)), "expected 5"),
        (
            lambda Fs, Ft: linear_mmd(Fs, Ft) if len(Fs) == len(Ft) else float(np.sum(Fs - Ft)),
            "need not have the same size",
        ),
        (lambda Fs, Ft: linear_mmd(Fs, Ft) + 1.0, "expected 5"),
        (returns_none, "one number"),
        (returns_nan, "divisions by zero"),
    ],
)
def test_linear_mmd_mistakes_are_explained(answer, expected):
    ok, line = verdict("04.1", answer)
    assert not ok and expected in line, line


# --------------------------------------------------------------------------- 04.2


def covariance(f, divisor_offset=1):
    n = ops.cast(ops.shape(f)[0], f.dtype)
    centred = f - ops.mean(f, axis=0, keepdims=True)
    return ops.matmul(ops.transpose(centred), centred) / (n - divisor_offset)


def coral(fs, ft):
    d = ops.shape(fs)[1]
    return ops.sum(ops.square(covariance(fs) - covariance(ft))) / (4 * d * d)


def test_coral_correct():
    ok, line = verdict("04.2", coral)
    assert ok and "keras tensors" in line
    assert verdict("04.2", adapt.coral_loss)[0]


@pytest.mark.parametrize(
    "answer, expected",
    [
        (lambda fs, ft: coral(fs, ft) * 4 * fs.shape[1] ** 2, "divide it by 4 d²"),
        (lambda fs, ft: coral(fs, ft) * fs.shape[1], "4 times too large"),
        (lambda fs, ft: coral(fs, ft) * 16, "16 times too large"),
        (
            lambda fs, ft: (
                ops.sum(ops.square(covariance(fs, 0) - covariance(ft, 0))) / (4 * fs.shape[1] ** 2)
            ),
            "divided by n - 1",
        ),
        (lambda fs, ft: ops.square(covariance(fs) - covariance(ft)), "one number"),
        (lambda fs, ft: ops.sum(ops.square(ops.mean(fs, 0) - ops.mean(ft, 0))), "expected 0.5"),
        (lambda fs, ft: np.cov(fs), "one number"),
        (lambda fs, ft: 1 / 0, "ZeroDivisionError"),
    ],
)
def test_coral_mistakes_are_explained(answer, expected):
    ok, line = verdict("04.2", answer)
    assert not ok and expected in line, line


def test_coral_that_ignores_the_means_wrongly():
    def uncentred(fs, ft):  # covariance without centring: the means leak in
        d = fs.shape[1]
        n_s, n_t = fs.shape[0], ft.shape[0]
        return ops.sum(
            ops.square(
                ops.matmul(ops.transpose(fs), fs) / (n_s - 1)
                - ops.matmul(ops.transpose(ft), ft) / (n_t - 1)
            )
        ) / (4 * d * d)

    ok, line = verdict("04.2", uncentred)
    assert not ok and "not centred" in line, line


# --------------------------------------------------------------------------- 04.3


def reverse_gradient(x, strength):
    return ops.stop_gradient(x * (1 + strength)) - strength * x


def test_reverse_gradient_correct():
    ok, line = verdict("04.3", reverse_gradient)
    assert ok and "-strength" in line


@pytest.mark.parametrize(
    "answer, expected",
    [
        (lambda x, strength: x, "nothing is reversed"),
        (lambda x, strength: ops.stop_gradient(x), "no gradient flows"),
        (lambda x, strength: ops.stop_gradient(2 * x) - x, "not scaled by strength"),
        (lambda x, strength: -x, "must not change anything"),
        (lambda x, strength: 2 * x, "unchanged"),
        (lambda x, strength: ops.sum(x), "shape"),
        (
            lambda x, strength: ops.stop_gradient(x * (1 + 2 * strength)) - 2 * strength * x,
            "must be -0.5",
        ),
        (lambda x, strength: np.asarray(x), "training through your function failed"),
    ],
)
def test_reverse_gradient_mistakes_are_explained(answer, expected):
    ok, line = verdict("04.3", answer)
    assert not ok and expected in line, line


def test_references_agree_with_the_package():
    rng = np.random.default_rng(0)
    fs, ft = rng.normal(size=(12, 3)), rng.normal(size=(9, 3))
    assert nb04.reference_coral(fs, ft) == pytest.approx(float(adapt.coral_loss(fs, ft)))
    assert nb04.reference_linear_mmd(fs, ft) == pytest.approx(adapt.mmd(fs, ft, kernel="linear"))


# --------------------------------------------------------------------------- quizzes 04.4 and 04.5


@pytest.mark.parametrize("quiz_id, right, wrong", [("04.4", 1, [0, 2, 3]), ("04.5", 2, [0, 1, 3])])
def test_quizzes_accept_only_the_right_option(quiz_id, right, wrong):
    importlib.reload(nb04)  # the keys live in the checker module
    with contextlib.redirect_stdout(io.StringIO()):
        assert exercises.quiz(quiz_id, choice=right, widget=False)
    for choice in wrong:
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            assert not exercises.quiz(quiz_id, choice=choice, widget=False)
        assert "not yet" in out.getvalue(), out.getvalue()
