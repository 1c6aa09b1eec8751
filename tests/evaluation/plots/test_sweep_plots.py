"""Tests of the sweep figures and of saving them."""

from __future__ import annotations

import numpy as np
import pytest
from matplotlib.figure import Figure

from evaluation.plots.sweep import plot_sweep, save_figure
from evaluation.sweep_result import SweepResult

LEVELS = np.linspace(0.0, 0.6, 7)


def make_result(best, higher=False, offset=0.01):
    rng = np.random.default_rng(int(best * 100))
    values = offset + (LEVELS[:, None] - best) ** 2 + 0.001 * rng.random((7, 20))
    if higher:
        values = 1.0 - values
    return SweepResult(
        task_id="NoisyFunctionApprox-v0",
        levels=LEVELS,
        metrics={"mse": values},
        metric_directions={"mse": higher},
        primary_metric="mse",
        seed=0,
    )


@pytest.fixture
def results():
    return {"noise in": make_result(0.3), "noise out": make_result(0.0)}


def test_one_curve_band_and_star_per_label(results):
    fig = plot_sweep(results, train_sigma={"noise in": 0.3, "noise out": 0.3})
    ax = fig.axes[0]
    lines = ax.get_lines()
    # per label: the mean curve, the sigma* star, the training-sigma line
    assert len(lines) == 6
    assert len(ax.collections) == 2  # one confidence band per label
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["noise in", "noise out"]
    curve, star, train = lines[:3]
    np.testing.assert_allclose(curve.get_xdata(), LEVELS)
    np.testing.assert_allclose(curve.get_ydata(), results["noise in"].summary().mean)
    assert star.get_xdata()[0] == pytest.approx(0.3)
    assert star.get_marker() == "*"
    assert train.get_linestyle() == "--"
    assert train.get_xdata()[0] == pytest.approx(0.3)
    assert star.get_color() == curve.get_color() == train.get_color()
    assert lines[4].get_xdata()[0] == pytest.approx(0.0)  # "noise out" prefers zero
    assert ax.get_yscale() == "log"
    assert ax.get_ylabel() == "mse (lower is better)"


def test_band_spans_the_confidence_interval(results):
    fig = plot_sweep({"noise in": results["noise in"]}, log_y=False)
    band = fig.axes[0].collections[0].get_paths()[0].vertices
    summary = results["noise in"].summary()
    assert band[:, 1].min() == pytest.approx(summary.ci_low.min())
    assert band[:, 1].max() == pytest.approx(summary.ci_high.max())
    assert fig.axes[0].get_yscale() == "linear"


def test_single_train_sigma_draws_one_line(results):
    fig = plot_sweep(results, train_sigma=0.2)
    dashed = [line for line in fig.axes[0].get_lines() if line.get_linestyle() == "--"]
    assert len(dashed) == 1
    assert dashed[0].get_xdata()[0] == pytest.approx(0.2)


def test_draws_on_given_axes(results):
    fig = Figure()
    left, right = fig.subplots(1, 2)
    returned = plot_sweep(results, ax=right)
    assert returned is fig
    assert len(right.get_lines()) == 4
    assert len(left.get_lines()) == 0


def test_non_positive_means_fall_back_to_linear_scale():
    result = make_result(0.3, higher=True, offset=1.5)  # means below 0
    with pytest.warns(UserWarning, match="`log_y` ignored"):
        fig = plot_sweep({"a": result})
    assert fig.axes[0].get_yscale() == "linear"
    assert fig.axes[0].get_ylabel() == "mse (higher is better)"


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
