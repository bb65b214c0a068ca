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
  Python cannot kill a thread: when time is up the thread is asked to stop by
  raising an exception inside it, again and again, until it ends (see
  :class:`_Stopper`: this also ends loops that catch the request with
  ``except BaseException``), and the verdict says "took longer than N s".
  Code blocked inside C (``time.sleep``, a long NumPy call) ends when that
  call returns. While an answer that could not be stopped still runs, no new
  check starts and the verdict says so;
- every exception from the answer becomes a verdict, ``KeyboardInterrupt``
  and ``SystemExit`` included; only pressing Stop while a check runs
  (:class:`Interrupted`) and mistakes by the notebook author (an unknown
  exercise id, a malformed quiz) raise;
- the panel never lies: it says "checking…" while the Check button's check
  runs, replaces its verdict even when the check itself fails, says that a
  button verdict replaces the printed line, and, once the kernel has
  restarted, tells the student to run the notebook from the top.

Each exercise or quiz id has one panel: showing it again (re-running the
check cell) closes the old panel and detaches its callbacks. Panels can be
driven headlessly: ``panel(id)`` returns the ``ipywidgets.VBox``, and
``Button.click()`` runs its callback.

Quizzes are defined with their keys in the notebook's checker module
(:func:`define_quiz`, :func:`define_match`); the notebook cell only asks
(``exercises.quiz("00.q1", choice=choice)``), and the call prints the question
and its numbered options. So the student copy of a notebook holds no answer
key, and the progress total counts every exercise and quiz from the start.
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
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = [
    "Exercise",
    "Interrupted",
    "answer_or",
    "as_number",
    "call_with_timeout",
    "check",
    "define_match",
    "define_quiz",
    "describe",
    "describe_error",
    "exercise",
    "expect_array",
    "expect_callable",
    "expect_model",
    "expect_number",
    "match",
    "panel",
    "plural",
    "progress",
    "quiz",
    "reset",
    "run_answer",
]

CORRECT = "correct"
_INTERRUPTED = (
    "the check was interrupted (Stop) before it finished; run the cell again or press Check."
)
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


@dataclass(frozen=True)
class Quiz:
    """A multiple-choice quiz defined by :func:`define_quiz`; ``right`` holds the right option numbers."""

    id: str
    question: str
    options: tuple[str, ...]
    right: frozenset[int]
    explanation: str
    why: tuple[str, ...] | None = None


@dataclass(frozen=True)
class Match:
    """A matching quiz defined by :func:`define_match`: ``pairs`` maps each term to its definition."""

    id: str
    question: str
    pairs: dict[str, str]

    @property
    def definitions(self) -> list[str]:
        """The definitions in the order shown (alphabetical, so that it gives nothing away)."""
        return sorted(self.pairs.values())


@dataclass
class _Panel:
    box: Any  # ipywidgets.VBox
    progress: Any  # its progress line, refreshed when any item of the notebook is checked
    handlers: list  # (button, callback) pairs, detached when the panel is retired


_EXERCISES: dict[str, Exercise] = {}
_QUIZZES: dict[str, Quiz] = {}
_MATCHES: dict[str, Match] = {}
_STATUS: dict[str, str] = {}  # last verdict of every exercise, quiz and match seen
_PANELS: dict[str, _Panel] = {}
_ID = re.compile(r"^[A-Za-z0-9_-]+\.[A-Za-z0-9_.-]+$")
_FROM_NAMESPACE = object()  # check(id) without an answer: read the variable by name
_MISSING = object()  # that variable does not exist


class _TimeLimit(TimeoutError):
    """Raised by call_with_timeout; distinct from a TimeoutError the student raises."""


class _Stop(BaseException):
    """Raised inside a worker thread that ran out of time (not caught by ``except Exception``).

    When the student's code swallows it (``except BaseException: pass``), the
    exception object dies at the end of that handler, in the worker thread;
    ``__del__`` then makes the worker raise the next one from inside such a
    handler, where it escapes (see :class:`_Stopper`).
    """

    def __del__(self) -> None:
        try:
            stopper = _STOPPING.get(threading.get_ident())
            if stopper is not None and not stopper.done:
                stopper.trace_handlers()
        except BaseException:  # a request arriving in here: the next one will do
            pass


class Interrupted(KeyboardInterrupt):
    """The person interrupted the kernel (Stop button, Ctrl-C) while a check ran.

    A ``KeyboardInterrupt`` that the *student's code* raises is an answer like
    any other and gets a verdict; this one is the person's request to stop, so
    :func:`check` records "not yet: interrupted" and lets it go on (a "Run all"
    stops there). Checkers that catch ``BaseException`` from a student function
    should let it through: ``except exercises.Interrupted: raise``.
    """


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
    _QUIZZES.clear()
    _MATCHES.clear()
    _STATUS.clear()


def progress(notebook: str | None = None) -> str:
    """Count correct exercises and quizzes, in one notebook (id prefix) or in all.

    Every exercise and quiz counts from its definition (the import of the
    notebook's checker module), so the total is the notebook's number of
    exercises from the start; a later wrong answer un-counts it.

    >>> from tltutor import exercises
    >>> exercises.reset()
    >>> exercises.define_quiz("03.q1", question="2 + 2?", options=["3", "4"], answer=1, explanation="4.")
    >>> exercises.define_quiz("03.q2", question="3 + 3?", options=["6", "7"], answer=0, explanation="6.")
    >>> exercises.quiz("03.q1", choice=1, widget=False)
    [quiz 03.q1] 2 + 2?
      0: 3
      1: 4
    [quiz 03.q1] correct: 4.
    True
    >>> exercises.progress("03")
    '1 / 2 exercises done in notebook 03'
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
    try:
        status, message = _exercise_verdict(ex.id, answer, timeout)
    except Interrupted:  # the person pressed Stop: say so, then let "Run all" stop here
        status, message = NOT_YET, _INTERRUPTED
        _report("ex", ex.id, status, message)
        if widget:
            _show(_exercise_panel(ex, answer, timeout, status, message))
        raise
    _report("ex", ex.id, status, message)
    if widget:
        _show(_exercise_panel(ex, answer, timeout, status, message))
    return status == CORRECT


def define_quiz(
    id: str,
    *,
    question: str,
    options: Sequence[str],
    answer: int | Iterable[int],
    explanation: str,
    why: Sequence[str] | None = None,
) -> None:
    """Define a multiple-choice quiz in a checker module; the notebook asks it with :func:`quiz`.

    ``answer`` is the right option's number (from 0) or a set of them when
    several options are right; ``explanation`` is shown when the student is
    right; ``why`` optionally gives, per option, why it is wrong (``""`` for a
    right one). The key stays in the checker module, out of the student's
    notebook. The quiz counts in its notebook's progress from now on.

    >>> from tltutor import exercises
    >>> exercises.reset()
    >>> exercises.define_quiz("03.q1", question="2 + 2?", options=["3", "4"], answer=1, explanation="4.")
    >>> exercises.progress("03")
    '0 / 1 exercises done in notebook 03'
    """
    _check_id(id)
    options, right = _check_quiz(question, options, answer, explanation, why)
    _retire_panel(id)
    _QUIZZES[id] = Quiz(
        id,
        question,
        tuple(options),
        frozenset(right),
        explanation,
        None if why is None else tuple(why),
    )
    _MATCHES.pop(id, None)
    _STATUS[id] = NOT_ATTEMPTED


def define_match(
    id: str, *, pairs: Mapping[str, str], question: str = "Match each term to its definition."
) -> None:
    """Define a matching quiz in a checker module: ``pairs`` maps each term to its definition.

    The notebook asks it with :func:`match`; the pairs stay in the checker
    module. The quiz counts in its notebook's progress from now on.

    >>> from tltutor import exercises
    >>> exercises.define_match("01.m1", pairs={"source": "where the model was trained",
    ...                                        "target": "where we want it to work"})
    """
    _check_id(id)
    _check_pairs(question, pairs)
    _retire_panel(id)
    _MATCHES[id] = Match(id, question, dict(pairs))
    _QUIZZES.pop(id, None)
    _STATUS[id] = NOT_ATTEMPTED


def quiz(id: str, *, choice: Any = None, widget: bool = True) -> bool:
    """Ask the quiz ``id`` (see :func:`define_quiz`): show the question and its numbered options, check ``choice``.

    ``choice`` is the student's pick: an option number (from 0), its text, or
    a set of them when several options are right; ``None`` (the default) means
    not answered yet. The panel uses RadioButtons (one right option) or
    Checkboxes (several).

    >>> from tltutor import exercises
    >>> exercises.define_quiz("01.q1", question="Which layers are most specific to the source task?",
    ...                       options=["the first ones", "the last ones"], answer=1,
    ...                       explanation="Later layers specialise (Yosinski et al. 2014).")
    >>> exercises.quiz("01.q1", choice=0, widget=False)
    [quiz 01.q1] Which layers are most specific to the source task?
      0: the first ones
      1: the last ones
    [quiz 01.q1] not yet: option 0 ('the first ones') is not right. Try again.
    False
    """
    item = _get_quiz(id)
    status, message = _quiz_verdict(item, choice)
    print(_quiz_text(item))
    _report("quiz", id, status, message)
    if widget and _in_book():
        _show_html(_book_quiz_html(item))
    elif widget:
        _show(_quiz_panel(item, choice, status, message))
    return status == CORRECT


def match(id: str, *, choices: Any = None, widget: bool = True) -> bool:
    """Ask the matching quiz ``id`` (see :func:`define_match`); the panel shows one Dropdown per term.

    ``choices`` is the student's ``{term: definition}``; a definition may be
    given by its text or by its number in the printed list. ``None`` (the
    default) means not answered yet.

    >>> from tltutor import exercises
    >>> exercises.define_match("01.m2", question="Match each word to its meaning.",
    ...                        pairs={"source": "where the model was trained", "target": "where we want it to work"})
    >>> exercises.match("01.m2", choices={"source": 0, "target": "where we want it to work"}, widget=False)
    [quiz 01.m2] Match each word to its meaning.
      terms: 'source', 'target'
      definitions:
      0: where the model was trained
      1: where we want it to work
    [quiz 01.m2] correct: both terms matched.
    True
    """
    item = _get_match(id)
    status, message = _match_verdict(item, choices)
    print(_match_text(item))
    _report("quiz", id, status, message)
    if widget and _in_book():
        _show_html(_book_match_html(item))
    elif widget:
        _show(_match_panel(item, choices, status, message))
    return status == CORRECT


def _in_book() -> bool:
    """True while the book is built (scripts/build_book.py sets ``TLTUTOR_BOOK=1``).

    The book shows each quiz unanswered, its answer folded under "Show the answer"
    (the build hides the cell's printed lines, which hold the verdict), instead of
    a panel whose buttons could not run without a kernel.
    """
    import os

    return os.environ.get("TLTUTOR_BOOK") == "1"


_BOOK_NOTE = (
    "<p><i>To answer it yourself, open the notebook (launch buttons at the top of the page): "
    "set <code>{name}</code> in the cell and run it, or use the panel's buttons.</i></p>"
)


def _book_quiz_html(item: Quiz) -> str:
    """A quiz as the book shows it: question, numbered options, the answer folded away."""
    options = "".join(f"<li>{_markup(option)}</li>" for option in item.options)
    right = " and ".join(f"option {i} ({_markup(item.options[i])})" for i in sorted(item.right))
    why = "".join(
        f"<li>option {i}: {_markup(reason)}</li>"
        for i, reason in enumerate(item.why or ())
        if reason
    )
    return (
        f'<div class="tltutor-quiz"><p><b>Quiz {html.escape(item.id)}:</b> {_markup(item.question)}</p>'
        f'<ol start="0">{options}</ol>'
        f"<details><summary>Show the answer</summary><p>The answer is {right}. {_markup(item.explanation)}</p>"
        f"{f'<ul>{why}</ul>' if why else ''}</details>{_BOOK_NOTE.format(name='choice')}</div>"
    )


def _book_match_html(item: Match) -> str:
    """A matching quiz as the book shows it: terms, numbered definitions, the pairs folded away."""
    terms = ", ".join(f"<b>{html.escape(term)}</b>" for term in item.pairs)
    definitions = "".join(f"<li>{_markup(d)}</li>" for d in item.definitions)
    pairs = "".join(
        f"<li><b>{html.escape(t)}</b>: {_markup(d)}</li>" for t, d in item.pairs.items()
    )
    return (
        f'<div class="tltutor-quiz"><p><b>Quiz {html.escape(item.id)}:</b> {_markup(item.question)}</p>'
        f'<p>Terms: {terms}</p><p>Definitions:</p><ol start="0">{definitions}</ol>'
        f"<details><summary>Show the answer</summary><ul>{pairs}</ul></details>"
        f"{_BOOK_NOTE.format(name='choices')}</div>"
    )


def _show_html(markup: str) -> None:
    """Display HTML with no plain-text version (so the stored outputs' text stays as in JupyterLab)."""
    if _user_namespace() is not None:
        from IPython.display import display

        display({"text/html": markup}, raw=True)


def _quiz_text(item: Quiz) -> str:
    lines = [f"[quiz {item.id}] {_text(item.question)}"]
    lines += [f"  {i}: {_text(option)}" for i, option in enumerate(item.options)]
    if len(item.right) > 1:
        lines.append("  (several options are right: choose a set of numbers, such as {0, 2})")
    return "\n".join(lines)


def _match_text(item: Match) -> str:
    lines = [
        f"[quiz {item.id}] {_text(item.question)}",
        "  terms: " + ", ".join(f"'{_text(term)}'" for term in item.pairs),
        "  definitions:",
    ]
    lines += [f"  {i}: {_text(definition)}" for i, definition in enumerate(item.definitions)]
    return "\n".join(lines)


def call_with_timeout(func: Callable, *args: Any, timeout: float = 5.0, **kwargs: Any) -> Any:
    """Call ``func(*args, **kwargs)`` in a worker thread; raise ``TimeoutError`` after ``timeout`` s.

    Use it in checkers to run a student's function. Exceptions from ``func``
    reach the caller unchanged. See the module docstring for how a thread
    that ran out of time (or whose check was interrupted) is stopped. While an
    earlier answer still runs because it did not stop, no new one is started:
    that raises ``RuntimeError`` with what to do.

    >>> from tltutor import exercises
    >>> exercises.call_with_timeout(sum, [1, 2, 3], timeout=1.0)
    6
    """
    _check_timeout(timeout)
    _refuse_while_a_runaway_runs()
    outcome: dict[str, Any] = {}
    stopper = _Stopper(None)

    def target() -> None:
        try:
            try:
                outcome["value"] = func(*args, **kwargs)
            except BaseException as exc:  # handed to the caller below
                outcome["error"] = exc
            finally:
                stopper.done = True  # no more stop requests from here on
        except _Stop:  # one that arrived just as func returned
            pass
        stopper.finish()

    stopper.target_code = target.__code__
    worker = threading.Thread(target=target, name="tltutor-check", daemon=True)
    worker.start()
    try:
        stopper.finished.wait(timeout)  # not worker.join: see _Stopper.finished
    except (
        KeyboardInterrupt
    ):  # the person pressed Stop (interrupted the kernel) while the check ran
        stopper.stop(worker)
        raise Interrupted("the check was interrupted before it finished") from None
    if not stopper.finished.is_set():
        stopper.stop(worker)
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
    except _TimeLimit:
        return (
            None,
            f"your function took longer than {timeout:g} s on a small example; is there an endless loop?",
        )
    except (Interrupted, _Runaway):
        raise
    except (
        BaseException
    ) as exc:  # the student's code may raise anything, KeyboardInterrupt included
        return None, f"your function raised {describe_error(exc)}"


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
    (False, 'the array has 1 NaN value out of 2; check for a division by zero or a log of 0.')
    >>> expect_array(["a", "b"], dtype_kind="f")
    (False, "the array holds text (dtype <U1); expected floats. Convert with np.asarray(x, dtype='float32').")
    """
    if answer is None:
        return False, "expected an array; got None."
    if isinstance(answer, (str, bytes, Mapping, set, frozenset)):
        return False, f"expected an array; got {describe(answer)}."
    try:
        array = np.asarray(answer)
    except Exception as exc:
        return (
            False,
            f"{describe(answer)} cannot be turned into a NumPy array ({describe_error(exc)}).",
        )
    if shape is not None:
        expected = tuple(shape)
        if array.ndim != len(expected) or any(
            want is not None and got != want for got, want in zip(array.shape, expected)
        ):
            return (
                False,
                f"the array has shape {tuple(array.shape)}; expected {_shape_text(expected)}.",
            )
    kind = array.dtype.kind
    if dtype_kind is not None and kind not in dtype_kind:
        names = [_KINDS.get(k, k) for k in dtype_kind]
        wanted = f"{', '.join(names[:-1])} or {names[-1]}" if len(names) > 1 else names[0]
        fix = (
            f" Convert with np.asarray(x, dtype='{_CASTS[dtype_kind[0]]}')."
            if dtype_kind[0] in _CASTS
            else ""
        )
        return (
            False,
            f"the array holds {_KINDS.get(kind, kind)} (dtype {array.dtype}); expected {wanted}.{fix}",
        )
    if array.size > max_size:
        return False, f"the array is too large: {array.size:,} elements (at most {max_size:,})."
    if finite and kind in "fc":
        bad_nan = int(np.count_nonzero(np.isnan(array)))
        bad_inf = int(np.count_nonzero(np.isinf(array)))
        if bad_nan:
            return False, (
                f"the array has {plural(bad_nan, 'NaN value')} out of {array.size:,}; "
                "check for a division by zero or a log of 0."
            )
        if bad_inf:
            return (
                False,
                f"the array has {plural(bad_inf, 'infinite value')} out of {array.size:,}.",
            )
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
            return False, f"{describe(answer)} is too large to be a float."
    else:
        fix = " Write the number without quotes." if isinstance(answer, str) else ""
        try:
            array = np.asarray(answer)
            ok = array.size == 1 and array.dtype.kind in "iuf"
        except Exception:
            ok = False
        if not ok:
            return False, f"expected a number; got {describe(answer)}.{fix}"
        value = float(array.reshape(-1)[0])
    if math.isnan(value):
        return (
            False,
            "the number is NaN (not a number); check for 0 / 0 or a log of a negative value.",
        )
    if math.isinf(value):
        return False, "the number is infinite; check for a division by zero."
    if not low <= value <= high:
        return False, f"{value:g} is outside the expected range, {low:g} to {high:g}."
    return True, f"{value:g} is between {low:g} and {high:g}."


def expect_callable(
    answer: Any, *, args: Sequence[Any] | None = None, timeout: float = 5.0
) -> tuple[bool, str]:
    """Is ``answer`` a function, and (with ``args``) does ``answer(*args)`` run within ``timeout`` s?

    >>> from tltutor.exercises import expect_callable
    >>> expect_callable(len, args=([1, 2],))
    (True, 'len runs.')
    >>> expect_callable(3)
    (False, 'expected a function; got an int (3).')
    """
    if not callable(answer):
        return False, f"expected a function; got {describe(answer)}."
    label = getattr(answer, "__name__", "your function")
    label = label if isinstance(label, str) else "your function"
    if args is None:
        return True, f"{label} is a function."
    try:
        call_with_timeout(answer, *args, timeout=timeout)
    except _TimeLimit as exc:
        return False, f"{label} {exc} on a small example; is there an endless loop?"
    except (Interrupted, _Runaway):
        raise
    except BaseException as exc:  # the student's code may raise anything, SystemExit included
        return False, f"{label} raised {describe_error(exc).rstrip('.')}."
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
            return (
                False,
                f"got {_article(type(answer).__name__)} layer, not a model; wrap it: keras.Sequential([...]).",
            )
        return False, f"expected a keras.Model; got {describe(answer)}."
    if input_shape is not None:
        batch = np.zeros((2, *input_shape), dtype="float32")
        try:
            output = answer(batch, training=False)
        except Exception as exc:
            return (
                False,
                f"the model cannot take inputs of shape {(None, *input_shape)}: {describe_error(exc)}.",
            )
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
        return (
            False,
            "the model is not compiled; call model.compile(optimizer=..., loss=..., metrics=[...]).",
        )
    return (
        True,
        f"a Keras model with {answer.count_params():,} parameters."
        if answer.built
        else "a Keras model.",
    )


# ------------------------------------------------------------------ widgets


def panel(item_id: str):
    """The ``ipywidgets.VBox`` last shown for an exercise or quiz id.

    Its children, top to bottom: title (HTML), the quiz's inputs if any, a row
    with the Check and Hint buttons, feedback (HTML), hints (HTML), progress
    (HTML). Drive it headlessly with ``button.click()``.

    >>> from tltutor import exercises
    >>> exercises.define_match("00.m", pairs={"a": "b"})
    >>> exercises.match("00.m", choices={"a": "b"})
    [quiz 00.m] Match each term to its definition.
      terms: 'a'
      definitions:
      0: b
    [quiz 00.m] correct: the term matched.
    True
    >>> box = exercises.panel("00.m")
    >>> import ipywidgets
    >>> isinstance(box, ipywidgets.VBox)
    True
    """
    if item_id not in _PANELS:
        raise ValueError(
            f"no panel has been shown for {item_id!r}; call check/quiz/match with widget=True first."
        )
    return _PANELS[item_id].box


def _exercise_panel(ex: Exercise, answer: Any, timeout: float, status: str, message: str):
    def run_check() -> tuple[str, str]:
        current = _read_variable(ex.name) if ex.name and _user_namespace() is not None else answer
        return _exercise_verdict(ex.id, current, timeout)

    return _build_panel(
        ex.id, f"Exercise {ex.id}: {ex.title}", run_check, status, message, hints=ex.hints
    )


def _quiz_panel(item: Quiz, choice: Any, status: str, message: str):
    import ipywidgets as w

    options, right = item.options, item.right
    try:
        picked = _picked(choice, options, multiple=len(right) > 1)
    except Exception:
        picked = set()
    labels = [f"{i}: {text}" for i, text in enumerate(options)]
    if len(right) > 1:
        boxes = [
            w.Checkbox(
                value=i in picked, description=label, indent=False, layout=w.Layout(width="auto")
            )
            for i, label in enumerate(labels)
        ]
        inputs = w.VBox(boxes)

        def current() -> set[int]:
            return {i for i, box in enumerate(boxes) if box.value}
    else:
        inputs = w.RadioButtons(
            options=[(label, i) for i, label in enumerate(labels)],
            value=next(iter(picked)) if picked else None,
            layout=w.Layout(width="auto"),
        )

        def current() -> int | None:
            return inputs.value

    def run_check() -> tuple[str, str]:
        return _quiz_verdict(item, current())

    return _build_panel(
        item.id, f"Quiz {item.id}: {item.question}", run_check, status, message, body=[inputs]
    )


def _match_panel(item: Match, choices: Any, status: str, message: str):
    import ipywidgets as w

    definitions = item.definitions
    dropdowns = {}
    rows = []
    for term in item.pairs:
        preset = _safe_get(choices, term)
        if _is_index(preset) and 0 <= preset < len(definitions):
            preset = definitions[preset]
        dropdowns[term] = w.Dropdown(
            options=definitions,
            value=preset if type(preset) is str and preset in definitions else None,
            layout=w.Layout(width="65%"),
        )
        rows.append(
            w.HBox(
                [
                    w.HTML(f"<b>{html.escape(term)}</b>", layout=w.Layout(width="30%")),
                    dropdowns[term],
                ]
            )
        )

    def run_check() -> tuple[str, str]:
        return _match_verdict(item, {term: box.value for term, box in dropdowns.items()})

    return _build_panel(
        item.id, f"Quiz {item.id}: {item.question}", run_check, status, message, body=[w.VBox(rows)]
    )


# Shown by JupyterLab's CSS once the panel's kernel is gone: after a restart, the widget manager
# marks every old widget view `jupyter-widgets-disconnected`, and an old panel's buttons reach nobody.
_PANEL_CSS = """<style>
.tltutor-panel .tltutor-restarted {display: none}
.tltutor-panel.jupyter-widgets-disconnected .tltutor-restarted {display: block; color: #b35900; font-weight: bold}
.tltutor-panel.jupyter-widgets-disconnected .tltutor-check {pointer-events: none; opacity: 0.4}
</style>"""
_RESTARTED = (
    '<div class="tltutor-restarted">The kernel restarted, so this panel is no longer connected: '
    "run the notebook from the top (Run → Run All Cells) to check again.</div>"
)
_CHECKING = '<span style="color:#57606a"><b>checking…</b></span>'


def _build_panel(item_id, title, run_check, status, message, *, hints=(), body=()):
    import ipywidgets as w

    _retire_panel(item_id)
    check_button = w.Button(description="Check", button_style="primary", icon="check")
    check_button.add_class("tltutor-check")
    hint_button = w.Button(
        description=f"Hint (1 of {len(hints)})" if hints else "No hints",
        disabled=not hints,
    )
    feedback = w.HTML(_feedback_html(status, message))
    hint_box = w.HTML()
    progress_box = w.HTML(_progress_html(item_id))
    buttons = w.HBox([check_button, hint_button])
    heading = w.HTML(f"{_PANEL_CSS}<b>{_markup(title)}</b>{_RESTARTED}")
    box = _panel_box_class()([heading, *body, buttons, feedback, hint_box, progress_box])
    box.add_class("tltutor-panel")
    box.item_id = item_id

    def on_check(_button) -> None:
        check_button.disabled = True
        feedback.value = _CHECKING
        try:
            new_status, new_message = run_check()
        except KeyboardInterrupt:  # Stop pressed while the button's check ran
            new_status, new_message = NOT_YET, _INTERRUPTED
        except Exception as exc:  # never leave an old verdict standing
            new_status, new_message = (
                NOT_YET,
                (f"the check could not run ({describe_error(exc)}); run the check cell again."),
            )
        finally:
            check_button.disabled = False
        _record(item_id, new_status)
        feedback.value = _feedback_html(new_status, new_message, rechecked=True)

    shown = 0

    def on_hint(_button) -> None:
        nonlocal shown
        shown = min(shown + 1, len(hints))
        hint_box.value = "<ol>" + "".join(f"<li>{_markup(h)}</li>" for h in hints[:shown]) + "</ol>"
        hint_button.description = (
            f"Hint ({shown + 1} of {len(hints)})" if shown < len(hints) else "No more hints"
        )
        hint_button.disabled = shown >= len(hints)

    check_button.on_click(on_check)
    hint_button.on_click(on_hint)
    _PANELS[item_id] = _Panel(box, progress_box, [(check_button, on_check), (hint_button, on_hint)])
    return box


def _panel_box_class():
    """An ipywidgets VBox whose plain-text form is short and stable: what a notebook stores
    (and nbval compares) next to the widget, and what viewers without widgets show."""
    global _PanelBox
    if _PanelBox is None:
        import ipywidgets as w

        class PanelBox(w.VBox):
            item_id = ""

            def __repr__(self) -> str:
                return f"[panel {self.item_id}: Check and Hint buttons; run the notebook in Jupyter to use them]"

        _PanelBox = PanelBox
    return _PanelBox


_PanelBox = None


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


def _feedback_html(status: str, message: str, *, rechecked: bool = False) -> str:
    """The panel's verdict; after the Check button, it says that it replaces the printed line."""
    note = (
        " <i>(checked again with the button: this replaces the verdict printed above)</i>"
        if rechecked
        else ""
    )
    return f'<span style="color:{_COLORS[status]}"><b>{status}</b>: {_markup(_text(message))}</span>{note}'


def _progress_html(item_id: str) -> str:
    done, total = _counts(_notebook_of(item_id))
    return f"<i>{done} / {total} exercises done in this notebook</i>"


def _markup(text: str) -> str:
    """Escape text for HTML; show `code` in a code font, *emphasis* and **strong** as such.

    >>> _markup("the *source* classes, `x * 2`, 2 * 3 and **not** a*b")
    'the <em>source</em> classes, <code>x * 2</code>, 2 * 3 and <strong>not</strong> a*b'
    """
    parts = re.split(r"(`[^`]+`)", text)
    return "".join(
        f"<code>{html.escape(part[1:-1])}</code>"
        if part.startswith("`") and part.endswith("`") and len(part) > 1
        else _emphasis(html.escape(part))
        for part in parts
    )


def _emphasis(text: str) -> str:
    text = re.sub(r"(?<![\w*])\*\*(?=\S)(.+?)(?<=\S)\*\*(?![\w*])", r"<strong>\1</strong>", text)
    return re.sub(r"(?<![\w*])\*(?=[^\s*])(.+?)(?<=[^\s*])\*(?![\w*])", r"<em>\1</em>", text)


# ----------------------------------------------------------------- verdicts


def _exercise_verdict(exercise_id: str, answer: Any, timeout: float) -> tuple[str, str]:
    ex = _EXERCISES[exercise_id]
    if answer is _MISSING:
        return (
            NOT_ATTEMPTED,
            f"there is no variable `{ex.name}` yet; run the exercise cell above first.",
        )
    if answer is None:
        return (
            NOT_ATTEMPTED,
            "your answer is still None; write your code in the exercise cell and run it.",
        )
    try:
        result = call_with_timeout(ex.check, answer, timeout=timeout)
    except _TimeLimit as exc:
        return NOT_YET, f"your answer {exc} to check; is there an endless loop, or is it too large?"
    except _Runaway as exc:
        return NOT_YET, str(exc)
    except Interrupted:
        raise
    except (
        BaseException
    ) as exc:  # the student's code may raise anything, KeyboardInterrupt and SystemExit included
        return NOT_YET, f"your answer raised {describe_error(exc).rstrip('.')}."
    if isinstance(result, tuple) and len(result) == 2:
        ok, message = result
    elif isinstance(result, (bool, np.bool_)):
        ok, message = result, ""
    else:
        raise TypeError(
            f"the checker of {exercise_id} must return (ok, message) or ok; got {describe(result)}"
        )
    try:
        ok = bool(ok)
    except Exception as exc:  # e.g. the checker compared arrays: ``(answer == 3, "...")``
        return NOT_YET, f"your answer raised {describe_error(exc).rstrip('.')}."
    if ok:
        return CORRECT, _text(message) or "well done."
    return NOT_YET, _text(message) or "not quite; try a hint."


def _quiz_verdict(item: Quiz, choice: Any) -> tuple[str, str]:
    options, right, why = item.options, item.right, item.why
    try:
        picked = _picked(choice, options, multiple=len(right) > 1)
    except (TypeError, ValueError) as exc:
        return NOT_YET, str(exc)
    except Exception as exc:
        return NOT_YET, f"could not read your choice ({describe_error(exc)})."
    if not picked:
        return (
            NOT_ATTEMPTED,
            "choose an answer and press Check (or set choice in the cell and run it).",
        )
    if picked == right:
        return CORRECT, item.explanation or "well done."
    reasons = " ".join(why[i] for i in sorted(picked - right) if why[i]) if why else ""
    if len(right) == 1 and len(picked) == 1:
        number = next(iter(picked))
        return (
            NOT_YET,
            f"option {number} ('{options[number]}') is not right. {reasons or 'Try again.'}",
        )
    wrong, missing = len(picked - right), len(right - picked)
    parts = []
    if wrong:
        parts.append(
            f"{plural(wrong, 'of your choices')} {'is' if wrong == 1 else 'are'} not right"
        )
    if missing:
        parts.append(f"{plural(missing, 'right option')} {'is' if missing == 1 else 'are'} missing")
    return NOT_YET, f"{' and '.join(parts)}. {reasons}".strip()


def _match_verdict(item: Match, choices: Any) -> tuple[str, str]:
    pairs, definitions = item.pairs, item.definitions
    if choices is None:
        return (
            NOT_ATTEMPTED,
            "pick a definition for each term and press Check (or set choices in the cell and run it).",
        )
    if not isinstance(choices, Mapping):
        return NOT_YET, f"choices must be a dict {{term: definition}}; got {describe(choices)}."
    try:
        picked = {term: choices.get(term) for term in pairs}
        if all(value is None for value in picked.values()):
            return NOT_ATTEMPTED, "pick a definition for each term and press Check."
        picked = {
            term: definitions[value]
            if _is_index(value) and 0 <= value < len(definitions)
            else value
            for term, value in picked.items()
        }
        wrong = [
            term
            for term in pairs
            if not (isinstance(picked[term], str) and picked[term] == pairs[term])
        ]
    except Exception as exc:
        return NOT_YET, f"could not read your choices ({describe_error(exc)})."
    if not wrong:
        if len(pairs) <= 2:
            return CORRECT, "the term matched." if len(pairs) == 1 else "both terms matched."
        return CORRECT, f"all {len(pairs)} terms matched."
    look = ", ".join(f"'{term}'" for term in wrong)
    return (
        NOT_YET,
        f"{len(pairs) - len(wrong)} of {len(pairs)} terms matched; look again at {look}.",
    )


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
                raise ValueError(
                    f"choice {int(item)} is not an option: they are numbered 0 to {len(options) - 1}."
                )
            picked.add(int(item))
        else:
            raise TypeError(
                f"a choice is an option number (0 to {len(options) - 1}) or its text; got {describe(item)}."
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
        raise ValueError(
            f"answer must be an option number 0 to {len(options) - 1}, or a set of them; got {answer!r}"
        )
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


def _get_quiz(quiz_id: Any) -> Quiz:
    if quiz_id not in _QUIZZES:
        known = ", ".join(sorted(_QUIZZES)) or "none"
        raise ValueError(
            f"no quiz {quiz_id!r} is defined (known: {known}); run the cell that imports the notebook's "
            "checkers first (quizzes are defined there with exercises.define_quiz)."
        )
    return _QUIZZES[quiz_id]


def _get_match(match_id: Any) -> Match:
    if match_id not in _MATCHES:
        known = ", ".join(sorted(_MATCHES)) or "none"
        raise ValueError(
            f"no matching quiz {match_id!r} is defined (known: {known}); run the cell that imports the "
            "notebook's checkers first (they are defined there with exercises.define_match)."
        )
    return _MATCHES[match_id]


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


def plural(number: int, noun: str, plural_form: str | None = None) -> str:
    """'1 name', '2 names', '12,345 names': a count with thousands separators and its noun.

    For checker messages, instead of "1 name(s)" or "55621 parameters".

    >>> plural(1, "name"), plural(12345, "name"), plural(2, "of your choices"), plural(3, "entry", "entries")
    ('1 name', '12,345 names', '2 of your choices', '3 entries')
    """
    if number == 1 or noun.startswith("of "):
        word = noun
    else:
        word = plural_form or noun + "s"
    return f"{number:,} {word}"


def _article(word: str) -> str:
    """'an int', 'a Dense', 'an ndarray'."""
    return f"{'an' if word[:1].lower() in 'aeiou' or word.startswith('nd') else 'a'} {word}"


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


_STOPPING: dict[int, Any] = {}  # worker thread ident -> its _Stopper, while it is being stopped
_RUNAWAYS: list = []  # (worker, its _Stopper)  # workers asked to stop that were still running a moment later
_GRACE = 3.0  # seconds spent stopping a worker before it counts as a runaway


class _Runaway(RuntimeError):
    """A new check was refused because an earlier answer still runs (it did not stop)."""


class _Stopper:
    """Stops a worker thread, even when the student's code catches the stop request.

    Python cannot kill a thread; it can raise an exception inside one
    (``PyThreadState_SetAsyncExc``) at its next check between bytecodes.
    :meth:`stop` raises :class:`_Stop` in the worker every half millisecond.
    A loop such as ``while True: try: ... except BaseException: pass``
    swallows it; then (from ``_Stop.__del__``, in the worker) the student's
    frames get a trace function that raises ``_Stop`` again as soon as an
    ``except`` handler holds one, and raised inside the handler it escapes the
    loop. Nothing is traced before that, so checks run at full speed. Code
    that waits inside C (``time.sleep``, a long NumPy call) stops when that
    call returns. A worker still running after ``_GRACE`` s is a *runaway*: no
    new check starts until it ends (see :func:`_refuse_while_a_runaway_runs`).
    """

    def __init__(self, target_code) -> None:
        self.target_code = target_code  # the worker's own frame, never traced
        self.done = False  # set by the worker once the student's code has returned
        # Set by the worker as its last step. Waiting on it, not on Thread.join/is_alive: a
        # KeyboardInterrupt (the Stop button) that lands inside Thread.join marks a thread that
        # still runs as stopped (CPython 3.11), and the answer would then spin on unseen.
        self.finished = threading.Event()

    def finish(self) -> None:
        """In the worker, after the student's code: stop tracing, cancel a request that came too
        late, then say so (``finished``)."""
        _STOPPING.pop(threading.get_ident(), None)
        for _ in range(3):
            try:
                if sys.gettrace() is _trace_new_frame:
                    sys.settrace(None)
                _set_async_exc(threading.get_ident(), None)
                break
            except _Stop:
                continue
        self.finished.set()

    def trace_handlers(self) -> None:
        """In the worker: make every frame of the student's code raise _Stop from inside a handler."""
        frame = sys._getframe(1)
        while frame is not None and frame.f_code is not self.target_code:
            if frame.f_globals.get("__name__") != __name__:
                frame.f_trace = _raise_in_handler
            frame = frame.f_back
        if sys.gettrace() is None:
            sys.settrace(_trace_new_frame)

    def ended(self, worker: threading.Thread) -> bool:
        """The worker said it finished, or its thread is gone: a stop request that landed after the
        student's code returned but before :meth:`finish` cancelled it ends the thread early. (Never
        ``join`` the worker: then ``is_alive`` could be wrong, see ``finished``.)"""
        return self.finished.is_set() or not worker.is_alive()

    def stop(self, worker: threading.Thread) -> None:
        """From the waiting thread: stop ``worker``; still busy after ``_GRACE`` s, it is a runaway."""
        if worker.ident is not None:
            _STOPPING[worker.ident] = self
        if self.try_to_stop(worker, _GRACE) == "busy":
            _RUNAWAYS.append((worker, self))

    def try_to_stop(self, worker: threading.Thread, seconds: float) -> str:
        """Raise _Stop in ``worker`` again and again for up to ``seconds``.

        Returns ``"stopped"``, ``"waiting"`` (it uses no CPU: it waits inside C; the
        last request stays pending and arrives when that call returns) or ``"busy"``.
        """
        deadline = time.monotonic() + seconds
        interval = sys.getswitchinterval()
        sys.setswitchinterval(1e-4)  # get the GIL back often, so that each request arrives at once
        cpu, checked = _thread_cpu(worker), time.monotonic()
        try:
            while not self.done and not self.ended(worker) and time.monotonic() < deadline:
                _set_async_exc(worker.ident, _Stop)
                self.finished.wait(0.0005)
                if time.monotonic() - checked > 0.25:
                    now = _thread_cpu(worker)
                    if cpu is not None and now is not None and now - cpu < 0.025:
                        return "stopped" if self.ended(worker) else "waiting"
                    cpu, checked = now, time.monotonic()
        finally:
            sys.setswitchinterval(interval)
        while self.done and not self.ended(worker) and time.monotonic() < deadline:
            self.finished.wait(0.01)  # its code has returned: it is finishing
        return "stopped" if self.ended(worker) else "busy"


def _trace_new_frame(frame, event, arg):
    return _raise_in_handler if frame.f_globals.get("__name__") != __name__ else None


def _raise_in_handler(frame, event, arg):
    if event == "line" and sys.exc_info()[0] is _Stop:
        raise _Stop
    return _raise_in_handler


def _thread_cpu(worker: threading.Thread) -> float | None:
    """CPU seconds a thread has used (Linux and most Unixes), or None where that cannot be read."""
    try:
        return time.clock_gettime(time.pthread_getcpuclockid(worker.ident))
    except (AttributeError, OSError, TypeError, OverflowError):
        return None


def _refuse_while_a_runaway_runs() -> None:
    _RUNAWAYS[:] = [
        (worker, stopper)
        for worker, stopper in _RUNAWAYS
        if stopper.try_to_stop(worker, _GRACE) == "busy"
    ]
    if _RUNAWAYS:
        raise _Runaway(
            "an earlier answer is still running in the background: it did not stop when its time was up "
            "(it waits inside a long call, or catches the stop request with `except BaseException`). "
            "No new check starts until it ends; if it does not end, restart the kernel "
            "(Kernel → Restart Kernel) and run the notebook from the top."
        )


def _set_async_exc(thread_id: int | None, exc_type: type[BaseException] | None) -> None:
    """Raise ``exc_type`` in a thread at its next check between bytecodes (None: cancel a pending one)."""
    set_async_exc = getattr(getattr(ctypes, "pythonapi", None), "PyThreadState_SetAsyncExc", None)
    if set_async_exc is not None and thread_id is not None:
        set_async_exc(
            ctypes.c_ulong(thread_id), None if exc_type is None else ctypes.py_object(exc_type)
        )


_REPR = reprlib.Repr()
_REPR.maxstring = _REPR.maxother = 40
_REPR.maxlist = _REPR.maxtuple = _REPR.maxdict = _REPR.maxset = 4
_KINDS = {
    "f": "floats",
    "i": "integers",
    "u": "unsigned integers",
    "b": "booleans",
    "c": "complex numbers",
    "U": "text",
    "S": "bytes",
    "O": "Python objects",
    "M": "dates",
    "m": "time spans",
    "V": "raw records",
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


def describe(value: Any) -> str:
    """'a list ([1, 2])': the type and a short repr of a student's value, safe on any object.

    For checker messages: ``f"your function returns {exercises.describe(result)}"``.

    >>> describe([1, 2]), describe(np.zeros(3)), describe(None)
    ('a list ([1, 2])', 'an ndarray (array([0., 0., 0.]))', 'None')
    """
    name = type(value).__name__
    if value is None:
        return "None"
    try:
        shown = _REPR.repr(value)
    except Exception:
        shown = "unprintable"
    return f"{_article(name)} ({_text(shown, 60)})"


def describe_error(exc: BaseException) -> str:
    """'ZeroDivisionError: division by zero': an exception in one short line, safe on any exception.

    >>> describe_error(ZeroDivisionError("division by zero")), describe_error(KeyError())
    ('ZeroDivisionError: division by zero', 'KeyError')
    """
    try:
        detail = str(exc)
    except Exception:
        detail = ""
    name = type(exc).__name__
    return f"{name}: {_text(detail, 200)}" if detail else name


def _shape_text(shape: tuple) -> str:
    return (
        "("
        + ", ".join("any" if s is None else str(s) for s in shape)
        + ("," if len(shape) == 1 else "")
        + ")"
    )


# The names the checker modules used before describe and describe_error were public.
_describe = describe
_describe_error = describe_error
