"""Tests of the checkers of notebook 05 (negative transfer).

Every checker: the right answer passes, each typical mistake gets its own explanation, and
hostile answers (None, wrong types, NaN, functions that raise or hang) give a verdict
instead of an exception.
"""

import contextlib
import importlib
import io
import math
import time

import keras
import numpy as np
import pytest
from keras import ops

from tltutor import exercises
from tltutor.checks import nb05

from checker_testing import VERDICT, Hostile, verdict  # noqa: F401


@pytest.fixture(scope="module", autouse=True)
def registered():
    """Register the checkers again: other test modules may have called exercises.reset()."""
    importlib.reload(nb05)
    yield


HOSTILE = [
    "ntg",
    b"bytes",
    3,
    0.07,
    float("nan"),
    True,
    [],
    {},
    np.array([]),
    np.full(3, np.nan),
    object(),
    Hostile(),
    keras.layers.Dense(2),
]


def raises(*args):
    raise ZeroDivisionError("on purpose")


def returns_hostile(*args):
    return Hostile()


def returns_nan(*args):
    return float("nan")


def returns_text(*args):
    return "0.07"


def returns_none(*args):
    return None


def returns_bool(*args):
    return True


def exits(*args):
    raise SystemExit(1)


def hangs(*args):
    while True:
        pass


HOSTILE_FUNCTIONS = [
    raises,
    returns_hostile,
    returns_nan,
    returns_text,
    returns_none,
    returns_bool,
    exits,
]


@pytest.mark.parametrize("exercise_id", ["05.1", "05.2"])
def test_none_is_not_attempted(exercise_id):
    ok, line = verdict(exercise_id, None)
    assert not ok and "not attempted" in line


@pytest.mark.parametrize("exercise_id", ["05.1", "05.2"])
@pytest.mark.parametrize("answer", HOSTILE, ids=lambda a: type(a).__name__)
def test_hostile_answers_get_a_verdict(exercise_id, answer):
    ok, line = verdict(exercise_id, answer)
    assert not ok and "not yet" in line


@pytest.mark.parametrize("exercise_id", ["05.1", "05.2"])
@pytest.mark.parametrize("function", HOSTILE_FUNCTIONS, ids=lambda f: f.__name__)
def test_hostile_functions_get_a_verdict(exercise_id, function):
    ok, line = verdict(exercise_id, function)
    assert not ok and "not yet" in line


def test_a_function_that_hangs_is_stopped(monkeypatch):
    monkeypatch.setattr(nb05, "TIMEOUT", 0.5)
    start = time.perf_counter()
    ok, line = verdict("05.1", hangs)
    assert not ok and "longer than" in line
    assert time.perf_counter() - start < 5


# --------------------------------------------------------------------------- 05.1


def test_reference_ntg():
    assert math.isclose(nb05.reference_ntg(0.48, 0.55), 0.07)
    assert math.isclose(nb05.reference_ntg(0.75, 0.55), -0.20)


@pytest.mark.parametrize(
    "answer",
    [
        lambda acc_transfer, acc_scratch: (1 - acc_transfer) - (1 - acc_scratch),
        lambda acc_transfer, acc_scratch: acc_scratch - acc_transfer,
        lambda acc_transfer, acc_scratch: np.float32(acc_scratch) - np.float64(acc_transfer),
        lambda acc_transfer, acc_scratch: np.array([acc_scratch - acc_transfer]),
        lambda acc_transfer, acc_scratch: ops.convert_to_tensor(
            acc_scratch - acc_transfer, dtype="float64"
        ),
    ],
)
def test_ntg_correct(answer):
    ok, line = verdict("05.1", answer)
    assert ok and "correct" in line, line


@pytest.mark.parametrize(
    "answer, expected",
    [
        (lambda t, s: t - s, "accuracy gap"),
        (lambda t, s: 100 * (s - t), "percentage points"),
        (lambda t, s: abs(s - t), "without its sign"),
        (lambda t, s: 1 - t, "error alone"),
        (lambda t, s: t / s, "ratio"),
        (lambda t, s: 0.0, "expected +0.07"),
        (lambda t, s: [s - t, 0.0], "one number"),
        (lambda t: t, "raised TypeError"),
    ],
)
def test_ntg_mistakes_are_explained(answer, expected):
    ok, line = verdict("05.1", answer)
    assert not ok and expected in line, line


# --------------------------------------------------------------------------- 05.2


def test_reference_l2sp_penalty_passes_its_own_check():
    assert float(
        ops.convert_to_numpy(nb05.reference_l2sp_penalty(np.array([1.0, 2.0]), np.zeros(2), 0.1))
    ) == pytest.approx(0.25)
    ok, line = verdict("05.2", nb05.reference_l2sp_penalty)
    assert ok, line


def test_reference_ntg_passes_its_own_check():
    ok, line = verdict("05.1", nb05.reference_ntg)
    assert ok, line


def test_l2sp_correct():
    def l2sp_penalty(weights, start, alpha):
        return alpha / 2 * ops.sum(ops.square(weights - start))

    ok, line = verdict("05.2", l2sp_penalty)
    assert ok and "correct" in line, line


def test_l2sp_correct_written_differently():
    def l2sp_penalty(weights, start, alpha):
        gap = ops.reshape(weights - start, (-1,))
        return 0.5 * alpha * ops.dot(gap, gap)

    ok, line = verdict("05.2", l2sp_penalty)
    assert ok, line


@pytest.mark.parametrize(
    "answer, expected",
    [
        (lambda w, w0, a: a * ops.sum(ops.square(w - w0)), "factor 1/2"),
        (lambda w, w0, a: a / 2 * ops.mean(ops.square(w - w0)), "do not average"),
        (lambda w, w0, a: a / 2 * ops.sum(ops.square(w)), "plain weight decay"),
        (lambda w, w0, a: a / 2 * ops.sum(ops.abs(w - w0)), "L1 distance"),
        (lambda w, w0, a: a / 2 * ops.sqrt(ops.sum(ops.square(w - w0))), "not squared"),
        (lambda w, w0, a: a / 2 * ops.sum(w - w0), "cancel"),
        (lambda w, w0, a: a / 2 * ops.sum(ops.square(w) - ops.square(w0)), "*difference*"),
        (lambda w, w0, a: ops.sum(ops.square(w - w0)), "without alpha"),
        (lambda w, w0, a: a / 2 * ops.square(w - w0), "one value per weight"),
        (lambda w, w0, a: 1.0, "expected"),
        (lambda w, w0, a: ops.stop_gradient(a / 2 * ops.sum(ops.square(w - w0))), "no gradient"),
    ],
)
def test_l2sp_mistakes_are_explained(answer, expected):
    ok, line = verdict("05.2", answer)
    assert not ok and expected in line, line


def test_l2sp_in_numpy_is_explained():
    """Right numbers in eager mode, but NumPy cannot run inside the compiled training step."""

    def l2sp_penalty(weights, start, alpha):
        gap = np.asarray(weights) - np.asarray(start)
        return float(alpha / 2 * np.sum(gap**2))

    ok, line = verdict("05.2", l2sp_penalty)
    assert not ok and ("keras.ops" in line or "no gradient" in line), line


# --------------------------------------------------------------------------- quizzes 05.q1 and 05.q2


@pytest.mark.parametrize(
    "quiz_id, right, wrong",
    [
        ("05.q1", 2, [0, 1, 3]),
        ("05.q2", {1, 3}, [{0, 1, 3}, {1}, {3}, {2, 3}, {0}, {1, 2, 3}]),
    ],
)
def test_quizzes_accept_only_the_right_options(quiz_id, right, wrong):
    with contextlib.redirect_stdout(io.StringIO()):
        assert exercises.quiz(quiz_id, choice=right, widget=False)
    for choice in wrong:
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            assert not exercises.quiz(quiz_id, choice=choice, widget=False)
        assert "not yet" in out.getvalue(), out.getvalue()
