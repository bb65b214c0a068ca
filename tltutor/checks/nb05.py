"""Checkers for notebook 05 (negative transfer): importing this module registers them.

>>> from tltutor import exercises
>>> from tltutor.checks import nb05
>>> exercises.check("05.1", lambda acc_transfer, acc_scratch: acc_transfer - acc_scratch, widget=False)
[ex 05.1] not yet: your function returns the accuracy gap, acc(transfer) - acc(scratch) (-0.07 for 0.48 vs 0.55); Wang et al.'s gap is in errors, error(transfer) - error(scratch) = +0.07: positive means negative transfer.
False
"""

from __future__ import annotations

import math

import numpy as np

from tltutor import exercises

__all__ = ["check_l2sp_penalty", "check_ntg", "reference_l2sp_penalty", "reference_ntg"]

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


@exercises.exercise(
    "05.1",
    "The negative transfer gap",
    name="ntg",
    hints=[
        "Error = 1 - accuracy. Wang et al. (2019): NTG = error of the transfer model - error of the target-only model.",
        "`return (1 - acc_transfer) - (1 - acc_scratch)`, which simplifies to `acc_scratch - acc_transfer`.",
    ],
)
def check_ntg(answer) -> tuple[bool, str]:
    """05.1: ntg(acc_transfer, acc_scratch) -> error(transfer) - error(scratch), as a fraction."""
    ok, message = exercises.expect_callable(answer)
    if not ok:
        return False, message
    cases = [(0.48, 0.55), (0.75, 0.55), (0.6, 0.6), (0.9, 0.3)]
    for acc_transfer, acc_scratch in cases:
        result, problem = _call(answer, acc_transfer, acc_scratch)
        if problem is not None:
            return False, f"{problem} (called as ntg({acc_transfer}, {acc_scratch}))."
        value = exercises.as_number(result)
        expected = reference_ntg(acc_transfer, acc_scratch)
        where = f"for {acc_transfer} vs {acc_scratch}"
        if value is None:
            return (
                False,
                f"your function returns {exercises._describe(result)} {where}; it should return one number.",
            )
        if not math.isfinite(value):
            return False, f"your function returns {value} {where}; check for divisions by zero."
        if math.isclose(value, expected, abs_tol=1e-6):
            continue
        if expected < 0 and math.isclose(value, -expected, abs_tol=1e-6):
            return (
                False,
                f"your function returns {value:.2f} {where}, the size of the gap without its sign; the sign is the point: {expected:+.2f}.",
            )
        if expected != 0 and math.isclose(value, -expected, abs_tol=1e-6):
            return False, (
                f"your function returns the accuracy gap, acc(transfer) - acc(scratch) ({value:+.2f} {where}); "
                f"Wang et al.'s gap is in errors, error(transfer) - error(scratch) = {expected:+.2f}: positive means negative transfer."
            )
        if math.isclose(value, 100 * expected, abs_tol=1e-6) and expected != 0:
            return (
                False,
                f"your function returns {value:.4g} {where}: percentage points. Return a fraction ({expected:+.2f}); the notebook multiplies by 100 to print points.",
            )
        if math.isclose(value, 1 - acc_transfer, abs_tol=1e-6):
            return (
                False,
                f"your function returns the transfer model's error alone ({value:.2f}); subtract the scratch model's error, {1 - acc_scratch:.2f}.",
            )
        if acc_scratch and math.isclose(value, acc_transfer / acc_scratch, abs_tol=1e-6):
            return (
                False,
                f"your function returns a ratio ({value:.3g}); the gap is a difference of errors.",
            )
        return (
            False,
            f"your function returns {value:.4g} {where}; expected {expected:+.2f}, error(transfer) - error(scratch).",
        )
    return (
        True,
        "error(transfer) - error(scratch): +0.07 for 0.48 vs 0.55 (negative transfer), -0.20 for 0.75 vs 0.55 (transfer helps).",
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
            "The clean source was excellent on its own task and still gave nothing "
            "(frozen: much less) here; the source task's accuracy says nothing about the "
            "target."
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
        "Re-initialising the top removed most of the damage, and choosing on validation "
        "data rejected the bad source; L2-SP and frozen features keep what the source "
        "learned, which is the problem."
    ),
    why=[
        (
            "L2-SP pulls the weights back towards the source, here towards memorised "
            "noise: the gap grew."
        ),
        "",
        ("Frozen features of the random-label source were the worst option, far below scratch."),
        "",
    ],
)
