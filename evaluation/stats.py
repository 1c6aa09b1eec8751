"""Statistics of noise preference: the best test noise level, its uncertainty, its significance.

The bootstrap resamples *episodes*, with the same episode indices for every level: a sweep's
episodes are paired across levels by common random numbers, so a resample keeps each episode's
results at all levels together, and the level-to-level differences keep their small paired
variance.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping

import numpy as np

from evaluation.sweep_result import (
    SweepResult,
    best_level_index,
    check_confidence,
    check_seed,
    format_rows,
)
from noise_envs._checks import check_positive_int

__all__ = ["Preference", "bootstrap_ci", "preference", "preference_table"]

_MAX_RESAMPLED = 1 << 22
"""Resampled values held at once by :func:`bootstrap_ci` (32 MiB of float64)."""


@dataclasses.dataclass(frozen=True, kw_only=True)
class Preference:
    """Which test noise level a network prefers, and how sure we are.

    ``ratio`` says how many times worse zero noise is than the best level: for a lower-is-better
    metric ``metric_at_zero / metric_at_best``, for a higher-is-better one
    ``metric_at_best / metric_at_zero``; it is >= 1, equals 1 when zero noise is best, and is
    meaningful for positive metrics (``inf`` if the denominator is 0).
    """

    metric: str
    """Name of the metric compared."""
    higher_is_better: bool
    """Direction of the metric."""
    sigma_star: float
    """The test noise level with the best mean."""
    sigma_star_ci: tuple[float, float]
    """Percentile bootstrap interval of sigma* (episodes resampled, paired across levels).

    Both ends are levels of the sweep."""
    metric_at_zero: float
    """Mean of the metric at test noise 0."""
    metric_at_best: float
    """Mean of the metric at sigma*."""
    ratio: float
    """How many times worse zero noise is than sigma* (see the class docstring)."""
    p_zero: float
    """Fraction of bootstrap resamples whose best level is 0."""
    significant: bool
    """Whether sigma* > 0 is significant: ``p_zero < 1 - confidence``."""
    confidence: float
    """Confidence level of the interval and of the test."""


def bootstrap_ci(
    values: np.ndarray,
    statistic: Callable[..., np.ndarray] = np.mean,
    *,
    confidence: float = 0.95,
    num_resamples: int = 1000,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile bootstrap confidence interval of ``statistic(values)``.

    ``statistic`` is called on blocks of resamples stacked as ``[resamples, n]`` with ``axis=-1``
    (numpy reductions accept that); one that takes no ``axis`` is called once per resample.

    Args:
        values: the sample, ``[n]``, finite.
        statistic: the estimator, e.g. ``np.mean`` or ``np.median``.
        confidence: coverage of the interval, in (0, 1).
        num_resamples: number of bootstrap resamples.
        seed: seed of the resampling's own ``numpy.random.Generator``.

    Returns:
        ``(low, high)``.

    Example:
        >>> low, high = bootstrap_ci(np.arange(100.0), seed=0)
        >>> bool(low < 49.5 < high)
        True
    """
    values = _check_sample(values)
    _check_bootstrap_options(confidence, num_resamples, seed)
    rng = np.random.default_rng(seed)
    block = max(1, _MAX_RESAMPLED // values.size)
    stats = np.concatenate(
        [
            _apply(statistic, values[rng.integers(0, values.size, size=(size, values.size))])
            for size in _split(num_resamples, block)
        ]
    )
    low, high = np.quantile(stats, [(1 - confidence) / 2, (1 + confidence) / 2])
    return float(low), float(high)


def preference(
    result: SweepResult,
    metric: str | None = None,
    *,
    confidence: float = 0.95,
    num_resamples: int = 1000,
    seed: int = 0,
) -> Preference:
    """The preferred test noise level sigma* of a sweep, with a paired bootstrap over episodes.

    Each resample draws ``E`` episode indices with replacement, the same for every level (the
    episodes are paired by common random numbers), recomputes every level's mean and takes the
    best level (the lowest on ties). The interval of sigma* is the percentile interval of these
    resampled sigma*, and ``p_zero`` the fraction of them that are 0.

    Args:
        result: a sweep whose levels include 0.
        metric: the metric to compare (the sweep's primary one by default).
        confidence: coverage of the interval; sigma* > 0 is significant when
            ``p_zero < 1 - confidence``.
        num_resamples: number of bootstrap resamples.
        seed: seed of the resampling's own ``numpy.random.Generator``.

    Raises:
        ValueError: if 0 is not among the levels, the metric is unknown or has non-finite values.
    """
    _check_bootstrap_options(confidence, num_resamples, seed)
    name = result.resolve_metric(metric)
    values = result.values(name)
    if not np.isfinite(values).all():
        raise ValueError(f"metric {name!r} has NaN or infinite values; sigma* is undefined")
    zero = np.flatnonzero(result.levels == 0)
    if zero.size == 0:
        raise ValueError(
            f"the sweep's levels {result.levels.tolist()} do not include 0: sweep with test noise "
            "0 among the levels to compare sigma* against zero noise"
        )
    higher = result.higher_is_better(name)
    means = values.mean(axis=1)
    best = best_level_index(means, higher)
    resampled_best = best_level_index(_resampled_means(values, num_resamples, seed), higher)
    sigma_stars = result.levels[resampled_best]
    # "inverted_cdf" keeps both ends on the sweep's levels instead of interpolating between them
    tails = [(1 - confidence) / 2, (1 + confidence) / 2]
    low, high = np.quantile(sigma_stars, tails, method="inverted_cdf")
    at_zero, at_best = float(means[zero[0]]), float(means[best])
    p_zero = float(np.mean(sigma_stars == 0))
    return Preference(
        metric=name,
        higher_is_better=higher,
        sigma_star=float(result.levels[best]),
        sigma_star_ci=(float(low), float(high)),
        metric_at_zero=at_zero,
        metric_at_best=at_best,
        ratio=_ratio(at_best, at_zero) if higher else _ratio(at_zero, at_best),
        p_zero=p_zero,
        significant=p_zero < 1 - confidence,
        confidence=confidence,
    )


def preference_table(
    prefs: Mapping[str, Preference],
    train_sigma: Mapping[str, float] | None = None,
) -> str:
    """A fixed-width text table of preferences, one row per label.

    Columns: label, training sigma (blank if unknown), sigma*, its interval, the metric at 0 and
    at sigma*, the ratio (how many times worse zero noise is) and whether sigma* > 0 is
    significant.
    """
    if not prefs:
        raise ValueError("`prefs` must hold at least one Preference")
    names = {pref.metric for pref in prefs.values()}
    metric = names.pop() if len(names) == 1 else "metric"
    train_sigma = train_sigma or {}
    rows = [
        ["label", "train sigma", "sigma*", "CI", f"{metric}@0", f"{metric}@sigma*", "ratio", "sig."]
    ]
    for label, pref in prefs.items():
        train = train_sigma.get(label)
        low, high = pref.sigma_star_ci
        rows.append(
            [
                str(label),
                "" if train is None else f"{train:g}",
                f"{pref.sigma_star:g}",
                f"[{low:g}, {high:g}]",
                f"{pref.metric_at_zero:.4g}",
                f"{pref.metric_at_best:.4g}",
                f"{pref.ratio:.3g}",
                "yes" if pref.significant else "no",
            ]
        )
    return format_rows(rows)


def _apply(statistic: Callable[..., np.ndarray], resampled: np.ndarray) -> np.ndarray:
    """``statistic`` of each row of ``resampled``, vectorised through ``axis=-1`` if it takes it."""
    try:
        return np.asarray(statistic(resampled, axis=-1), dtype=np.float64).reshape(-1)
    except TypeError:
        return np.array([statistic(row) for row in resampled], dtype=np.float64)


def _split(total: int, block: int) -> list[int]:
    """``total`` as blocks of at most ``block``."""
    full, rest = divmod(total, block)
    return [block] * full + ([rest] if rest else [])


def _resampled_means(values: np.ndarray, num_resamples: int, seed: int) -> np.ndarray:
    """Level means ``[num_resamples, L]`` of paired episode resamples of ``values [L, E]``.

    Each resample is stored as counts of how often each episode was drawn, so the means are one
    matrix product rather than a gather of ``[L, R, E]``.
    """
    episodes = values.shape[1]
    rng = np.random.default_rng(seed)
    blocks = []
    for size in _split(num_resamples, max(1, _MAX_RESAMPLED // episodes)):
        draws = rng.integers(0, episodes, size=(size, episodes))
        flat = (draws + episodes * np.arange(size)[:, None]).ravel()
        counts = np.bincount(flat, minlength=size * episodes).reshape(size, episodes)
        blocks.append(counts @ values.T / episodes)
    return np.concatenate(blocks)


def _ratio(worse: float, better: float) -> float:
    """``worse / better``, with 1 for equal values and inf for a zero denominator."""
    if worse == better:
        return 1.0
    return worse / better if better != 0 else math.inf


def _check_sample(values: np.ndarray) -> np.ndarray:
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != 1 or array.size == 0:
        raise ValueError(f"`values` must be a non-empty 1-D array, got shape {array.shape}")
    if not np.isfinite(array).all():
        raise ValueError("`values` must be finite, got NaN or infinite entries")
    return array


def _check_bootstrap_options(confidence: float, num_resamples: int, seed: int) -> None:
    check_confidence(confidence)
    check_positive_int("num_resamples", num_resamples)
    check_seed(seed)
