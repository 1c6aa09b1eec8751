"""Tests of the sweep figures and of saving them."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from matplotlib.figure import Figure

from evaluation.plots.sweep import metric_bounds, plot_sweep, save_figure
from evaluation.sweep_result import SweepResult

LEVELS = np.linspace(0.0, 0.6, 7)


def make_result(best, higher=False, offset=0.01, task_id="NoisyFunctionApprox-v0", metric="mse"):
    rng = np.random.default_rng(int(best * 100))
    values = offset + (LEVELS[:, None] - best) ** 2 + 0.001 * rng.random((7, 20))
    if higher:
        values = 1.0 - values
    return SweepResult(
        task_id=task_id,
        levels=LEVELS,
        metrics={metric: values},
        metric_directions={metric: higher},
        primary_metric=metric,
        seed=0,
    )


def legend_texts(ax):
    return [t.get_text() for t in ax.get_legend().get_texts()]


def dashed_lines(ax):
    return [line for line in ax.get_lines() if line.get_linestyle() == "--"]


@pytest.fixture
def results():
    return {"noise in": make_result(0.3), "noise out": make_result(0.0)}


def test_one_curve_band_and_star_per_label(results):
    fig = plot_sweep(results, train_sigma={"noise in": 0.3, "noise out": 0.2})
    ax = fig.axes[0]
    curve, star, other_curve, other_star = ax.get_lines()[:4]
    np.testing.assert_allclose(curve.get_xdata(), LEVELS)
    np.testing.assert_allclose(curve.get_ydata(), results["noise in"].summary().mean)
    assert star.get_xdata()[0] == pytest.approx(0.3)
    assert star.get_marker() == "*"
    assert star.get_color() == curve.get_color()
    assert other_star.get_xdata()[0] == pytest.approx(0.0)  # "noise out" prefers zero
    # one training-noise line per curve here (distinct sigmas), in the curve's colour
    train = {line.get_xdata()[0]: line.get_color() for line in dashed_lines(ax)}
    assert train == {0.2: other_curve.get_color(), 0.3: curve.get_color()}
    assert len([c for c in ax.collections if len(c.get_paths())]) == 2  # one band per label
    assert ax.get_yscale() == "log"
    assert ax.get_ylabel() == "mse (lower is better)"
    assert ax.get_xlabel() == r"test noise $\sigma$ (per-step std)"


def test_legend_explains_lines_star_and_band(results):
    fig = plot_sweep(results, train_sigma={"noise in": 0.3, "noise out": 0.3}, confidence=0.9)
    texts = legend_texts(fig.axes[0])
    assert texts[:2] == ["noise in", "noise out"]
    assert r"star: best level $\sigma^*$" in texts
    assert r"dashed: training noise $\sigma$ = 0.3" in texts
    assert "band: 90% CI of the mean" in texts


def test_one_training_noise_line_per_distinct_sigma(results):
    """Five curves trained at two levels: two dashed lines, grey where curves share them."""
    many = {f"seed {i}": make_result(0.1 * i) for i in range(5)}
    sigmas = {f"seed {i}": 0.3 if i < 3 else 0.5 for i in range(5)}
    ax = plot_sweep(many, train_sigma=sigmas).axes[0]
    assert sorted(line.get_xdata()[0] for line in dashed_lines(ax)) == [0.3, 0.5]
    assert {line.get_color() for line in dashed_lines(ax)} == {"0.4"}


def test_bounded_metrics_are_linear_errors_log_by_default():
    """The maze's path_efficiency declares bounds (0, 1): linear; its oracle_mse: log."""
    assert metric_bounds("NoisyMaze-v0", "path_efficiency") == (0.0, 1.0)
    assert metric_bounds("NoisyMaze-v0", "oracle_mse") is None
    assert metric_bounds("Unknown-v0", "mse") is None
    efficiency = make_result(0.3, higher=True, task_id="NoisyMaze-v0", metric="path_efficiency")
    assert plot_sweep({"a": efficiency}).axes[0].get_yscale() == "linear"
    assert plot_sweep({"a": efficiency}, log_y=True).axes[0].get_yscale() == "log"
    error = make_result(0.3, task_id="NoisyMaze-v0", metric="oracle_mse")
    assert plot_sweep({"a": error}).axes[0].get_yscale() == "log"
    assert plot_sweep({"a": error}, log_y=False).axes[0].get_yscale() == "linear"
    # an unknown task: errors (lower is better) on log, scores on linear
    assert plot_sweep({"a": make_result(0.3, task_id="T-v0")}).axes[0].get_yscale() == "log"
    higher = make_result(0.3, higher=True, task_id="T-v0")
    assert plot_sweep({"a": higher}).axes[0].get_yscale() == "linear"


def test_band_spans_the_confidence_interval(results):
    fig = plot_sweep({"noise in": results["noise in"]}, log_y=False)
    band = fig.axes[0].collections[0].get_paths()[0].vertices
    summary = results["noise in"].summary()
    assert band[:, 1].min() == pytest.approx(summary.ci_low.min())
    assert band[:, 1].max() == pytest.approx(summary.ci_high.max())
    assert fig.axes[0].get_yscale() == "linear"


def test_single_train_sigma_draws_one_line(results):
    fig = plot_sweep(results, train_sigma=0.2)
    dashed = dashed_lines(fig.axes[0])
    assert len(dashed) == 1
    assert dashed[0].get_xdata()[0] == pytest.approx(0.2)


def test_draws_on_given_axes(results):
    fig = Figure()
    left, right = fig.subplots(1, 2)
    returned = plot_sweep(results, ax=right)
    assert returned is fig
    assert len([line for line in right.get_lines() if len(line.get_xdata())]) == 4
    assert len(left.get_lines()) == 0


def test_non_positive_means_fall_back_to_linear_scale():
    result = make_result(0.3, higher=True, offset=1.5)  # means below 0
    with pytest.warns(UserWarning, match="`log_y` ignored"):
        fig = plot_sweep({"a": result}, log_y=True)
    assert fig.axes[0].get_yscale() == "linear"
    assert fig.axes[0].get_ylabel() == "mse (higher is better)"
    negative_error = make_result(0.3, offset=-1.0)  # an error below 0: automatic goes linear
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert plot_sweep({"a": negative_error}).axes[0].get_yscale() == "linear"


def test_bad_arguments_are_rejected(results):
    with pytest.raises(ValueError, match="at least one"):
        plot_sweep({})
    with pytest.raises(ValueError, match="Did you mean 'mse'"):
        plot_sweep(results, metric="mes")


def test_save_figure_writes_a_png(tmp_path, results):
    fig = plot_sweep(results, train_sigma={"noise in": 0.3})
    path = save_figure(fig, tmp_path / "figs" / "sweep.png")
    data = path.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    assert len(data) > 10_000
    assert [p.name for p in path.parent.iterdir()] == ["sweep.png"]


def test_save_figure_follows_the_extension(tmp_path):
    fig = Figure(figsize=(1, 1))
    fig.add_subplot().plot([0, 1], [1, 0])
    path = save_figure(fig, tmp_path / "sweep.SVG")
    assert b"<svg" in path.read_bytes()[:1000]
    with pytest.raises(ValueError, match="`path extension` must be one of"):
        save_figure(fig, tmp_path / "sweep.xyz")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sweep.SVG"]
