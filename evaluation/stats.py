"""Statistics of noise preference: the best test noise level, how much better it is, how sure.

The bootstrap resamples *episodes*, with the same episode indices for every level: a sweep's
episodes are paired across levels by common random numbers, so a resample keeps each episode's
results at all levels together, and the level-to-level differences keep their small paired
variance. sigma* is chosen again in every resample, so the intervals of the effect size carry the
uncertainty of which level is best.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping

import numpy as np
from numpy.typing import ArrayLike

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

    The effect size is ``difference = metric(0) - metric(sigma*)`` (positive for a lower-is-better
    metric, negative for a higher-is-better one, 0 when zero noise is best) and ``ratio``, how many
    times worse zero noise is than the best level: for a lower-is-better metric
    ``metric(0) / metric(sigma*)``, for a higher-is-better one ``metric(sigma*) / metric(0)``; it
    is >= 1, equals 1 when zero noise is best, and is meaningful for positive metrics (``inf`` if
    the denominator is 0). Their intervals are paired percentile bootstrap intervals with sigma*
    chosen again in each resample; since zero noise is one of the candidates, a resample's
    difference is never on the "zero is better" side, and the interval excludes 0 exactly when
    fewer than ``(1 - confidence) / 2`` of the resamples pick zero noise (ties included).
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
    difference: float
    """``metric_at_zero - metric_at_best``: how much better sigma* is, in the metric's units."""
    difference_ci: tuple[float, float]
    """Paired bootstrap interval of ``difference`` (sigma* re-selected in each resample)."""
    ratio: float
    """How many times worse zero noise is than sigma* (see the class docstring)."""
    ratio_ci: tuple[float, float]
    """Paired bootstrap interval of ``ratio`` (sigma* re-selected in each resample)."""
    p_zero: float
    """Fraction of bootstrap resamples whose best level is 0."""
    significant: bool
    """Whether sigma* beats zero noise: ``difference_ci`` excludes 0 on the side where sigma* is
    better (equivalently, up to the rounding of the percentile's rank,
    ``p_zero < (1 - confidence) / 2``)."""
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
    resampled sigma*, and ``p_zero`` the fraction of them that are 0. The intervals of the
    difference and the ratio are the percentile intervals of ``metric(0) - metric(sigma*_b)`` and
    of the ratio over the resamples ``b``, each with its own best level ``sigma*_b``.

    Args:
        result: a sweep whose levels include 0.
        metric: the metric to compare (the sweep's primary one by default).
        confidence: coverage of the intervals; sigma* > 0 is significant when the difference's
            interval excludes 0.
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
    best = int(best_level_index(means, higher))
    at_zero, at_best = float(means[zero[0]]), float(means[best])
    sigma_stars, differences, ratios = _resampled_effects(
        values, int(zero[0]), higher, num_resamples, seed
    )
    sigma_stars = result.levels[sigma_stars]
    difference_ci = _percentile_interval(differences, confidence)
    return Preference(
        metric=name,
        higher_is_better=higher,
        sigma_star=float(result.levels[best]),
        sigma_star_ci=_percentile_interval(sigma_stars, confidence),
        metric_at_zero=at_zero,
        metric_at_best=at_best,
        difference=at_zero - at_best,
        difference_ci=difference_ci,
        ratio=float(_ratio(at_best, at_zero) if higher else _ratio(at_zero, at_best)),
        ratio_ci=_percentile_interval(ratios, confidence),
        p_zero=float(np.mean(sigma_stars == 0)),
        significant=difference_ci[1] < 0 if higher else difference_ci[0] > 0,
        confidence=confidence,
    )


def preference_table(
    prefs: Mapping[str, Preference],
    train_sigma: Mapping[str, float] | None = None,
) -> str:
    """A fixed-width text table of preferences, one row per label.

    Columns: label, training sigma (blank if unknown), sigma* and its interval, the metric at 0
    and at sigma*, the effect size (``metric(0) - metric(sigma*)`` and the ratio, how many times
    worse zero noise is, each with its interval) and whether sigma* beats zero noise
    significantly (the difference's interval excludes 0).
    """
    if not prefs:
        raise ValueError("`prefs` must hold at least one Preference")
    names = {pref.metric for pref in prefs.values()}
    metric = names.pop() if len(names) == 1 else "metric"
    train_sigma = train_sigma or {}
    percent = f"{next(iter(prefs.values())).confidence:.0%}"
    rows = [
        [
            "label",
            "train sigma",
            "sigma*",
            f"{percent} CI",
            f"{metric}@0",
            f"{metric}@sigma*",
            f"diff (@0 - @sigma*) [{percent} CI]",
            f"ratio [{percent} CI]",
            "sig.",
        ]
    ]
    for label, pref in prefs.items():
        train = train_sigma.get(label)
        rows.append(
            [
                str(label),
                "" if train is None else f"{train:g}",
                f"{pref.sigma_star:g}",
                _interval(pref.sigma_star_ci, "g"),
                f"{pref.metric_at_zero:.4g}",
                f"{pref.metric_at_best:.4g}",
                f"{pref.difference:.3g} {_interval(pref.difference_ci, '.3g')}",
                f"{pref.ratio:.3g} {_interval(pref.ratio_ci, '.3g')}",
                "yes" if pref.significant else "no",
            ]
        )
    return format_rows(rows)


def _interval(interval: tuple[float, float], spec: str) -> str:
    low, high = interval
    return f"[{low:{spec}}, {high:{spec}}]"


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


def _percentile_interval(samples: np.ndarray, confidence: float) -> tuple[float, float]:
    """The central ``confidence`` percentile interval of bootstrap ``samples``.

    "inverted_cdf" keeps both ends on resampled values (for sigma*: on the sweep's levels) and
    stays defined where some samples are infinite (ratios over a zero metric).
    """
    tails = [(1 - confidence) / 2, (1 + confidence) / 2]
    low, high = np.quantile(samples, tails, method="inverted_cdf")
    return float(low), float(high)


def _resampled_effects(
    values: np.ndarray, zero: int, higher_is_better: bool, num_resamples: int, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per paired resample of ``values [L, E]``: best level index, difference and ratio, ``[R]``.

    The difference is ``metric(0) - metric(best)`` and the ratio how many times worse zero noise
    is, both against the resample's own best level; ``zero`` is the index of level 0.
    """
    means = _resampled_means(values, num_resamples, seed)
    best = best_level_index(means, higher_is_better)
    at_zero = means[:, zero]
    at_best = np.take_along_axis(means, best[:, None], axis=1)[:, 0]
    worse, better = (at_best, at_zero) if higher_is_better else (at_zero, at_best)
    return best, at_zero - at_best, _ratio(worse, better)


def _ratio(worse: ArrayLike, better: ArrayLike) -> np.ndarray:
    """``worse / better`` elementwise, with 1 for equal values and inf for a zero denominator."""
    worse, better = np.asarray(worse, dtype=np.float64), np.asarray(better, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratios = np.where(better == 0, np.inf, worse / better)
    return np.where(worse == better, 1.0, ratios)


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
