"""Transferability estimation: score a source model on a target task *before* fine-tuning it.

Each score needs only one pass of the frozen source model over the labelled target images
(its features, or its source-class probabilities), then seconds of NumPy; fine-tuning every
candidate would take minutes to days. Higher is better for every score; use them to *rank*
candidate sources, and check a ranking with :func:`kendall_tau`.

- :func:`logme`: the log marginal evidence of a Bayesian linear model from the features to
  each one-hot label column, maximised over its two hyper-parameters (You et al. 2021).
- :func:`leep`: the log-likelihood of a classifier that maps the source model's class
  probabilities to target labels through their empirical joint distribution (Nguyen et al. 2020).
- :func:`h_score`: ``tr(cov(f)^-1 cov(E[f|y]))``, how much of the features' variance lies
  between the classes (Bao et al. 2019).
- :func:`knn_accuracy`: leave-one-out (or k-fold) accuracy of a k-nearest-neighbour classifier.
- :func:`score_sources`: all of them for a dictionary of candidate sources.
- :func:`spread`: one value per seed as "mean ± std (per seed: ...)", how the notebooks print
  every comparison they run over several seeds.

These estimators are statistics, not model math, so they are written in NumPy. Their matrices are
small (N images by D features): a multi-threaded BLAS spends more time waking its threads than
computing, and ``with threadpoolctl.threadpool_limits(1, user_api="blas"):`` around the scoring
made it about ten times faster on 2 CPU cores (notebook 06 does this).

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> y = np.repeat([0, 1, 2], 20)
>>> good = rng.normal(size=(60, 8)) + 3 * np.eye(8)[y]   # the class moves 3 features
>>> bad = rng.normal(size=(60, 8))                       # features that ignore the class
>>> logme(good, y) > logme(bad, y), h_score(good, y) > h_score(bad, y)
(True, True)
>>> kendall_tau([0.9, 0.5, 0.7], [0.8, 0.1, 0.6])        # same order: perfect agreement
1.0
"""

from __future__ import annotations

import numpy as np

from tltutor.validation import (
    check_features,
    check_int,
    check_labels,
    check_number,
    check_scores,
    check_seed,
)

__all__ = ["METRICS", "h_score", "kendall_tau", "knn_accuracy", "leep", "logme", "score_sources"]

METRICS: tuple[str, ...] = ("LogME", "LEEP", "H-score", "kNN")


# --------------------------------------------------------------------------- LogME


def _evidence_parts(s, projections, y_perp_sq, alpha, beta, n, d):
    """Posterior mean norm, residual and log evidence of one target column at (alpha, beta).

    With the SVD ``F = U diag(sqrt(s)) V^T``, ``projections = U^T y`` and ``y_perp_sq`` the squared
    norm of ``y`` outside the span of ``U``: everything is a sum over the r = min(N, D) singular values.
    """
    shrink = alpha + beta * s
    m_sq = np.sum(s * (beta * projections / shrink) ** 2)  # ||m||^2, m = beta A^-1 F^T y
    residual = y_perp_sq + np.sum((alpha * projections / shrink) ** 2)  # ||F m - y||^2
    log_det = np.sum(np.log(shrink)) + (d - len(s)) * np.log(alpha)  # log |alpha I + beta F^T F|
    evidence = (
        d / 2 * np.log(alpha)
        + n / 2 * np.log(beta)
        - log_det / 2
        - beta / 2 * residual
        - alpha / 2 * m_sq
        - n / 2 * np.log(2 * np.pi)
    )
    return m_sq, residual, evidence


def logme(features, y, *, max_iter: int = 100, tol: float = 1e-5) -> float:
    """LogME (You et al. 2021): the average log evidence per example of a linear model on ``features``.

    For each class ``k``, the one-hot column ``t = (y == k)`` is modelled as ``t = F w + noise`` with
    prior ``w ~ N(0, I / alpha)`` and noise precision ``beta``. The evidence
    ``log p(t | F, alpha, beta)`` (``w`` integrated out) is maximised by the paper's fixed-point
    iteration ``gamma = sum(beta s / (alpha + beta s))``, ``alpha = gamma / ||m||^2``,
    ``beta = (N - gamma) / ||F m - t||^2`` (``s``: eigenvalues of ``F^T F``, ``m``: the posterior
    mean), run until ``alpha / beta`` changes by less than ``tol`` (relative). LogME is the mean over
    classes of the maximised evidence, divided by N. Features are used as they are (no centring),
    as in the paper; a global rescaling of the features does not change the score. Higher is better;
    the values are comparable between sources on the *same* target data.

    >>> rng = np.random.default_rng(0)
    >>> y = np.repeat([0, 1], 30)
    >>> informative = rng.normal(size=(60, 4)) + 4 * y[:, None]
    >>> noise = rng.normal(size=(60, 4))
    >>> round(logme(informative, y), 3), round(logme(noise, y), 3)
    (-0.314, -1.072)
    """
    F = check_features(features)
    y = check_labels(y, len(F), min_classes=2)
    max_iter = check_int(max_iter, "max_iter", minimum=1)
    tol = check_number(tol, "tol", low=0, low_open=True, example="1e-5")
    n, d = F.shape
    F = _unit_scale(F)  # the score ignores a global scale; features of size 1e±100 would overflow
    U, singular, _ = np.linalg.svd(F, full_matrices=False)
    s = singular**2
    evidences = []
    for label in np.unique(y):
        t = (y == label).astype(np.float64)
        projections = U.T @ t
        y_perp_sq = max(float(t @ t - projections @ projections), 0.0)
        evidences.append(
            _max_evidence(s, projections, y_perp_sq, n, d, max_iter=max_iter, tol=tol) / n
        )
    return float(np.mean(evidences))


def _unit_scale(F: np.ndarray) -> np.ndarray:
    """``F`` times the power of two that brings its largest absolute value into [0.5, 1).

    A power of two changes no digit of the values (all-zero features stay as they are).
    """
    _, exponent = np.frexp(np.abs(F).max())
    return np.ldexp(F, -int(exponent))


def _max_evidence(s, projections, y_perp_sq, n, d, *, max_iter: int, tol: float) -> float:
    """The log evidence of one target column at the fixed point of (alpha, beta).

    Stops when ``alpha / beta`` or the evidence per example changes by less than ``tol``. When the
    features span every target column (D >= N), the evidence only approaches its supremum as
    ``beta`` grows without bound; the iteration then stops once the evidence stops changing, or
    when a step would leave the finite numbers, keeping the last finite (alpha, beta).
    """
    alpha, beta = 1.0, 1.0
    m_sq, residual, evidence = _evidence_parts(s, projections, y_perp_sq, alpha, beta, n, d)
    for _ in range(max_iter):
        gamma = np.sum(beta * s / (alpha + beta * s))
        # with all-zero features (m = 0, gamma = 0) the evidence does not depend on alpha: keep it
        new_alpha = gamma / m_sq if m_sq > 0 and gamma > 0 else alpha
        new_beta = (n - gamma) / residual if residual > 0 else np.inf
        if not (
            np.isfinite(new_alpha) and np.isfinite(new_beta) and new_alpha > 0 and new_beta > 0
        ):
            break
        with np.errstate(all="ignore"):
            new_parts = _evidence_parts(s, projections, y_perp_sq, new_alpha, new_beta, n, d)
        if not np.all(np.isfinite(new_parts)):
            break
        ratio_change = abs(new_alpha / new_beta - alpha / beta) <= tol * alpha / beta
        evidence_change = (
            abs(new_parts[2] - evidence) <= tol**2 * n
        )  # per example, stricter than the ratio
        alpha, beta = new_alpha, new_beta
        m_sq, residual, evidence = new_parts
        if ratio_change or evidence_change:
            break
    return float(evidence)


# --------------------------------------------------------------------------- LEEP


def leep(source_probabilities, y) -> float:
    """LEEP (Nguyen et al. 2020): how well the source model's *class probabilities* predict target labels.

    ``source_probabilities`` (N, Z) is the source model's softmax over its Z source classes on the N
    labelled target images. From them, the empirical joint ``P(y, z) = mean_i theta_i[z] [y_i = y]``
    gives ``P(y | z)``, and LEEP is the average log-likelihood of the "expected empirical predictor"
    ``p(y_i | x_i) = sum_z P(y_i | z) theta_i[z]``. It is at most 0 (higher is better).

    LEEP needs a source *classifier*, not just features. A model without one (random
    initialisation) knows no source class: pass a single column of ones, ``np.ones((N, 1))``, and
    LEEP becomes the log-likelihood of always predicting the label frequencies,
    ``mean_i log P(y_i)``: ``log(1 / C)`` for C balanced classes, the floor of "knows nothing".

    Hand-computed: two images, two source classes, two target classes.

    >>> theta = np.array([[0.8, 0.2], [0.4, 0.6]])
    >>> y = np.array([0, 1])
    >>> # P(y,z) = [[0.4, 0.1], [0.2, 0.3]], P(z) = [0.6, 0.4], P(y=0|z) = [2/3, 1/4]
    >>> # image 0: 0.8 * 2/3 + 0.2 * 1/4 = 0.5833; image 1: 0.4 * 1/3 + 0.6 * 3/4 = 0.5833
    >>> round(leep(theta, y), 4), round(float(np.log(7 / 12)), 4)
    (-0.539, -0.539)
    >>> round(leep(np.ones((4, 1)), [0, 1, 0, 1]), 4)     # no source classifier: log(1/2)
    -0.6931
    """
    theta = check_features(source_probabilities, "source_probabilities")
    y = check_labels(y, len(theta), min_classes=2)
    if theta.min() < 0 or not np.allclose(theta.sum(axis=1), 1.0, atol=1e-3):
        raise ValueError(
            "source_probabilities must be probabilities: each row >= 0 and summing to 1 (a softmax over the "
            "source classes); got rows summing to "
            f"{theta.sum(axis=1).min():.3g}..{theta.sum(axis=1).max():.3g} — apply keras.ops.softmax to logits"
        )
    theta = theta / theta.sum(axis=1, keepdims=True)
    one_hot = np.eye(y.max() + 1)[y]  # (N, C)
    joint = one_hot.T @ theta / len(y)  # P(y, z): (C, Z)
    marginal = joint.sum(axis=0)  # P(z)
    conditional = np.divide(
        joint, marginal, out=np.zeros_like(joint), where=marginal > 0
    )  # P(y | z)
    likelihood = np.sum(theta * conditional[y], axis=1)  # sum_z theta_i[z] P(y_i | z)
    return float(np.mean(np.log(np.maximum(likelihood, 1e-300))))


# --------------------------------------------------------------------------- H-score


def h_score(features, y) -> float:
    """H-score (Bao et al. 2019): ``tr(cov(f)^-1 cov(E[f | y]))``, the class-explained share of the features.

    ``cov(f)`` is the covariance of the features over all N images; ``cov(E[f | y])`` the covariance
    of each image's *class mean* (the between-class covariance). Both use 1/N. The inverse is the
    pseudo-inverse (directions in which the features do not vary, such as dead ReLU units, are
    ignored). The score lies between 0 (class means all equal) and ``min(D, C - 1)``; higher is
    better. It needs many more images than feature dimensions: even random features score about
    ``(C - 1) D / N``, and with ``D >= N - 1`` every labelling is separable in the whitened space, so
    every model gets the maximum ``C - 1``. Compare sources on the same images, with ``N >> D``.

    Hand-computed: one feature, classes {0, 2} and {4, 6}. ``cov(f) = mean((f - 3)^2) = 5``;
    the class means are 1 and 5, so ``cov(E[f|y]) = mean([4, 4, 4, 4]) = 4`` and H = 4/5.

    >>> h_score([[0.0], [2.0], [4.0], [6.0]], [0, 0, 1, 1])
    0.8
    """
    F = check_features(features)
    y = check_labels(y, len(F), min_classes=2)
    F = _unit_scale(
        F - F.mean(axis=0)
    )  # the score ignores a global scale; F^T F of 1e200 would overflow
    covariance = F.T @ F / len(F)
    labels, index = np.unique(y, return_inverse=True)
    class_means = np.stack([F[index == i].mean(axis=0) for i in range(len(labels))])
    G = class_means[index]  # E[f | y] for every image
    between = G.T @ G / len(F)
    try:
        inverse = np.linalg.pinv(covariance, rcond=1e-10, hermitian=True)
    except np.linalg.LinAlgError as error:
        raise ValueError(
            f"h_score could not invert the features' covariance ({error}); check the features for extreme "
            "or degenerate values, e.g. standardise them with (F - F.mean(0)) / F.std(0)"
        ) from None
    return float(np.trace(inverse @ between))


# --------------------------------------------------------------------------- kNN


def knn_accuracy(
    features, y, *, k: int = 5, folds: int | None = None, standardize: bool = True, seed: int = 0
) -> float:
    """Accuracy of a k-nearest-neighbour classifier on ``features``, leave-one-out or k-fold.

    ``folds=None`` is leave-one-out: each image is classified by the majority label of its ``k``
    nearest *other* images (Euclidean distance). ``folds=F`` splits the images into F stratified
    folds (shuffled with ``seed``) and classifies each fold from the others. Ties between classes
    go to the class of the nearest neighbour among the tied ones. ``standardize`` z-scores each
    feature first (with the statistics of all N images), so that no feature dominates by scale.

    >>> X = [[0.0], [0.1], [0.2], [5.0], [5.1], [5.2]]
    >>> knn_accuracy(X, [0, 0, 0, 1, 1, 1], k=1)
    1.0
    >>> knn_accuracy(X, [0, 1, 0, 1, 0, 1], k=1)       # labels that ignore the features
    0.0
    """
    F = check_features(features)
    y = check_labels(y, len(F), min_classes=2)
    k = check_int(k, "k", minimum=1)
    if k >= len(F):
        raise ValueError(f"k={k} needs more than k images; got {len(F)} — lower k")
    seed = check_seed(seed)
    if standardize:
        spread = F.std(axis=0)
        F = (F - F.mean(axis=0)) / np.where(spread > 0, spread, 1.0)
    fold_of = np.arange(len(F))  # leave-one-out: every image is its own fold
    if folds is not None:
        folds = check_int(folds, "folds", minimum=2)
        fold_of = _stratified_folds(y, folds, seed)
    squared = np.sum(F**2, axis=1)
    distances = squared[:, None] + squared[None, :] - 2 * F @ F.T
    distances[fold_of[:, None] == fold_of[None, :]] = (
        np.inf
    )  # never a neighbour from one's own fold
    if np.isinf(np.sort(distances, axis=1)[:, k - 1]).any():
        raise ValueError(
            f"with folds={folds} some images have fewer than k={k} neighbours outside their fold; lower k or folds"
        )
    nearest = np.argsort(distances, axis=1, kind="stable")[:, :k]  # (N, k), nearest first
    votes = np.zeros((len(F), y.max() + 1))
    for rank in range(
        k
    ):  # 1 vote each, plus 2^-(rank+1) (< 1 in total): a tie goes to the nearer neighbour
        np.add.at(votes, (np.arange(len(F)), y[nearest[:, rank]]), 1.0 + 0.5 ** (rank + 1))
    return float(np.mean(votes.argmax(axis=1) == y))


def _stratified_folds(y: np.ndarray, folds: int, seed: int) -> np.ndarray:
    """The fold (0..folds-1) of each example; every class is dealt round-robin after a shuffle."""
    rng = np.random.default_rng(seed)
    fold_of = np.empty(len(y), dtype=np.int64)
    for label in np.unique(y):
        members = rng.permutation(np.flatnonzero(y == label))
        if len(members) < folds:
            raise ValueError(
                f"class {label} has {len(members)} examples, fewer than folds={folds}; lower folds"
            )
        fold_of[members] = np.arange(len(members)) % folds
    return fold_of


# --------------------------------------------------------------------------- ranking


def kendall_tau(a, b) -> float:
    """Kendall's rank correlation tau-b between two score lists: +1 same order, -1 reversed.

    Counts pairs ``(i, j)`` ordered the same way by ``a`` and ``b`` (concordant) or opposite ways
    (discordant): ``tau = (concordant - discordant) / sqrt(pairs not tied in a * pairs not tied in b)``,
    the tau-b of ``scipy.stats.kendalltau``. With 6 sources (15 pairs), tau = 0.6 means 3 pairs in
    the wrong order out of 15.

    >>> kendall_tau([1, 2, 3, 4], [10, 20, 30, 40]), kendall_tau([1, 2, 3, 4], [4, 3, 2, 1])
    (1.0, -1.0)
    >>> round(kendall_tau([1, 2, 3, 4], [1, 2, 4, 3]), 4)     # one swapped pair of 6: (5 - 1) / 6
    0.6667
    """
    a, b = (check_scores(v, name) for v, name in ((a, "a"), (b, "b")))
    if len(a) != len(b):
        raise ValueError(f"a and b must score the same items; got {len(a)} and {len(b)} values")
    if len(a) < 2:
        raise ValueError(f"a rank correlation needs at least 2 items; got {len(a)}")
    i, j = np.triu_indices(len(a), k=1)
    sign_a, sign_b = np.sign(a[i] - a[j]), np.sign(b[i] - b[j])
    untied_a, untied_b = np.count_nonzero(sign_a), np.count_nonzero(sign_b)
    if untied_a == 0 or untied_b == 0:
        raise ValueError("tau is undefined when all values of a (or of b) are equal")
    return float(np.sum(sign_a * sign_b) / np.sqrt(untied_a * untied_b))


def spread(values, fmt: str = ".3f") -> str:
    """One value per seed as ``"mean ± std (per seed: a, b, c)"``, each number formatted with ``fmt``.

    The notebooks print every multi-seed result this way, so that a reader sees the mean, how
    much the seeds disagree and each seed's own value (a difference whose sign changes with the
    seed is noise at this scale). Use a signed format such as ``"+.1f"`` for differences.

    >>> spread([0.71, 0.74, 0.68])
    '0.710 ± 0.024 (per seed: 0.710, 0.740, 0.680)'
    >>> spread([2.5, -1.0, 0.5], "+.1f")
    '+0.7 ± 1.4 (per seed: +2.5, -1.0, +0.5)'
    """
    values = check_scores(values, "values")
    if not len(values):
        raise ValueError("values is empty: pass one number per seed, e.g. [0.71, 0.74, 0.68]")
    each = ", ".join(f"{v:{fmt}}" for v in values)
    return f"{values.mean():{fmt}} ± {values.std():{fmt.lstrip('+')}} (per seed: {each})"


def direction(
    differences,
    *,
    margin: float = 0.0,
    unit: str = "",
    higher: str = "higher",
    lower: str = "lower",
) -> str:
    """What one difference per seed shows: the same side on every seed, or no clear difference.

    A lesson states a direction only when every seed agrees; a mean alone can hide a sign that
    changes with the seed. ``margin`` asks for more than a sign (``unit`` names its unit), and
    ``higher`` / ``lower`` name the two sides, e.g. ``"above scratch"``.

    >>> direction([0.03, 0.05, 0.01])
    'higher on every seed'
    >>> direction([-4.0, -2.5, -6.0], margin=2, unit=" points", lower="below scratch")
    'below scratch by more than 2 points on every seed'
    >>> direction([0.02, -0.01, 0.04])
    'no clear difference at this scale (higher on 2 of 3 seeds, lower on 1)'
    """
    differences = check_scores(differences, "differences")
    if not len(differences):
        raise ValueError(
            "differences is empty: pass one difference per seed, e.g. [0.03, -0.01, 0.02]"
        )
    if (
        isinstance(margin, bool)
        or not isinstance(margin, (int, float, np.number))
        or not margin >= 0
    ):
        raise ValueError(f"margin must be a number >= 0; got {margin!r}")
    by = f" by more than {margin:g}{unit}" if margin else ""
    if (differences > margin).all():
        return f"{higher}{by} on every seed"
    if (differences < -margin).all():
        return f"{lower}{by} on every seed"
    above, below = int((differences > 0).sum()), int((differences < 0).sum())
    return (
        f"no clear difference at this scale ({higher} on {above} of {len(differences)} seeds, "
        f"{lower} on {below})"
    )


def score_sources(
    features: dict, y, *, source_probabilities: dict | None = None, k: int = 5
) -> dict:
    """Every transferability score of every candidate source: ``{source: {metric: score}}``.

    ``features`` maps each source name to its features (N, D) of the same N labelled target images
    ``y``; ``source_probabilities`` (optional) maps source names to their source-class probabilities
    (N, Z) for :func:`leep` — a source missing there gets LEEP's no-classifier floor (one column of
    ones). Metrics are those of :data:`METRICS`: LogME, LEEP, H-score and kNN (leave-one-out, ``k``).

    >>> rng = np.random.default_rng(0)
    >>> y = np.repeat([0, 1], 10)
    >>> scores = score_sources({"good": rng.normal(size=(20, 3)) + 3 * y[:, None], "bad": rng.normal(size=(20, 3))}, y)
    >>> sorted(scores["good"]), scores["good"]["kNN"], scores["bad"]["LEEP"] == scores["good"]["LEEP"]
    (['H-score', 'LEEP', 'LogME', 'kNN'], 1.0, True)
    """
    if not isinstance(features, dict) or not features:
        raise TypeError("features must be a non-empty dict {source name: features (N, D)}")
    source_probabilities = {} if source_probabilities is None else source_probabilities
    if not isinstance(source_probabilities, dict):
        raise TypeError(
            "source_probabilities must be a dict {source name: probabilities (N, Z)} or None"
        )
    unknown = set(source_probabilities) - set(features)
    if unknown:
        raise ValueError(
            f"source_probabilities names sources without features: {sorted(map(str, unknown))}"
        )
    scores = {}
    for name, F in features.items():
        F = check_features(F, f"features[{name!r}]")
        theta = source_probabilities.get(name, np.ones((len(F), 1)))
        scores[name] = {
            "LogME": logme(F, y),
            "LEEP": leep(theta, y),
            "H-score": h_score(F, y),
            "kNN": knn_accuracy(F, y, k=k),
        }
    return scores
