"""Checkers for notebook 06 (choosing a source model): importing this module registers them.

>>> from tltutor import exercises
>>> from tltutor.checks import nb06
>>> exercises.check("06.2", lambda scores, accuracy, metric, k: 0.0, widget=False)
[ex 06.2] not yet: for LEEP with k=1 your function gives 0; expected 0.12. The shortlist must come from the *score*: ranking by the accuracy itself always gives 0, but the accuracies are what you do not have before fine-tuning.
False
"""

from __future__ import annotations

import functools

import numpy as np

from tltutor import exercises

__all__ = [
    "check_h_score",
    "check_shortlist_regret",
    "h_score_cases",
    "shortlist_regret",
]

TIMEOUT = 5.0  # seconds for each call of the student's function


# --------------------------------------------------------------------------- 06.1


@functools.cache
def h_score_cases() -> tuple[tuple[str, np.ndarray, np.ndarray, float], ...]:
    """(description, features, labels, expected H-score): from hand-computed to realistic.

    >>> [(name, round(value, 3)) for name, _, _, value in h_score_cases()][:2]
    [('one feature, classes {0, 2} and {4, 6}', 0.8), ('two correlated features', 1.0)]
    """
    from tltutor import metrics

    rng = np.random.default_rng(6)
    y_unbalanced = np.array([0] * 30 + [1] * 10 + [2] * 20)
    realistic = np.abs(rng.normal(size=(60, 6)) + 1.5 * np.eye(6)[y_unbalanced])
    dead = np.hstack([realistic, np.zeros((60, 2))])  # two dead ReLU units
    cases = [
        (
            "one feature, classes {0, 2} and {4, 6}",
            np.array([[0.0], [2.0], [4.0], [6.0]]),
            np.array([0, 0, 1, 1]),
        ),
        (
            "two correlated features",
            np.array([[0.0, 1.0], [2.0, -1.0], [4.0, 1.0], [6.0, -1.0]]),
            np.array([0, 0, 1, 1]),
        ),
        ("60 images of 3 unbalanced classes, 6 features", realistic, y_unbalanced),
        ("the same with two constant features (dead ReLU units)", dead, y_unbalanced),
    ]
    return tuple((name, F, y, metrics.h_score(F, y)) for name, F, y in cases)


def _h_score_variants(F: np.ndarray, y: np.ndarray) -> dict[str, float]:
    """H-scores computed with the usual mistakes, to recognise them."""
    centred = F - F.mean(axis=0)
    classes = np.unique(y)
    means = np.stack([centred[y == c].mean(axis=0) for c in classes])
    per_image = means[np.searchsorted(classes, y)]
    total, between = centred.T @ centred / len(F), per_image.T @ per_image / len(F)
    uncentred_total = F.T @ F / len(F)
    per_class_between = np.cov(means.T, bias=True).reshape(F.shape[1], F.shape[1])
    pinv = functools.partial(np.linalg.pinv, rcond=1e-10, hermitian=True)
    return {
        "uncentred": float(np.trace(pinv(uncentred_total) @ between)),
        "swapped": float(np.trace(pinv(between) @ total)),
        "per_class": float(np.trace(pinv(total) @ per_class_between)),
        "ddof": float(np.trace(pinv(total * len(F) / (len(F) - 1)) @ between)),
        "no_inverse": float(np.trace(between)),
    }


@exercises.exercise(
    "06.1",
    "The H-score in NumPy",
    name="my_h_score",
    hints=[
        "Centre the features first: `F = features - features.mean(axis=0)`; then `cov_f = F.T @ F / len(F)`.",
        "E[f|y] for every image: compute each class's mean row, then index it with the labels, "
        "`class_means[y]` (shape (N, D)); its covariance is `G.T @ G / len(F)`.",
        "Use the pseudo-inverse, `np.linalg.pinv(cov_f)`: real features have dead units, which make cov_f singular. "
        "The answer is `np.trace(np.linalg.pinv(cov_f) @ cov_g)`.",
    ],
)
def check_h_score(answer) -> tuple[bool, str]:
    """06.1: a function (features (N, D), labels (N,)) -> the H-score of Bao et al. 2019."""
    ok, message = exercises.expect_callable(answer)
    if not ok:
        return False, message
    for name, F, y, expected in h_score_cases():
        try:
            value = exercises.call_with_timeout(answer, F.copy(), y.copy(), timeout=TIMEOUT)
        except np.linalg.LinAlgError as error:
            return False, (
                f"on '{name}' your function raised LinAlgError ({error}): constant features make cov(f) "
                "singular; use the pseudo-inverse np.linalg.pinv instead of np.linalg.inv."
            )
        except TimeoutError:
            return (
                False,
                f"on '{name}' your function took longer than {TIMEOUT:g} s; is there an endless loop?",
            )
        except Exception as error:  # the student's code may raise anything
            return (
                False,
                f"on '{name}' your function raised {type(error).__name__}: {str(error)[:200]}",
            )
        ok, message = exercises.expect_number(value)
        if not ok:
            return (
                False,
                f"on '{name}' your function returned something that is not one number: {message}",
            )
        value = float(np.asarray(value).reshape(-1)[0])
        if np.isclose(value, expected, rtol=1e-4, atol=1e-8):
            continue
        return (
            False,
            f"on '{name}' your function gives {value:.4g}; expected {expected:.4g}. {_diagnose(value, F, y)}",
        )
    return (
        True,
        "your H-score matches tltutor.metrics.h_score on 4 cases, hand-computed ones and dead features included.",
    )


def _diagnose(value: float, F: np.ndarray, y: np.ndarray) -> str:
    variants = _h_score_variants(F, y)
    reasons = {
        "uncentred": "Centre the features (subtract their mean) before computing cov(f).",
        "swapped": "The inverse goes on the total covariance cov(f), not on the between-class one: tr(cov(f)^-1 cov(E[f|y])).",
        "per_class": "cov(E[f|y]) is over *images*: every image contributes its class mean, so larger classes weigh more "
        "(index the class means with the labels).",
        "ddof": "Use the same normalisation (1/N) for both covariances; np.cov divides by N - 1 unless bias=True.",
        "no_inverse": "Multiply by the inverse of cov(f): without it the score depends on the features' scale.",
    }
    for key, reason in reasons.items():
        if np.isclose(value, variants[key], rtol=1e-4, atol=1e-8):
            return reason
    if value < 0:
        return "An H-score is never negative (a trace of a product of covariance matrices)."
    return "Check each step against the formula tr(cov(f)^-1 cov(E[f|y])), with the hints."


# --------------------------------------------------------------------------- 06.2


def shortlist_regret(scores: dict, accuracy: dict, metric: str, k: int) -> float:
    """Accuracy lost by fine-tuning only the ``k`` candidates that ``metric`` ranks highest.

    ``scores`` is ``{candidate: {metric: value}}`` (higher is better), ``accuracy`` is
    ``{candidate: fine-tuned accuracy}``; the regret is the best accuracy in the zoo minus the
    best accuracy in the shortlist (0 when the shortlist holds the best candidate).

    >>> scores = {"a": {"LogME": -0.3}, "b": {"LogME": -0.5}, "c": {"LogME": -0.9}}
    >>> round(shortlist_regret(scores, {"a": 0.70, "b": 0.80, "c": 0.60}, "LogME", 1), 3)
    0.1
    >>> shortlist_regret(scores, {"a": 0.70, "b": 0.80, "c": 0.60}, "LogME", 2)
    0.0
    """
    shortlist = sorted(scores, key=lambda name: scores[name][metric], reverse=True)[:k]
    return float(max(accuracy.values()) - max(accuracy[name] for name in shortlist))


REGRET_SCORES = {
    "backgrounds": {"LogME": -0.30, "LEEP": -1.40, "H-score": 2.2, "kNN": 0.52},
    "rotated": {"LogME": -0.28, "LEEP": -1.35, "H-score": 2.4, "kNN": 0.50},
    "clean": {"LogME": -0.45, "LEEP": -1.20, "H-score": 2.9, "kNN": 0.40},
    "digits": {"LogME": -0.60, "LEEP": -1.55, "H-score": 1.9, "kNN": 0.35},
}
REGRET_ACCURACY = {"backgrounds": 0.78, "rotated": 0.73, "clean": 0.66, "digits": 0.58}
# (metric, k, regret worked out by hand from the two tables above)
REGRET_CASES = [
    ("LEEP", 1, 0.12),  # LEEP's pick is clean: 0.78 - 0.66
    ("kNN", 1, 0.0),  # kNN picks backgrounds, the best
    ("LogME", 1, 0.05),  # LogME picks rotated: 0.78 - 0.73
    ("LogME", 2, 0.0),  # its top two hold backgrounds
    ("kNN", 2, 0.0),  # backgrounds and rotated: keep the better one
    ("H-score", 2, 0.05),  # clean and rotated: rotated is the better one
    ("H-score", 3, 0.0),
]


def _regret_variants(scores: dict, accuracy: dict, metric: str, k: int) -> dict[str, object]:
    """What the usual mistakes return, to recognise them."""
    by_score = sorted(scores, key=lambda name: scores[name][metric], reverse=True)
    best = max(accuracy.values())
    kept = max(accuracy[name] for name in by_score[:k])
    return {
        "lowest": best - max(accuracy[name] for name in by_score[::-1][:k]),
        "kept": kept,
        "negative": kept - best,
        "percent": 100 * (best - kept),
        "k_ignored": best - accuracy[by_score[0]],
        "kth_only": best - accuracy[by_score[k - 1]],
        "by_accuracy": 0.0,
    }


@exercises.exercise(
    "06.2",
    "What a shortlist costs",
    name="shortlist_regret",
    hints=[
        "Rank the candidates by the score, highest first: "
        "`sorted(scores, key=lambda name: scores[name][metric], reverse=True)`; the shortlist is the first `k`.",
        "The regret is `max(accuracy.values())` (the best of the whole zoo) minus the best accuracy "
        "among the shortlist: `max(accuracy[name] for name in shortlist)`.",
    ],
)
def check_shortlist_regret(answer) -> tuple[bool, str]:
    """06.2: a function (scores, accuracy, metric, k) -> the regret of fine-tuning the score's top k."""
    ok, message = exercises.expect_callable(answer)
    if not ok:
        return False, message
    for metric, k, expected in REGRET_CASES:
        scores = {name: dict(row) for name, row in REGRET_SCORES.items()}
        accuracy = dict(REGRET_ACCURACY)
        where = f"for {metric} with k={k}"
        try:
            value = exercises.call_with_timeout(
                answer, scores, accuracy, metric, k, timeout=TIMEOUT
            )
        except TimeoutError:
            return (
                False,
                f"{where} your function took longer than {TIMEOUT:g} s; is there an endless loop?",
            )
        except Exception as error:
            return (
                False,
                f"{where} your function raised {type(error).__name__}: {str(error)[:200]}",
            )
        if scores != REGRET_SCORES or accuracy != REGRET_ACCURACY:
            return (
                False,
                "your function changed the tables it was given; read them without modifying them.",
            )
        if isinstance(value, str) or (
            isinstance(value, (list, tuple)) and value and isinstance(value[0], str)
        ):
            return (
                False,
                f"{where} your function returned {value!r}; return the regret, a number (0.05 is 5 points).",
            )
        ok, message = exercises.expect_number(value)
        if not ok:
            return (
                False,
                f"{where} your function returned something that is not one number: {message}",
            )
        value = float(np.asarray(value).reshape(-1)[0])
        if np.isclose(value, expected, atol=1e-9):
            continue
        return (
            False,
            f"{where} your function gives {value:.4g}; expected {expected:.4g}. "
            + _explain_regret(value, metric, k),
        )
    return True, (
        "your function gives the regret of every shortlist, from a pick that misses the best candidate "
        "to a top 2 or 3 that holds it."
    )


def _explain_regret(value: float, metric: str, k: int) -> str:
    variants = _regret_variants(REGRET_SCORES, REGRET_ACCURACY, metric, k)
    reasons = {
        "lowest": "You shortlisted the candidates with the *lowest* scores; every score here is higher-is-better, "
        "even when negative (-0.28 beats -0.30).",
        "negative": "The sign is reversed: the regret is best of the zoo minus best of the shortlist, never negative.",
        "kept": "That is the accuracy of the candidate you keep; the regret is what it loses against the best of the zoo.",
        "percent": "Return a fraction of accuracy (0.05), not percentage points (5).",
        "k_ignored": "Your function keeps only the score's first pick; with k candidates fine-tuned you keep the best "
        "of all k.",
        "kth_only": "Your function looks at the k-th candidate only; keep the best of the first k.",
        "by_accuracy": "The shortlist must come from the *score*: ranking by the accuracy itself always gives 0, "
        "but the accuracies are what you do not have before fine-tuning.",
    }
    for key, reason in reasons.items():
        if np.isclose(value, variants[key], atol=1e-9):
            return reason
    return "Check each step against the hints: shortlist by the score, then best of the zoo minus best of the shortlist."


# --------------------------------------------------------------------------- quizzes (keys stay here, not in the notebook)

exercises.define_quiz(
    "06.q1",
    question=(
        "You have 40 candidate backbones and 500 labelled target images. What does transferability "
        "estimation save you?"
    ),
    options=[
        "Labelling: the scores need no target labels.",
        "Fine-tuning the model you finally choose.",
        "Fine-tuning the other candidates: one forward pass over the labelled images replaces a training "
        "run per candidate.",
        "The test set: the score is the accuracy you will get.",
    ],
    answer=2,
    explanation=(
        "Every candidate still needs one forward pass over the labelled target images, and the chosen one "
        "is still fine-tuned; what you skip is fine-tuning (and evaluating) all the others."
    ),
    why=[
        "LogME, LEEP, the H-score and kNN all use the target labels.",
        "You still fine-tune the chosen model: the score only tells you which one.",
        "",
        "A score ranks candidates; it does not predict the accuracy itself (LogME is a log-evidence, not "
        "an accuracy).",
    ],
)

PAIRS_06_M1 = {
    "LogME": "features and labels: the evidence of a Bayesian linear model on the features",
    "LEEP": "the source model's classifier: its probabilities over the source classes",
    "H-score": "features and labels: the between-class share of the feature covariance",
    "kNN accuracy": "features and labels: how often an image's nearest neighbours share its label",
}
exercises.define_match("06.m1", pairs=PAIRS_06_M1, question="Match each score to what it needs.")

exercises.define_quiz(
    "06.q2",
    question=(
        "A score ranks 6 candidate models with Kendall's τ = 0.6 against their fine-tuned accuracies. "
        "What does that mean?"
    ),
    options=[
        "It predicts each model's accuracy to within 0.6 points.",
        "Of the 15 pairs of models, 12 are ordered the same way by the score and by fine-tuning, 3 the "
        "opposite way.",
        "60% of the models are ranked at exactly the right position.",
        "The score is wrong 60% of the time.",
    ],
    answer=1,
    explanation=(
        "τ = (concordant − discordant) / pairs = (12 − 3) / 15 = 0.6. It is about the order of pairs, not "
        "about the values or exact positions."
    ),
    why=[
        "τ compares orders, not values: the score's scale is unrelated to accuracy.",
        "",
        "τ counts pairs, not positions: one model in the wrong place can shift several positions without "
        "many swapped pairs.",
        "τ = 0.6 is a good ranking: 80% of the pairs are in the right order.",
    ],
)

exercises.define_quiz(
    "06.q3",
    question=(
        "Two sources saw the same images. In A, 50 % of the labels were moved to a wrong class at random; "
        "in B, every label was replaced by the next class (T-shirt called Trouser, Trouser called "
        "Pullover, ...). Which one is the worse source for transfer?"
    ),
    options=[
        "B: all of its labels are wrong, A's only half.",
        "A: B's labels are wrong but consistent, so B learns the same features with renamed classes; "
        "A's random errors teach it distinctions that do not exist.",
        "Neither: a base's features do not depend on the labels it was trained with.",
        "Both are equally bad: any wrong label makes a source useless.",
    ],
    answer=1,
    explanation=(
        "A consistent relabelling is a permutation of the classes: the same images are grouped the same "
        "way, only the names differ, and the base learns what it would have learned with the true "
        "labels (the head's outputs are permuted). Random errors are noise the base has to memorise: "
        "with about 80 % of them (random labels) transfer turned negative on every seed in this notebook."
    ),
    why=[
        "Counting wrong labels misses that B's are all wrong in the same way: a renamed class is still "
        "one class.",
        "",
        "The random-label source of this zoo shows that the labels shape the features: fine-tuned, it "
        "fell more than 10 points below scratch on every seed.",
        "The 20 % noisy source stayed far above the random-label one on every seed in this notebook: some "
        "wrong labels cost less than many.",
    ],
)
