"""Tests of the mechanism figures: they draw the data they are given."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from matplotlib.figure import Figure

from agents import CTRNN, CTRNNConfig
from evaluation.mechanism.kink import kink_occupancy
from evaluation.mechanism.shift import OutputBias, noise_shift
from evaluation.plots.mechanism import (
    plot_kink_distances,
    plot_kink_occupancy,
    plot_output_bias,
    plot_stationary_mean,
)


@pytest.fixture
def shift():
    model = CTRNN(CTRNNConfig(input_size=1, output_size=1, hidden_size=3, dt=50.0))
    inputs = torch.tensor([[-0.5], [0.0], [0.5]])
    return noise_shift(model, inputs, [0.0, 0.5], steps=10, burn_in=5, replicas=2)


def make_bias(scale=1.0, closed_loop=False):
    levels = np.array([0.0, 0.5, 1.0])
    mean_error = np.array([0.3, 0.1, 0.2])
    nan = np.full(3, np.nan)
    return OutputBias(
        levels=levels,
        bias=nan if closed_loop else scale * levels**2,
        mean_error=nan if closed_loop else mean_error,
        variance=nan if closed_loop else levels,
        mse=mean_error + levels,
        closed_loop=closed_loop,
        replicas=2,
        episodes=3,
    )


def legend_texts(fig):
    return [text.get_text() for text in fig.axes[0].get_legend().get_texts()]


def test_stationary_mean_draws_simulation_and_predictions(shift):
    fig = plot_stationary_mean(shift, max_inputs=2)
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    lines = [line for line in ax.get_lines() if len(line.get_xdata())]
    # 2 inputs x (points, prediction, plain) = 6 drawn lines
    assert len(lines) == 6
    simulated = shift.simulated.output_mean[:, 0, 0].numpy()
    assert any(np.allclose(line.get_ydata(), simulated) for line in lines)
    plain = shift.plain_output_mean[:, 2, 0].numpy()
    assert any(np.allclose(line.get_ydata(), plain) for line in lines)


def test_stationary_mean_legend_names_inputs_and_line_styles(shift):
    """Inputs are numbered from 1 (not raw vectors); the legend explains every line style."""
    fig = plot_stationary_mean(shift, train_sigma=0.5, title="run-a: shift")
    texts = legend_texts(fig)
    assert {"input 1", "input 2", "input 3"} <= set(texts)
    assert not any("[" in text or "," in text for text in texts if text.startswith("input"))
    for key in ("points: simulated", "solid: mean field + linear response", "dashed: plain"):
        assert any(text.startswith(key) for text in texts), texts
    assert "training noise" in texts
    assert fig.axes[0].get_title() == "run-a: shift"


def test_output_bias_draws_bias_mean_error_and_zero_line():
    fig = plot_output_bias({"a": make_bias(), "b": make_bias(2.0)}, train_sigma=0.5)
    ax = fig.axes[0]
    ydata = [np.asarray(line.get_ydata(), dtype=float) for line in ax.get_lines()]

    def drawn(values):
        return any(y.shape == (len(values),) and np.allclose(y, values) for y in ydata)

    assert drawn([0.0, 0.25, 1.0])
    assert drawn([0.0, 0.5, 2.0])
    assert drawn([0.3, 0.3])  # the zero-noise error line
    texts = legend_texts(fig)
    assert any(text.startswith("dotted: error at zero noise") for text in texts)
    assert "dash-dot: training noise" in texts
    assert any(text.startswith("dashed: error of the mean output") for text in texts)
    assert "per-step std" in fig.axes[0].get_xlabel()


def test_output_bias_of_a_closed_loop_task_draws_the_mse():
    """No bias split on a closed-loop task: the curve is the mse, the zero line its first value."""
    fig = plot_output_bias({"maze": make_bias(closed_loop=True)}, title="maze run")
    ydata = [np.asarray(line.get_ydata(), dtype=float) for line in fig.axes[0].get_lines()]
    assert any(y.shape == (3,) and np.allclose(y, [0.3, 0.6, 1.2]) for y in ydata)
    assert any(np.allclose(y, [0.3, 0.3]) for y in ydata if y.shape == (2,))
    assert "maze: mse (closed loop: no bias split)" in legend_texts(fig)
    assert not any(text.startswith("dashed") for text in legend_texts(fig))
    assert fig.axes[0].get_title() == "maze run"


def test_kink_occupancy_curve_through_seed_means():
    fig = plot_kink_occupancy({"noise-in": {0.5: [0.4, 0.6], 0.25: 0.3}, "noise-out": {0.5: 0.1}})
    ax = fig.axes[0]
    curves = [line for line in ax.get_lines() if line.get_label() == "noise-in"]
    assert np.allclose(curves[0].get_xdata(), [0.25, 0.5])
    assert np.allclose(curves[0].get_ydata(), [0.3, 0.5])


def test_kink_distances_histogram():
    occupancy = kink_occupancy(torch.tensor([[0.1, 2.0, -0.2]]), 0.5, "relu")
    fig = plot_kink_distances({"net": occupancy})
    assert "net (67% within 1 std)" in legend_texts(fig)
    assert "threshold: 1 std" in legend_texts(fig)
    assert "nearest kink" in fig.axes[0].get_xlabel()


def test_kink_distances_of_tanh_speak_of_knees():
    occupancy = kink_occupancy(torch.tensor([[0.1, 2.0, -0.2]]), 0.5, "tanh")
    fig = plot_kink_distances({"net": occupancy})
    assert "nearest knee" in fig.axes[0].get_xlabel()
    assert "knee" in fig.axes[0].get_title()


def test_empty_inputs_are_rejected():
    with pytest.raises(ValueError, match="`biases` must hold at least one"):
        plot_output_bias({})
    with pytest.raises(ValueError, match="`occupancy` must hold at least one"):
        plot_kink_occupancy({})
    with pytest.raises(ValueError, match="`occupancies` must hold at least one"):
        plot_kink_distances({})
