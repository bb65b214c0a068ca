"""Checkers for notebook 00 (setup and tour): importing this module registers them.

Both exercises ask for a *prediction* that the next cell's table then confirms: which domain
shifts leave the mean pixel where it was (00.1), and which one shrinks the spread most (00.2).
The truth is computed from the same images the notebook uses, not written down.

>>> from tltutor import exercises
>>> from tltutor.checks import nb00
>>> exercises.check("00.2", "contrast", widget=False)
[ex 00.2] correct: contrast squeezes every pixel towards mid-grey: the spread falls from 84 to 25.
True
"""

from __future__ import annotations

import functools

import numpy as np

from tltutor import data, exercises

__all__ = ["MEAN_TOLERANCE", "check_smallest_spread", "check_unchanged_mean", "shift_statistics"]

#: a shift "leaves the mean pixel where it was" when it moves it by less than this (grey levels)
MEAN_TOLERANCE = 2.0


@functools.cache
def shift_statistics(seed: int = 0) -> dict[str, tuple[float, float]]:
    """Mean pixel and spread of notebook 00's 500 clean test images under each shift (severity 1).

    >>> stats = shift_statistics()
    >>> sorted(stats) == sorted(["clean", *data.SHIFTS])
    True
    """
    clean = data.load_fashion_mnist("test", full=False)[0][:500]
    images = {"clean": clean, **{kind: data.shift(clean, kind, seed=seed) for kind in data.SHIFTS}}
    return {kind: (float(X.mean()), float(X.std())) for kind, X in images.items()}


def _mean_moves(seed: int = 0) -> dict[str, float]:
    stats = shift_statistics(seed)
    return {kind: stats[kind][0] - stats["clean"][0] for kind in data.SHIFTS}


def _as_kinds(answer) -> tuple[set[str] | None, str]:
    """The answer as a set of shift names, or None and what is wrong with it."""
    if isinstance(answer, str):
        answer = [answer]
    if isinstance(answer, np.ndarray):
        answer = answer.tolist()
    if not isinstance(answer, (set, frozenset, list, tuple)):
        return (
            None,
            f"expected a set of shift names such as {{'noise'}}; got {exercises.describe(answer)}.",
        )
    answer = list(answer)
    if not all(isinstance(kind, str) for kind in answer):
        return (
            None,
            f"every item should be a shift name (a string), one of {', '.join(data.SHIFTS)}.",
        )
    kinds = {kind.strip().lower() for kind in answer}
    unknown = sorted(kinds - set(data.SHIFTS) - {"clean"})
    if unknown:
        return (
            None,
            f"unknown shift(s) {', '.join(map(repr, unknown))}; the shifts are {', '.join(data.SHIFTS)}.",
        )
    return kinds, ""


@exercises.exercise(
    "00.1",
    "Predict: which shifts leave the mean pixel where it was?",
    name="unchanged_mean",
    hints=[
        "Look at the rows of the picture: which shifts add or remove brightness, and which only move "
        "pixels around or mix neighbouring pixels?",
        "A blur averages each pixel with its neighbours; a rotation moves pixels (the black corners it "
        "fills in are black background anyway).",
    ],
)
def check_unchanged_mean(answer) -> tuple[bool, str]:
    """00.1: the set of shifts that move the mean pixel of the clean images by less than 2 grey levels."""
    kinds, message = _as_kinds(answer)
    if kinds is None:
        return False, message
    if "clean" in kinds:
        return False, "'clean' is the reference, not a shift: name only shifts, from " + ", ".join(
            data.SHIFTS
        ) + "."
    moves = _mean_moves()
    truth = {kind for kind, move in moves.items() if abs(move) < MEAN_TOLERANCE}
    if not kinds:
        return (
            False,
            "an empty set says every shift moves the mean pixel; look again at the picture.",
        )
    wrong = sorted(kinds - truth)
    missed = sorted(truth - kinds)
    if not wrong and not missed:
        return (
            True,
            f"{' and '.join(sorted(truth))} keep the mean pixel (within {MEAN_TOLERANCE:.0f}), yet they change P(X).",
        )
    parts = [f"{kind} moves the mean by {moves[kind]:+.0f} grey levels" for kind in wrong]
    if missed:
        parts.append(f"{len(missed)} more shift(s) leave it in place")
    return False, "; ".join(parts) + "."


@exercises.exercise(
    "00.2",
    "Predict: which shift shrinks the spread of the pixels most?",
    name="smallest_spread",
    hints=[
        "The spread is the standard deviation of the pixel values: how far pixels are from the mean.",
        "Which shift pulls dark and bright pixels towards each other, so the picture looks grey?",
    ],
)
def check_smallest_spread(answer) -> tuple[bool, str]:
    """00.2: the shift with the smallest pixel spread (standard deviation) at severity 1."""
    if not isinstance(answer, str):
        return (
            False,
            f"expected one shift name (a string) such as 'noise'; got {exercises.describe(answer)}.",
        )
    kind = answer.strip().lower()
    if kind not in data.SHIFTS:
        return False, f"{answer!r} is not a shift; choose one of {', '.join(data.SHIFTS)}."
    stats = shift_statistics()
    truth = min(data.SHIFTS, key=lambda k: stats[k][1])
    clean = stats["clean"][1]
    if kind == truth:
        return (
            True,
            f"{kind} squeezes every pixel towards mid-grey: the spread falls from {clean:.0f} to {stats[kind][1]:.0f}.",
        )
    return False, (
        f"{kind} changes the spread from {clean:.0f} to {stats[kind][1]:.0f}; another shift shrinks it "
        "to a fraction of that."
    )


# ------------------------------------------------------------------ quizzes

exercises.define_quiz(
    "00.q1",
    question="You skip an exercise and press Run All. What happens?",
    options=[
        "The notebook stops with an error at the check",
        "The check says 'not attempted' and the notebook goes on",
        "The kernel restarts",
    ],
    answer=1,
    explanation="A check prints a verdict; later cells fall back to a reference answer.",
    why=[
        "Checks never raise for an answer: they print a verdict.",
        "",
        "Skipping restarts nothing. (Only code that ends the process itself, such as os._exit, "
        "can kill a kernel; a check cannot prevent that.)",
    ],
)

exercises.define_quiz(
    "00.q2",
    question="Source and target: garments on photo backgrounds. What clearly differs?",
    options=[
        "The domain: close pixel statistics show that P(X) is the same",
        "Nothing",
        "The task: the classes to tell apart",
    ],
    answer=2,
    explanation="No class is shared: a new task. (Close pixel statistics do not prove the same P(X).)",
    why=[
        "Close means and spreads do not make two distributions equal: blur and rotation keep the mean "
        "pixel and still change P(X). And the classes certainly differ.",
        "The two sets share no class.",
        "",
    ],
)
