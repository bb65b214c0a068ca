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


def transfer_verdict(acc_transfer, acc_scratch, n_test):
    """The notebook's solution."""
    ntg = (1 - acc_transfer) - (1 - acc_scratch)
    se_transfer = (acc_transfer * (1 - acc_transfer) / n_test) ** 0.5
    se_scratch = (acc_scratch * (1 - acc_scratch) / n_test) ** 0.5
    se_diff = (se_transfer**2 + se_scratch**2) ** 0.5
    if ntg > 2 * se_diff:
        return ntg, "negative transfer"
    if ntg < -2 * se_diff:
        return ntg, "positive transfer"
    return ntg, "no clear difference"


def with_threshold(threshold, gap=lambda t, s: s - t, names=nb05.VERDICTS):
    """A verdict function that calls a gap evidence beyond threshold(t, s, n)."""

    def answer(t, s, n):
        ntg, limit = gap(t, s), threshold(t, s, n)
        return ntg, names[0] if ntg > limit else names[1] if ntg < -limit else names[2]

    return answer


def se(a, n):
    return math.sqrt(a * (1 - a) / n)


def se_diff(t, s, n):
    return math.sqrt(se(t, n) ** 2 + se(s, n) ** 2)


def test_reference_ntg():
    assert math.isclose(nb05.reference_ntg(0.48, 0.55), 0.07)
    assert math.isclose(nb05.reference_ntg(0.75, 0.55), -0.20)


def test_reference_transfer_verdict():
    gap, verdict = nb05.reference_transfer_verdict(0.478, 0.545, 1000)
    assert math.isclose(gap, 0.067) and verdict == "negative transfer"
    assert nb05.reference_transfer_verdict(0.741, 0.545, 1000)[1] == "positive transfer"
    assert nb05.reference_transfer_verdict(0.555, 0.545, 1000)[1] == "no clear difference"
    assert nb05.reference_transfer_verdict(0.525, 0.55, 1000)[1] == "no clear difference"
    assert nb05.reference_transfer_verdict(0.525, 0.55, 5000)[1] == "negative transfer"


def test_reference_transfer_verdict_passes_its_own_check():
    ok, line = verdict("05.1", nb05.reference_transfer_verdict)
    assert ok and "correct" in line, line


def test_the_cases_tell_every_mistake_apart():
    """Each mistake's verdicts differ from the right ones and from every other mistake's."""
    cases = nb05._VERDICT_CASES
    right = tuple(nb05.reference_transfer_verdict(*case)[1] for case in cases)
    patterns = [tuple(rule(*case) for case in cases) for rule, _ in nb05._VERDICT_MISTAKES]
    assert right not in patterns
    assert len(set(patterns)) == len(patterns)
    for t, s, n in cases:  # no case near the rule's threshold: 1.96 or a pooled accuracy pass too
        assert abs(abs(s - t) / se_diff(t, s, n) - 2) > 0.25, (t, s, n)


@pytest.mark.parametrize(
    "answer",
    [
        transfer_verdict,
        with_threshold(lambda t, s, n: 1.96 * se_diff(t, s, n)),
        with_threshold(lambda t, s, n: 2 * math.sqrt(2 * (t + s) / 2 * (1 - (t + s) / 2) / n)),
        lambda t, s, n: list(transfer_verdict(t, s, n)),
        lambda t, s, n: (np.float32(s) - np.float64(t), transfer_verdict(t, s, n)[1]),
        lambda t, s, n: (
            ops.convert_to_tensor(s - t, dtype="float64"),
            transfer_verdict(t, s, n)[1],
        ),
        lambda t, s, n: (np.array([s - t]), np.str_(transfer_verdict(t, s, n)[1])),
    ],
    ids=["solution", "1.96", "pooled", "list", "numpy", "tensor", "arrays"],
)
def test_transfer_verdict_correct(answer):
    ok, line = verdict("05.1", answer)
    assert ok and "correct" in line, line


def right_verdict(t, s, n):
    return nb05.reference_transfer_verdict(t, s, n)[1]


@pytest.mark.parametrize(
    "answer, expected",
    [
        # the gap itself
        (lambda t, s, n: (t - s, right_verdict(t, s, n)), "accuracy gap"),
        (
            with_threshold(lambda t, s, n: 2 * se_diff(t, s, n), gap=lambda t, s: t - s),
            "accuracy gap",
        ),
        (lambda t, s, n: (100 * (s - t), right_verdict(t, s, n)), "percentage points"),
        (
            with_threshold(lambda t, s, n: 2 * se_diff(t, s, n), gap=lambda t, s: 100 * (s - t)),
            "percentage points",
        ),
        (lambda t, s, n: (abs(s - t), right_verdict(t, s, n)), "without its sign"),
        (lambda t, s, n: (1 - t, right_verdict(t, s, n)), "error alone"),
        (lambda t, s, n: (0.0, right_verdict(t, s, n)), "expected +0.067"),
        # the decision
        (with_threshold(lambda t, s, n: 0.0), "every nonzero gap"),
        (with_threshold(lambda t, s, n: 2 * (se(t, n) ** 2 + se(s, n) ** 2)), "every nonzero gap"),
        (with_threshold(lambda t, s, n: se_diff(t, s, n)), "one standard error of the difference"),
        (with_threshold(lambda t, s, n: 2 * se(t, n)), "one accuracy's standard error"),
        (with_threshold(lambda t, s, n: 2 * se(s, n)), "one accuracy's standard error"),
        (with_threshold(lambda t, s, n: 2 * (se(t, n) + se(s, n))), "add the two standard errors"),
        (with_threshold(lambda t, s, n: 2 * se_diff(t, s, 1000)), "does not depend on n_test"),
        (lambda t, s, n: (s - t, "no clear difference"), "never finds a difference"),
        (
            with_threshold(
                lambda t, s, n: 2 * se_diff(t, s, n),
                names=("positive transfer", "negative transfer", "no clear difference"),
            ),
            "swapped",
        ),
        (lambda t, s, n: (s - t, "negative transfer"), "only a gap beyond 2 se_diff"),
        # the verdict's text and type
        (
            with_threshold(
                lambda t, s, n: 2 * se_diff(t, s, n),
                names=("Negative transfer", "Positive transfer", "No clear difference"),
            ),
            "spell it exactly 'negative transfer'",
        ),
        (
            with_threshold(
                lambda t, s, n: 2 * se_diff(t, s, n),
                names=("negative_transfer", "positive_transfer", "no_clear_difference"),
            ),
            "spell it exactly",
        ),
        (
            with_threshold(
                lambda t, s, n: 2 * se_diff(t, s, n), names=("negative", "positive", "none")
            ),
            "not one of the three",
        ),
        (
            with_threshold(
                lambda t, s, n: 2 * se_diff(t, s, n),
                names=("negative transfer", "positive transfer", "no difference"),
            ),
            "not one of the three",
        ),
        (
            with_threshold(lambda t, s, n: 2 * se_diff(t, s, n), names=(True, False, None)),
            "should be the text",
        ),
        (
            with_threshold(lambda t, s, n: 2 * se_diff(t, s, n), names=(1, -1, 0)),
            "should be the text",
        ),
        # the shape of the result
        (lambda t, s, n: s - t, "returns one number"),
        (lambda t, s, n: right_verdict(t, s, n), "only the verdict"),
        (lambda t, s, n: (right_verdict(t, s, n), s - t), "in that order"),
        (lambda t, s, n: (s - t, right_verdict(t, s, n), n), "return the pair"),
        (lambda t, s, n: {"ntg": s - t, "verdict": right_verdict(t, s, n)}, "return the pair"),
        (lambda t, s, n: (None, right_verdict(t, s, n)), "should be one number"),
        # functions that fail
        (lambda t, s: (s - t, "negative transfer"), "raised TypeError"),
        (raises, "raised ZeroDivisionError"),
    ],
)
def test_transfer_verdict_mistakes_are_explained(answer, expected):
    ok, line = verdict("05.1", answer)
    assert not ok and "not yet" in line and expected in line, line


# --------------------------------------------------------------------------- 05.2


def test_reference_l2sp_penalty_passes_its_own_check():
    assert float(
        ops.convert_to_numpy(nb05.reference_l2sp_penalty(np.array([1.0, 2.0]), np.zeros(2), 0.1))
    ) == pytest.approx(0.25)
    ok, line = verdict("05.2", nb05.reference_l2sp_penalty)
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
