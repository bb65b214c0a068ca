"""Tests of tltutor.exercises: verdicts, hostile answers, time limits, widget panels."""

import contextlib
import io
import re
import threading
import time

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from tltutor import exercises

VERDICT = re.compile(r"^\[(ex|quiz) [\w.-]+\] (correct|not yet|not attempted): \S[^\n]*$")


@pytest.fixture(autouse=True)
def clean_registry():
    exercises.reset()
    yield
    exercises.reset()


def run(func, *args, **kwargs):
    """Call func and return (its result, the verdict line it printed last).

    A check prints one line; a quiz first prints its question and numbered options.
    """
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        result = func(*args, **kwargs)
    lines = out.getvalue().splitlines()
    assert len(lines) == 1 or func in (exercises.quiz, exercises.match), lines
    assert VERDICT.match(lines[-1]), lines[-1]
    assert all(" at 0x" not in line for line in lines)
    return result, lines[-1]


def register_squares(**kwargs):
    @exercises.exercise("t.1", "Squares", name="answer", hints=["one", "two", "three"], **kwargs)
    def check_squares(answer):
        ok, message = exercises.expect_array(answer, shape=(3,), dtype_kind="iuf")
        if not ok:
            return ok, message
        return bool(np.array_equal(answer, [0, 1, 4])), "the squares of 0, 1, 2."

    return check_squares


class Hostile:
    """Every protocol a checker might touch raises."""

    def __eq__(self, other):
        raise RuntimeError("no comparing")

    __ne__ = __lt__ = __gt__ = __eq__
    __hash__ = object.__hash__

    def __len__(self):
        raise RuntimeError("no len")

    def __iter__(self):
        raise RuntimeError("no iter")

    def __array__(self, *args, **kwargs):
        raise RuntimeError("no array")

    def __bool__(self):
        raise RuntimeError("no bool")

    def __float__(self):
        raise RuntimeError("no float")

    def __repr__(self):
        raise RuntimeError("no repr")

    __str__ = __repr__


class Recursive:
    def __repr__(self):
        return repr(self)

    def __array__(self, *args, **kwargs):
        return np.asarray(self)


HOSTILE = [
    Hostile(),
    Recursive(),
    np.broadcast_to(np.float32(0.0), (10**6, 10**6)),  # 10**12 elements, no memory
    np.array([1.0, np.nan, np.inf]),
    np.array(["1", "2", "3"]),
    np.array([object(), None, 3], dtype=object),
    [[1, 2], [3]],
    10**400,
    float("nan"),
    "[0, 1, 4]",
    {"a": 1},
    print,
    lambda x: x,
    type,
    Exception("boom"),
    b"\x00\xff",
    1 + 2j,
]


# ------------------------------------------------------------------ verdicts


def test_correct_wrong_and_not_attempted():
    register_squares()
    assert run(exercises.check, "t.1", np.array([0, 1, 4]), widget=False) == (
        True,
        "[ex t.1] correct: the squares of 0, 1, 2.",
    )
    ok, line = run(exercises.check, "t.1", [0, 1, 5], widget=False)
    assert not ok and line.startswith("[ex t.1] not yet: ")
    ok, line = run(exercises.check, "t.1", None, widget=False)
    assert not ok and line.startswith("[ex t.1] not attempted: ")
    ok, line = run(exercises.check, "t.1", [0, 1], widget=False)
    assert line == "[ex t.1] not yet: the array has shape (2,); expected (3,)."


@pytest.mark.parametrize("answer", HOSTILE, ids=lambda a: type(a).__name__)
def test_hostile_answers_give_a_verdict(answer):
    register_squares()

    @exercises.exercise("t.2", "Anything goes")
    def check_equal(answer):
        return answer == 3, "compared"  # a naive checker: == may raise or give an array

    for exercise_id in ("t.1", "t.2"):
        ok, line = run(exercises.check, exercise_id, answer, widget=False)
        assert not ok
    for helper, accepts in (
        (lambda a: exercises.expect_array(a, shape=(3,), dtype_kind="f"), False),
        (exercises.expect_number, False),
        (exercises.expect_callable, callable(answer)),  # print, a lambda and type are functions
        (lambda a: exercises.expect_callable(a, args=(1,), timeout=1.0), callable(answer)),
        (lambda a: exercises.expect_model(a, input_shape=(4,), num_outputs=2), False),
    ):
        ok, message = helper(answer)
        assert ok is accepts and isinstance(message, str) and message


def test_array_messages_explain_the_problem():
    huge = np.broadcast_to(np.float32(0.0), (10**6, 10**6))
    assert exercises.expect_array(huge)[1] == (
        "the array is too large: 1,000,000,000,000 elements (at most 10,000,000)."
    )
    ok, message = exercises.expect_array(np.array([1.0, np.nan, 2.0]))
    assert not ok and "1 NaN value out of 3" in message
    ok, message = exercises.expect_array(np.array([1.0, np.inf]))
    assert not ok and "infinite" in message
    ok, message = exercises.expect_array(np.array(["0.5", "1"]), dtype_kind="f")
    assert not ok and "text" in message and "float32" in message
    ok, message = exercises.expect_array([[1, 2], [3]])
    assert not ok and "cannot be turned into a NumPy array" in message
    ok, message = exercises.expect_array(np.zeros((2, 5)), shape=(None, 10))
    assert message == "the array has shape (2, 5); expected (any, 10)."
    assert exercises.expect_array(np.zeros((7, 10)), shape=(None, 10))[0]
    assert exercises.expect_array(np.array([np.nan]), finite=False)[0]


def test_number_messages():
    assert exercises.expect_number(np.float32(0.25), 0, 1) == (True, "0.25 is between 0 and 1.")
    assert exercises.expect_number(np.array(3), 0, 5)[0]
    assert exercises.expect_number(True)[1] == "expected a number; got the bool True."
    assert "NaN" in exercises.expect_number(float("nan"))[1]
    assert "infinite" in exercises.expect_number(float("inf"))[1]
    assert "outside the expected range" in exercises.expect_number(2, 0, 1)[1]
    assert "too large" in exercises.expect_number(10**400)[1]
    assert exercises.expect_number([1, 2])[1].startswith("expected a number; got a list")


def test_student_function_errors_are_reported():
    def divide(x):
        return x / 0

    def recurse(x):
        return recurse(x)

    def leave(x):
        raise SystemExit(3)

    assert (
        exercises.expect_callable(divide, args=(1,))[1]
        == "divide raised ZeroDivisionError: division by zero."
    )
    assert "RecursionError" in exercises.expect_callable(recurse, args=(1,))[1]
    assert "SystemExit" in exercises.expect_callable(leave, args=(1,))[1]
    assert "cannot" not in exercises.expect_callable(len, args=("ab",))[1]

    @exercises.exercise("t.3", "Call it")
    def check_call(answer):
        return exercises.call_with_timeout(answer, 2, timeout=1.0) == 4, "f(2) should be 4."

    for function in (divide, recurse, leave):
        ok, line = run(exercises.check, "t.3", function, widget=False)
        assert line.startswith("[ex t.3] not yet: your answer raised ")
    assert run(exercises.check, "t.3", lambda x: x * x, widget=False)[0]


def test_time_limit_stops_slow_functions():
    def sleepy(x):
        time.sleep(3)

    def spin(x):
        while True:
            pass

    start = time.perf_counter()
    assert exercises.expect_callable(sleepy, args=(1,), timeout=0.2) == (
        False,
        "sleepy took longer than 0.2 s on a small example; is there an endless loop?",
    )
    assert exercises.expect_callable(spin, args=(1,), timeout=0.2)[1].startswith(
        "spin took longer than 0.2 s"
    )

    @exercises.exercise("t.4", "Slow checker")
    def check_slowly(answer):
        return answer(1), "ran"

    ok, line = run(exercises.check, "t.4", spin, widget=False, timeout=0.3)
    assert line == (
        "[ex t.4] not yet: your answer took longer than 0.3 s to check; "
        "is there an endless loop, or is it too large?"
    )
    assert time.perf_counter() - start < 2.5
    # the busy loops were asked to stop; only the sleeping thread may still run
    deadline = time.monotonic() + 2
    while time.monotonic() < deadline and _busy_workers() > 1:
        time.sleep(0.05)
    assert _busy_workers() <= 1


def _busy_workers():
    return sum(t.name == "tltutor-check" and t.is_alive() for t in threading.enumerate())


def test_keras_models():
    keras = pytest.importorskip("keras")
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    ok, message = exercises.expect_model(model, input_shape=(4,), num_outputs=2)
    assert not ok and "(None, 3)" in message and "Dense(2)" in message
    assert exercises.expect_model(model, input_shape=(4,), num_outputs=3)[0]
    assert exercises.expect_model(model, num_outputs=3)[0]
    ok, message = exercises.expect_model(model, input_shape=(5,), num_outputs=3)
    assert not ok and "cannot take inputs of shape (None, 5)" in message
    ok, message = exercises.expect_model(model, input_shape=(4,), compiled=True)
    assert not ok and "not compiled" in message
    model.compile(optimizer="adam", loss="mse")
    assert exercises.expect_model(model, input_shape=(4,), compiled=True)[0]
    ok, message = exercises.expect_model(keras.layers.Dense(2))
    assert not ok and "wrap it" in message
    assert exercises.expect_model(3)[1] == "expected a keras.Model; got an int (3)."
    ok, message = exercises.expect_model(keras.Sequential([keras.layers.Dense(2)]), num_outputs=2)
    assert not ok and "not built" in message


def test_checker_results_and_author_errors():
    @exercises.exercise("t.5", "Bare bool")
    def check_bool(answer):
        return answer == 1

    @exercises.exercise("t.6", "Array as ok")
    def check_array_ok(answer):
        return np.asarray(answer) == 1, "compared"

    @exercises.exercise("t.7", "Broken checker")
    def check_broken(answer):
        return "yes"

    assert run(exercises.check, "t.5", 1, widget=False) == (True, "[ex t.5] correct: well done.")
    assert (
        run(exercises.check, "t.5", 2, widget=False)[1]
        == "[ex t.5] not yet: not quite; try a hint."
    )
    assert "ValueError" in run(exercises.check, "t.6", [1, 2], widget=False)[1]
    with pytest.raises(TypeError, match="must return"):
        exercises.check("t.7", 1, widget=False)
    with pytest.raises(ValueError, match="no exercise 'nope.1'"):
        exercises.check("nope.1", 1)
    with pytest.raises(ValueError, match="exercise id"):
        exercises.exercise("no-dot", "Title")
    with pytest.raises(ValueError, match="timeout"):
        exercises.check("t.5", 1, timeout=0)
    with pytest.raises(TypeError, match="pass the answer"):
        exercises.check("t.5", widget=False)


def test_missing_variable_and_namespace(monkeypatch):
    register_squares()
    namespace = {}
    monkeypatch.setattr(exercises, "_user_namespace", lambda: namespace)
    ok, line = run(exercises.check, "t.1", widget=False)
    assert (
        line
        == "[ex t.1] not attempted: there is no variable `answer` yet; run the exercise cell above first."
    )
    namespace["answer"] = np.array([0, 1, 4])
    assert run(exercises.check, "t.1", widget=False)[0]


def define_quizzes():
    options = ["features", "fine-tuning", "scratch"]
    exercises.define_quiz(
        "t.q1",
        question="Q?",
        options=options,
        answer=1,
        explanation="Because.",
        why=["W0", "", "W2"],
    )
    exercises.define_quiz(
        "t.q2", question="Q2?", options=options, answer={0, 2}, explanation="Both."
    )
    exercises.define_match("t.m1", pairs={"a": "first", "b": "second"})


def test_quiz_and_match_verdicts():
    define_quizzes()
    quiz = dict(widget=False)
    assert run(exercises.quiz, "t.q1", choice=1, **quiz) == (True, "[quiz t.q1] correct: Because.")
    assert run(exercises.quiz, "t.q1", choice="fine-tuning", **quiz)[0]
    assert (
        run(exercises.quiz, "t.q1", choice=0, **quiz)[1]
        == "[quiz t.q1] not yet: option 0 ('features') is not right. W0"
    )
    assert "numbered 0 to 2" in run(exercises.quiz, "t.q1", choice=7, **quiz)[1]
    assert "choose one option" in run(exercises.quiz, "t.q1", choice={0, 1}, **quiz)[1]
    assert "not attempted" in run(exercises.quiz, "t.q1", **quiz)[1]
    assert run(exercises.quiz, "t.q2", choice=[2, "features"], **quiz)[0]
    assert run(exercises.quiz, "t.q2", choice={0, 1}, **quiz)[1] == (
        "[quiz t.q2] not yet: 1 of your choices is not right and 1 right option is missing."
    )
    assert run(exercises.match, "t.m1", choices={"a": "first", "b": "second"}, widget=False) == (
        True,
        "[quiz t.m1] correct: both terms matched.",
    )
    assert run(exercises.match, "t.m1", choices={"a": 0, "b": 1}, widget=False)[
        0
    ]  # numbers of the printed list
    assert run(exercises.match, "t.m1", choices={"a": "second", "b": "second"}, widget=False)[
        1
    ] == ("[quiz t.m1] not yet: 1 of 2 terms matched; look again at 'a'.")
    assert "must be a dict" in run(exercises.match, "t.m1", choices=["first"], widget=False)[1]
    assert "not attempted" in run(exercises.match, "t.m1", choices={}, widget=False)[1]


def test_a_quiz_shows_its_question_and_numbered_options():
    define_quizzes()
    with contextlib.redirect_stdout(io.StringIO()) as out:
        exercises.quiz("t.q2", widget=False)
        exercises.match("t.m1", widget=False)
    assert out.getvalue().splitlines() == [
        "[quiz t.q2] Q2?",
        "  0: features",
        "  1: fine-tuning",
        "  2: scratch",
        "  (several options are right: choose a set of numbers, such as {0, 2})",
        "[quiz t.q2] not attempted: choose an answer and press Check (or set choice in the cell and run it).",
        "[quiz t.m1] Match each term to its definition.",
        "  terms: 'a', 'b'",
        "  definitions:",
        "  0: first",
        "  1: second",
        "[quiz t.m1] not attempted: pick a definition for each term and press Check (or set choices in the cell "
        "and run it).",
    ]


def test_quiz_definitions_are_checked_and_undefined_quizzes_named():
    with pytest.raises(ValueError, match="no quiz 't.q9' is defined.*define_quiz"):
        exercises.quiz("t.q9", choice=1)
    with pytest.raises(ValueError, match="no matching quiz 't.m9'"):
        exercises.match("t.m9", choices={})
    with pytest.raises(ValueError, match="answer must be an option number 0 to 1"):
        exercises.define_quiz("t.q1", question="Q?", options=["a", "b"], answer=2, explanation="")
    with pytest.raises(ValueError, match="one string per option"):
        exercises.define_quiz(
            "t.q1", question="Q?", options=["a", "b"], answer=1, explanation="", why=["x"]
        )
    with pytest.raises(ValueError, match="share one"):
        exercises.define_match("t.m1", pairs={"a": "x", "b": "x"})
    with pytest.raises(
        TypeError, match="positional argument"
    ):  # keys belong in define_quiz, not in the call
        exercises.quiz("t.q1", "Q?", ["a"], 0)


def test_the_progress_total_counts_every_defined_quiz_from_the_start():
    define_quizzes()
    register_squares()
    assert exercises.progress("t") == "0 / 4 exercises done in notebook t"
    run(exercises.quiz, "t.q1", choice=1, widget=False)
    assert exercises.progress("t") == "1 / 4 exercises done in notebook t"


def test_progress_and_answer_or():
    register_squares()
    exercises.exercise("t.9", "Other")(lambda answer: True)
    exercises.define_quiz("u.q1", question="Q?", options=["a", "b"], answer=0, explanation="A.")
    run(exercises.quiz, "u.q1", choice=0, widget=False)
    assert exercises.progress("t") == "0 / 2 exercises done in notebook t"
    assert exercises.answer_or(None, 5) == 5
    with contextlib.redirect_stdout(io.StringIO()) as out:
        assert exercises.answer_or([0, 1, 5], "reference", exercise_id="t.1") == "reference"
    assert out.getvalue() == (
        "[ex t.1] using the reference answer (yours has not passed its check) so the notebook can go on.\n"
    )
    run(exercises.check, "t.1", [0, 1, 4], widget=False)
    assert exercises.answer_or([0, 1, 4], "reference", exercise_id="t.1") == [0, 1, 4]
    assert exercises.progress("t") == "1 / 2 exercises done in notebook t"
    assert exercises.progress() == "2 / 3 exercises done"
    run(exercises.check, "t.1", [0, 1, 5], widget=False)  # a later wrong answer counts
    assert exercises.progress("t") == "0 / 2 exercises done in notebook t"
    with pytest.raises(ValueError, match="no exercise"):
        exercises.answer_or(None, 1, exercise_id="t.404")


# ------------------------------------------------------------------- property tests

anything = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.complex_numbers(),
    st.text(max_size=20),
    st.binary(max_size=20),
    st.fractions(),
    st.decimals(),
    st.lists(st.one_of(st.integers(), st.floats(), st.text(max_size=3)), max_size=6),
    st.lists(st.lists(st.integers(), max_size=3), max_size=3),
    st.dictionaries(st.text(max_size=5), st.one_of(st.integers(), st.text(max_size=5)), max_size=4),
    st.sets(st.integers(), max_size=4),
    st.tuples(st.integers(), st.text(max_size=3)),
    hnp.arrays(
        dtype=st.one_of(hnp.scalar_dtypes(), hnp.unicode_string_dtypes(), hnp.byte_string_dtypes()),
        shape=hnp.array_shapes(min_dims=0, max_dims=3, max_side=4),
    ),
    st.integers(0, len(HOSTILE) - 1).map(lambda i: HOSTILE[i]),  # Hypothesis cannot repr Hostile()
    st.from_type(type),
)

PROPERTY = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPERTY
@given(answer=anything)
def test_helpers_always_give_a_verdict(answer):
    for ok, message in (
        exercises.expect_array(answer),
        exercises.expect_array(answer, shape=(None, 2), dtype_kind="f"),
        exercises.expect_number(answer, 0, 1),
        exercises.expect_callable(answer),
        exercises.expect_model(answer, input_shape=(2,), num_outputs=1),
    ):
        assert isinstance(ok, bool) and isinstance(message, str) and message
    assert exercises.expect_callable(answer)[0] is callable(answer)
    assert exercises.expect_model(answer)[0] is False  # none of these is a keras.Model


@PROPERTY
@given(answer=anything, choice=anything, choices=anything)
def test_checks_always_give_a_verdict(answer, choice, choices):
    register_squares()
    define_quizzes()
    ok, line = run(exercises.check, "t.1", answer, widget=False)
    assert isinstance(ok, bool) and ok is line.startswith(
        "[ex t.1] correct"
    )  # says what it returns
    ok, line = run(exercises.quiz, "t.q1", choice=choice, widget=False)
    assert isinstance(ok, bool) and ok is line.startswith("[quiz t.q1] correct")
    run(exercises.quiz, "t.q2", choice=choice, widget=False)
    run(exercises.match, "t.m1", choices=choices, widget=False)
    run(exercises.match, "t.m1", choices={"a": answer, "b": choice}, widget=False)


# -------------------------------------------------------------------- widgets


def find(box, kind, description=None):
    """Widgets of a type (and description) anywhere in a panel."""
    found, stack = [], [box]
    while stack:
        widget = stack.pop(0)
        stack.extend(getattr(widget, "children", ()))
        if type(widget).__name__ == kind and description in (
            None,
            getattr(widget, "description", None),
        ):
            found.append(widget)
    return found


def check_button(box):
    (button,) = find(box, "Button", "Check")
    return button


def feedback(box):
    return box.children[-3].value


def test_check_button_rechecks_the_current_variable(monkeypatch):
    register_squares()
    namespace = {"answer": [0, 1, 5]}
    monkeypatch.setattr(exercises, "_user_namespace", lambda: namespace)
    monkeypatch.setattr(exercises, "_show", lambda box: None)
    run(exercises.check, "t.1", namespace["answer"])
    box = exercises.panel("t.1")
    assert "not yet" in feedback(box)
    assert "0 / 1 exercises done in this notebook" in box.children[-1].value
    namespace["answer"] = np.array([0, 1, 4])  # the student edits and re-runs the exercise cell
    check_button(box).click()
    assert "<b>correct</b>" in feedback(box)
    assert "1 / 1 exercises done in this notebook" in box.children[-1].value
    del namespace["answer"]
    check_button(box).click()
    assert "no variable <code>answer</code>" in feedback(box)


def test_check_button_without_a_notebook_rechecks_the_given_value():
    register_squares()
    run(exercises.check, "t.1", [0, 1, 4])
    box = exercises.panel("t.1")
    check_button(box).click()
    assert "<b>correct</b>" in feedback(box)


def test_hints_are_revealed_one_at_a_time():
    register_squares()
    run(exercises.check, "t.1", None)
    box = exercises.panel("t.1")
    (hint,) = find(box, "Button", "Hint (1 of 3)")
    hints = box.children[-2]
    assert hints.value == ""
    hint.click()
    assert (
        hints.value.count("<li>") == 1
        and "one" in hints.value
        and hint.description == "Hint (2 of 3)"
    )
    hint.click()
    hint.click()
    assert hints.value.count("<li>") == 3 and hint.disabled and hint.description == "No more hints"


def test_rerunning_a_check_leaves_one_handler():
    register_squares()
    run(exercises.check, "t.1", None)
    old = check_button(exercises.panel("t.1"))
    run(exercises.check, "t.1", [0, 1, 4])
    new = check_button(exercises.panel("t.1"))
    assert new is not old
    assert len(old._click_handlers.callbacks) == 0
    assert len(new._click_handlers.callbacks) == 1
    register_squares()  # registering again retires the panel too
    assert len(new._click_handlers.callbacks) == 0
    with pytest.raises(ValueError, match="no panel"):
        exercises.panel("t.1")


def test_quiz_and_match_widgets():
    exercises.define_quiz(
        "t.q1", question="Pick b", options=["a", "b"], answer=1, explanation="B it is."
    )
    run(exercises.quiz, "t.q1")
    box = exercises.panel("t.q1")
    (radio,) = find(box, "RadioButtons")
    assert radio.value is None
    assert list(radio.options) == [("0: a", 0), ("1: b", 1)]
    radio.value = 0
    check_button(box).click()
    assert "option 0 (&#x27;a&#x27;) is not right" in feedback(box)
    radio.value = 1
    check_button(box).click()
    assert "B it is." in feedback(box)

    exercises.define_quiz(
        "t.q2", question="Pick a and c", options=["a", "b", "c"], answer={0, 2}, explanation="Both."
    )
    run(exercises.quiz, "t.q2", choice=[0])
    box = exercises.panel("t.q2")
    boxes = find(box, "Checkbox")
    assert [b.value for b in boxes] == [True, False, False]
    boxes[2].value = True
    check_button(box).click()
    assert "Both." in feedback(box)

    pairs = {"source": "trained here", "target": "used here"}
    exercises.define_match("t.m1", pairs=pairs)
    run(exercises.match, "t.m1")
    box = exercises.panel("t.m1")
    dropdowns = find(box, "Dropdown")
    assert [d.value for d in dropdowns] == [None, None]
    assert list(dropdowns[0].options) == sorted(pairs.values())
    dropdowns[0].value, dropdowns[1].value = "trained here", "used here"
    check_button(box).click()
    assert "both terms matched" in feedback(box)
    assert exercises.progress("t") == "3 / 3 exercises done in notebook t"


# -------------------------------------------------------------------- a panel that never lies (issue 15)


def register_caller():
    @exercises.exercise("t.6", "Call the answer", name="answer")
    def check_call(answer):
        return answer(1) == 2, "answer(1) should be 2."


def swallow_stop(x):
    """A student loop that catches the stop request, as in issue 15."""
    while True:
        try:
            sum(range(100))
        except BaseException:
            pass


@pytest.fixture
def c_unraisable_hook(monkeypatch):
    """CPython's own (C) hook for exceptions raised where they cannot propagate, during the test.

    Stopping a loop that swallows the stop request raises ``_Stop`` in the worker every half
    millisecond; one that lands inside a ``__del__`` or weakref callback is "unraisable" and goes to
    ``sys.unraisablehook``. pytest's hook is Python code, so the next ``_Stop`` can land inside it
    too, and pytest then fails the test with "Failed to process unraisable exception" (seen on a
    loaded machine) although the thread stopped as it should. The C hook cannot be interrupted.
    """
    import sys

    monkeypatch.setattr(sys, "unraisablehook", sys.__unraisablehook__)


def busy_check_workers_after(seconds=1.0):
    """CPU seconds this process used over ``seconds`` of idling, and the check threads still alive."""
    start = time.process_time()
    time.sleep(seconds)
    return time.process_time() - start, _busy_workers()


@pytest.mark.parametrize("error", [KeyboardInterrupt, SystemExit, GeneratorExit])
def test_base_exceptions_from_the_answer_get_a_verdict(error):
    register_caller()

    def answer(x):
        raise error("stop")

    assert run(exercises.check, "t.6", answer, widget=False) == (
        False,
        f"[ex t.6] not yet: your answer raised {error.__name__}: stop.",
    )
    assert exercises.run_answer(answer, 1) == (None, f"your function raised {error.__name__}: stop")
    assert (
        exercises.expect_callable(answer, args=(1,))[1] == f"answer raised {error.__name__}: stop."
    )


def test_a_stop_swallowing_loop_is_really_stopped(c_unraisable_hook):
    register_caller()
    for _ in range(3):  # issue 15: three clicks left the idle kernel at 75 % CPU
        ok, line = run(exercises.check, "t.6", swallow_stop, widget=False, timeout=0.3)
        assert line.startswith("[ex t.6] not yet: your answer took longer than 0.3 s to check")
    cpu, workers = busy_check_workers_after(1.0)
    print(
        f"after 3 stop-swallowing answers: {cpu:.3f} CPU s in 1 s of idling, {workers} check threads left"
    )
    assert workers == 0 and cpu < 0.2


def test_a_runaway_answer_blocks_new_checks_and_says_so(monkeypatch):
    register_caller()

    class Unstoppable:
        def try_to_stop(self, worker, seconds):
            return "busy"

    monkeypatch.setattr(exercises, "_RUNAWAYS", [(threading.current_thread(), Unstoppable())])
    ok, line = run(exercises.check, "t.6", lambda x: 2, widget=False)
    assert line.startswith("[ex t.6] not yet: an earlier answer is still running in the background")
    assert "restart the kernel" in line
    exercises._RUNAWAYS.clear()
    assert run(exercises.check, "t.6", lambda x: 2, widget=False)[0]


def test_a_worker_that_ended_without_saying_so_is_not_a_runaway(monkeypatch):
    # A stop request that lands after the answer returned but before the worker cancels it ends
    # the thread without setting `finished`; that must not block every later check.
    stopper = exercises._Stopper(None)
    worker = threading.Thread(target=lambda: None)
    worker.start()
    stopper.done = True  # the answer had returned; finish() never ran
    while worker.is_alive():
        time.sleep(0.01)
    start = time.monotonic()
    assert stopper.try_to_stop(worker, 2.0) == "stopped"
    assert time.monotonic() - start < 0.5  # seen at once, not after the grace period
    monkeypatch.setattr(exercises, "_RUNAWAYS", [(worker, stopper)])
    register_caller()
    assert run(exercises.check, "t.6", lambda x: 2, widget=False)[0]  # not refused
    assert exercises._RUNAWAYS == []


@pytest.fixture
def stop_raises_keyboard_interrupt():
    """SIGINT raises KeyboardInterrupt in the main thread during the test, as Stop does in a kernel.

    Python's default handler does that, but in the full suite the nbval tests (which start their
    kernels from this process) leave SIGINT ignored, and this test then ran 30 s without a Stop.
    """
    import signal

    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


def test_pressing_stop_during_a_check_is_reported_then_stops_the_run(
    c_unraisable_hook, stop_raises_keyboard_interrupt
):
    import signal

    register_caller()
    main = threading.get_ident()
    earlier = {t for t in threading.enumerate() if t.name == "tltutor-check"}

    def press_stop_once_the_check_runs():  # not a fixed delay: a slow start would be hit instead
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not any(
            t.name == "tltutor-check" and t not in earlier for t in threading.enumerate()
        ):
            time.sleep(0.01)
        time.sleep(0.2)
        signal.pthread_kill(main, signal.SIGINT)

    threading.Thread(target=press_stop_once_the_check_runs, daemon=True).start()
    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(exercises.Interrupted):
        exercises.check("t.6", swallow_stop, widget=False, timeout=30)
    assert out.getvalue() == f"[ex t.6] not yet: {exercises._INTERRUPTED}\n"
    assert exercises.progress("t") == "0 / 1 exercises done in notebook t"
    # CPU, not only threads: a Stop inside Thread.join once marked the spinning answer as ended
    cpu, workers = busy_check_workers_after(0.5)
    assert workers == 0 and cpu < 0.1, (
        f"{cpu:.2f} CPU s in 0.5 s of idling, {workers} check threads"
    )


def test_the_check_button_says_checking_and_never_keeps_an_old_verdict(monkeypatch):
    seen = []

    @exercises.exercise("t.7", "Watch the panel", name="answer")
    def check_watch(answer):
        if "t.7" in exercises._PANELS:
            seen.append(feedback(exercises.panel("t.7")))
        return answer == 1, "*one* it is; see `x * 2`."

    namespace = {"answer": 1}
    monkeypatch.setattr(exercises, "_user_namespace", lambda: namespace)
    monkeypatch.setattr(exercises, "_show", lambda box: None)
    run(exercises.check, "t.7")
    box = exercises.panel("t.7")
    assert "<em>one</em> it is; see <code>x * 2</code>" in feedback(box)
    check_button(box).click()
    assert "checking…" in seen[-1]
    assert "<b>correct</b>" in feedback(box) and "replaces the verdict printed above" in feedback(
        box
    )
    assert not check_button(box).disabled

    def broken(name):
        raise RuntimeError("the namespace is gone")

    monkeypatch.setattr(exercises, "_read_variable", broken)
    check_button(box).click()
    assert (
        "<b>not yet</b>: the check could not run (RuntimeError: the namespace is gone)"
        in feedback(box)
    )
    assert (
        exercises.progress("t") == "0 / 1 exercises done in notebook t"
    )  # the old "correct" is gone


def test_an_old_panel_tells_after_a_restart_what_to_do():
    register_squares()
    run(exercises.check, "t.1", None)
    box = exercises.panel("t.1")
    assert "tltutor-panel" in box._dom_classes
    heading = box.children[0].value
    assert "jupyter-widgets-disconnected .tltutor-restarted {display: block" in heading
    assert "The kernel restarted" in heading and "run the notebook from the top" in heading


def test_the_book_shows_quizzes_unanswered(monkeypatch):
    define_quizzes()
    shown = []
    monkeypatch.setenv("TLTUTOR_BOOK", "1")
    monkeypatch.setattr(exercises, "_show_html", shown.append)
    monkeypatch.setattr(exercises, "_show", lambda box: pytest.fail("no widget panel in the book"))
    run(exercises.quiz, "t.q1", choice=1)
    run(exercises.match, "t.m1", choices={"a": "first", "b": "second"})
    quiz, match = shown
    before, answer = quiz.split("<details>")
    assert '<ol start="0"><li>features</li><li>fine-tuning</li><li>scratch</li></ol>' in before
    assert "Because." not in before and "Because." in answer and "option 1 (fine-tuning)" in answer
    before, answer = match.split("<details>")
    assert "<b>a</b>: first" not in before and "<b>a</b>: first" in answer


def test_messages_count_in_words():
    assert exercises.expect_array([np.nan] * 12345)[1].startswith(
        "the array has 12,345 NaN values out of 12,345;"
    )
    assert exercises.expect_array([1.0, np.inf])[1] == "the array has 1 infinite value out of 2."
