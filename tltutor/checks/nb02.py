"""Checkers for notebook 02 (feature extraction): importing this module registers them.

>>> import numpy as np
>>> from tltutor import exercises
>>> from tltutor.checks import nb02
>>> exercises.check("02.1", np.zeros((100, 32, 32, 3), "uint8"), widget=False)
[ex 02.1] not yet: these look like images (shape (100, 32, 32, 3)), not features: pass them through the frozen base with `train.extract_features(base, X_few)`.
False
"""

from __future__ import annotations

import functools

import numpy as np

from tltutor import exercises

__all__ = [
    "FEATURE_DIM",
    "NUM_CLASSES",
    "check_block2_extractor",
    "check_features",
    "check_head",
    "probe_images",
    "reference_layer_features",
    "reference_pool_features",
    "reference_test_features",
]

FEATURE_DIM = 64  # TLNet (width 16): its last block has 4 * 16 channels
NUM_CLASSES = 5  # the lab target task: Fashion classes 5-9
BLOCK_WIDTHS = {"block1": 16, "block2": 32, "block3": 64}
MIN_PROBE_ACCURACY = (
    0.45  # chance is 0.2; the course base's features give about 0.6 with 20 labels per class
)


# --------------------------------------------------------------------------- references (cached)


@functools.cache
def _lab_target() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``data.lab_target()``, computed once (it blends every image with a photo on each call)."""
    from tltutor import data

    return data.lab_target()


@functools.cache
def reference_test_features() -> tuple[np.ndarray, np.ndarray]:
    """Features of the whole lab target test set from the course base, and its labels (cached)."""
    from tltutor import models, train

    _, _, X_test, y_test = _lab_target()
    base = models.get_base("TLNet", weights="course")
    return train.extract_features(base, X_test), y_test


@functools.cache
def reference_pool_features() -> tuple[np.ndarray, np.ndarray]:
    """Features of the whole lab target pool from the course base, and its labels (cached)."""
    from tltutor import models, train

    X_pool, y_pool, _, _ = _lab_target()
    base = models.get_base("TLNet", weights="course")
    return train.extract_features(base, X_pool), y_pool


def _matching_rows(features: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """For each row of ``features``, the index of the equal row of ``reference``, or -1 when none is."""
    features = features.astype("float64")
    reference = reference.astype("float64")
    distances = (
        (features**2).sum(1)[:, None] - 2 * features @ reference.T + (reference**2).sum(1)[None, :]
    )
    nearest = np.argmin(distances, axis=1)
    close = np.all(np.isclose(features, reference[nearest], rtol=1e-3, atol=1e-4), axis=1)
    return np.where(close, nearest, -1)


@functools.cache
def probe_images() -> np.ndarray:
    """Eight fixed random images (uint8, 32x32x3) on which a student's extractor is compared."""
    return np.random.default_rng(0).integers(0, 256, size=(8, 32, 32, 3), dtype=np.uint8)


@functools.cache
def reference_layer_features() -> dict[str, np.ndarray]:
    """Global-average-pooled outputs of every layer of the course base on ``probe_images()``."""
    import keras

    from tltutor import models

    base = models.get_base("TLNet", weights="course")
    names = [layer.name for layer in base.layers if layer.name.startswith("block")]
    outputs = [keras.layers.GlobalAveragePooling2D()(base.get_layer(name).output) for name in names]
    values = keras.Model(base.input, outputs)(probe_images().astype("float32"), training=False)
    return {name: keras.ops.convert_to_numpy(value) for name, value in zip(names, values)}


# --------------------------------------------------------------------------- 02.1


@exercises.exercise(
    "02.1",
    "Features from a frozen base",
    name="features_train",
    hints=[
        "The base maps images (N, 32, 32, 3) to feature vectors (N, 64); it has no head.",
        "`train.extract_features(base, X_few)` runs the base in inference mode and caches the result.",
    ],
)
def check_features(answer) -> tuple[bool, str]:
    """02.1: the features of the few labelled target images, shape (N, 64), from the frozen base."""
    ok, message = exercises.expect_array(answer, dtype_kind="iuf", finite=False)
    if not ok:
        return False, message
    features = np.asarray(answer)
    if features.ndim == 4:
        return False, (
            f"these look like images (shape {features.shape}), not features: pass them through the "
            "frozen base with `train.extract_features(base, X_few)`."
        )
    if features.ndim != 2:
        return (
            False,
            f"features are a 2-D array (images, feature dimensions); got shape {features.shape}.",
        )
    n, dim = features.shape
    if dim == NUM_CLASSES:
        return False, (
            f"{dim} numbers per image look like class probabilities from a model with a head; "
            "features come from the base alone (its output is the pooled feature vector)."
        )
    if dim != FEATURE_DIM:
        return False, (
            f"{dim} numbers per image; the course base outputs {FEATURE_DIM} (the channels of its last "
            "block, averaged over the image). Use the whole base, `models.get_base('TLNet', weights='course')`."
        )
    if n < NUM_CLASSES:
        return (
            False,
            f"only {n} row(s); extract the features of every labelled image (one row per image).",
        )
    ok, message = exercises.expect_array(features, dtype_kind="f")
    if not ok:
        return False, message
    if (features < 0).any():
        return False, (
            "some features are negative; the base's features are averages of ReLU outputs, so they are >= 0. "
            "Did you standardise them? Keep the raw features (train_head standardises inside)."
        )
    if np.ptp(features, axis=0).max() == 0:
        return (
            False,
            "every image has the same features; did you pass the same image N times, or blank images?",
        )
    pool, y_pool = reference_pool_features()
    rows = _matching_rows(features, pool)
    if (rows < 0).any():
        test, _ = reference_test_features()
        if (_matching_rows(features, test) >= 0).all():
            return False, (
                "these are the features of *test* images; the head must learn from the labelled images: "
                "extract the features of `X_few`."
            )
        return False, (
            f"{int((rows < 0).sum())} of {n} rows are not the course base's features of target pool images. "
            "Did you use `random_base` or another model, or images other than `X_few`? "
            "Use the frozen, pretrained `base`."
        )
    if len(set(rows.tolist())) < n:
        return (
            False,
            "some images appear more than once; extract the features of each labelled image in `X_few` once.",
        )
    counts = np.bincount(y_pool[rows], minlength=NUM_CLASSES)
    if counts.min() != counts.max():
        return False, (
            f"the images behind these rows have {counts.tolist()} per class; `X_few` has the same number of "
            "every class: extract the features of `X_few`, in its order."
        )
    if n == len(pool):
        return (
            False,
            "these are the features of the whole pool; the exercise asks for the few labelled images `X_few`.",
        )
    return (
        True,
        f"{n} images ({counts[0]} per class), {FEATURE_DIM} features each, from the pretrained base.",
    )


# --------------------------------------------------------------------------- 02.2


@exercises.exercise(
    "02.2",
    "A linear head on cached features",
    name="head",
    hints=[
        "`norm = keras.layers.Normalization(); norm.adapt(features_train)` learns each feature's mean "
        "and variance; then `keras.Sequential([keras.Input((64,)), norm, keras.layers.Dense(5, "
        "activation='softmax')])`.",
        "`head.compile(optimizer=keras.optimizers.Adam(1e-2), loss='sparse_categorical_crossentropy', "
        "metrics=['accuracy'])`, then `head.fit(features_train, y_few, epochs=60, verbose=0)`.",
        "Train it on the *training* features and labels (`features_train`, `y_few`); the check "
        "evaluates it on the test features.",
    ],
)
def check_head(answer) -> tuple[bool, str]:
    """02.2: a linear head written in Keras (features (N, 64) -> 5 class probabilities), trained."""
    import keras

    if isinstance(answer, keras.Model) and answer.name == "linear_probe":
        return False, (
            "this is `train.train_head`'s probe; the exercise asks you to write the head yourself with Keras "
            "layers (Normalization, Dense), compile and fit it: the plain recipe that train_head wraps."
        )
    if isinstance(answer, keras.Model) and len(answer.input_shape) == 4:
        return False, (
            f"this model takes images {answer.input_shape}; the head takes the cached features, "
            f"shape (N, {FEATURE_DIM}). Build it with `train.train_head(features_train, y_few)`."
        )
    ok, message = exercises.expect_model(
        answer, input_shape=(FEATURE_DIM,), num_outputs=NUM_CLASSES
    )
    if not ok:
        return False, message
    features, y_test = reference_test_features()
    probabilities = keras.ops.convert_to_numpy(answer(features, training=False))
    if not np.isfinite(probabilities).all():
        return (
            False,
            "the head outputs NaN or infinite values on the test features; did training diverge (lr too high)?",
        )
    dense = [layer for layer in _leaf_layers(answer) if isinstance(layer, keras.layers.Dense)]
    if len(dense) != 1:
        return False, (
            f"your model has {len(dense)} Dense layers; a *linear* head has exactly one: "
            "Dense(5, activation='softmax') on the (standardised) features."
        )
    accuracy = float(np.mean(np.argmax(probabilities, axis=-1) == y_test))
    if accuracy < 0.3:
        return False, (
            f"on the target test set your head is near chance ({accuracy:.1f}; chance is 0.2 with 5 classes). "
            "Was it trained at all, on features and labels in the same order?"
        )
    if accuracy < MIN_PROBE_ACCURACY:
        return False, (
            f"above chance but weak on the target test set (about {accuracy:.1f}). The course base's features "
            "give about 0.6 with 20 labels per class: did you use the random base's features, or very few labels?"
        )
    return (
        True,
        "your head classifies the target test set well above chance (0.2) from the frozen features.",
    )


def _leaf_layers(model) -> list:
    """Every layer of ``model``, nested models opened."""
    import keras

    leaves = []
    for layer in model.layers:
        leaves.extend(_leaf_layers(layer) if isinstance(layer, keras.Model) else [layer])
    return leaves


# --------------------------------------------------------------------------- 02.3


@exercises.exercise(
    "02.3",
    "Features from an intermediate layer",
    name="block2_extractor",
    hints=[
        "`base.get_layer('block2_pool').output` is a symbolic tensor of shape (None, 8, 8, 32).",
        "Average it over the image: `keras.layers.GlobalAveragePooling2D()(...)`.",
        "`keras.Model(base.input, pooled)` makes a model from the base's input to that tensor.",
    ],
)
def check_block2_extractor(answer) -> tuple[bool, str]:
    """02.3: a keras.Model from the course base's input to GlobalAveragePooling2D(block2_pool)."""
    import keras

    ok, message = exercises.expect_model(answer)
    if not ok:
        return False, message
    images = probe_images().astype("float32")
    try:
        output = answer(images, training=False)
    except Exception as error:
        return (
            False,
            f"the model cannot take images of shape (None, 32, 32, 3): {type(error).__name__}: {error}",
        )
    if isinstance(output, (list, tuple, dict)):
        return (
            False,
            f"the model has {len(output)} outputs; this exercise wants one, the block2 features.",
        )
    output = keras.ops.convert_to_numpy(output)
    if output.ndim == 4:
        return False, (
            f"the output has shape {(None, *output.shape[1:])}: a feature *map*. Average it over height "
            "and width with `keras.layers.GlobalAveragePooling2D()` to get one vector per image."
        )
    if output.ndim != 2:
        return False, f"the output has shape {(None, *output.shape[1:])}; expected (None, 32)."
    width = output.shape[1]
    if width != BLOCK_WIDTHS["block2"]:
        block = next((b for b, w in BLOCK_WIDTHS.items() if w == width), None)
        where = f" (that is {block})" if block else ""
        return False, f"{width} features per image{where}; block2 has 32 channels."
    references = reference_layer_features()
    if np.allclose(output, references["block2_pool"], rtol=1e-3, atol=1e-4):
        return (
            True,
            "GlobalAveragePooling2D(block2_pool) of the course base: 32 mid-level features per image.",
        )
    same = [
        name
        for name, value in references.items()
        if value.shape == output.shape and np.allclose(output, value, rtol=1e-3, atol=1e-4)
    ]
    if same:
        return (
            False,
            f"these are the features of `{same[0]}`; take the block's output after pooling, `block2_pool`.",
        )
    return False, (
        "the shape is right but the values differ from the course base's pooled block2_pool output: "
        "build it on `models.get_base('TLNet', weights='course')` (not a random base) and average block2_pool."
    )


# --------------------------------------------------------------------------- quizzes

exercises.define_quiz(
    "02.q1",
    question="When is a frozen base with a linear head most likely to be enough?",
    options=[
        "The target images look very different from the source images (say, X-rays vs photos of clothes).",
        "The target task is close to the source task and there are few labelled target images.",
        "You have millions of labelled target images and plenty of compute.",
        "Always: training the base never beats frozen features.",
    ],
    answer=1,
    explanation=(
        "Close tasks reuse the source features as they are, and with few labels a small head has "
        "little to overfit. Far targets or lots of data favour adapting the base (notebook 03)."
    ),
    why=[
        "Far from the source, the source features miss what matters; adapt the base or pick another source.",
        "",
        "With that much data, fine-tuning (or training from scratch) can adapt every layer and usually wins.",
        "Fine-tuning often beats frozen features when there are enough labels or the domains differ.",
    ],
)

exercises.define_quiz(
    "02.q2",
    question="Which statements are true? (Several may be.)",
    options=[
        "Features can be cached because a frozen base gives the same features for an image every epoch.",
        "Random-augmenting the images each epoch works just as well with cached features.",
        "The first layers of a CNN tend to be general; the last layers tend to be specific to the source task.",
        "A random base gives chance-level features.",
    ],
    answer={0, 2},
    explanation="Frozen base = fixed features, computed once; layers go from general to specific.",
    why=[
        "",
        "Each augmented image is a new image with new features: augmentation needs the base in the loop.",
        "",
        "Random convolutions still give usable features, well above chance (section 2), but weaker ones.",
    ],
)
