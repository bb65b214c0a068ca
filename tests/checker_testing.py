"""Shared helpers of the checker tests (tests/test_checks_*.py): run a check headlessly, hostile answers."""

import contextlib
import io
import re

import keras

from tltutor import exercises

VERDICT = re.compile(r"^\[(ex|quiz) [\w.-]+\] (correct|not yet|not attempted): \S[^\n]*$")


def verdict(exercise_id, answer):
    """Run the check headlessly; return (ok, the verdict line). A student's function may print too."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        ok = exercises.check(exercise_id, answer, widget=False)
    lines = [line for line in out.getvalue().splitlines() if line.startswith(("[ex ", "[quiz "))]
    assert len(lines) == 1, out.getvalue()
    assert VERDICT.match(lines[0]), lines[0]
    assert " at 0x" not in lines[0]
    return ok, lines[0]


class Hostile:
    """Every protocol a checker might touch raises."""

    def __getattr__(self, name):
        raise RuntimeError(f"no {name}")

    def __eq__(self, other):
        raise RuntimeError("no comparing")

    __ne__ = __lt__ = __gt__ = __le__ = __ge__ = __eq__
    __hash__ = object.__hash__

    def __len__(self):
        raise RuntimeError("no len")

    def __iter__(self):
        raise RuntimeError("no iter")

    def __float__(self):
        raise RuntimeError("no float")

    def __array__(self, dtype=None, copy=None):
        raise RuntimeError("no array")


class RaisingModel(keras.Model):
    """A Keras model whose call always fails."""

    def call(self, x):
        raise ValueError("broken on purpose")
