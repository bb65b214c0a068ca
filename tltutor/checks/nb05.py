"""Checkers for notebook 05 (negative transfer): importing this module registers them.

>>> from tltutor import exercises
>>> from tltutor.checks import nb05
>>> noise_blind = lambda t, s, n: (s - t, "negative transfer" if s > t else "positive transfer")
>>> exercises.check("05.1", noise_blind, widget=False)  # doctest: +ELLIPSIS
[ex 05.1] not yet: your function treats every nonzero gap as evidence: for 0.555 vs 0.545 on 1000 test images ...
False
"""

from __future__ import annotations

import math

import numpy as np

from tltutor import exercises

__all__ = [
    "VERDICTS",
    "check_l2sp_penalty",
    "check_transfer_verdict",
    "reference_l2sp_penalty",
    "reference_ntg",
    "reference_transfer_verdict",
]

TIMEOUT = 10.0


def reference_ntg(acc_transfer: float, acc_scratch: float) -> float:
    """Wang et al. (2019)'s negative transfer gap from two test accuracies: error(transfer) - error(scratch).

    Positive means negative transfer (the source made things worse).

    >>> round(reference_ntg(0.48, 0.55), 2)
    0.07
    """
    return (1.0 - acc_transfer) - (1.0 - acc_scratch)


def reference_l2sp_penalty(weights, start, alpha: float):
    """The L2-SP penalty (Li et al. 2018) in ``keras.ops``: alpha / 2 * sum((weights - start) ** 2).

    Works on NumPy arrays and on backend tensors, also inside a compiled training step.

    >>> import keras
    >>> float(keras.ops.convert_to_numpy(reference_l2sp_penalty(np.array([1.0, 2.0]), np.zeros(2), 0.1)))
    0.25
    """
    from keras import ops

    return alpha / 2 * ops.sum(ops.square(weights - start))


def _expected_l2sp(weights: np.ndarray, start: np.ndarray, alpha: float) -> float:
    return float(
        alpha / 2 * np.sum((np.asarray(weights, "float64") - np.asarray(start, "float64")) ** 2)
    )


def _call(function, *args):
    """(result, None) or (None, verdict message) for a student's function on one example."""
    return exercises.run_answer(function, *args, timeout=TIMEOUT)


# --------------------------------------------------------------------------- 05.1

VERDICTS = ("negative transfer", "positive transfer", "no clear difference")

# (acc_transfer, acc_scratch, n_test): gaps of about 3, 9, 0.5, 1.1, 1.7, 2.4 and 2.5 standard
# errors of the difference, so that each usual mistake (below) gets at least one verdict wrong
# and the right rule wins with a margin (1.96 instead of 2, or a pooled accuracy, pass too).
_VERDICT_CASES = [
    (0.478, 0.545, 1000),  # a loss like the random-label source's, fine-tuned
    (0.741, 0.545, 1000),  # a gain like the matching source's, fine-tuned
    (0.555, 0.545, 1000),  # a 1-point gap: noise
    (0.525, 0.55, 1000),
    (0.588, 0.55, 1000),
    (0.585, 0.7, 200),
    (0.525, 0.55, 5000),  # the same accuracies as case 3, on five times more test images
]


def _standard_error(acc: float, n_test: float) -> float:
    return math.sqrt(acc * (1.0 - acc) / n_test)


def _se_diff(acc_transfer: float, acc_scratch: float, n_test: float) -> float:
    return math.hypot(_standard_error(acc_transfer, n_test), _standard_error(acc_scratch, n_test))


def _verdict_beyond(ntg: float, threshold: float) -> str:
    if ntg > threshold:
        return VERDICTS[0]
    if ntg < -threshold:
        return VERDICTS[1]
    return VERDICTS[2]


def reference_transfer_verdict(acc_transfer: float, acc_scratch: float, n_test: int):
    """(NTG, verdict) for two accuracies measured on the same ``n_test`` test images.

    The gap is evidence only beyond two standard errors of a difference of two accuracies,
    se_diff = sqrt(se_t² + se_s²) with se = sqrt(a (1 - a) / n_test) for each accuracy.

    >>> reference_transfer_verdict(0.478, 0.545, 1000)  # doctest: +ELLIPSIS
    (0.067..., 'negative transfer')
    >>> reference_transfer_verdict(0.555, 0.545, 1000)  # doctest: +ELLIPSIS
    (-0.01..., 'no clear difference')
    """
    acc_transfer, acc_scratch, n_test = float(acc_transfer), float(acc_scratch), float(n_test)
    ntg = reference_ntg(acc_transfer, acc_scratch)
    return ntg, _verdict_beyond(ntg, 2 * _se_diff(acc_transfer, acc_scratch, n_test))


def _rule(threshold):
    """A verdict function that calls a gap evidence beyond ``threshold(t, s, n)``."""
    return lambda t, s, n: _verdict_beyond(reference_ntg(t, s), threshold(t, s, n))


def _case_text(index: int) -> str:
    t, s, n = _VERDICT_CASES[index]
    return f"{t} vs {s} on {n} test images"


def _gap_in_se(index: int) -> float:
    """|NTG| of case ``index`` in standard errors of the difference."""
    t, s, n = _VERDICT_CASES[index]
    return abs(reference_ntg(t, s)) / _se_diff(t, s, n)


def _in_se(index: int) -> str:
    """'|NTG| = 0.025 is 1.1 times se_diff = 0.022'."""
    t, s, n = _VERDICT_CASES[index]
    return (
        f"|NTG| = {abs(reference_ntg(t, s)):.3f} is {_gap_in_se(index):.1f} times "
        f"se_diff = {_se_diff(t, s, n):.3f}"
    )


# The usual mistakes: a verdict rule each, and what to say when an answer follows it on every case.
_VERDICT_MISTAKES = [
    (
        _rule(lambda t, s, n: 0.0),
        "your function treats every nonzero gap as evidence: for "
        f"{_case_text(2)} the gap is -0.010, but {_in_se(2)}: that is noise, 'no clear difference'. "
        "Call it transfer only when |NTG| > 2 · se_diff (and check the square roots: "
        "se = sqrt(a (1 - a) / n_test)).",
    ),
    (
        _rule(lambda t, s, n: _se_diff(t, s, n)),
        "you seem to compare |NTG| with one standard error of the difference; the rule asks for two "
        f"(about 95% confidence). For {_case_text(3)}, {_in_se(3)}: 'no clear difference'.",
    ),
    (
        _rule(lambda t, s, n: 2 * _standard_error(t, n)),  # 2 se of scratch: the same verdicts
        "you seem to use one accuracy's standard error only. Both accuracies are noisy, so their "
        "difference is noisier than either: se_diff = sqrt(se_t² + se_s²). For "
        f"{_case_text(4)}, {_in_se(4)}: 'no clear difference'.",
    ),
    (
        _rule(lambda t, s, n: 2 * (_standard_error(t, n) + _standard_error(s, n))),
        "you seem to add the two standard errors (or to ask whether the two ±2 se intervals "
        "overlap): too strict. Independent errors add in squares, se_diff = sqrt(se_t² + se_s²), "
        f"less than se_t + se_s. For {_case_text(5)}, {_in_se(5)}: 'negative transfer'.",
    ),
    (
        _rule(lambda t, s, n: 2 * _se_diff(t, s, 1000)),
        "your verdict does not depend on n_test: use the argument in the standard errors. "
        f"{_case_text(3)} is 'no clear difference', but on 5000 images the same gap is "
        f"'negative transfer' ({_in_se(6)}).",
    ),
    (
        lambda t, s, n: VERDICTS[2],
        f"your function never finds a difference, not even for {_case_text(1)} ({_in_se(1)}): "
        "check the units (fractions, not points) and the comparisons.",
    ),
    (
        lambda t, s, n: {VERDICTS[0]: VERDICTS[1], VERDICTS[1]: VERDICTS[0]}.get(
            reference_transfer_verdict(t, s, n)[1], VERDICTS[2]
        ),
        "your verdicts are swapped: a positive NTG means the error is *higher* with the source, "
        "'negative transfer'; a negative NTG is 'positive transfer'.",
    ),
]


def _ntg_problem(value: float, expected: float, t: float, s: float, where: str) -> str:
    """What is wrong with a gap ``value`` that is not ``expected``."""
    if expected < 0 and math.isclose(value, -expected, abs_tol=1e-6):
        return (
            f"your NTG is {value:.3f} {where}, the size of the gap without its sign; "
            f"the sign is the point: {expected:+.3f}."
        )
    if math.isclose(value, -expected, abs_tol=1e-6):
        return (
            f"your NTG is the accuracy gap, acc(transfer) - acc(scratch) ({value:+.3f} {where}); "
            f"Wang et al.'s gap is in errors, error(transfer) - error(scratch) = {expected:+.3f}: "
            "positive means negative transfer."
        )
    if math.isclose(abs(value), 100 * abs(expected), abs_tol=1e-4):
        return (
            f"your NTG is {value:.4g} {where}: percentage points. Return a fraction "
            f"({expected:+.3f}), on the same scale as the accuracies and their standard errors."
        )
    if math.isclose(value, 1 - t, abs_tol=1e-6):
        return (
            f"your NTG is the transfer model's error alone ({value:.3f} {where}); "
            f"subtract the scratch model's error, {1 - s:.3f}."
        )
    if s and math.isclose(value, t / s, abs_tol=1e-6):
        return f"your NTG is a ratio ({value:.3g} {where}); the gap is a difference of errors."
    return (
        f"your NTG is {value:.4g} {where}; expected {expected:+.3f}, "
        "error(transfer) - error(scratch)."
    )


def _verdict_text_problem(verdict) -> str | None:
    """None if ``verdict`` is one of VERDICTS, else what is wrong with it."""
    choices = "'negative transfer', 'positive transfer' or 'no clear difference'"
    if not isinstance(verdict, str):
        return f"your verdict is {exercises.describe(verdict)}; it should be the text {choices}."
    if verdict in VERDICTS:
        return None
    normal = " ".join(verdict.lower().replace("_", " ").replace("-", " ").split())
    if normal in VERDICTS:
        return f"your verdict {verdict!r} is nearly right: spell it exactly {normal!r}."
    return f"your verdict {verdict!r} is not one of the three: {choices}, spelt exactly so."


@exercises.exercise(
    "05.1",
    "Negative transfer, or noise?",
    name="transfer_verdict",
    hints=[
        "NTG = (1 - acc_transfer) - (1 - acc_scratch), a fraction; positive means the source hurt.",
        "Each accuracy's standard error is sqrt(a * (1 - a) / n_test); the difference's is "
        "sqrt(se_t**2 + se_s**2), with both accuracies' errors in it.",
        "If ntg > 2 * se_diff: 'negative transfer'; if ntg < -2 * se_diff: 'positive transfer'; "
        "else 'no clear difference'. Return both: `return ntg, verdict`.",
    ],
)
def check_transfer_verdict(answer) -> tuple[bool, str]:
    """05.1: transfer_verdict(acc_transfer, acc_scratch, n_test) -> (ntg, verdict)."""
    ok, message = exercises.expect_callable(answer)
    if not ok:
        return False, message
    verdicts = []
    for t, s, n in _VERDICT_CASES:
        result, problem = _call(answer, t, s, n)
        if problem is not None:
            return False, f"{problem} (called as transfer_verdict({t}, {s}, {n}))."
        where = f"for {t} vs {s} on {n} test images"
        pair = "return the pair `ntg, verdict`, e.g. `return 0.067, 'negative transfer'`"
        if isinstance(result, str):
            return False, f"your function returns only the verdict ({result!r}) {where}; {pair}."
        if exercises.as_number(result) is not None:
            return False, f"your function returns one number {where}; {pair}."
        if not isinstance(result, (tuple, list)) or len(result) != 2:
            return False, f"your function returns {exercises.describe(result)} {where}; {pair}."
        ntg, verdict = result
        if isinstance(ntg, str) and exercises.as_number(verdict) is not None:
            return False, f"your function returns (verdict, ntg) {where}; {pair}, in that order."
        value = exercises.as_number(ntg)
        if value is None:
            return False, f"your NTG is {exercises.describe(ntg)} {where}; it should be one number."
        if not math.isfinite(value):
            return False, f"your NTG is {value} {where}; check for divisions by zero."
        expected = reference_ntg(t, s)
        if not math.isclose(value, expected, abs_tol=1e-6):
            return False, _ntg_problem(value, expected, t, s, where)
        problem = _verdict_text_problem(verdict)
        if problem is not None:
            return False, f"{problem[:-1]} ({where})."
        verdicts.append(verdict)
    expected = [reference_transfer_verdict(*case)[1] for case in _VERDICT_CASES]
    if verdicts == expected:
        (t3, s3, n3), n6 = _VERDICT_CASES[3], _VERDICT_CASES[6][2]
        return True, (
            f"NTG in errors, and a verdict only beyond 2 se_diff: {_case_text(0)} is negative "
            f"transfer ({_gap_in_se(0):.1f} se_diff); {t3} vs {s3} is no clear difference on {n3} "
            f"({_gap_in_se(3):.1f} se_diff) but negative transfer on {n6} ({_gap_in_se(6):.1f})."
        )
    for rule, explanation in _VERDICT_MISTAKES:
        if all(rule(*case) == got for case, got in zip(_VERDICT_CASES, verdicts)):
            return False, explanation
    index = next(i for i, (got, want) in enumerate(zip(verdicts, expected)) if got != want)
    return False, (
        f"your function says {verdicts[index]!r} for {_case_text(index)}; expected "
        f"{expected[index]!r}: {_in_se(index)}, and only a gap beyond 2 se_diff is evidence."
    )


# --------------------------------------------------------------------------- 05.2


def _weight_after_one_step(function, start: np.ndarray, alpha: float) -> np.ndarray:
    """One SGD step (lr 0.1) on the penalty alone, with it as a Dense kernel's regularizer."""
    import keras

    class Penalty(keras.regularizers.Regularizer):
        def __call__(self, weights):
            return function(weights, keras.ops.convert_to_tensor(start, dtype=weights.dtype), alpha)

    inputs = keras.Input((2,))
    dense = keras.layers.Dense(
        2, use_bias=False, kernel_initializer="zeros", kernel_regularizer=Penalty()
    )
    model = keras.Model(inputs, dense(inputs))
    model.compile(
        optimizer=keras.optimizers.SGD(0.1),
        loss=lambda y_true, y_pred: 0.0 * keras.ops.mean(y_pred),
    )
    model.fit(
        np.ones((4, 2), "float32"), np.zeros((4, 2), "float32"), batch_size=4, epochs=1, verbose=0
    )
    return np.asarray(keras.ops.convert_to_numpy(dense.kernel), dtype="float64")


def _l2sp_mistake(value: float, weights: np.ndarray, start: np.ndarray, alpha: float) -> str | None:
    """Name the usual mistake whose result is ``value``, or None."""
    gap = weights - start
    mistakes = {
        "alpha * sum((w - w0)²): the paper's penalty has a factor 1/2 (alpha / 2 * ...), so that its gradient is alpha * (w - w0)": alpha
        * np.sum(gap**2),
        "alpha / 2 * mean((w - w0)²): sum the squares over all entries, do not average them": alpha
        / 2
        * np.mean(gap**2),
        "alpha / 2 * sum(w²), plain weight decay: it pulls the weights towards 0, not towards their starting values w0": alpha
        / 2
        * np.sum(weights**2),
        "alpha / 2 * sum(|w - w0|), an L1 distance: L2-SP squares the differences": alpha
        / 2
        * np.sum(np.abs(gap)),
        "alpha / 2 * |w - w0| (the norm, not squared): square it, or sum the squared differences": alpha
        / 2
        * np.sqrt(np.sum(gap**2)),
        "alpha / 2 * sum(w - w0): square the differences, or positive and negative moves cancel": alpha
        / 2
        * np.sum(gap),
        "alpha / 2 * sum(w² - w0²): square the *difference* (w - w0), not each term": alpha
        / 2
        * np.sum(weights**2 - start**2),
        "sum((w - w0)²) without alpha: multiply by alpha / 2": np.sum(gap**2),
    }
    for explanation, wrong in mistakes.items():
        if math.isclose(value, float(wrong), rel_tol=1e-5, abs_tol=1e-9):
            return explanation
    return None


@exercises.exercise(
    "05.2",
    "The L2-SP penalty in keras.ops",
    name="l2sp_penalty",
    hints=[
        "L2-SP (Li et al. 2018) is alpha / 2 times the squared distance between the weights and their pretrained values.",
        "`return alpha / 2 * ops.sum(ops.square(weights - start))` with `from keras import ops`.",
        "NumPy functions fail inside the compiled training step: use keras.ops.",
    ],
)
def check_l2sp_penalty(answer) -> tuple[bool, str]:
    """05.2: l2sp_penalty(weights, start, alpha) = alpha / 2 * sum((weights - start)²), in keras.ops."""
    import keras

    ok, message = exercises.expect_callable(answer)
    if not ok:
        return False, message
    rng = np.random.default_rng(5)
    cases = [
        (
            np.array([[1.0, 2.0], [0.0, -1.0]]),
            np.array([[0.0, 1.0], [0.5, -2.0]]),
            0.1,
            "a 2x2 kernel",
        ),
        (
            rng.normal(size=(3, 3, 2, 4)),
            rng.normal(size=(3, 3, 2, 4)),
            0.01,
            "a 3x3x2x4 convolution kernel",
        ),
        (np.full((2, 3), 0.7), np.full((2, 3), 0.7), 1.0, "weights still at their start"),
    ]
    for weights, start, alpha, description in cases:
        w, w0 = (keras.ops.convert_to_tensor(a.astype("float32")) for a in (weights, start))
        result, problem = _call(answer, w, w0, alpha)
        if problem is not None:
            return (
                False,
                f"{problem} (called with keras tensors for {description}). Use keras.ops functions.",
            )
        value = exercises.as_number(result)
        expected = _expected_l2sp(weights, start, alpha)
        if value is None:
            try:
                shape = tuple(np.shape(keras.ops.convert_to_numpy(result)))
            except Exception:
                shape = None
            if shape == weights.shape:
                return (
                    False,
                    f"your function returns one value per weight (shape {shape}); sum them into one number.",
                )
            return (
                False,
                f"your function returns {exercises._describe(result)} for {description}; it should return one number.",
            )
        if not math.isfinite(value):
            return False, f"your function returns {value} for {description}."
        if math.isclose(value, expected, rel_tol=1e-5, abs_tol=1e-7):
            continue
        mistake = _l2sp_mistake(value, weights, start, alpha)
        if mistake is not None:
            return False, f"your function computes {mistake}."
        return (
            False,
            f"your function returns {value:.5g} for {description}; expected {expected:.5g} = alpha / 2 * sum((w - w0)²).",
        )
    start = np.array([[1.0, -2.0], [0.5, 3.0]])
    try:
        after = exercises.call_with_timeout(
            _weight_after_one_step, answer, start, 0.5, timeout=30.0
        )
    except TimeoutError:
        return False, "training with your penalty took longer than 30 s."
    except KeyboardInterrupt:
        raise
    except BaseException as exc:
        return False, (
            f"your penalty gives the right numbers, but training with it failed ({exercises._describe_error(exc)}): "
            "inside the compiled training step only keras.ops functions work (no NumPy, no float())."
        )
    # the kernel starts at 0; the gradient of alpha/2 |w - w0|² is alpha (w - w0), so one step moves it 0.1 * 0.5 * w0
    if not np.allclose(after, 0.05 * start, atol=1e-5):
        if np.allclose(after, 0.0, atol=1e-7):
            return (
                False,
                "your penalty has the right value but no gradient reaches the weights: do not convert to NumPy or stop the gradient.",
            )
        return (
            False,
            "your penalty has the right value, but one training step did not pull the weights towards w0 as expected.",
        )
    return (
        True,
        "alpha / 2 * sum((w - w0)²) in keras.ops: right values, and one training step pulls the weights towards their pretrained values.",
    )


# --------------------------------------------------------------------------- quizzes (keys stay here)

exercises.define_quiz(
    "05.q1",
    question=(
        "You fine-tuned a pretrained model on 300 labelled images of your task and "
        "reached 0.81 test accuracy. How do you find out whether the pretraining helped "
        "or hurt?"
    ),
    options=[
        "0.81 is high for 300 images, so it helped.",
        ("Check the source model's accuracy on its own task: a good source model transfers well."),
        (
            "Train the same architecture from random weights on the same 300 images, with"
            " a recipe suited to random weights, and compare on the same test set, over a"
            " few seeds."
        ),
        ("Fine-tune a second time with L2-SP: if the accuracy rises, the source was good."),
    ],
    answer=2,
    explanation=(
        "Negative transfer is defined against the target-only model (Wang et al. 2019): "
        "without a scratch baseline trained on the same data, no accuracy tells you "
        "whether the source helped."
    ),
    why=[
        (
            "Whether 0.81 is high depends on the task; the random-label source's "
            "fine-tuned model also looked reasonable until compared with scratch."
        ),
        (
            "The clean source was excellent on its own task and still brought no clear "
            "gain here (frozen: a loss on every seed); the source task's accuracy says "
            "nothing about the target."
        ),
        "",
        ("L2-SP pulls towards the source whatever its quality; it does not measure the gap."),
    ],
)

exercises.define_quiz(
    "05.q2",
    question=(
        "In this notebook, which of these reduced or removed the negative transfer from "
        "the random-label source? (Select all that apply.)"
    ),
    options=[
        "Adding the L2-SP penalty to fine-tuning.",
        "Transferring only the first blocks and re-initialising the rest.",
        "Transferring all three blocks and freezing them (feature extraction).",
        "Keeping a scratch model and choosing between the two on validation data.",
    ],
    answer={1, 3},
    explanation=(
        "Re-initialising the top two blocks recovered more than half of the loss on every "
        "seed, and choosing on validation data rejected the bad source on most seeds; L2-SP "
        "and frozen features keep what the source learned, which is the problem."
    ),
    why=[
        (
            "L2-SP pulls the weights back towards the source, here towards memorised "
            "noise: it stayed below scratch on every seed, and below plain fine-tuning on "
            "average."
        ),
        "",
        ("Frozen features of the random-label source were the worst option, far below scratch."),
        "",
    ],
)
