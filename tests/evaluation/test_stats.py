"""Tests of the bootstrap and of the noise-preference statistics."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest

from evaluation.stats import Preference, bootstrap_ci, preference, preference_table
from evaluation.sweep_result import SweepResult

LEVELS = np.array([0.0, 0.1, 0.2, 0.3, 0.4])


def make_result(values, levels=LEVELS, higher=False, metric="mse"):
    return SweepResult(
        task_id="T-v0",
        levels=levels,
        metrics={metric: np.asarray(values, dtype=float)},
        metric_directions={metric: higher},
        primary_metric=metric,
        seed=0,
    )


def test_bootstrap_ci_covers_true_mean_and_has_normal_width():
    """For N(5, 2^2) samples the 95 % interval holds 5 and is about 2 * 1.96 * 2 / sqrt(n) wide."""
    rng = np.random.default_rng(1)
    values = rng.normal(5.0, 2.0, size=400)
    low, high = bootstrap_ci(values, seed=3)
    assert low < 5.0 < high
    assert low < values.mean() < high
    assert high - low == pytest.approx(2 * 1.96 * 2.0 / math.sqrt(400), rel=0.15)


def test_bootstrap_ci_shrinks_like_one_over_sqrt_n():
    """25 times the samples, a fifth of the width."""
    rng = np.random.default_rng(2)
    small = bootstrap_ci(rng.normal(size=100))
    large = bootstrap_ci(rng.normal(size=2500))
    ratio = (small[1] - small[0]) / (large[1] - large[0])
    assert ratio == pytest.approx(5.0, rel=0.2)


def test_bootstrap_ci_is_seeded():
    values = np.random.default_rng(0).exponential(size=50)
    first = bootstrap_ci(values, seed=5)
    assert bootstrap_ci(values, seed=5) == first
    assert bootstrap_ci(values, seed=6) != first


def test_bootstrap_ci_other_statistics_with_and_without_axis():
    values = np.random.default_rng(3).normal(size=60)
    median = bootstrap_ci(values, np.median, seed=1)
    assert median[0] < np.median(values) < median[1]
    looped = bootstrap_ci(values, lambda x: float(np.mean(x)), num_resamples=200, seed=4)
    vectorised = bootstrap_ci(values, np.mean, num_resamples=200, seed=4)
    assert looped == pytest.approx(vectorised, rel=1e-12)


def test_bootstrap_ci_of_a_constant_is_a_point():
    assert bootstrap_ci(np.full(10, 2.5)) == (2.5, 2.5)


@pytest.mark.parametrize(
    ("values", "kwargs", "message"),
    [
        ([], {}, "non-empty 1-D"),
        ([[1.0, 2.0]], {}, "non-empty 1-D"),
        ([1.0, float("nan")], {}, "finite"),
        ([1.0], {"confidence": 1.0}, "strictly between 0 and 1"),
        ([1.0], {"confidence": -0.5}, r"`confidence` must be in \[0.0, 1.0\]"),
        ([1.0], {"num_resamples": 0}, "`num_resamples` must be an integer >= 1"),
        ([1.0], {"seed": -2}, "`seed` must be an integer >= 0"),
    ],
)
def test_bootstrap_ci_rejects_bad_input(values, kwargs, message):
    with pytest.raises(ValueError, match=message):
        bootstrap_ci(np.asarray(values, dtype=float), **kwargs)


def test_preference_with_a_huge_effect():
    """mse = 1 + (sigma - 0.2)^2 + tiny noise: sigma* = 0.2, certain, ratio = 1.04 / 1."""
    rng = np.random.default_rng(0)
    values = 1.0 + (LEVELS[:, None] - 0.2) ** 2 + 1e-4 * rng.normal(size=(5, 64))
    pref = preference(make_result(values))
    assert pref.sigma_star == pytest.approx(0.2)
    assert pref.sigma_star_ci == pytest.approx((0.2, 0.2))
    assert pref.p_zero == 0.0
    assert pref.significant
    assert pref.metric_at_zero == pytest.approx(values[0].mean())
    assert pref.metric_at_best == pytest.approx(values[2].mean())
    assert pref.ratio == pytest.approx(1.04, rel=1e-3)
    assert pref.difference == pytest.approx(0.04, abs=1e-4)
    assert pref.difference_ci == pytest.approx((0.04, 0.04), abs=1e-4)
    assert pref.ratio_ci == pytest.approx((1.04, 1.04), rel=1e-3)
    assert (pref.metric, pref.higher_is_better, pref.confidence) == ("mse", False, 0.95)


def test_preference_without_effect_keeps_zero():
    """Identical rows (a policy blind to sigma under common random numbers): every tie goes to 0."""
    row = np.random.default_rng(1).exponential(size=32)
    pref = preference(make_result(np.tile(row, (5, 1))))
    assert pref.sigma_star == 0.0
    assert pref.sigma_star_ci == (0.0, 0.0)
    assert pref.p_zero == 1.0
    assert pref.ratio == 1.0
    assert (pref.difference, pref.difference_ci, pref.ratio_ci) == (0.0, (0.0, 0.0), (1.0, 1.0))
    assert not pref.significant


def test_preference_of_a_higher_is_better_metric():
    values = 2.0 - (LEVELS[:, None] - 0.3) ** 2 + np.zeros((5, 16))
    pref = preference(make_result(values, higher=True, metric="perf"))
    assert pref.sigma_star == pytest.approx(0.3)
    assert pref.metric_at_best == pytest.approx(2.0)
    assert pref.ratio == pytest.approx(2.0 / (2.0 - 0.09))
    assert pref.difference == pytest.approx(-0.09)  # metric(0) - metric(sigma*) < 0: sigma* better
    assert pref.difference_ci == pytest.approx((-0.09, -0.09))
    assert pref.significant


def test_preference_resamples_episodes_paired_across_levels():
    """Large per-episode variation shared by all levels must not hide a consistent paired effect.

    Level 0.1 beats level 0 by exactly 0.1 on every episode, while episodes vary with sd 10: a
    paired bootstrap never picks 0; resampling levels independently would pick it often.
    """
    episode_effect = np.random.default_rng(2).normal(0.0, 10.0, size=50) + 100.0
    values = np.stack([episode_effect, episode_effect - 0.1])
    pref = preference(make_result(values, levels=np.array([0.0, 0.1])))
    assert pref.sigma_star == pytest.approx(0.1)
    assert pref.p_zero == 0.0
    assert pref.significant


def test_preference_p_zero_counts_resamples_preferring_zero():
    """Two levels of pure noise with equal means: p_zero is near one half and nothing is significant."""
    rng = np.random.default_rng(4)
    values = rng.normal(1.0, 1.0, size=(2, 400))
    values -= values.mean(axis=1, keepdims=True) - 1.0  # exactly equal means
    values[1] += 1e-9  # level 0 wins the point estimate by a hair
    pref = preference(make_result(values, levels=np.array([0.0, 0.5])), num_resamples=2000)
    assert pref.sigma_star == 0.0
    assert 0.35 < pref.p_zero < 0.65
    assert not pref.significant
    assert pref.sigma_star_ci == (0.0, 0.5)
    # zero noise is a candidate in every resample: the difference is never negative, and its
    # interval starts at exactly 0 once enough resamples pick zero
    assert pref.difference_ci[0] == 0.0
    assert pref.difference_ci[1] > 0.0
    assert pref.ratio_ci[0] == 1.0


def test_preference_ratio_is_infinite_when_best_is_exactly_zero():
    values = np.array([[1.0, 1.0], [0.0, 0.0]])
    pref = preference(make_result(values, levels=np.array([0.0, 0.3])))
    assert pref.ratio == math.inf


def test_preference_is_fast_enough():
    """16 levels x 256 episodes x 1000 resamples in well under a second."""
    values = np.random.default_rng(5).normal(size=(16, 256))
    start = time.perf_counter()
    preference(make_result(values, levels=np.linspace(0.0, 1.5, 16)))
    assert time.perf_counter() - start < 0.5


def test_preference_is_deterministic_given_seed():
    values = np.random.default_rng(6).normal(size=(5, 30))
    assert preference(make_result(values), seed=3) == preference(make_result(values), seed=3)


def test_preference_needs_level_zero():
    values = np.ones((2, 4))
    with pytest.raises(ValueError, match=r"do not include 0.*sweep with test noise 0"):
        preference(make_result(values, levels=np.array([0.1, 0.2])))


def test_preference_rejects_unknown_metric_and_bad_values():
    with pytest.raises(ValueError, match="Did you mean 'mse'"):
        preference(make_result(np.ones((5, 3))), "msee")
    bad = np.ones((5, 3))
    bad[2, 1] = np.nan
    with pytest.raises(ValueError, match="NaN or infinite"):
        preference(make_result(bad))
    with pytest.raises(ValueError, match="`num_resamples`"):
        preference(make_result(np.ones((5, 3))), num_resamples=0)


def test_preference_effect_size_of_a_known_difference():
    """Means 1.0, 0.8, 0.5, 0.9 with paired noise: the difference is 0.5 and the ratio 2."""
    rng = np.random.default_rng(10)
    episode = rng.normal(0.0, 0.3, size=400)  # shared by all levels (common random numbers)
    true_means = np.array([1.0, 0.8, 0.5, 0.9])
    values = true_means[:, None] + episode + rng.normal(0.0, 0.05, size=(4, 400))
    pref = preference(make_result(values, levels=np.array([0.0, 0.1, 0.2, 0.3])))
    assert pref.sigma_star == pytest.approx(0.2)
    assert pref.difference == pytest.approx(values[0].mean() - values[2].mean())
    low, high = pref.difference_ci
    assert low < 0.5 < high
    # paired: the width is that of the 0.05 * sqrt(2) per-episode difference, not of the 0.3 spread
    assert high - low == pytest.approx(2 * 1.96 * 0.05 * math.sqrt(2) / math.sqrt(400), rel=0.2)
    assert pref.ratio_ci[0] < values[0].mean() / values[2].mean() < pref.ratio_ci[1]
    assert pref.significant


def test_preference_difference_interval_covers_the_true_difference():
    """On 200 synthetic sweeps, the 95 % interval holds the true difference 0.3 about 95 % of times."""
    rng = np.random.default_rng(8)
    true_means = np.array([1.0, 0.7, 1.2])
    covered = 0
    for draw in range(200):
        episode = rng.normal(0.0, 1.0, size=100)
        values = true_means[:, None] + episode + rng.normal(0.0, 0.4, size=(3, 100))
        pref = preference(
            make_result(values, levels=np.array([0.0, 0.5, 1.0])), num_resamples=500, seed=draw
        )
        low, high = pref.difference_ci
        covered += low <= 0.3 <= high
    assert 0.89 <= covered / 200 <= 0.99


def test_preference_reselects_sigma_star_in_each_resample():
    """Two equally good levels, enumerated by hand over the four resamples of two episodes.

    Zero noise scores 1 on both episodes; level 0.1 scores (0, 1) and level 0.2 scores (1, 0).
    Resamples (0, 0) and (1, 1) find a level at 0 (difference 1), resamples (0, 1) and (1, 0) find
    both at 0.5 (difference 0.5): the interval is [0.5, 1] and significant. Keeping sigma* = 0.1
    fixed would give differences 1, 0.5, 0.5, 0 and an interval [0, 1] that does not exclude 0.
    """
    values = np.array([[1.0, 1.0], [0.0, 1.0], [1.0, 0.0]])
    pref = preference(
        make_result(values, levels=np.array([0.0, 0.1, 0.2])), num_resamples=4000, seed=1
    )
    assert pref.sigma_star == pytest.approx(0.1)  # the tie goes to the lower level
    assert pref.sigma_star_ci == pytest.approx((0.1, 0.2))
    assert pref.difference == 0.5
    assert pref.difference_ci == (0.5, 1.0)
    assert pref.ratio == 2.0
    assert pref.ratio_ci == (2.0, math.inf)  # a resample's best level can score exactly 0
    assert pref.p_zero == 0.0
    assert pref.significant


@pytest.mark.parametrize("higher", [False, True])
def test_significance_is_the_difference_interval_excluding_zero(higher):
    """On weak effects, significant <=> the interval excludes 0 <=> p_zero < (1 - confidence) / 2."""
    rng = np.random.default_rng(9)
    for draw in range(40):
        values = rng.normal(0.0, 1.0, size=(3, 30)) + np.array([[0.0], [0.3], [0.2]]) * (
            1 if higher else -1
        )
        pref = preference(
            make_result(values, levels=np.array([0.0, 0.4, 0.8]), higher=higher),
            num_resamples=999,  # 999 * 0.025 is not an integer: no resample count sits on the edge
            seed=draw,
        )
        low, high = pref.difference_ci
        excludes = high < 0 if higher else low > 0
        assert pref.significant == excludes
        assert pref.significant == (pref.p_zero < 0.025), (draw, pref)


def _pref(**changes):
    fields = {
        "metric": "mse",
        "higher_is_better": False,
        "sigma_star": 0.3,
        "sigma_star_ci": (0.2, 0.4),
        "metric_at_zero": 0.0123,
        "metric_at_best": 0.00456,
        "difference": 0.0123 - 0.00456,
        "difference_ci": (0.0061, 0.0093),
        "ratio": 0.0123 / 0.00456,
        "ratio_ci": (2.1, 3.3),
        "p_zero": 0.0,
        "significant": True,
        "confidence": 0.95,
    }
    return Preference(**fields | changes)


def test_preference_table_rows_and_columns():
    table = preference_table(
        {"noise in": _pref(), "noise out": _pref(sigma_star=0.0, significant=False)},
        train_sigma={"noise in": 0.3},
    )
    lines = table.splitlines()
    assert len(lines) == 4
    header = lines[0]
    columns = ("label", "train sigma", "sigma*", "95% CI", "mse@0", "mse@sigma*")
    for column in (*columns, "diff (@0 - @sigma*) [95% CI]", "ratio [95% CI]", "sig."):
        assert column in header
    assert lines[1].replace(" ", "").strip("-") == ""
    assert lines[2].startswith("noise in ")
    assert "[0.2, 0.4]" in lines[2]
    assert "0.0123" in lines[2]
    assert "0.00774 [0.0061, 0.0093]" in lines[2]
    assert "2.7 [2.1, 3.3]" in lines[2]
    assert lines[2].endswith("yes")
    assert lines[3].endswith("no")
    assert lines[2].index("0.3") == header.index("train sigma")  # aligned under its heading
    assert lines[3][header.index("train sigma")] == " "  # no training sigma known


def test_preference_table_needs_preferences():
    with pytest.raises(ValueError, match="at least one"):
        preference_table({})
