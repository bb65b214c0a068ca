"""Self-checking exercises and quizzes for the course notebooks.

An exercise is two cells. The student edits the *exercise cell* (tagged
``exercise``); the stub leaves the answer as ``None`` so that "Run all" works::

    squares = None  # YOUR CODE HERE

The *check cell* (tagged ``check``) prints one stable verdict line and shows a
widget panel (Check button, feedback, Hint button, the notebook's progress)::

    exercises.check("02.1", squares);

    [ex 02.1] correct: 5 squares, from 0 to 16.

A verdict is ``correct``, ``not attempted`` (the answer is still ``None``) or
``not yet`` (what is wrong and why). The line never holds object ids or
timings, so nbval can compare it (``# NBVAL_CHECK_OUTPUT``). ``check``,
``quiz`` and ``match`` return ``True`` when correct; end the cell with ``;``
so that Jupyter does not echo the return value.

Checkers are registered with the :func:`exercise` decorator, usually in the
notebook's companion module. A checker takes the answer and returns
``(ok, message)`` (or just ``ok``); the ``expect_*`` helpers cover the usual
answers (arrays, numbers, functions, Keras models). A checker may raise: the
exception is reported as "your answer raised ...".

Safety rules, kept by :func:`check`:

- nothing the student wrote is ``exec``-ed or ``eval``-ed; the Check button
  re-reads the answer *variable* by name from the notebook's namespace;
- every checker runs in a worker thread with a time limit (``timeout``), and
  :func:`call_with_timeout` gives student functions their own, shorter limit.
  Python cannot kill a thread: when time is up the verdict says "took longer
  than N s" at once, and the thread is asked to stop by raising an exception
  inside it (``PyThreadState_SetAsyncExc``). That stops pure-Python loops;
  code blocked inside C (``time.sleep``, a long NumPy call) ends on its own in
  the background (daemon thread);
- every exception from the answer becomes a verdict; only mistakes by the
  notebook author (an unknown exercise id, a malformed quiz) raise.

Each exercise or quiz id has one panel: showing it again (re-running the
check cell) closes the old panel and detaches its callbacks. Panels can be
driven headlessly: ``panel(id)`` returns the ``ipywidgets.VBox``, and
``Button.click()`` runs its callback.

Quiz answer keys are plain arguments of :func:`quiz` and :func:`match` in the
notebook (or its companion module): the student copy keeps them. This is a
self-study course; the keys are there for whoever wants to look.
"""

from __future__ import annotations

import ctypes
import html
import math
import numbers
import re
import reprlib
import sys
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = [
    "Exercise",
    "answer_or",
    "as_number",
    "call_with_timeout",
    "check",
    "exercise",
    "expect_array",
    "expect_callable",
    "expect_model",
    "expect_number",
    "match",
    "panel",
    "progress",
    "quiz",
    "reset",
    "run_answer",
]

CORRECT = "correct"
NOT_YET = "not yet"
NOT_ATTEMPTED = "not attempted"


@dataclass
class Exercise:
    """A registered exercise: its id (``"02.1"``: notebook ``02``), title, checker and hints.

    ``name`` is the notebook variable that holds the answer; the Check button
    re-reads it, so a student can edit, re-run the exercise cell and click.
    """

    id: str
    title: str
    check: Callable[[Any], tuple[bool, str] | bool]
    hints: tuple[str, ...] = ()
    name: str | None = None


@dataclass
class _Panel:
    box: Any  # ipywidgets.VBox
    progress: Any  # its progress line, refreshed when any item of the notebook is checked
    handlers: list  # (button, callback) pairs, detached when the panel is retired


_EXERCISES: dict[str, Exercise] = {}
_STATUS: dict[str, str] = {}  # last verdict of every exercise, quiz and match seen
_PANELS: dict[str, _Panel] = {}
_ID = re.compile(r"^[A-Za-z0-9_-]+\.[A-Za-z0-9_.-]+$")
_FROM_NAMESPACE = object()  # check(id) without an answer: read the variable by name
_MISSING = object()  # that variable does not exist


class _TimeLimit(TimeoutError):
    """Raised by call_with_timeout; distinct from a TimeoutError the student raises."""


class _Stop(BaseException):
    """Raised inside a worker thread that ran out of time (not caught by ``except Exception``)."""


# ----------------------------------------------------------------- registry


def exercise(id: str, title: str, *, hints: Sequence[str] = (), name: str | None = None):
    """Register the decorated function as the checker of exercise ``id``.

    The checker takes the answer (never ``None``: that is "not attempted") and
    returns ``(ok, message)``, or ``ok``, or raises. Registering an id again
    replaces the checker and retires the old panel.

    >>> from tltutor import exercises
    >>> @exercises.exercise("00.1", "The answer", hints=["Six times seven."], name="answer")
    ... def check_answer(answer):
    ...     return exercises.expect_number(answer, 42, 42)
    >>> exercises.check("00.1", 42, widget=False)
    [ex 00.1] correct: 42 is between 42 and 42.
    True
    """
    _check_id(id)
    if not isinstance(title, str) or not title:
        raise ValueError(f"title must be a non-empty string; got {title!r}")
    if isinstance(hints, str) or not all(isinstance(h, str) for h in hints):
        raise TypeError(f"hints must be a list of strings; got {hints!r}")
    if name is not None and not str(name).isidentifier():
        raise ValueError(f"name must be a Python variable name such as 'answer'; got {name!r}")

    def register(checker: Callable) -> Callable:
        if not callable(checker):
            raise TypeError("@exercise(...) decorates a checker function: def check(answer): ...")
        _retire_panel(id)
        _EXERCISES[id] = Exercise(id, title, checker, tuple(hints), name)
        _STATUS[id] = NOT_ATTEMPTED
        return checker

    return register


def reset() -> None:
    """Forget every exercise, quiz, verdict and panel (used by tests).

    >>> from tltutor import exercises
    >>> exercises.reset()
    >>> exercises.progress()
    '0 / 0 exercises done'
    """
    for item_id in list(_PANELS):
        _retire_panel(item_id)
    _EXERCISES.clear()
    _STATUS.clear()


def progress(notebook: str | None = None) -> str:
    """Count correct exercises and quizzes, in one notebook (id prefix) or in all.

    An exercise counts from its registration, a quiz from when it is first
    shown; a later wrong answer un-counts it.

    >>> from tltutor import exercises
    >>> exercises.reset()
    >>> exercises.quiz("03.q1", "2 + 2?", ["3", "4"], 1, explanation="4.", choice=1, widget=False)
    [quiz 03.q1] correct: 4.
    True
    >>> exercises.progress("03")
    '1 / 1 exercises done in notebook 03'
    """
    done, total = _counts(notebook)
    where = f" in notebook {notebook}" if notebook is not None else ""
    return f"{done} / {total} exercises done{where}"


def _counts(notebook: str | None) -> tuple[int, int]:
    ids = [i for i in _STATUS if notebook is None or _notebook_of(i) == notebook]
    return sum(_STATUS[i] == CORRECT for i in ids), len(ids)


def answer_or(value: Any, fallback: Any, *, exercise_id: str | None = None) -> Any:
    """Return ``value``, or ``fallback`` (the reference answer) when the student skipped.

    Skipped means ``value is None``; with ``exercise_id`` it also means that
    exercise's last check was not correct. A one-line note says so, and the
    rest of the notebook runs on the reference answer.

    >>> from tltutor import exercises
    >>> exercises.answer_or(None, 0.001)
    [answer_or] using the reference answer (yours is None) so the notebook can go on.
    0.001
    >>> exercises.answer_or(0.01, 0.001)
    0.01
    """
    if exercise_id is not None:
        _get_exercise(exercise_id)
    if value is None:
        reason = "yours is None"
    elif exercise_id is not None and _STATUS.get(exercise_id) != CORRECT:
        reason = "yours has not passed its check"
    else:
        return value
    tag = f"[ex {exercise_id}]" if exercise_id is not None else "[answer_or]"
    print(f"{tag} using the reference answer ({reason}) so the notebook can go on.")
    return fallback


# ------------------------------------------------------------------- checks


def check(
    exercise_id: str,
    answer: Any = _FROM_NAMESPACE,
    *,
    widget: bool = True,
    timeout: float = 30.0,
) -> bool:
    """Check an answer: print one verdict line, show the panel, return ``True`` if correct.

    Without ``answer`` the exercise's variable (its ``name``) is read from the
    notebook, so a missing variable is reported instead of a ``NameError``.
    The checker runs under a ``timeout`` in seconds. With ``widget=True`` the
    panel is built (see :func:`panel`) and displayed when running in IPython.

    >>> from tltutor import exercises
    >>> exercises.reset()
    >>> @exercises.exercise("00.2", "An array of three floats")
    ... def check_array(answer):
    ...     return exercises.expect_array(answer, shape=(3,), dtype_kind="f")
    >>> exercises.check("00.2", None, widget=False)
    [ex 00.2] not attempted: your answer is still None; write your code in the exercise cell and run it.
    False
    >>> exercises.check("00.2", [1.0, 2.0], widget=False)
    [ex 00.2] not yet: the array has shape (2,); expected (3,).
    False
    """
    ex = _get_exercise(exercise_id)
    _check_timeout(timeout)
    if answer is _FROM_NAMESPACE:
        if ex.name is None:
            raise TypeError(f"pass the answer: exercises.check({ex.id!r}, answer)")
        answer = _read_variable(ex.name)
    status, message = _exercise_verdict(ex.id, answer, timeout)
    _report("ex", ex.id, status, message)
    if widget:
        _show(_exercise_panel(ex, answer, timeout, status, message))
    return status == CORRECT


def quiz(
    id: str,
    question: str,
    options: Sequence[str],
    answer: int | Iterable[int],
    *,
    explanation: str,
    why: Sequence[str] | None = None,
    widget: bool = True,
    choice: Any = None,
) -> bool:
    """A multiple-choice question: one right option (``answer=2``) or several (``answer={0, 3}``).

    ``choice`` is the student's pick when answering in code: an option number
    (from 0), its text, or a set of them. ``why`` optionally gives, per
    option, why it is right or wrong; ``explanation`` is shown when correct.
    The panel uses RadioButtons (one answer) or Checkboxes (several).

    >>> from tltutor import exercises
    >>> exercises.quiz("01.q1", "Which layers are most specific to the source task?",
    ...                ["the first ones", "the last ones"], 1,
    ...                explanation="Later layers specialise (Yosinski et al. 2014).",
    ...                choice="the first ones", widget=False)
    [quiz 01.q1] not yet: 'the first ones' is not right. Try again.
    False
    """
    _check_id(id)
    options, right = _check_quiz(question, options, answer, explanation, why)
    status, message = _quiz_verdict(options, right, explanation, why, choice)
    _report("quiz", id, status, message)
    if widget:
        _show(_quiz_panel(id, question, options, right, explanation, why, choice, status, message))
    return status == CORRECT


def match(
    id: str,
    pairs: Mapping[str, str],
    *,
    question: str = "Match each term to its definition.",
    widget: bool = True,
    choices: Any = None,
) -> bool:
    """Match terms to definitions; the panel shows one Dropdown per term.

    ``pairs`` maps each term to its definition. ``choices`` is the student's
    ``{term: definition}`` when answering in code.

    >>> from tltutor import exercises
    >>> pairs = {"source": "where the model was trained", "target": "where we want it to work"}
    >>> exercises.match("01.m1", pairs, choices=pairs, widget=False)
    [quiz 01.m1] correct: all 2 terms matched.
    True
    """
    _check_id(id)
    _check_pairs(question, pairs)
    status, message = _match_verdict(pairs, choices)
    _report("quiz", id, status, message)
    if widget:
        _show(_match_panel(id, question, pairs, choices, status, message))
    return status == CORRECT


def call_with_timeout(func: Callable, *args: Any, timeout: float = 5.0, **kwargs: Any) -> Any:
    """Call ``func(*args, **kwargs)`` in a worker thread; raise ``TimeoutError`` after ``timeout`` s.

    Use it in checkers to run a student's function. Exceptions from ``func``
    reach the caller unchanged. See the module docstring for how a thread
    that ran out of time is stopped.

    >>> from tltutor import exercises
    >>> exercises.call_with_timeout(sum, [1, 2, 3], timeout=1.0)
    6
    """
    _check_timeout(timeout)
    outcome: dict[str, Any] = {}

    def target() -> None:
        try:
            outcome["value"] = func(*args, **kwargs)
        except BaseException as exc:  # handed to the caller below
            outcome["error"] = exc

    worker = threading.Thread(target=target, name="tltutor-check", daemon=True)
    worker.start()
    worker.join(timeout)
    if worker.is_alive():
        _ask_to_stop(worker)
        raise _TimeLimit(f"took longer than {timeout:g} s")
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


def run_answer(function: Callable, *args: Any, timeout: float = 10.0) -> tuple[Any, str | None]:
    """Run a student's function on one example: ``(result, None)``, or ``(None, verdict message)``.

    The message says what went wrong (too slow, or the exception it raised), ready to return
    from a checker; the student's code may raise anything without crashing the check.

    >>> run_answer(lambda x: 1 / x, 0)
    (None, 'your function raised ZeroDivisionError: division by zero')
    """
    try:
        return call_with_timeout(function, *args, timeout=timeout), None
    except TimeoutError:
        return None, f"your function took longer than {timeout:g} s on a small example; is there an endless loop?"
    except KeyboardInterrupt:
        raise
    except BaseException as exc:  # the student's code may raise anything
        return None, f"your function raised {_describe_error(exc)}"


def as_number(value: Any) -> float | None:
    """A student's result as one float (NumPy scalars and backend tensors included), else None.

    >>> as_number(np.float32(0.5)), as_number([1.0, 2.0]), as_number(True)
    (0.5, None, None)
    """
    if value is None or isinstance(value, (str, bytes, bool, np.bool_)):
        return None
    try:
        if not isinstance(value, (int, float, np.generic, np.ndarray)):
            import keras

            value = keras.ops.convert_to_numpy(value)
    except Exception:  # not a tensor: let NumPy try
        pass
    try:
        array = np.asarray(value, dtype="float64")
    except Exception:
        return None
    return float(array.reshape(-1)[0]) if array.size == 1 else None


# ------------------------------------------------------------------ helpers


def expect_array(
    answer: Any,
    shape: Sequence[int | None] | None = None,
    dtype_kind: str | None = None,
    *,
    finite: bool = True,
    max_size: int = 10_000_000,
) -> tuple[bool, str]:
    """Is ``answer`` an array (or array-like) of this shape, dtype kind and finite?

    ``shape`` may use ``None`` for "any size"; ``dtype_kind`` lists NumPy kind
    letters (``"f"`` float, ``"iu"`` integer, ``"b"`` bool). Arrays with more
    than ``max_size`` elements are refused before anything is computed on them.

    >>> from tltutor.exercises import expect_array
    >>> expect_array([[1.0, float("nan")]], shape=(None, 2))
    (False, 'the array has 1 NaN value(s) out of 2; check for a division by zero or a log of 0.')
    >>> expect_array(["a", "b"], dtype_kind="f")
    (False, "the array holds text (dtype <U1); expected floats. Convert with np.asarray(x, dtype='float32').")
    """
    if answer is None:
        return False, "expected an array; got None."
    if isinstance(answer, (str, bytes, Mapping, set, frozenset)):
        return False, f"expected an array; got {_describe(answer)}."
    try:
        array = np.asarray(answer)
    except Exception as exc:
        return False, f"{_describe(answer)} cannot be turned into a NumPy array ({_describe_error(exc)})."
    if shape is not None:
        expected = tuple(shape)
        if array.ndim != len(expected) or any(
            want is not None and got != want for got, want in zip(array.shape, expected)
        ):
            return False, f"the array has shape {tuple(array.shape)}; expected {_shape_text(expected)}."
    kind = array.dtype.kind
    if dtype_kind is not None and kind not in dtype_kind:
        names = [_KINDS.get(k, k) for k in dtype_kind]
        wanted = f"{', '.join(names[:-1])} or {names[-1]}" if len(names) > 1 else names[0]
        fix = f" Convert with np.asarray(x, dtype='{_CASTS[dtype_kind[0]]}')." if dtype_kind[0] in _CASTS else ""
        return False, f"the array holds {_KINDS.get(kind, kind)} (dtype {array.dtype}); expected {wanted}.{fix}"
    if array.size > max_size:
        return False, f"the array is too large: {array.size:,} elements (at most {max_size:,})."
    if finite and kind in "fc":
        bad_nan = int(np.count_nonzero(np.isnan(array)))
        bad_inf = int(np.count_nonzero(np.isinf(array)))
        if bad_nan:
            return False, (
                f"the array has {bad_nan} NaN value(s) out of {array.size}; "
                "check for a division by zero or a log of 0."
            )
        if bad_inf:
            return False, f"the array has {bad_inf} infinite value(s) out of {array.size}."
    return True, f"an array of shape {tuple(array.shape)} and dtype {array.dtype}."


def expect_number(answer: Any, low: float = -math.inf, high: float = math.inf) -> tuple[bool, str]:
    """Is ``answer`` one finite real number with ``low <= answer <= high``?

    >>> from tltutor.exercises import expect_number
    >>> expect_number(0.5, 0, 1)
    (True, '0.5 is between 0 and 1.')
    >>> expect_number("0.5", 0, 1)
    (False, "expected a number; got a str ('0.5'). Write the number without quotes.")
    """
    if isinstance(answer, (bool, np.bool_)):
        return False, f"expected a number; got the bool {answer}."
    if isinstance(answer, numbers.Real):
        try:
            value = float(answer)
        except (OverflowError, ValueError):
            return False, f"{_describe(answer)} is too large to be a float."
    else:
        fix = " Write the number without quotes." if isinstance(answer, str) else ""
        try:
            array = np.asarray(answer)
            ok = array.size == 1 and array.dtype.kind in "iuf"
        except Exception:
            ok = False
        if not ok:
            return False, f"expected a number; got {_describe(answer)}.{fix}"
        value = float(array.reshape(-1)[0])
    if math.isnan(value):
        return False, "the number is NaN (not a number); check for 0 / 0 or a log of a negative value."
    if math.isinf(value):
        return False, "the number is infinite; check for a division by zero."
    if not low <= value <= high:
        return False, f"{value:g} is outside the expected range, {low:g} to {high:g}."
    return True, f"{value:g} is between {low:g} and {high:g}."


def expect_callable(answer: Any, *, args: Sequence[Any] | None = None, timeout: float = 5.0) -> tuple[bool, str]:
    """Is ``answer`` a function, and (with ``args``) does ``answer(*args)`` run within ``timeout`` s?

    >>> from tltutor.exercises import expect_callable
    >>> expect_callable(len, args=([1, 2],))
    (True, 'len runs.')
    >>> expect_callable(3)
    (False, 'expected a function; got an int (3).')
    """
    if not callable(answer):
        return False, f"expected a function; got {_describe(answer)}."
    label = getattr(answer, "__name__", "your function")
    label = label if isinstance(label, str) else "your function"
    if args is None:
        return True, f"{label} is a function."
    try:
        call_with_timeout(answer, *args, timeout=timeout)
    except _TimeLimit as exc:
        return False, f"{label} {exc} on a small example; is there an endless loop?"
    except KeyboardInterrupt:
        raise
    except BaseException as exc:  # the student's code may raise anything, SystemExit included
        return False, f"{label} raised {_describe_error(exc)}."
    return True, f"{label} runs."


def expect_model(
    answer: Any,
    input_shape: Sequence[int] | None = None,
    num_outputs: int | None = None,
    *,
    compiled: bool = False,
) -> tuple[bool, str]:
    """Is ``answer`` a ``keras.Model`` that takes ``input_shape`` and ends with ``num_outputs`` units?

    With ``input_shape`` the model is called once on a batch of two zero
    inputs (inference mode). With ``compiled=True`` it must be compiled.

    >>> from tltutor.exercises import expect_model
    >>> expect_model(3, input_shape=(4,), num_outputs=2)
    (False, 'expected a keras.Model; got an int (3).')
    """
    keras = sys.modules.get("keras")  # a Keras model can only exist once keras is imported
    if keras is None or not isinstance(answer, keras.Model):
        if keras is not None and isinstance(answer, keras.layers.Layer):
            return False, f"got a {type(answer).__name__} layer, not a model; wrap it: keras.Sequential([...])."
        return False, f"expected a keras.Model; got {_describe(answer)}."
    if input_shape is not None:
        batch = np.zeros((2, *input_shape), dtype="float32")
        try:
            output = answer(batch, training=False)
        except Exception as exc:
            return False, f"the model cannot take inputs of shape {(None, *input_shape)}: {_describe_error(exc)}."
        if isinstance(output, (list, tuple, Mapping)):
            return False, f"the model has {len(output)} outputs; expected one."
        out_shape = (None, *tuple(output.shape)[1:])
    elif num_outputs is not None:
        try:
            out_shape = tuple(answer.output_shape)
        except Exception:
            return False, "the model is not built yet; start it with keras.Input(shape=...)."
    if num_outputs is not None and out_shape[-1] != num_outputs:
        return False, (
            f"the model's output has shape {out_shape}; expected {num_outputs} values per example "
            f"(one per class): end with a Dense({num_outputs}) layer."
        )
    if compiled and not getattr(answer, "compiled", False):
        return False, "the model is not compiled; call model.compile(optimizer=..., loss=..., metrics=[...])."
    return True, f"a Keras model with {answer.count_params():,} parameters." if answer.built else "a Keras model."


# ------------------------------------------------------------------ widgets


def panel(item_id: str):
    """The ``ipywidgets.VBox`` last shown for an exercise or quiz id.

    Its children, top to bottom: title (HTML), the quiz's inputs if any, a row
    with the Check and Hint buttons, feedback (HTML), hints (HTML), progress
    (HTML). Drive it headlessly with ``button.click()``.

    >>> from tltutor import exercises
    >>> exercises.match("00.m", {"a": "b"}, choices={"a": "b"})
    [quiz 00.m] correct: all 1 terms matched.
    True
    >>> box = exercises.panel("00.m")
    >>> type(box).__name__
    'VBox'
    """
    if item_id not in _PANELS:
        raise ValueError(f"no panel has been shown for {item_id!r}; call check/quiz/match with widget=True first.")
    return _PANELS[item_id].box


def _exercise_panel(ex: Exercise, answer: Any, timeout: float, status: str, message: str):
    def run_check() -> tuple[str, str]:
        current = _read_variable(ex.name) if ex.name and _user_namespace() is not None else answer
        return _exercise_verdict(ex.id, current, timeout)

    return _build_panel(ex.id, f"Exercise {ex.id}: {ex.title}", run_check, status, message, hints=ex.hints)


def _quiz_panel(id, question, options, right, explanation, why, choice, status, message):
    import ipywidgets as w

    try:
        picked = _picked(choice, options, multiple=len(right) > 1)
    except Exception:
        picked = set()
    if len(right) > 1:
        boxes = [
            w.Checkbox(value=i in picked, description=text, indent=False, layout=w.Layout(width="auto"))
            for i, text in enumerate(options)
        ]
        inputs = w.VBox(boxes)

        def current() -> set[int]:
            return {i for i, box in enumerate(boxes) if box.value}
    else:
        inputs = w.RadioButtons(
            options=[(text, i) for i, text in enumerate(options)],
            value=next(iter(picked)) if picked else None,
            layout=w.Layout(width="auto"),
        )

        def current() -> int | None:
            return inputs.value

    def run_check() -> tuple[str, str]:
        return _quiz_verdict(options, right, explanation, why, current())

    title = f"Quiz {id}: {question}"
    return _build_panel(id, title, run_check, status, message, body=[inputs])


def _match_panel(id, question, pairs, choices, status, message):
    import ipywidgets as w

    definitions = sorted(pairs.values())
    dropdowns = {}
    rows = []
    for term in pairs:
        preset = _safe_get(choices, term)
        dropdowns[term] = w.Dropdown(
            options=definitions,
            value=preset if type(preset) is str and preset in definitions else None,
            layout=w.Layout(width="65%"),
        )
        rows.append(w.HBox([w.HTML(f"<b>{html.escape(term)}</b>", layout=w.Layout(width="30%")), dropdowns[term]]))

    def run_check() -> tuple[str, str]:
        return _match_verdict(pairs, {term: box.value for term, box in dropdowns.items()})

    return _build_panel(id, f"Quiz {id}: {question}", run_check, status, message, body=[w.VBox(rows)])


def _build_panel(item_id, title, run_check, status, message, *, hints=(), body=()):
    import ipywidgets as w

    _retire_panel(item_id)
    check_button = w.Button(description="Check", button_style="primary", icon="check")
    hint_button = w.Button(
        description=f"Hint (1 of {len(hints)})" if hints else "No hints",
        disabled=not hints,
    )
    feedback = w.HTML(_feedback_html(status, message))
    hint_box = w.HTML()
    progress_box = w.HTML(_progress_html(item_id))
    buttons = w.HBox([check_button, hint_button])
    box = w.VBox([w.HTML(f"<b>{_markup(title)}</b>"), *body, buttons, feedback, hint_box, progress_box])

    def on_check(_button) -> None:
        new_status, new_message = run_check()
        _record(item_id, new_status)
        feedback.value = _feedback_html(new_status, new_message)

    shown = 0

    def on_hint(_button) -> None:
        nonlocal shown
        shown = min(shown + 1, len(hints))
        hint_box.value = "<ol>" + "".join(f"<li>{_markup(h)}</li>" for h in hints[:shown]) + "</ol>"
        hint_button.description = f"Hint ({shown + 1} of {len(hints)})" if shown < len(hints) else "No more hints"
        hint_button.disabled = shown >= len(hints)

    check_button.on_click(on_check)
    hint_button.on_click(on_hint)
    _PANELS[item_id] = _Panel(box, progress_box, [(check_button, on_check), (hint_button, on_hint)])
    return box


def _retire_panel(item_id: str) -> None:
    """Detach the callbacks of an id's old panel and close its widgets."""
    old = _PANELS.pop(item_id, None)
    if old is None:
        return
    for button, callback in old.handlers:
        button.on_click(callback, remove=True)
    stack = [old.box]
    while stack:
        widget = stack.pop()
        stack.extend(getattr(widget, "children", ()))
        widget.close()


def _record(item_id: str, status: str) -> None:
    _STATUS[item_id] = status
    notebook = _notebook_of(item_id)
    for other_id, other in _PANELS.items():
        if _notebook_of(other_id) == notebook:
            other.progress.value = _progress_html(other_id)


def _show(box) -> None:
    if _user_namespace() is not None:
        from IPython.display import display

        display(box)


_COLORS = {CORRECT: "#1a7f37", NOT_YET: "#b35900", NOT_ATTEMPTED: "#57606a"}


def _feedback_html(status: str, message: str) -> str:
    return f'<span style="color:{_COLORS[status]}"><b>{status}</b>: {_markup(_text(message))}</span>'


def _progress_html(item_id: str) -> str:
    done, total = _counts(_notebook_of(item_id))
    return f"<i>{done} / {total} exercises done in this notebook</i>"


def _markup(text: str) -> str:
    """Escape text for HTML and show `code` in a code font."""
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", html.escape(text))


# ----------------------------------------------------------------- verdicts


def _exercise_verdict(exercise_id: str, answer: Any, timeout: float) -> tuple[str, str]:
    ex = _EXERCISES[exercise_id]
    if answer is _MISSING:
        return NOT_ATTEMPTED, f"there is no variable `{ex.name}` yet; run the exercise cell above first."
    if answer is None:
        return NOT_ATTEMPTED, "your answer is still None; write your code in the exercise cell and run it."
    try:
        result = call_with_timeout(ex.check, answer, timeout=timeout)
    except _TimeLimit as exc:
        return NOT_YET, f"your answer {exc} to check; is there an endless loop, or is it too large?"
    except KeyboardInterrupt:
        raise
    except BaseException as exc:  # the student's code may raise anything, SystemExit included
        return NOT_YET, f"your answer raised {_describe_error(exc)}."
    if isinstance(result, tuple) and len(result) == 2:
        ok, message = result
    elif isinstance(result, (bool, np.bool_)):
        ok, message = result, ""
    else:
        raise TypeError(f"the checker of {exercise_id} must return (ok, message) or ok; got {_describe(result)}")
    try:
        ok = bool(ok)
    except Exception as exc:  # e.g. the checker compared arrays: ``(answer == 3, "...")``
        return NOT_YET, f"your answer raised {_describe_error(exc)}."
    if ok:
        return CORRECT, _text(message) or "well done."
    return NOT_YET, _text(message) or "not quite; try a hint."


def _quiz_verdict(options, right: set[int], explanation: str, why, choice) -> tuple[str, str]:
    try:
        picked = _picked(choice, options, multiple=len(right) > 1)
    except (TypeError, ValueError) as exc:
        return NOT_YET, str(exc)
    except Exception as exc:
        return NOT_YET, f"could not read your choice ({_describe_error(exc)})."
    if not picked:
        return NOT_ATTEMPTED, "choose an answer and press Check (or pass choice=...)."
    if picked == right:
        return CORRECT, explanation
    reasons = " ".join(why[i] for i in sorted(picked - right)) if why else ""
    if len(right) == 1 and len(picked) == 1:
        wrong = options[next(iter(picked))]
        return NOT_YET, f"'{wrong}' is not right. {reasons or 'Try again.'}"
    wrong, missing = len(picked - right), len(right - picked)
    parts = []
    if wrong:
        parts.append(f"{wrong} of your choices {'is' if wrong == 1 else 'are'} not right")
    if missing:
        parts.append(f"{missing} right option{' is' if missing == 1 else 's are'} missing")
    return NOT_YET, f"{' and '.join(parts)}. {reasons}".strip()


def _match_verdict(pairs: Mapping[str, str], choices: Any) -> tuple[str, str]:
    if choices is None:
        return NOT_ATTEMPTED, "pick a definition for each term and press Check (or pass choices=...)."
    if not isinstance(choices, Mapping):
        return NOT_YET, f"choices must be a dict {{term: definition}}; got {_describe(choices)}."
    try:
        picked = {term: choices.get(term) for term in pairs}
        if all(value is None for value in picked.values()):
            return NOT_ATTEMPTED, "pick a definition for each term and press Check."
        wrong = [term for term in pairs if not (isinstance(picked[term], str) and picked[term] == pairs[term])]
    except Exception as exc:
        return NOT_YET, f"could not read your choices ({_describe_error(exc)})."
    if not wrong:
        return CORRECT, f"all {len(pairs)} terms matched."
    look = ", ".join(f"'{term}'" for term in wrong)
    return NOT_YET, f"{len(pairs) - len(wrong)} of {len(pairs)} terms matched; look again at {look}."


def _picked(choice: Any, options: Sequence[str], *, multiple: bool) -> set[int]:
    """The option numbers a choice names (numbers or option texts)."""
    if choice is None:
        return set()
    items = list(choice) if isinstance(choice, (list, tuple, set, frozenset)) else [choice]
    if len(items) > 1 and not multiple:
        raise ValueError(f"choose one option; got {len(items)}.")
    picked = set()
    for item in items:
        if isinstance(item, str) and item in options:
            picked.add(options.index(item))
        elif _is_index(item):
            if not 0 <= item < len(options):
                raise ValueError(f"choice {int(item)} is not an option: they are numbered 0 to {len(options) - 1}.")
            picked.add(int(item))
        else:
            raise TypeError(
                f"a choice is an option number (0 to {len(options) - 1}) or its text; got {_describe(item)}."
            )
    return picked


def _report(kind: str, item_id: str, status: str, message: str) -> None:
    _record(item_id, status)
    print(f"[{kind} {item_id}] {status}: {_text(message)}")


# ------------------------------------------------------------------- checks of the author's input


def _check_id(item_id: Any) -> None:
    if not isinstance(item_id, str) or not _ID.match(item_id):
        raise ValueError(
            f"an exercise id is '<notebook>.<number>', such as '02.1' or '01.q2'; got {item_id!r}"
        )


def _check_timeout(timeout: Any) -> None:
    if isinstance(timeout, bool) or not isinstance(timeout, numbers.Real) or not timeout > 0:
        raise ValueError(f"timeout must be a positive number of seconds; got {timeout!r}")


def _check_quiz(question, options, answer, explanation, why) -> tuple[list[str], set[int]]:
    if not isinstance(question, str) or not question:
        raise ValueError("question must be a non-empty string")
    if isinstance(options, str) or not options or not all(isinstance(o, str) for o in options):
        raise ValueError(f"options must be a list of at least one string; got {options!r}")
    options = list(options)
    try:
        right = {answer} if isinstance(answer, numbers.Integral) else set(answer)
    except TypeError:
        right = set()
    if not right or not all(_is_index(i) and 0 <= i < len(options) for i in right):
        raise ValueError(f"answer must be an option number 0 to {len(options) - 1}, or a set of them; got {answer!r}")
    if not isinstance(explanation, str):
        raise TypeError("explanation must be a string: why the right answer is right")
    if why is not None and (len(why) != len(options) or not all(isinstance(w, str) for w in why)):
        raise ValueError(f"why must hold one string per option ({len(options)}); got {why!r}")
    return options, {int(i) for i in right}


def _check_pairs(question, pairs) -> None:
    if not isinstance(question, str) or not question:
        raise ValueError("question must be a non-empty string")
    if not isinstance(pairs, Mapping) or not pairs:
        raise ValueError(f"pairs must be a non-empty dict {{term: definition}}; got {pairs!r}")
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in pairs.items()):
        raise ValueError("pairs must map strings (terms) to strings (definitions)")
    if len(set(pairs.values())) != len(pairs):
        raise ValueError("each term needs its own definition; two terms share one")


def _get_exercise(exercise_id: Any) -> Exercise:
    if exercise_id not in _EXERCISES:
        known = ", ".join(sorted(_EXERCISES)) or "none"
        raise ValueError(
            f"no exercise {exercise_id!r} is registered (known: {known}); "
            "run the cell that imports the notebook's checkers first."
        )
    return _EXERCISES[exercise_id]


# -------------------------------------------------------------------- small tools


def _is_index(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))


def _notebook_of(item_id: str) -> str:
    return item_id.split(".", 1)[0]


def _user_namespace() -> dict | None:
    """The notebook's variables when running in IPython, else None."""
    try:
        from IPython import get_ipython
    except ImportError:
        return None
    shell = get_ipython()
    return None if shell is None else shell.user_ns


def _read_variable(name: str) -> Any:
    namespace = _user_namespace()
    if namespace is None:
        raise TypeError(f"not running in a notebook; pass the answer: exercises.check(id, {name})")
    return namespace.get(name, _MISSING)


def _safe_get(mapping: Any, key: str) -> Any:
    try:
        return mapping.get(key) if isinstance(mapping, Mapping) else None
    except Exception:
        return None


def _ask_to_stop(worker: threading.Thread) -> None:
    """Raise _Stop inside a thread that ran out of time (takes effect between bytecodes)."""
    set_async_exc = getattr(getattr(ctypes, "pythonapi", None), "PyThreadState_SetAsyncExc", None)
    if set_async_exc is not None and worker.ident is not None:
        set_async_exc(ctypes.c_ulong(worker.ident), ctypes.py_object(_Stop))


_REPR = reprlib.Repr()
_REPR.maxstring = _REPR.maxother = 40
_REPR.maxlist = _REPR.maxtuple = _REPR.maxdict = _REPR.maxset = 4
_KINDS = {
    "f": "floats", "i": "integers", "u": "unsigned integers", "b": "booleans", "c": "complex numbers",
    "U": "text", "S": "bytes", "O": "Python objects", "M": "dates", "m": "time spans", "V": "raw records",
}
_CASTS = {"f": "float32", "i": "int64", "u": "uint8", "b": "bool"}


def _text(message: Any, limit: int = 1000) -> str:
    """One line, no memory addresses, at most ``limit`` characters."""
    try:
        text = message if isinstance(message, str) else str(message)
    except Exception:
        text = "(a message that cannot be printed)"
    text = re.sub(r"\s+", " ", re.sub(r" at 0x[0-9A-Fa-f]+", "", text)).strip()
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _describe(value: Any) -> str:
    """'a list ([1, 2])': the type and a short repr of a student's value."""
    name = type(value).__name__
    if value is None:
        return "None"
    try:
        shown = _REPR.repr(value)
    except Exception:
        shown = "unprintable"
    article = "an" if name[:1].lower() in "aeiou" or name.startswith("nd") else "a"  # "an ndarray"
    return f"{article} {name} ({_text(shown, 60)})"


def _describe_error(exc: BaseException) -> str:
    try:
        detail = str(exc)
    except Exception:
        detail = ""
    name = type(exc).__name__
    return f"{name}: {_text(detail, 200)}" if detail else name


def _shape_text(shape: tuple) -> str:
    return "(" + ", ".join("any" if s is None else str(s) for s in shape) + ("," if len(shape) == 1 else "") + ")"
