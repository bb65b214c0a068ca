"""Checkers for notebook 07 (the real world): importing this module registers them.

>>> import keras  # the check restores Keras' dtype policy: import it first, as the notebook does
>>> from tltutor import exercises
>>> from tltutor.checks import nb07
>>> exercises.check("07.1", lambda seconds: "mixed_float16", widget=False)
[ex 07.1] not yet: for a CPU (float16 is emulated) your function chooses 'mixed_float16', which measured 5.00 times *slower* than float32. A GPU does not make mixed precision pay by itself: decide from the measurement.
False
"""

from __future__ import annotations

import functools

import numpy as np

from tltutor import exercises

__all__ = [
    "check_early_stop",
    "check_features_and_labels",
    "check_policy",
    "choose_policy",
    "features_and_labels",
]

KNOWN_POLICIES = (
    "float32",
    "mixed_float16",
    "mixed_bfloat16",
    "float16",
    "bfloat16",
    "float64",
)
MIN_SPEEDUP = 1.1  # mixed precision must measure at least this much faster to be worth its caveats

# (situation, seconds per training step under each policy, the policy the measured rule picks)
POLICY_CASES = [
    (
        "a CPU (float16 is emulated)",
        {"float32": 0.017, "mixed_float16": 0.085},
        "float32",
    ),
    (
        "an H200 fed too slowly (the course's benchmark: 3242 vs 2941 images/s)",
        {"float32": 1 / 3242, "mixed_float16": 1 / 2941},
        "float32",
    ),
    (
        "a GPU with tensor cores on a large, compute-bound model",
        {"float32": 0.030, "mixed_float16": 0.012},
        "mixed_float16",
    ),
    (
        "a GPU where mixed precision gained 5%",
        {"float32": 0.100, "mixed_float16": 0.095},
        "float32",
    ),
    (
        "a GPU where mixed precision gained 25%",
        {"float32": 0.100, "mixed_float16": 0.080},
        "mixed_float16",
    ),
]


def choose_policy(seconds_per_step: dict) -> str:
    """The measured rule: ``"mixed_float16"`` only if it trained at least ``MIN_SPEEDUP`` times as fast.

    ``seconds_per_step`` maps ``"float32"`` and ``"mixed_float16"`` to measured seconds per training step.

    >>> choose_policy({"float32": 0.017, "mixed_float16": 0.085})
    'float32'
    >>> choose_policy({"float32": 0.030, "mixed_float16": 0.012})
    'mixed_float16'
    """
    speedup = seconds_per_step["float32"] / seconds_per_step["mixed_float16"]
    return "mixed_float16" if speedup >= MIN_SPEEDUP else "float32"


def _policy_name(value) -> str | None:
    """The policy's name for a string or a keras DTypePolicy, else None."""
    if isinstance(value, str):
        return value
    name = getattr(type(value), "__name__", "")
    if "DTypePolicy" in name:
        try:
            return str(value.name)
        except Exception:
            return None
    return None


def _choice(function, seconds: dict, situation: str) -> tuple[str | None, str | None]:
    """(policy name, problem) of ``function(seconds)``; the global policy is restored afterwards."""
    import keras

    before = keras.mixed_precision.dtype_policy()
    try:
        result = exercises.call_with_timeout(function, dict(seconds), timeout=5.0)
    except KeyError as error:
        return None, (
            f"your function raised KeyError {error} for {situation}: its argument holds the measured seconds per "
            "step, {'float32': ..., 'mixed_float16': ...}, not a device report. Decide from the measurement."
        )
    except Exception as error:
        return (
            None,
            f"your function raised {exercises._describe_error(error)} for {situation}.",
        )
    finally:
        keras.mixed_precision.set_global_policy(before)
    if result is None:
        return None, (
            "your function returns None: return the policy's name (a string such as 'float32'); "
            "the notebook passes it to keras.mixed_precision.set_global_policy."
        )
    name = _policy_name(result)
    if name is None:
        return (
            None,
            f"your function returns {exercises._describe(result)}; return the policy's name, a string.",
        )
    return name, None


@exercises.exercise(
    "07.1",
    "Choose the dtype policy from a measurement",
    name="choose_policy",
    hints=[
        "The speed-up is `seconds_per_step['float32'] / seconds_per_step['mixed_float16']`: above 1 means "
        "mixed precision was faster.",
        "`return 'mixed_float16' if speedup >= 1.1 else 'float32'`",
    ],
)
def check_policy(answer) -> tuple[bool, str]:
    """07.1: a function of measured seconds per step that keeps float32 unless mixed precision measured >= 1.1x."""
    ok, message = exercises.expect_callable(answer)
    if not ok:
        return False, message
    for situation, seconds, expected in POLICY_CASES:
        name, problem = _choice(answer, seconds, situation)
        if problem:
            return False, problem
        if name not in KNOWN_POLICIES:
            return (
                False,
                f"{name!r} is not a Keras dtype policy; use 'float32' or 'mixed_float16'.",
            )
        if name in ("float16", "bfloat16"):
            return False, (
                f"{name!r} keeps the weights in 16 bits too: small updates round away and training stalls. "
                f"Mixed precision computes in 16 bits but keeps float32 weights: 'mixed_{name}'."
            )
        if name == expected:
            continue
        speedup = seconds["float32"] / seconds["mixed_float16"]
        if expected == "float32" and speedup < 1:
            return False, (
                f"for {situation} your function chooses {name!r}, which measured {1 / speedup:.2f} times *slower* "
                "than float32. A GPU does not make mixed precision pay by itself: decide from the measurement."
            )
        if expected == "float32":
            return False, (
                f"for {situation} your function chooses {name!r} for a {speedup:.2f}x speed-up: within the noise "
                f"of a timing, not worth float16's caveats. Require at least {MIN_SPEEDUP}x."
            )
        return False, (
            f"for {situation} mixed precision measured {speedup:.2f} times as fast, and your function keeps {name!r}: "
            "use 'mixed_float16' when it measured at least 1.1x."
        )
    return True, (
        "your rule follows the measurement: float32 on the CPU and on the input-bound H200, mixed precision "
        "only where it measured at least 1.1x faster."
    )


# --------------------------------------------------------------------------- 07.2


def features_and_labels(base, ds) -> tuple[np.ndarray, np.ndarray]:
    """The base's features of every batch of ``ds`` and its labels, read in the same pass.

    A ``tf.data`` pipeline that shuffles gives another order at each pass: features from
    ``base.predict(ds)`` and labels from a second pass do not belong together.

    >>> import keras, tensorflow as tf
    >>> base = keras.Sequential([keras.Input((2, 2, 1)), keras.layers.GlobalAveragePooling2D()])
    >>> ds = tf.data.Dataset.from_tensor_slices((np.arange(6.0).repeat(4).reshape(6, 2, 2, 1), np.arange(6))).batch(4)
    >>> features, labels = features_and_labels(base, ds)
    >>> features.shape, labels.tolist()
    ((6, 1), [0, 1, 2, 3, 4, 5])
    """
    features, labels = [], []
    for x, y in ds:
        features.append(
            np.asarray(base.predict_on_batch(np.asarray(x)), dtype="float32")
        )  # NumPy: any backend
        labels.append(np.asarray(y))
    return np.concatenate(features), np.concatenate(labels)


NUM_PROBE_IMAGES = 24


@functools.cache
def _probe_case():
    """A base whose first feature is 20 x the label of the image, and a dataset reshuffled at every pass."""
    import keras
    import tensorflow as tf

    labels = np.arange(NUM_PROBE_IMAGES) % 3
    images = (
        np.repeat(20.0 * labels, 4 * 4 * 3).reshape(NUM_PROBE_IMAGES, 4, 4, 3).astype("float32")
    )
    base = keras.Sequential(
        [keras.Input((4, 4, 3)), keras.layers.GlobalAveragePooling2D()],
        name="probe_base",
    )
    ds = (
        tf.data.Dataset.from_tensor_slices((images, labels))
        .shuffle(NUM_PROBE_IMAGES, seed=0)
        .batch(5)
    )
    return base, ds


@exercises.exercise(
    "07.2",
    "Features and labels in one pass",
    name="features_and_labels",
    hints=[
        "Loop once over the dataset: `for x, y in ds:`; each step gives a batch of images and its labels.",
        "Inside the loop: `features.append(base.predict_on_batch(x))` and `labels.append(y.numpy())`; "
        "after it, `np.concatenate` each list.",
    ],
)
def check_features_and_labels(answer) -> tuple[bool, str]:
    """07.2: a function (base, ds) -> (features (N, D), labels (N,)) with each row's label next to its features."""
    ok, message = exercises.expect_callable(answer)
    if not ok:
        return False, message
    base, ds = _probe_case()
    try:
        result = exercises.call_with_timeout(answer, base, ds, timeout=20.0)
    except Exception as error:
        return (
            False,
            f"your function raised {exercises._describe_error(error)} on a small dataset.",
        )
    if not isinstance(result, (tuple, list)) or len(result) != 2:
        return (
            False,
            f"return two arrays, `features, labels`; got {exercises._describe(result)}.",
        )
    ok, message = exercises.expect_array(result[0], dtype_kind="iuf", max_size=10**6)
    if not ok:
        return False, f"features: {message}"
    features = np.asarray(result[0])
    if features.ndim != 2:
        return False, (
            f"features have shape {features.shape}; expected (N, D): the base's output for each image "
            "(pass the images through `base`)."
        )
    ok, message = exercises.expect_array(result[1], dtype_kind="iuf", max_size=10**6)
    if not ok:
        return False, f"labels: {message}"
    labels = np.asarray(result[1])
    if labels.ndim == 2 and labels.shape[1] > 1:
        return (
            False,
            f"labels have shape {labels.shape}; expected integer labels (N,), not one-hot vectors.",
        )
    labels = labels.reshape(-1)
    n = NUM_PROBE_IMAGES
    if len(features) != n or len(labels) != n:
        return False, (
            f"got {len(features)} feature rows and {len(labels)} labels for a dataset of {n} images; "
            "collect every batch and concatenate them."
        )
    matches = np.round(features[:, 0] / 20.0) == labels
    if not matches.all():
        return False, (
            f"only {int(matches.sum())} of {n} labels belong to the features in their row: the dataset reshuffles "
            "at every pass, so features and labels must come from the same pass (one loop over `ds`)."
        )
    return (
        True,
        f"all {n} labels sit next to their own features, although the dataset reshuffles at every pass.",
    )


# --------------------------------------------------------------------------- 07.3


@exercises.exercise(
    "07.3",
    "Early stopping that keeps the best model",
    name="early_stop",
    hints=[
        "`keras.callbacks.EarlyStopping(monitor=..., patience=..., restore_best_weights=...)`",
        "Watch the validation loss, allow a few epochs without improvement, and go back to the best epoch: "
        "`keras.callbacks.EarlyStopping(monitor='val_loss', patience=3, restore_best_weights=True)`",
    ],
)
def check_early_stop(answer) -> tuple[bool, str]:
    """07.3: an EarlyStopping callback on a validation metric, patience 1-10, best weights restored."""
    import keras

    early_stopping = keras.callbacks.EarlyStopping
    if answer is early_stopping:
        return (
            False,
            "that is the class; create a callback by calling it: keras.callbacks.EarlyStopping(monitor=..., ...).",
        )
    if not isinstance(answer, early_stopping):
        return (
            False,
            f"expected a keras.callbacks.EarlyStopping callback; got {exercises._describe(answer)}.",
        )
    monitor = getattr(answer, "monitor", None)
    if monitor in ("loss", "accuracy"):
        return False, (
            f"monitor={monitor!r} watches the training set, which keeps improving while the model starts to "
            f"overfit: watch the validation set, 'val_{monitor}'."
        )
    if monitor not in ("val_loss", "val_accuracy"):
        return (
            False,
            f"monitor={monitor!r} is not logged by this fit; use 'val_loss' (or 'val_accuracy').",
        )
    mode = getattr(answer, "mode", "auto")
    if (monitor == "val_loss" and mode == "max") or (monitor == "val_accuracy" and mode == "min"):
        return (
            False,
            f"mode={mode!r} treats the wrong direction as better for {monitor}; leave mode='auto'.",
        )
    patience = getattr(answer, "patience", None)
    if isinstance(patience, bool) or not isinstance(patience, (int, np.integer)):
        return (
            False,
            f"patience must be a whole number of epochs; got {exercises._describe(patience)}.",
        )
    if patience < 1:
        return False, (
            "patience=0 stops at the first epoch that does not improve; validation curves wobble, so allow "
            "a few epochs (2 to 5)."
        )
    if patience > 10:
        return (
            False,
            f"patience={patience} would almost never stop a run of 15 epochs; 2 to 5 is usual.",
        )
    if not getattr(answer, "restore_best_weights", False):
        return False, (
            f"without restore_best_weights=True the model keeps the weights of the last epoch, {patience} epoch(s) "
            "after the best one: the ones that already overfit."
        )
    return (
        True,
        f"stops after {patience} epoch(s) without a better {monitor} and goes back to the best epoch's weights.",
    )


# --------------------------------------------------------------------------- quizzes (keys stay here, not in the notebook)

exercises.define_quiz(
    "07.q1",
    question=(
        "A linear probe on features from `base.predict(train_ds)`, with labels collected in a second loop "
        "over `train_ds`, scores at chance on the test images. What is the most likely cause?"
    ),
    options=[
        "The ImageNet features do not fit the photos.",
        "The learning rate of the probe is too high.",
        "The pipeline reshuffles at every pass, so the labels do not belong to the features next to them.",
        "Mixed precision rounded the features to zero.",
    ],
    answer=2,
    explanation=(
        "image_dataset_from_directory(shuffle=True) reshuffles at every pass; read images and labels in "
        "the same loop."
    ),
    why=[
        "Poor features give a weak probe, but not one exactly at chance: even a random base's features "
        "did better in notebook 02.",
        "A bad learning rate slows learning; a few epochs later the probe would still beat chance.",
        "",
        "float16 keeps about 3 significant digits: features do not become zero.",
    ],
)

PAIRS_07_M1 = {
    "photos on disk, more than memory holds": "data.load_image_folder (tf.data, prefetch)",
    "float16 steps measured faster on a GPU": "mixed_float16 policy (gpu.setup)",
    "four GPUs in one machine": "data parallelism: a model replica per GPU",
    "stop before the model overfits": "EarlyStopping(restore_best_weights=True)",
    "use the model in an application": "model.save('model.keras')",
}
exercises.define_match("07.m1", pairs=PAIRS_07_M1, question="Match each need to the tool.")
