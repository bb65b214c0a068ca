"""Tests of tltutor.metrics: hand-computed cases, reference formulas, invariances and bad input."""

import doctest
import itertools
import warnings

import numpy as np
import pytest
import scipy.optimize
import scipy.stats

from tltutor import metrics
from tltutor.metrics import h_score, kendall_tau, knn_accuracy, leep, logme, score_sources


def test_doctests():
    result = doctest.testmod(metrics)
    assert result.attempted > 10 and result.failed == 0


def separable_and_random(seed=0, n_per_class=15, num_classes=3, dim=6):
    """Features that separate the classes perfectly, and features that ignore them."""
    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(num_classes), n_per_class)
    separable = rng.normal(0, 0.3, size=(len(y), dim)) + 5 * np.eye(dim)[y]
    random = rng.normal(size=(len(y), dim))
    return separable, random, y


# --------------------------------------------------------------------------- LogME


def direct_log_evidence(F, t, alpha, beta):
    """log N(t; 0, I / beta + F F^T / alpha): the evidence of Bayesian linear regression, w integrated out."""
    covariance = np.eye(len(F)) / beta + F @ F.T / alpha
    return scipy.stats.multivariate_normal(np.zeros(len(F)), covariance).logpdf(t)


@pytest.mark.parametrize("n, d", [(12, 3), (8, 5), (30, 2)])
def test_logme_is_the_maximised_evidence(n, d):
    """LogME = mean over classes of max_{alpha, beta} log p(t_k | F) / N, evaluated directly."""
    rng = np.random.default_rng(n + d)
    F = rng.normal(size=(n, d)) + 0.5
    y = np.arange(n) % 2
    best = []
    for label in (0, 1):
        t = (y == label).astype(float)
        result = scipy.optimize.minimize(
            lambda log_ab: -direct_log_evidence(F, t, *np.exp(log_ab)),
            x0=[0.0, 0.0],
            method="Nelder-Mead",
            options={"xatol": 1e-9, "fatol": 1e-12, "maxiter": 5000},
        )
        best.append(-result.fun / n)
    assert logme(F, y) == pytest.approx(np.mean(best), abs=1e-6)


def test_logme_fixed_point_values_match_the_formula():
    """At LogME's (alpha, beta) the closed-form evidence equals the direct Gaussian density."""
    rng = np.random.default_rng(1)
    F, t = rng.normal(size=(10, 3)), (np.arange(10) % 2).astype(float)
    U, singular, _ = np.linalg.svd(F, full_matrices=False)
    projections = U.T @ t
    for alpha, beta in [(0.5, 2.0), (3.0, 0.7)]:
        _, _, evidence = metrics._evidence_parts(
            singular**2, projections, t @ t - projections @ projections, alpha, beta, 10, 3
        )
        assert evidence == pytest.approx(direct_log_evidence(F, t, alpha, beta), abs=1e-9)


def test_logme_prefers_informative_features_and_ignores_global_scale():
    separable, random, y = separable_and_random()
    assert logme(separable, y) > logme(random, y) + 0.3
    assert logme(10 * separable, y) == pytest.approx(logme(separable, y), abs=1e-6)
    assert logme(separable, y + 3) == pytest.approx(
        logme(separable, y)
    )  # label values do not matter


def supremum_of_evidence(F, y):
    """max over (alpha, beta) of the direct evidence, by Nelder-Mead from several starts (per example)."""
    best = []
    for label in np.unique(y):
        t = (y == label).astype(float)
        values = []
        for x0 in ([0.0, 0.0], [0.0, 10.0], [2.0, 20.0]):
            with np.errstate(over="ignore"):
                result = scipy.optimize.minimize(
                    lambda log_ab: -direct_log_evidence(F, t, *np.exp(log_ab)),
                    x0=x0,
                    method="Nelder-Mead",
                    options={"xatol": 1e-10, "fatol": 1e-12, "maxiter": 20000},
                )
            values.append(-result.fun / len(F))
        best.append(max(values))
    return np.mean(best)


@pytest.mark.parametrize("n, d", [(20, 64), (10, 10), (6, 20)])
def test_logme_with_at_least_as_many_dimensions_as_images(n, d):
    """D >= N with informative features (notebook 06's real-scale shapes): the fixed point drives
    beta towards infinity; LogME is still the supremum of the evidence, not NaN (it was NaN)."""
    rng = np.random.default_rng(0)
    y = np.arange(n) % (5 if n >= 10 else 2)
    F = rng.normal(size=(n, d)) + rng.normal(size=(5, d))[y]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no RuntimeWarning either
        value = logme(F, y)
    assert value == pytest.approx(supremum_of_evidence(F, y), abs=1e-6)


def test_logme_of_the_issue_example_is_its_maximised_evidence():
    rng = np.random.default_rng(0)
    y = np.arange(20) % 5
    F = rng.normal(size=(20, 64)) + rng.normal(size=(5, 64))[y]
    assert logme(F, y) == pytest.approx(-0.053, abs=5e-4)


def test_logme_of_all_zero_features_is_the_noise_only_evidence():
    """F = 0: t ~ N(0, I / beta) with beta = N / ||t||^2, whatever alpha (it was NaN)."""
    y = np.arange(20) % 5
    expected = []
    for label in range(5):
        t = (y == label).astype(float)
        beta = len(t) / (t @ t)
        expected.append(
            (len(t) / 2 * np.log(beta) - beta / 2 * (t @ t) - len(t) / 2 * np.log(2 * np.pi))
            / len(t)
        )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert logme(np.zeros((20, 8)), y) == pytest.approx(np.mean(expected), abs=1e-12)


def test_logme_with_two_images():
    rng = np.random.default_rng(3)
    for d in (1, 2, 5):
        F = rng.normal(size=(2, d))
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            value = logme(F, [0, 1])
        assert value == pytest.approx(supremum_of_evidence(F, np.array([0, 1])), abs=1e-6), d


@pytest.mark.parametrize("scale", [1e-100, 1e-30, 1e30, 1e100])
@pytest.mark.parametrize("n, d", [(45, 6), (20, 64)])
def test_logme_ignores_extreme_global_scales(scale, n, d):
    """Features of size 1e±100 gave NaN or a wrong finite value with only a RuntimeWarning."""
    rng = np.random.default_rng(4)
    y = np.arange(n) % 3
    F = rng.normal(size=(n, d)) + 2 * rng.normal(size=(3, d))[y]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert logme(scale * F, y) == pytest.approx(logme(F, y), abs=1e-6)


# --------------------------------------------------------------------------- LEEP


def test_leep_by_hand():
    theta = np.array([[0.8, 0.2], [0.4, 0.6]])
    # P(y, z) = [[0.4, 0.1], [0.2, 0.3]]; P(z) = [0.6, 0.4]; P(y|z) = [[2/3, 1/4], [1/3, 3/4]]
    # image 0 (y=0): 0.8 * 2/3 + 0.2 * 1/4 = 7/12; image 1 (y=1): 0.4 * 1/3 + 0.6 * 3/4 = 7/12
    assert leep(theta, [0, 1]) == pytest.approx(np.log(7 / 12))


def test_leep_three_by_three_by_hand():
    theta = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [0.5, 0.5, 0.0]])
    y = [0, 1, 1, 0]
    # P(y,z) (rows y) = [[.375, .125, 0], [0, .25, .25]]; P(z) = [.375, .375, .25]
    # P(y=0|z) = [1, 1/3, 0]; P(y=1|z) = [0, 2/3, 1]
    # likelihoods: 1, 2/3, 1, 0.5 * 1 + 0.5 * 1/3 = 2/3
    expected = np.mean(np.log([1, 2 / 3, 1, 2 / 3]))
    assert leep(theta, y) == pytest.approx(expected)


def test_leep_without_a_source_classifier_is_the_label_entropy_floor():
    y = np.array([0, 0, 0, 1, 2, 2])
    frequencies = np.bincount(y) / len(y)
    assert leep(np.ones((6, 1)), y) == pytest.approx(np.mean(np.log(frequencies[y])))
    uniform = np.full((6, 4), 0.25)  # a classifier that is always unsure: the same floor
    assert leep(uniform, y) == pytest.approx(leep(np.ones((6, 1)), y))


def test_leep_perfect_source_classifier_scores_zero():
    y = np.array([0, 1, 2, 0, 1, 2])
    assert leep(np.eye(3)[y], y) == pytest.approx(0.0)
    assert leep(np.eye(3)[(y + 1) % 3], y) == pytest.approx(0.0)  # a relabelling is as good


# --------------------------------------------------------------------------- H-score


def test_h_score_by_hand():
    # one feature, classes {0, 2} and {4, 6}: cov(f) = 5, class means 1 and 5 -> cov(E[f|y]) = 4
    assert h_score([[0.0], [2.0], [4.0], [6.0]], [0, 0, 1, 1]) == pytest.approx(0.8)
    # two features, only the first separates: between-class covariance diag(4, 0), total diag(5, 1)
    F = np.array([[0.0, 1.0], [2.0, -1.0], [4.0, -1.0], [6.0, 1.0]])
    assert h_score(F, [0, 0, 1, 1]) == pytest.approx(0.8)
    # a second feature that tracks the within-class noise: cov = [[5, -1], [-1, 1]], inverse
    # [[1, 1], [1, 5]] / 4, between diag(4, 0): H = 4 / 4 = 1 (the classes become perfectly separable)
    F[:, 1] = [1.0, -1.0, 1.0, -1.0]
    assert h_score(F, [0, 0, 1, 1]) == pytest.approx(1.0)


def test_h_score_matches_the_formula_and_its_bounds():
    separable, random, y = separable_and_random()
    F = separable - separable.mean(axis=0)
    means = np.stack([F[y == c].mean(axis=0) for c in range(3)])[y]
    expected = np.trace(np.linalg.inv(np.cov(F.T, bias=True)) @ np.cov(means.T, bias=True))
    assert h_score(separable, y) == pytest.approx(expected)
    assert 0 <= h_score(random, y) < h_score(separable, y) <= 2 + 1e-9  # at most C - 1


def test_h_score_saturates_with_more_dimensions_than_images():
    rng = np.random.default_rng(0)
    y = np.arange(40) % 4
    assert h_score(rng.normal(size=(40, 64)), y) == pytest.approx(
        3.0
    )  # C - 1, whatever the features
    assert (
        h_score(rng.normal(size=(400, 8)), np.arange(400) % 4) < 0.2
    )  # N >> D: random features score low


def test_h_score_ignores_constant_features():
    separable, _, y = separable_and_random()
    padded = np.hstack([separable, np.zeros((len(y), 3))])  # dead units
    assert h_score(padded, y) == pytest.approx(h_score(separable, y))


@pytest.mark.parametrize("scale", [1e-200, 1e200])
def test_h_score_ignores_extreme_global_scales(scale):
    """1e200 raised a bare LinAlgError (F^T F overflowed); 1e-200 returned 0.0."""
    separable, _, y = separable_and_random()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert h_score(scale * separable, y) == pytest.approx(h_score(separable, y), rel=1e-9)


def test_h_score_explains_a_failed_inversion(monkeypatch):
    def fail(*args, **kwargs):
        raise np.linalg.LinAlgError("SVD did not converge")

    separable, _, y = separable_and_random()
    monkeypatch.setattr(np.linalg, "pinv", fail)
    with pytest.raises(ValueError, match="could not invert the features' covariance.*standardise"):
        h_score(separable, y)


# --------------------------------------------------------------------------- kNN


def test_knn_leave_one_out_and_folds():
    separable, random, y = separable_and_random()
    assert knn_accuracy(separable, y) == 1.0
    assert knn_accuracy(separable, y, folds=5) == 1.0
    assert knn_accuracy(random, y, k=3) < 0.7


def test_knn_excludes_the_image_itself():
    X = [[0.0], [0.0], [5.0], [5.0]]
    assert knn_accuracy(X, [0, 1, 0, 1], k=1) == 0.0  # each image's twin has the other label


def test_knn_tie_goes_to_the_nearest_neighbour():
    # for the image at 0: neighbours 1 (class 1), 2 (class 0): one vote each; class 1 is nearer
    X = [[0.0], [1.0], [2.0], [10.0], [10.5]]
    y = [0, 1, 0, 1, 1]
    assert knn_accuracy(X, y, k=2, standardize=False) == pytest.approx(2 / 5)


def test_knn_fold_assignment_is_seeded():
    _, random, y = separable_and_random()
    assert knn_accuracy(random, y, folds=3, seed=1) == knn_accuracy(random, y, folds=3, seed=1)
    # ... and the seed is used: other seeds give other folds, so other accuracies on random features
    assert len({knn_accuracy(random, y, folds=3, seed=seed) for seed in range(5)}) > 1


# --------------------------------------------------------------------------- Kendall tau


@pytest.mark.parametrize("permutation", list(itertools.permutations(range(5)))[::7])
def test_kendall_tau_of_permutations(permutation):
    inversions = sum(permutation[i] > permutation[j] for i in range(5) for j in range(i + 1, 5))
    assert kendall_tau(range(5), permutation) == pytest.approx(1 - 2 * inversions / 10)


def test_kendall_tau_matches_scipy_with_ties():
    rng = np.random.default_rng(0)
    for _ in range(5):
        a, b = rng.integers(0, 4, size=9), rng.normal(size=9)
        assert kendall_tau(a, b) == pytest.approx(scipy.stats.kendalltau(a, b).statistic)


# --------------------------------------------------------------------------- score_sources


def test_score_sources_ranks_the_better_source_first():
    separable, random, y = separable_and_random()
    theta = np.eye(3)[y] * 0.9 + 0.1 / 3
    scores = score_sources(
        {"good": separable, "bad": random}, y, source_probabilities={"good": theta}
    )
    for metric in metrics.METRICS:
        assert scores["good"][metric] > scores["bad"][metric], metric


# --------------------------------------------------------------------------- bad input

F_OK, Y_OK = np.random.default_rng(0).normal(size=(6, 2)), np.array([0, 1, 0, 1, 0, 1])
FEATURE_METRICS = [logme, h_score, knn_accuracy]


@pytest.mark.parametrize("score", FEATURE_METRICS)
@pytest.mark.parametrize(
    "features, y, error, text",
    [
        (np.where(np.eye(6, 2), np.nan, 1.0), Y_OK, ValueError, "NaN"),
        (np.zeros(6), Y_OK, ValueError, r"shape \(N, D\)"),
        (np.zeros((6, 2, 2)), Y_OK, ValueError, "flatten"),
        (F_OK, Y_OK[:5], ValueError, "6 rows .* but y has 5"),
        (F_OK, np.zeros(6, int), ValueError, "single class"),
        (F_OK, Y_OK + 0.5, ValueError, "integer"),
        (F_OK, Y_OK.astype(str), TypeError, "integer"),
        (F_OK, -Y_OK, ValueError, ">= 0"),
        (F_OK, np.eye(2)[Y_OK], ValueError, "one-hot"),
        ("features", Y_OK, TypeError, "numeric array"),
        (F_OK.astype(str), Y_OK, TypeError, "numbers"),
        (None, Y_OK, TypeError, "numeric array"),
    ],
)
def test_bad_input_is_named(score, features, y, error, text):
    with pytest.raises(error, match=text):
        score(features, y)


def test_float_labels_that_are_integers_are_fine():
    assert logme(F_OK, Y_OK.astype(float)) == pytest.approx(logme(F_OK, Y_OK))


@pytest.mark.parametrize(
    "theta, text",
    [
        (np.full((6, 2), 0.7), "summing to 1"),
        (np.array([[1.5, -0.5]] * 6), ">= 0"),
        (np.full((6, 2), np.nan), "NaN"),
        (np.full(6, 1.0), r"shape \(N, D\)"),
    ],
)
def test_leep_bad_probabilities(theta, text):
    with pytest.raises(ValueError, match=text):
        leep(theta, Y_OK)


def test_bad_options():
    with pytest.raises(ValueError, match="k=6 needs more"):
        knn_accuracy(F_OK, Y_OK, k=6)
    with pytest.raises(ValueError, match="k must be"):
        knn_accuracy(F_OK, Y_OK, k=0)
    with pytest.raises(ValueError, match="fewer than folds"):
        knn_accuracy(F_OK, Y_OK, folds=4)
    with pytest.raises(ValueError, match="tol"):
        logme(F_OK, Y_OK, tol=0)
    with pytest.raises(ValueError, match="max_iter"):
        logme(F_OK, Y_OK, max_iter=0)
    with pytest.raises(
        TypeError, match="seed"
    ):  # a wrong kind of value is a TypeError in every module
        knn_accuracy(F_OK, Y_OK, seed=1.5)
    with pytest.raises(TypeError, match="max_iter"):
        logme(F_OK, Y_OK, max_iter=2.5)


def test_kendall_tau_bad_input():
    with pytest.raises(ValueError, match="same items"):
        kendall_tau([1, 2, 3], [1, 2])
    with pytest.raises(ValueError, match="at least 2"):
        kendall_tau([1], [1])
    with pytest.raises(ValueError, match="all values"):
        kendall_tau([1, 1, 1], [1, 2, 3])
    with pytest.raises(ValueError, match="NaN"):
        kendall_tau([1, np.nan, 3], [1, 2, 3])
    with pytest.raises(TypeError, match="fixed order"):
        kendall_tau({"a": 1, "b": 2}, [1, 2])
    with pytest.raises(TypeError, match="list of numbers"):
        kendall_tau("abc", [1, 2, 3])


def test_score_sources_bad_input():
    with pytest.raises(TypeError, match="non-empty dict"):
        score_sources([F_OK], Y_OK)
    with pytest.raises(ValueError, match="without features"):
        score_sources({"a": F_OK}, Y_OK, source_probabilities={"b": np.ones((6, 1))})
    with pytest.raises(ValueError, match=r"features\['a'\]"):
        score_sources({"a": np.full((6, 2), np.inf)}, Y_OK)


def test_spread_prints_mean_std_and_every_seed():
    values = np.array([0.71, 0.74, 0.68], "float32")  # what a notebook collects over seeds
    assert metrics.spread(values) == "0.710 ± 0.024 (per seed: 0.710, 0.740, 0.680)"
    assert metrics.spread([0.5]) == "0.500 ± 0.000 (per seed: 0.500)"
    assert metrics.spread([-1.25, 3.5], "+.1f") == "+1.1 ± 2.4 (per seed: -1.2, +3.5)"


@pytest.mark.parametrize(
    "values, error, words",
    [
        ([], ValueError, "empty"),
        ([0.5, float("nan")], ValueError, "NaN"),
        ({0: 0.5, 1: 0.6}, TypeError, "dict"),
        ([[0.5, 0.6]], ValueError, "1-D"),
        (["a", "b"], TypeError, "numbers"),
    ],
)
def test_spread_explains_bad_values(values, error, words):
    with pytest.raises(error, match=words):
        metrics.spread(values)


def test_direction_needs_every_seed_on_one_side():
    assert metrics.direction([0.03, 0.05, 0.01]) == "higher on every seed"
    assert metrics.direction(np.array([-0.2, -0.1], "float32")) == "lower on every seed"
    assert metrics.direction([0.02, -0.01, 0.04]) == (
        "no clear difference at this scale (higher on 2 of 3 seeds, lower on 1)"
    )
    assert metrics.direction([0.0, 0.0, 0.1]) == (  # a tie is on neither side
        "no clear difference at this scale (higher on 1 of 3 seeds, lower on 0)"
    )
    sides = dict(higher="above scratch", lower="below scratch")
    assert metrics.direction([-3, -4], **sides) == "below scratch on every seed"
    # a margin: every seed must clear it, in points here
    assert metrics.direction([2.5, 4.0], margin=2, unit=" points") == (
        "higher by more than 2 points on every seed"
    )
    assert metrics.direction([1.5, 4.0], margin=2, unit=" points").startswith("no clear difference")


@pytest.mark.parametrize(
    "kw, error, words",
    [
        (dict(differences=[]), ValueError, "empty"),
        (dict(differences=[0.1, float("nan")]), ValueError, "NaN"),
        (dict(differences={0: 0.1}), TypeError, "dict"),
        (dict(differences=[0.1], margin=-1), ValueError, "margin"),
        (dict(differences=[0.1], margin="2"), ValueError, "margin"),
        (dict(differences=[0.1], margin=float("nan")), ValueError, "margin"),
    ],
)
def test_direction_explains_bad_values(kw, error, words):
    with pytest.raises(error, match=words):
        metrics.direction(**kw)
