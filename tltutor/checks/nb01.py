"""Checkers for notebook 01 (concepts): importing this module registers them.

>>> from tltutor import exercises
>>> from tltutor.checks import nb01
>>> exercises.check("01.1", {"A": "P(X)", "B": "Y", "C": "f", "D": "X"}, widget=False)
[ex 01.1] correct: A changes P(X) and D changes X: the domain; B changes Y and C changes f: the task.
True
"""

from __future__ import annotations

import copy
import math
import numbers

from tltutor import exercises

__all__ = [
    "GLOSSARY",
    "SCENARIOS",
    "check_changed",
    "check_transfer_gain",
    "reference_transfer_gain",
]

# ------------------------------------------------------------------ 01.1: what changed?

#: scenario letter -> (what changed, a hint that does not give the answer away)
SCENARIOS: dict[str, tuple[str, str]] = {
    "A": (
        "P(X)",
        "the photos show the same parts with the same labels; what differs is how the pixel values are distributed",
    ),
    "B": ("Y", "ask whether the *set of possible labels* is the same before and after"),
    "C": (
        "f",
        "the inputs are the same kind of e-mails and the labels are still spam / not spam; what differs is which label a given e-mail gets",
    ),
    "D": (
        "X",
        "can a model that reads English words even read German text? Think about the input space itself",
    ),
}
_PARTS = ("X", "P(X)", "Y", "f")
_ALIASES = {
    "x": "X",
    "p(x)": "P(X)",
    "y": "Y",
    "f": "f",
    "f(x)": "f",
    "f(·)": "f",
    "f()": "f",
    "p(y|x)": "f",
}


def _normalise(value) -> str | None:
    if not isinstance(value, str):
        return None
    return _ALIASES.get("".join(value.split()).lower())


@exercises.exercise(
    "01.1",
    "Domain or task: what changed?",
    name="changed",
    hints=[
        "A domain is D = {X, P(X)}: the input space and how inputs are distributed in it.",
        "A task is T = {Y, f}: the label space and the function from inputs to labels.",
        "Two scenarios change the domain (one changes X, one P(X)) and two change the task (one Y, one f).",
    ],
)
def check_changed(answer) -> tuple[bool, str]:
    """01.1: for each scenario letter, which of X, P(X), Y, f differs between source and target."""
    if not isinstance(answer, dict):
        return False, (
            f"expected a dict such as {{'A': 'X', 'B': 'P(X)', ...}}; got a {type(answer).__name__}."
        )
    keys = [key for key in answer if isinstance(key, str)]
    missing = [letter for letter in SCENARIOS if letter not in keys]
    extra = [repr(key) for key in answer if key not in SCENARIOS]
    if extra:
        return (
            False,
            f"unknown scenario(s) {', '.join(extra[:4])}; the keys are the letters {', '.join(SCENARIOS)}.",
        )
    if missing:
        return (
            False,
            f"answer every scenario: {', '.join(missing)} {'is' if len(missing) == 1 else 'are'} missing.",
        )
    unreadable = [letter for letter in SCENARIOS if _normalise(answer[letter]) is None]
    if unreadable:
        return False, (
            f"each value must be one of {', '.join(map(repr, _PARTS))}; "
            f"look at {', '.join(unreadable)}."
        )
    wrong = [letter for letter in SCENARIOS if _normalise(answer[letter]) != SCENARIOS[letter][0]]
    if wrong:
        reasons = " ".join(
            f"{letter}: not {_normalise(answer[letter])}; {SCENARIOS[letter][1]}."
            for letter in wrong
        )
        return False, f"{len(SCENARIOS) - len(wrong)} of {len(SCENARIOS)} right. {reasons}"
    return (
        True,
        "A changes P(X) and D changes X: the domain; B changes Y and C changes f: the task.",
    )


# ------------------------------------------------------------------ 01.3: the transfer gain


def reference_transfer_gain(results: dict, n: int) -> float:
    """The best transfer accuracy minus the scratch accuracy at ``n`` labels per class.

    >>> reference_transfer_gain({"scratch": {5: 0.3}, "features": {5: 0.5}, "finetune": {5: 0.6}}, 5)
    0.3
    """
    best = max(curve[n] for name, curve in results.items() if name != "scratch")
    return round(best - results["scratch"][n], 12)


# (results, n, why this case is here)
_GAIN_CASES = [
    (
        {
            "scratch": {5: 0.30, 20: 0.60},
            "features": {5: 0.50, 20: 0.62},
            "finetune": {5: 0.55, 20: 0.70},
        },
        5,
        "basic",
    ),
    (
        {
            "scratch": {5: 0.30, 20: 0.60},
            "features": {5: 0.50, 20: 0.62},
            "finetune": {5: 0.55, 20: 0.70},
        },
        20,
        "basic",
    ),
    ({"scratch": {5: 0.40}, "features": {5: 0.60}, "finetune": {5: 0.50}}, 5, "features best"),
    ({"scratch": {100: 0.80}, "features": {100: 0.60}, "finetune": {100: 0.70}}, 100, "negative"),
    ({"scratch": {5: 0.30}, "features": {5: 0.45}}, 5, "features only"),
]


def _show(results: dict) -> str:
    return "{" + ", ".join(f"{name!r}: {curve}" for name, curve in results.items()) + "}"


@exercises.exercise(
    "01.3",
    "The transfer gain",
    name="transfer_gain",
    hints=[
        '`results["scratch"][n]` is the scratch accuracy at n labels per class.',
        'The transfer strategies are every key of `results` except "scratch"; take the best of them at n.',
        '`max(results[s][n] for s in results if s != "scratch") - results["scratch"][n]`',
    ],
)
def check_transfer_gain(answer) -> tuple[bool, str]:
    """01.3: a function ``transfer_gain(results, n)``: best transfer accuracy minus scratch at ``n``."""
    ok, message = exercises.expect_callable(answer)
    if not ok:
        return False, message
    for results, n, case in _GAIN_CASES:
        expected = reference_transfer_gain(results, n)
        given = copy.deepcopy(results)
        call = f"transfer_gain({_show(results)}, {n})"
        try:
            value = exercises.call_with_timeout(answer, given, n, timeout=2.0)
        except TimeoutError as error:
            return False, f"{call} {error}; is there an endless loop?"
        except KeyError as error:
            hint = (
                " Do not assume a 'finetune' key: use every key except 'scratch'."
                if case == "features only"
                else ""
            )
            return False, f"{call} raised KeyError: {error}.{hint}"
        if given != results:
            return (
                False,
                f"{call} changed the results dict it was given; compute the gain without modifying it.",
            )
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            return (
                False,
                f"{call} returned a {type(value).__name__}; it should return one number (a float).",
            )
        ok, message = exercises.expect_number(value)
        if not ok:
            return False, f"{call} should return one number: {message}"
        value = float(value)
        if math.isclose(value, expected, abs_tol=1e-6):
            continue
        if math.isclose(value, 100 * expected, abs_tol=1e-4):
            return (
                False,
                f"{call} returned {value:.4g}, percentage points; return the difference of accuracies ({expected:.2f}).",
            )
        if case == "negative" and (
            math.isclose(value, abs(expected), abs_tol=1e-6)
            or math.isclose(value, 0.0, abs_tol=1e-6)
        ):
            return False, (
                f"{call} returned {value:.2f}; here scratch beats every transfer strategy, so the gain must be "
                f"negative ({expected:.2f}): that is negative transfer, and hiding it would hide a warning."
            )
        if math.isclose(value, -expected, abs_tol=1e-6):
            return (
                False,
                f"{call} returned {value:.2f}: the sign is flipped. The gain is transfer minus scratch.",
            )
        if case == "features best" and math.isclose(
            value, results["finetune"][n] - results["scratch"][n], abs_tol=1e-6
        ):
            return (
                False,
                f"{call} returned {value:.2f}, the fine-tuning gain; here feature extraction is the better transfer strategy: take the best of them.",
            )
        return (
            False,
            f"{call} returned {value:.4g}; expected {expected:.2f} (best transfer accuracy minus scratch).",
        )
    return (
        True,
        f"your function gives the right gain on {len(_GAIN_CASES)} test cases, a negative one included.",
    )


# ------------------------------------------------------------------ the glossary quiz

#: term -> definition, for ``exercises.match("01.5", GLOSSARY, ...)``
GLOSSARY: dict[str, str] = {
    "source domain": "the inputs, and how they are distributed, that the pretrained model learned from",
    "target task": "the labels, and the input-to-label function, that we now want to learn",
    "pretrained model": "a network already trained on a large source dataset, reused as a starting point",
    "feature extraction": "freeze the pretrained base and train only a new head on its outputs",
    "fine-tuning": "keep training some or all pretrained layers on target data, with a small learning rate",
    "domain adaptation": "make a model trained on one domain work on another, often without target labels",
    "negative transfer": "transfer that does worse than training from scratch",
    "transferability": "how useful a source model will be for a given target task",
}


exercises.define_match("01.5", pairs=GLOSSARY)

# ------------------------------------------------------------------ quizzes

exercises.define_quiz(
    "01.2",
    question=(
        "Source: Fashion classes 0-4 on photo backgrounds. Target: classes 5-9 on photo backgrounds, "
        "with a few labels per class. Which setting is this?"
    ),
    options=["inductive transfer", "transductive transfer", "unsupervised transfer"],
    answer=0,
    explanation="The task changes (new classes) and we have some target labels: inductive transfer.",
    why=[
        "",
        "Transductive transfer keeps the task and has no target labels; we have new classes and labels.",
        "Unsupervised transfer has no labels; we have labels in the source and in the target.",
    ],
)

exercises.define_quiz(
    "01.4",
    question="In your learning curves (the mean over 3 seeds), where is the transfer gain largest?",
    options=[
        "With the fewest labels per class",
        "With the most labels per class",
        "It is the same at every size",
    ],
    answer=0,
    explanation=(
        "With little target data the pretrained features carry the model; with more, scratch catches up "
        "(the printed gains, mean ± std over 3 seeds)."
    ),
    why=[
        "",
        "With more labels the target data alone teaches more of what the source brought: the gain shrinks.",
        "Look at the printed gains: they shrink as labels grow, by more than their spread.",
    ],
)
