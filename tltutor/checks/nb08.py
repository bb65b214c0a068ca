"""Checkers for notebook 08 (beyond: multi-task, stacking, progressive networks, NLP): importing this module registers them.

>>> from tltutor import exercises
>>> from tltutor.checks import nb08
>>> exercises.check("08.3", nb08.next_token_pairs, widget=False)
[ex 08.3] correct: 3 (prefix, next word) pairs from a 4-word sentence: every word after the first becomes a label, for free.
True
"""

from __future__ import annotations

import functools
import itertools

import numpy as np

from tltutor import exercises

__all__ = [
    "check_next_token_pairs",
    "check_out_of_fold",
    "check_two_heads",
    "next_token_pairs",
    "out_of_fold",
    "two_heads",
]


# --------------------------------------------------------------------------- 08.1


def two_heads(base, num_classes: int = 5):
    """A multi-task model: pixels -> shared ``base`` -> two softmax heads, ``task_a`` and ``task_b``.

    The base is called without ``training=False``: it is trained from scratch, so its
    BatchNorm layers must learn their statistics.

    >>> from tltutor import models
    >>> model = two_heads(models.tlnet(width=4))
    >>> [tuple(output.shape) for output in model.outputs]
    [(None, 5), (None, 5)]
    """
    import keras

    inputs = keras.Input(base.input_shape[1:])
    features = base(inputs)
    task_a = keras.layers.Dense(num_classes, activation="softmax", name="task_a")(features)
    task_b = keras.layers.Dense(num_classes, activation="softmax", name="task_b")(features)
    return keras.Model(inputs, [task_a, task_b], name="multi_task")


@functools.cache
def _small_base_params() -> tuple[int, int]:
    """Parameters of the small test base and its feature size."""
    from tltutor import models

    base = models.tlnet(width=4)
    return base.count_params(), base.output_shape[-1]


def _contains(model, layer) -> bool:
    import keras

    return any(
        inner is layer or (isinstance(inner, keras.Model) and _contains(inner, layer))
        for inner in model.layers
    )


@exercises.exercise(
    "08.1",
    "A shared base with two heads",
    name="two_heads",
    hints=[
        "Functional API: `inputs = keras.Input(base.input_shape[1:])`, `features = base(inputs)`, then two "
        "`keras.layers.Dense(num_classes, activation='softmax')` layers on the same `features`.",
        "Return `keras.Model(inputs, [task_a, task_b])`.",
    ],
)
def check_two_heads(answer) -> tuple[bool, str]:
    """08.1: two_heads(base, num_classes=5) -> a Model with one shared base and two softmax outputs."""
    import keras

    from tltutor import models

    ok, message = exercises.expect_callable(answer)
    if not ok:
        return False, message
    base = models.tlnet(width=4)
    try:
        model = exercises.call_with_timeout(answer, base, timeout=20.0)
    except Exception as error:
        return False, f"two_heads(base) raised {exercises._describe_error(error)}."
    if not isinstance(model, keras.Model):
        return (
            False,
            f"two_heads(base) returns {exercises._describe(model)}; return a keras.Model.",
        )
    outputs = model.outputs if isinstance(model.outputs, (list, tuple)) else [model.outputs]
    if len(outputs) != 2:
        return (
            False,
            f"the model has {len(outputs)} output(s); multi-task learning needs two, one per task: keras.Model(inputs, [task_a, task_b]).",
        )
    shapes = [tuple(output.shape) for output in outputs]
    if any(shape[-1] != 5 for shape in shapes):
        return (
            False,
            f"the outputs have shapes {shapes}; each head needs num_classes=5 units.",
        )
    if not _contains(model, base):
        return (
            False,
            "the model does not use the base it was given: call it, `features = base(inputs)`, so both tasks share it.",
        )
    base_params, dim = _small_base_params()
    params = model.count_params()
    if params >= 2 * base_params:
        return (
            False,
            f"{params:,} parameters: that is two copies of the base; both heads must sit on the same base's features.",
        )
    if params < base_params + 2 * (dim * 5 + 5):
        return (
            False,
            "the two outputs share one head; give each task its own Dense layer.",
        )
    try:
        import keras

        outputs = model(np.zeros((2, 32, 32, 3), "float32"), training=False)
        probabilities = [
            np.asarray(keras.ops.convert_to_numpy(p), dtype="float64") for p in outputs
        ]
    except Exception as error:
        return (
            False,
            f"the model cannot run on images: {exercises._describe_error(error)}.",
        )
    if not all(
        np.allclose(p.sum(axis=-1), 1.0, atol=1e-3) and (p >= 0).all() for p in probabilities
    ):
        return (
            False,
            "the heads do not output probabilities; end each with activation='softmax' (the loss expects them).",
        )
    try:
        rows = models.bn_report(model, np.zeros((4, 32, 32, 3), "uint8"))
    except Exception as error:
        return (
            False,
            f"cannot read the BatchNorm layers of this model ({exercises._describe_error(error)}); build it with the functional API.",
        )
    if not any(layer.trainable_weights for layer in base.layers):
        return (
            False,
            "the base is frozen; in multi-task learning the shared base learns from both tasks.",
        )
    if any(row["mode"] == "inference" for row in rows):
        return False, (
            "the base runs with training=False, so its BatchNorm layers would never learn statistics; this base is "
            "trained from scratch: call it as `base(inputs)`."
        )
    return True, (
        f"one shared base and two softmax heads: {params:,} parameters, against {2 * base_params + 2 * (dim * 5 + 5):,} "
        "for two single-task models."
    )


# --------------------------------------------------------------------------- 08.2


def out_of_fold(features, y, *, n_splits: int = 5, seed: int = 0) -> np.ndarray:
    """Class probabilities (N, C) for every row, each from a logistic regression that did not see that row.

    >>> rng = np.random.default_rng(0)
    >>> y = np.arange(40) % 2
    >>> out_of_fold(rng.normal(size=(40, 3)) + y[:, None], y).shape
    (40, 2)
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_predict
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    folds = StratifiedKFold(n_splits, shuffle=True, random_state=seed)
    level0 = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    return cross_val_predict(level0, features, y, cv=folds, method="predict_proba")


@functools.cache
def _fold_cases() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Two small problems: random labels (in-sample predictions fit them, out-of-fold ones cannot) and
    well-separated classes (out-of-fold predictions are right if each row is in its place)."""
    rng = np.random.default_rng(0)
    y = rng.permutation(np.arange(120) % 4)
    noise = rng.normal(size=(120, 40)).astype("float32")
    separated = noise[:, :8] * 0.3 + 4 * np.eye(4, 8, dtype="float32")[y]
    return {"random": (noise, y), "separated": (separated, y)}


def _in_sample(features, y) -> np.ndarray:
    """The mistake 08.2 guards against: every row predicted by a model that saw its label."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    level0 = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    return level0.fit(features, y).predict_proba(features)


@functools.cache
def _fold_references() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """For each case, the true out-of-fold probabilities of the recipe and the in-sample ones."""
    return {case: (out_of_fold(F, y), _in_sample(F, y)) for case, (F, y) in _fold_cases().items()}


@exercises.exercise(
    "08.2",
    "Out-of-fold predictions",
    name="out_of_fold",
    hints=[
        "`sklearn.model_selection.cross_val_predict(model, features, y, cv=folds, method='predict_proba')` "
        "does it: each row is predicted by the model of the fold that left it out.",
        "`folds = StratifiedKFold(5, shuffle=True, random_state=0)` and "
        "`model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))`.",
    ],
)
def check_out_of_fold(answer) -> tuple[bool, str]:
    """08.2: out_of_fold(features, y) -> (N, C) probabilities equal to the recipe's true out-of-fold ones."""
    ok, message = exercises.expect_callable(answer)
    if not ok:
        return False, message
    for case, (features, y) in _fold_cases().items():
        try:
            result = exercises.call_with_timeout(answer, features.copy(), y.copy(), timeout=30.0)
        except Exception as error:
            return (
                False,
                f"out_of_fold(features, y) raised {exercises._describe_error(error)}.",
            )
        ok, message = exercises.expect_array(result, shape=(len(y), 4), dtype_kind="f")
        if not ok:
            return (
                False,
                f"for 120 rows and 4 classes: {message} Return class probabilities (method='predict_proba').",
            )
        probabilities = np.asarray(result, dtype="float64")
        if (probabilities < -1e-6).any() or not np.allclose(
            probabilities.sum(axis=1), 1.0, atol=1e-3
        ):
            return (
                False,
                "the rows are not probabilities (each row must be >= 0 and sum to 1); use method='predict_proba'.",
            )
        expected, in_sample = _fold_references()[case]
        if np.allclose(probabilities, expected, atol=1e-4):
            continue
        return False, _explain_folds(probabilities, expected, in_sample, y)
    accuracy = float(
        np.mean(_fold_references()["random"][0].argmax(axis=1) == _fold_cases()["random"][1])
    )
    return True, (
        f"your predictions are the true out-of-fold ones: on random labels they are right for {accuracy:.0%} of "
        "the rows (chance: 25%), where in-sample predictions would look almost perfect."
    )


def _explain_folds(
    probabilities: np.ndarray,
    expected: np.ndarray,
    in_sample: np.ndarray,
    y: np.ndarray,
) -> str:
    own_label = float(np.mean(probabilities[np.arange(len(y)), y]))
    honest = float(np.mean(expected[np.arange(len(y)), y]))
    if np.allclose(probabilities, in_sample, atol=1e-4) or own_label > honest + 0.1:
        return (
            f"your predictions give each row's own label a probability of {own_label:.2f} on average, against "
            f"{honest:.2f} out of fold: each row was predicted by a model that saw its label (in-sample). "
            "Predict each fold with a model trained on the other four."
        )
    if np.allclose(np.sort(probabilities, axis=0), np.sort(expected, axis=0), atol=1e-4):
        return "the right predictions, in the wrong rows: each row's prediction must stay at its own row."
    return (
        "these are not the out-of-fold predictions of the recipe the task asks for (other folds, another "
        "model or no standardisation): use `StratifiedKFold(5, shuffle=True, random_state=0)` and "
        "`make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))`, so the stack below is reproducible."
    )


# --------------------------------------------------------------------------- 08.3


def next_token_pairs(tokens) -> list[tuple[list, object]]:
    """GPT-style training pairs from one sentence: (every word before position i, the word at i), for i >= 1.

    >>> next_token_pairs(["we", "sing", "songs"])
    [(['we'], 'sing'), (['we', 'sing'], 'songs')]
    """
    tokens = list(tokens)
    return [(tokens[:i], tokens[i]) for i in range(1, len(tokens))]


SENTENCE = ("the", "ball", "was", "kicked")


def _pairs(answer, tokens) -> tuple[list | None, str | None]:
    try:
        result = exercises.call_with_timeout(
            lambda: list(itertools.islice(iter(answer(list(tokens))), 100)), timeout=5.0
        )
    except Exception as error:
        return (
            None,
            f"next_token_pairs({list(tokens)}) raised {exercises._describe_error(error)}.",
        )
    pairs = []
    for pair in result:
        if (
            not isinstance(pair, (tuple, list))
            or len(pair) != 2
            or not isinstance(pair[0], (tuple, list))
        ):
            return (
                None,
                f"each item must be a pair (prefix list, next word); got {exercises._describe(pair)}.",
            )
        pairs.append((list(pair[0]), pair[1]))
    return pairs, None


@exercises.exercise(
    "08.3",
    "Labels for free: next-word pairs",
    name="next_token_pairs",
    hints=[
        "For each position i from 1 to len(tokens) - 1, the prefix is `tokens[:i]` and the label is `tokens[i]`.",
        "`return [(tokens[:i], tokens[i]) for i in range(1, len(tokens))]`",
    ],
)
def check_next_token_pairs(answer) -> tuple[bool, str]:
    """08.3: next_token_pairs(tokens) -> [(tokens[:i], tokens[i]) for i >= 1]."""
    ok, message = exercises.expect_callable(answer)
    if not ok:
        return False, message
    pairs, problem = _pairs(answer, SENTENCE)
    if problem:
        return False, problem
    expected = next_token_pairs(SENTENCE)
    if pairs == expected:
        for tokens in ([], ["alone"], [3, 5, 7]):
            more, problem = _pairs(answer, tokens)
            if problem:
                return False, problem
            if more != next_token_pairs(tokens):
                return (
                    False,
                    f"right for a 4-word sentence, but for {tokens} it gives {more}; expected {next_token_pairs(tokens)}.",
                )
        return (
            True,
            "3 (prefix, next word) pairs from a 4-word sentence: every word after the first becomes a label, for free.",
        )
    if pairs and pairs[0] == ([], SENTENCE[0]):
        return False, (
            "the first pair has an empty prefix: with nothing to read, the model could only guess the most common "
            "first word. Start at the second word (GPT uses a start-of-text token for this case)."
        )
    if pairs and all(target in prefix and prefix[-1] == target for prefix, target in pairs):
        return (
            False,
            "each prefix ends with the word it should predict: the model would only copy. Stop the prefix before it.",
        )
    if len(pairs) == len(expected) and [t for _, t in pairs] == [t for _, t in expected]:
        if all(len(prefix) == 1 for prefix, _ in pairs):
            return (
                False,
                "each prefix is only the previous word; a GPT-style model reads every word before the one it predicts.",
            )
        if any(len(prefix) > i + 1 for i, (prefix, _) in enumerate(pairs)):
            return (
                False,
                "some prefixes contain words after the target: that is the masked-word (BERT) setting, not next-word.",
            )
        return (
            False,
            f"the labels are right but the prefixes are not: got {[p for p, _ in pairs]}; expected {[p for p, _ in expected]}.",
        )
    return (
        False,
        f"for {list(SENTENCE)} your function gives {pairs[:4]}; expected {expected}.",
    )


# --------------------------------------------------------------------------- quizzes (keys stay here, not in the notebook)

exercises.define_quiz(
    "08.q1",
    question=(
        "A robot must learn a new task every month and must never get worse at the old ones. Which "
        "approach guarantees that, and what does it cost?"
    ),
    options=[
        "Fine-tuning the whole network on each new task, at a low learning rate: it costs nothing.",
        "Multi-task learning on the new task only: it costs a second head.",
        "Stacking the old and new models: it costs a level-1 model.",
        "Keeping the trained network frozen and adding what each new task needs on top: a new head on the "
        "frozen features, or a progressive column when those features are not enough; the parameters grow "
        "with every task.",
    ],
    answer=3,
    explanation=(
        "Weights that never change cannot forget (the source accuracy stayed exactly the same). A new "
        "head on the frozen features is the cheapest such addition; a column adds capacity when the "
        "frozen features are not enough (section 3 compares the two)."
    ),
    why=[
        "A low learning rate forgets less, but it does forget: fine-tuning lowered the source accuracy in "
        "section 3.",
        "Multi-task learning needs the old tasks' data during training; trained on the new task only, the "
        "shared base changes.",
        "Stacking combines models for one task; it does not protect the old tasks' models from being "
        "retrained.",
        "",
    ],
)

PAIRS_08_M1 = {
    "BERT": "predict hidden words from both sides",
    "GPT": "predict the next word from the words before",
    "prompting": "phrase the task as text to continue; no weight changes",
    "fine-tuning": "update the pretrained weights on labelled target data",
    "stacking": "a level-1 model on out-of-fold predictions",
}
exercises.define_match("08.m1", pairs=PAIRS_08_M1, question="Match each term to what it does.")
