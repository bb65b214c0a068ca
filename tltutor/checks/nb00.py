"""Checkers for notebook 00 (setup and tour): importing this module registers them.

>>> from tltutor import exercises
>>> from tltutor.checks import nb00
>>> exercises.check("00.1", ["Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"], widget=False)
[ex 00.1] correct: target label 0 is 'Sandal', ..., label 4 is 'Ankle boot'.
True
"""

from __future__ import annotations

import functools

import numpy as np

from tltutor import data, exercises

__all__ = ["check_counts", "check_target_names", "expected_counts"]


@exercises.exercise(
    "00.1",
    "Name the target classes",
    name="target_names",
    hints=[
        "`data.TARGET_CLASSES` holds the Fashion-MNIST class *numbers* of the target task.",
        "`data.FASHION_CLASSES[c]` is the name of class number `c`.",
        "`[data.FASHION_CLASSES[c] for c in data.TARGET_CLASSES]`",
    ],
)
def check_target_names(answer) -> tuple[bool, str]:
    """00.1: the names of the target classes, in the order of the target labels 0..4."""
    expected = [data.FASHION_CLASSES[c] for c in data.TARGET_CLASSES]
    source = [data.FASHION_CLASSES[c] for c in data.SOURCE_CLASSES]
    if isinstance(answer, np.ndarray):
        answer = answer.tolist()
    if isinstance(answer, str) or not isinstance(answer, (list, tuple)):
        return False, f"expected a list of {len(expected)} class names; got a {type(answer).__name__}."
    answer = list(answer)
    if answer and all(isinstance(a, (int, np.integer)) and not isinstance(a, bool) for a in answer):
        return False, (
            "these are class numbers; the exercise asks for their names: look each number up in "
            "`data.FASHION_CLASSES`."
        )
    if not all(isinstance(a, str) for a in answer):
        return False, "every item should be a class name (a string) such as 'Sandal'."
    if len(answer) != len(expected):
        return False, f"the target task has {len(expected)} classes; your list has {len(answer)} names."
    if answer == source:
        return False, (
            "these are the *source* classes (0-4), the ones the pretrained model already knows; "
            "the target task is the new classes, `data.TARGET_CLASSES`."
        )
    if answer == expected:
        return True, f"target label 0 is {expected[0]!r}, ..., label 4 is {expected[-1]!r}."
    if len(set(answer)) != len(answer):
        return False, "a name appears more than once; each of the 5 target classes should appear once."
    if sorted(answer) == sorted(expected):
        return False, (
            "the right names in the wrong order: target label 0 must be the first of "
            "`data.TARGET_CLASSES`, label 1 the second, and so on."
        )
    wrong = [a for a in answer if a not in expected]
    return False, f"{len(wrong)} of your names ({', '.join(map(repr, wrong[:3]))}) are not target classes."


@functools.cache
def expected_counts(split: str = "train") -> tuple[int, ...]:
    """Images per target class in ``data.lab_target()``'s pool (``"train"``) or test set (``"test"``).

    >>> expected_counts("test")
    (300, 300, 300, 300, 300)
    """
    _, y = data.load_bundled_fashion(split)
    return tuple(int(np.count_nonzero(y == c)) for c in data.TARGET_CLASSES)


@exercises.exercise(
    "00.2",
    "Count the labelled target images",
    name="counts",
    hints=[
        "`data.lab_target()` returns `X_train, y_train, X_test, y_test`; the pool is `y_train`.",
        "`np.bincount(y_train)` counts how often each label 0, 1, 2, ... occurs.",
    ],
)
def check_counts(answer) -> tuple[bool, str]:
    """00.2: ``np.bincount(y_train)`` of the target pool: images per target class."""
    expected = np.array(expected_counts("train"))
    ok, message = exercises.expect_array(answer, dtype_kind="iuf")
    if not ok:
        return False, message
    counts = np.asarray(answer)
    if counts.ndim == 0:
        total = int(expected.sum())
        hint = " That is the size of the whole pool." if float(counts) == total else ""
        return False, f"got one number ({float(counts):g}); expected one count per class, {len(expected)} numbers.{hint}"
    if counts.ndim != 1:
        return False, f"expected a 1-D array of {len(expected)} counts; got shape {counts.shape}."
    if len(counts) == 10:
        return False, (
            "10 counts: you counted the original Fashion-MNIST labels 0-9. The target task relabels "
            "its 5 classes as 0..4, so count `y_train` from `data.lab_target()`."
        )
    if len(counts) != len(expected):
        return False, f"the target task has {len(expected)} classes; your array has {len(counts)} counts."
    if np.array_equal(counts, expected_counts("test")):
        return False, "these are the counts of the *test* set (`y_test`); the labelled pool is `y_train`."
    if not np.array_equal(counts, expected):
        return False, (
            f"got {counts.tolist()}; expected {expected.tolist()} (count `y_train` of `data.lab_target()`, "
            "which uses the bundled subset by default)."
        )
    return True, f"{int(expected[0])} labelled images per class, {int(expected.sum())} in all; balanced classes."
