"""Checkers for notebook 04 (domain shift and adaptation): importing this module registers them.

>>> from tltutor import exercises
>>> from tltutor.checks import nb04
>>> exercises.check("04.1", lambda Fs, Ft: 0.0, widget=False)
[ex 04.1] not yet: your function returns 0 for two sets whose means differ by (1, 2) (expected 5); compare the mean feature vectors.
False
"""

from __future__ import annotations

import math

import numpy as np

from tltutor import exercises

__all__ = [
    "check_coral",
    "check_linear_mmd",
    "check_reverse_gradient",
    "reference_coral",
    "reference_linear_mmd",
]


def reference_linear_mmd(Fs, Ft) -> float:
    """The squared distance between the mean feature vectors (MMD² with a linear kernel).

    >>> reference_linear_mmd([[0.0, 1.0], [2.0, 1.0]], [[4.0, 3.0]])
    13.0
    """
    gap = np.mean(np.asarray(Fs, "float64"), axis=0) - np.mean(np.asarray(Ft, "float64"), axis=0)
    return float(gap @ gap)


def reference_coral(fs, ft) -> float:
    """Deep CORAL loss in NumPy: squared Frobenius distance of the covariances over 4 d².

    >>> reference_coral([[0.0, 0.0], [2.0, 0.0]], [[0.0, 0.0], [0.0, 2.0]])
    0.5
    """
    fs, ft = np.asarray(fs, "float64"), np.asarray(ft, "float64")
    d = fs.shape[1]
    return float(np.sum((np.cov(fs, rowvar=False) - np.cov(ft, rowvar=False)) ** 2) / (4 * d * d))


def _call(function, *args):
    """(result, None) or (None, verdict message) for a student's function on one example."""
    return exercises.run_answer(function, *args, timeout=10.0)


# --------------------------------------------------------------------------- 04.1


@exercises.exercise(
    "04.1",
    "MMD with a linear kernel",
    name="linear_mmd",
    hints=[
        "With the linear kernel k(a, b) = a·b, MMD² is the squared distance between the two mean feature vectors.",
        "`gap = Fs.mean(axis=0) - Ft.mean(axis=0)`, then `float(gap @ gap)`.",
        "The two sets may have different numbers of rows: compare their means, not row by row.",
    ],
)
def check_linear_mmd(answer) -> tuple[bool, str]:
    """04.1: a function (Fs, Ft) -> float, the squared distance between the mean feature vectors."""
    ok, message = exercises.expect_callable(answer)
    if not ok:
        return False, message
    rng = np.random.default_rng(4)
    same = rng.normal(size=(30, 3))
    cases = [  # (Fs, Ft, why this case)
        (
            np.array([[0.0, 0.0], [2.0, 0.0]]),
            np.array([[2.0, 2.0], [2.0, 2.0]]),
            "two sets whose means differ by (1, 2)",
        ),
        (same, same.copy(), "two identical sets"),
        (rng.normal(size=(40, 5)), rng.normal(1.0, 2.0, size=(25, 5)), "sets of 40 and 25 rows"),
    ]
    for Fs, Ft, description in cases:
        result, problem = _call(answer, Fs, Ft)
        if problem is not None:
            if description.startswith("sets of"):
                problem += " on sets of 40 and 25 rows: the two domains need not have the same size; compare their means"
            return False, problem + "."
        value, expected = exercises.as_number(result), reference_linear_mmd(Fs, Ft)
        if value is None:
            return (
                False,
                f"your function returns {exercises._describe(result)} for {description}; it should return one number.",
            )
        if math.isnan(value) or math.isinf(value):
            return (
                False,
                f"your function returns {value} for {description}; check for divisions by zero.",
            )
        if math.isclose(value, expected, rel_tol=1e-6, abs_tol=1e-9):
            continue
        if expected > 0 and math.isclose(value, math.sqrt(expected), rel_tol=1e-6):
            return (
                False,
                f"your function returns the distance {value:.4g} between the means; MMD² is its square, {expected:.4g}.",
            )
        if expected > 0 and math.isclose(value, expected / Fs.shape[1], rel_tol=1e-6):
            return (
                False,
                "your function averages the squared gaps over the features; sum them (gap @ gap).",
            )
        if expected > 0 and value == 0:
            return (
                False,
                f"your function returns 0 for {description} (expected {expected:.4g}); compare the mean feature vectors.",
            )
        return (
            False,
            f"your function returns {value:.4g} for {description}; expected {expected:.4g} (the squared distance between the means).",
        )
    return (
        True,
        "your MMD² is 0 for identical sets and the squared gap between the means otherwise, for sets of any size.",
    )


# --------------------------------------------------------------------------- 04.2


@exercises.exercise(
    "04.2",
    "The Deep CORAL loss in keras.ops",
    name="coral",
    hints=[
        "Covariance of features f (n, d): centre them, `c = f - ops.mean(f, axis=0, keepdims=True)`, then "
        "`ops.matmul(ops.transpose(c), c) / (n - 1)`, with `n = ops.shape(f)[0]`.",
        "The loss is `ops.sum(ops.square(C_s - C_t)) / (4 * d * d)` with d the number of features.",
    ],
)
def check_coral(answer) -> tuple[bool, str]:
    """04.2: coral(fs, ft) in keras.ops, |C_s - C_t|_F² / (4 d²) with covariances over n - 1."""
    import keras

    ok, message = exercises.expect_callable(answer)
    if not ok:
        return False, message
    rng = np.random.default_rng(7)
    cases = [
        (
            np.array([[0.0, 0.0], [2.0, 0.0]]),
            np.array([[0.0, 0.0], [0.0, 2.0]]),
            "the two-point example of the notebook",
        ),
        (rng.normal(size=(20, 3)), None, "two sets with the same covariance but different means"),
        (rng.normal(size=(30, 4)), rng.normal(size=(18, 4)) * 2.0, "sets of 30 and 18 rows"),
    ]
    failures = []  # (description, value, expected) of each case the function gets wrong
    for fs, ft, description in cases:
        ft = fs + 3.0 if ft is None else ft
        tensors = [keras.ops.convert_to_tensor(x.astype("float32")) for x in (fs, ft)]
        result, problem = _call(answer, *tensors)
        if problem is not None:
            return (
                False,
                f"{problem} (on {description}, given keras tensors). Use keras.ops functions.",
            )
        value, expected = exercises.as_number(result), reference_coral(fs, ft)
        if value is None:
            return (
                False,
                f"your function returns {exercises._describe(result)} for {description}; the loss is one number (sum everything).",
            )
        if math.isnan(value) or math.isinf(value):
            return (
                False,
                f"your function returns {value} for {description}; check for divisions by zero.",
            )
        if not math.isclose(value, expected, rel_tol=1e-3, abs_tol=1e-6):
            failures.append((description, value, expected))
    if not failures:
        return (
            True,
            "your CORAL loss matches |C_s - C_t|² / (4 d²) on keras tensors, and ignores the means.",
        )
    fs, ft, _ = cases[2]
    d, n_s, n_t = fs.shape[1], len(fs), len(ft)
    value, expected = (
        failures[-1][1:] if failures[-1][0] == cases[2][2] else (None, reference_coral(fs, ft))
    )
    if (
        value is not None
    ):  # diagnose on the random case, where the usual mistakes give different values
        if math.isclose(value, expected * 4 * d * d, rel_tol=1e-3):
            return (
                False,
                "you return the squared distance of the covariances; divide it by 4 d² as Sun & Saenko do.",
            )
        for factor in (4 * d, 4, d):
            if math.isclose(value, expected * factor, rel_tol=1e-3):
                return (
                    False,
                    f"your loss is {factor} times too large (with d = {d}): divide the squared distance by 4 d².",
                )
        biased = reference_coral(fs * math.sqrt((n_s - 1) / n_s), ft * math.sqrt((n_t - 1) / n_t))
        if math.isclose(value, biased, rel_tol=1e-3):
            return (
                False,
                "your covariances divide by n; the loss uses the unbiased covariance, divided by n - 1.",
            )
        moments = [x.T @ x / (len(x) - 1) for x in (fs, ft)]
        if math.isclose(
            value, float(np.sum((moments[0] - moments[1]) ** 2)) / (4 * d * d), rel_tol=1e-3
        ):
            return (
                False,
                "your covariances are not centred: subtract each set's mean (axis 0) before the matrix product.",
            )
    description, value, expected = failures[0]
    if expected < 1e-9:
        return (
            False,
            f"your function returns {value:.4g} for {description}; CORAL compares covariances only, so it must be 0.",
        )
    return False, f"your function returns {value:.4g} for {description}; expected {expected:.4g}."


# --------------------------------------------------------------------------- 04.3


def _weight_after_one_step(function, strength: float) -> float:
    """Train w (starting at 1) for one SGD step (lr 0.1) on mean(function(w·x)) with x = 1."""
    import keras

    class Reverse(keras.layers.Layer):
        def call(self, x):
            return function(x, strength)

        def compute_output_shape(self, input_shape):
            return input_shape

    inputs = keras.Input((1,))
    before = keras.layers.Dense(1, use_bias=False, kernel_initializer="ones", name="before")
    model = keras.Model(inputs, Reverse()(before(inputs)))
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss=lambda y_true, y_pred: y_pred)
    model.fit(
        np.ones((4, 1), "float32"), np.zeros((4, 1), "float32"), batch_size=4, epochs=1, verbose=0
    )
    return float(keras.ops.convert_to_numpy(before.kernel).reshape(-1)[0])


@exercises.exercise(
    "04.3",
    "Gradient reversal with stop_gradient",
    name="reverse_gradient",
    hints=[
        "`ops.stop_gradient(z)` has the value of z and gradient 0.",
        "Find a and b so that a - b has the value x and the gradient -strength: "
        "a = stop_gradient(x * (1 + strength)), b = strength * x.",
    ],
)
def check_reverse_gradient(answer) -> tuple[bool, str]:
    """04.3: reverse_gradient(x, strength): value x, gradient -strength (checked with one SGD step)."""
    import keras

    ok, message = exercises.expect_callable(answer)
    if not ok:
        return False, message
    x = keras.ops.convert_to_tensor(np.array([[1.0, -2.0, 3.5]], "float32"))
    result, problem = _call(answer, x, 0.5)
    if problem is not None:
        return (
            False,
            f"{problem} (called as reverse_gradient(x, 0.5) with a keras tensor x). Use keras.ops functions.",
        )
    try:
        value = np.asarray(keras.ops.convert_to_numpy(result), dtype="float64")
    except Exception:
        return (
            False,
            f"your function returns {exercises._describe(result)}; it should return a tensor like x.",
        )
    if value.shape != (1, 3):
        return (
            False,
            f"your function returns shape {value.shape}; the output must have x's shape (1, 3).",
        )
    if not np.allclose(value, [[1.0, -2.0, 3.5]], atol=1e-5):
        if np.allclose(value, [[-1.0, 2.0, -3.5]], atol=1e-5):
            return (
                False,
                "your function returns -x; on the way forward the layer must not change anything (value x).",
            )
        return (
            False,
            f"your function returns {np.round(value, 3).tolist()} for x = [[1, -2, 3.5]]; on the way forward it must return x unchanged.",
        )
    weights = {}
    for strength in (0.5, 2.0):
        try:
            weights[strength] = exercises.call_with_timeout(
                _weight_after_one_step, answer, strength, timeout=20.0
            )
        except TimeoutError:
            return False, "training through your function took longer than 20 s."
        except KeyboardInterrupt:
            raise
        except BaseException as exc:
            text = str(exc).lower()
            # TensorFlow refuses to train when no gradient reaches w; PyTorch says "does not require grad"
            if "gradient" in text or "require grad" in text or "grad_fn" in text:
                return (
                    False,
                    "no gradient flows through your function: stop_gradient blocks all of it. Keep a term that depends on x.",
                )
            return False, f"training through your function failed: {exercises._describe_error(exc)}"
    # the loss is mean(w·x) with x = 1: a normal gradient is +1 (w drops to 0.9); reversed, -strength (w rises)
    gradients = {strength: round((1.0 - w) / 0.1, 3) for strength, w in weights.items()}
    if all(abs(g - 1.0) < 1e-3 for g in gradients.values()):
        return (
            False,
            "the gradient passes through unchanged (+1): nothing is reversed. Subtract strength * x from a stop_gradient term.",
        )
    if all(abs(g) < 1e-3 for g in gradients.values()):
        return (
            False,
            "no gradient flows through your function (0): stop_gradient blocks all of it. Keep a term that depends on x.",
        )
    if all(abs(g + 1.0) < 1e-3 for g in gradients.values()):
        return (
            False,
            "the gradient is reversed but not scaled by strength (it is -1 for every strength).",
        )
    for strength, gradient in gradients.items():
        if abs(gradient + strength) > 1e-3:
            return (
                False,
                f"with strength {strength:g} the gradient is {gradient:g}; it must be {-strength:g}.",
            )
    return (
        True,
        "forward the identity; backward the gradient times -strength (checked with strength 0.5 and 2).",
    )


# --------------------------------------------------------------------------- quizzes (keys stay here)

exercises.define_quiz(
    "04.4",
    question=(
        "Labelled photos from factory A, 50,000 unlabelled photos from factory B, a "
        "BatchNorm network you can retrain. What first?"
    ),
    options=[
        "Nothing: a good model trained on A works on B.",
        (
            "AdaBN on B's photos (free, no training), then retrain with A's labelled and "
            "B's unlabelled photos (mixed batches, CORAL or DANN), checking on a few "
            "labelled B photos."
        ),
        "Fine-tune on B's photos with A's labels.",
        "Train a new model from scratch on B's photos.",
    ],
    answer=1,
    explanation=(
        "Unlabelled target data is exactly what unsupervised adaptation uses: AdaBN costs"
        " nothing, and training on mixed batches with an alignment loss goes further. "
        "Keep a few labelled target images to measure it."
    ),
    why=[
        ("Section 2: a shift of lighting and background can take a model close to chance."),
        "",
        "B's photos have no labels, and A's labels belong to A's photos.",
        "Without labels there is nothing to train on B alone.",
    ],
)

exercises.define_quiz(
    "04.5",
    question=(
        "DANN reaches a proxy A-distance of 0.1 between source and target features, but "
        "target accuracy did not improve. How can that be?"
    ),
    options=[
        "It cannot: a small domain distance guarantees a low target error.",
        "The proxy A-distance was computed wrongly; it must be near 2.",
        (
            "The features of the two domains overlap, but target digits may sit on top of"
            " the wrong source classes."
        ),
        "The learning rate was too low.",
    ],
    answer=2,
    explanation=(
        "Ben-David et al.'s bound has three terms: the source error, the domain "
        "divergence and the error of the best classifier on both domains. Aligning the "
        "marginal distributions can mix up the classes, which keeps that third term, and "
        "the target error, high."
    ),
    why=[
        (
            "The bound also contains the source error and the joint error; a small "
            "divergence alone guarantees nothing."
        ),
        ("A proxy A-distance near 0 is what DANN aims for; it was not computed wrongly."),
        "",
        (
            "A too-low rate would show as a poor source accuracy too; this is about which"
            " features overlap."
        ),
    ],
)
