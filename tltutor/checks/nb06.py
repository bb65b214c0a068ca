"""Checkers for notebook 06 (choosing a source model): importing this module registers them.

>>> from tltutor import exercises
>>> from tltutor.checks import nb06
>>> exercises.check("06.2", lambda scores, metric: min(scores, key=lambda s: scores[s][metric]), widget=False)
[ex 06.2] not yet: for LogME your function picked 'digits', the source with the *lowest* score; every score here is higher-is-better, even when negative (-0.4 beats -0.9). Use max.
False
"""

from __future__ import annotations

import functools
import numbers

import numpy as np

from tltutor import exercises

__all__ = ["check_h_score", "check_pick_source", "h_score_cases", "pick_source_cases"]

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
        ("one feature, classes {0, 2} and {4, 6}", np.array([[0.0], [2.0], [4.0], [6.0]]), np.array([0, 0, 1, 1])),
        ("two correlated features", np.array([[0.0, 1.0], [2.0, -1.0], [4.0, 1.0], [6.0, -1.0]]), np.array([0, 0, 1, 1])),
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
            return False, f"on '{name}' your function took longer than {TIMEOUT:g} s; is there an endless loop?"
        except Exception as error:  # the student's code may raise anything
            return False, f"on '{name}' your function raised {type(error).__name__}: {str(error)[:200]}"
        ok, message = exercises.expect_number(value)
        if not ok:
            return False, f"on '{name}' your function returned something that is not one number: {message}"
        value = float(np.asarray(value).reshape(-1)[0])
        if np.isclose(value, expected, rtol=1e-4, atol=1e-8):
            continue
        return False, f"on '{name}' your function gives {value:.4g}; expected {expected:.4g}. {_diagnose(value, F, y)}"
    return True, "your H-score matches tltutor.metrics.h_score on 4 cases, hand-computed ones and dead features included."


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


def pick_source_cases() -> list[tuple[dict, str, str]]:
    """(scores, metric, expected source) cases for ``pick_source``; scores look like score_sources' output.

    >>> pick_source_cases()[0][1:]
    ('LogME', 'backgrounds')
    """
    scores = {
        "backgrounds": {"LogME": -0.4, "LEEP": -1.2, "H-score": 2.5, "kNN": 0.55},
        "clean": {"LogME": -0.6, "LEEP": -1.4, "H-score": 3.1, "kNN": 0.40},
        "digits": {"LogME": -0.9, "LEEP": -1.1, "H-score": 1.9, "kNN": 0.35},
    }
    return [(scores, "LogME", "backgrounds"), (scores, "H-score", "clean"), (scores, "LEEP", "digits"), (scores, "kNN", "backgrounds")]


@exercises.exercise(
    "06.2",
    "Pick the source from the scores",
    name="pick_source",
    hints=[
        "`scores` maps each source name to a dict of its scores: scores['clean']['LogME'] is one number.",
        "`max(scores, key=lambda source: scores[source][metric])` returns the *name* with the highest score.",
    ],
)
def check_pick_source(answer) -> tuple[bool, str]:
    """06.2: a function (scores {source: {metric: value}}, metric) -> the name of the best-scored source."""
    ok, message = exercises.expect_callable(answer)
    if not ok:
        return False, message
    for scores, metric, expected in pick_source_cases():
        copy = {name: dict(row) for name, row in scores.items()}
        try:
            picked = exercises.call_with_timeout(answer, copy, metric, timeout=TIMEOUT)
        except TimeoutError:
            return False, f"for {metric} your function took longer than {TIMEOUT:g} s; is there an endless loop?"
        except Exception as error:
            return False, f"for {metric} your function raised {type(error).__name__}: {str(error)[:200]}"
        if copy != scores:
            return False, "your function changed the scores it was given; read them without modifying them."
        if isinstance(picked, str) and picked == expected:
            continue
        return False, f"for {metric} {_explain_pick(picked, scores, metric, expected)}"
    return True, "your function returns the name of the source with the highest score, for every metric."


def _explain_pick(picked, scores: dict, metric: str, expected: str) -> str:
    names = list(scores)
    values = [scores[name][metric] for name in names]
    if isinstance(picked, str) and picked in scores:
        if picked == names[int(np.argmin(values))]:
            return (
                f"your function picked {picked!r}, the source with the *lowest* score; every score here is "
                "higher-is-better, even when negative (-0.4 beats -0.9). Use max."
            )
        return f"your function picked {picked!r}, but {expected!r} has the highest {metric}."
    if isinstance(picked, numbers.Real) and not isinstance(picked, bool):
        if any(picked == v for v in values):
            return f"your function returned a score ({picked}); return the source's *name*, e.g. {expected!r}."
        if picked == int(picked) and 0 <= picked < len(names):
            return f"your function returned the position {int(picked)}; return the source's *name* (a key of scores)."
    if isinstance(picked, tuple) and expected in picked:
        return f"your function returned a tuple; return only the name, e.g. {expected!r}."
    if isinstance(picked, dict):
        return "your function returned a dict of scores; return the *name* of the best source (a key of scores)."
    text = repr(picked)
    return f"your function returned {text[:60] + ('...' if len(text) > 60 else '')}; expected the name {expected!r}."
