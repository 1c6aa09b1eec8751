"""Path traces and their figure, with an exact integrator policy whose error is its noise level."""

import numpy as np
import pytest
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from evaluation.plots.path import PathTraces, plot_paths, trace_paths
from noise_envs import make_task

LEVELS = [0.0, 0.1, 0.3]


class OffsetIntegrator:
    """Integrates the velocity input exactly and reports the position shifted by (sigma, sigma)."""

    def __init__(self, time_step):
        self.time_step = time_step

    def initial_state(self, batch_size, device="cpu"):
        return torch.zeros(batch_size, 2, device=device)

    def step(self, obs, state, sigma=0.0, noise=None):
        position = state + obs * self.time_step
        shift = torch.as_tensor(sigma, dtype=obs.dtype).reshape(-1, 1)
        return position + shift, position


@pytest.fixture
def task():
    return make_task("NoisyPathIntegration-v0", steps=15)


@pytest.fixture
def traces(task):
    return trace_paths(OffsetIntegrator(task.config.time_step), task, LEVELS, episodes=3, seed=4)


def test_decoded_paths_are_the_true_paths_shifted_by_each_level(traces):
    """Level l's decoded path is the true path + (sigma_l, sigma_l): rows are level-major."""
    assert traces.true.shape == (3, 16, 2) and traces.decoded.shape == (3, 3, 15, 2)
    for index, level in enumerate(LEVELS):
        np.testing.assert_allclose(traces.decoded[index] - traces.true[:, 1:], level, atol=1e-5)
    np.testing.assert_allclose(
        traces.distance_errors.mean(axis=(1, 2)), np.sqrt(2) * np.array(LEVELS), atol=1e-5
    )


def test_every_level_sees_the_same_paths(task):
    """The true paths do not depend on which levels are traced (common random numbers)."""
    policy = OffsetIntegrator(task.config.time_step)
    one = trace_paths(policy, task, [0.0], episodes=2, seed=1)
    many = trace_paths(policy, task, [0.0, 0.5], episodes=2, seed=1)
    np.testing.assert_array_equal(one.true, many.true)
    assert not np.array_equal(one.true[0], one.true[1])


def test_plot_has_one_panel_per_level_with_both_paths_per_episode(traces):
    figure = plot_paths(traces, train_sigma=0.1, max_episodes=2)
    assert isinstance(figure, Figure) and len(figure.axes) == 3
    titles = [ax.get_title() for ax in figure.axes]
    assert "(train)" in titles[1] and "(train)" not in titles[0] + titles[2]
    assert titles[2].startswith("test sigma 0.3")
    # per episode: true path, start dot, decoded path; plus the arena outline
    assert all(len(ax.get_lines()) == 2 * 3 + 1 for ax in figure.axes)


@pytest.mark.parametrize("num_levels", [1, 5])
def test_titles_lie_inside_the_figure(task, num_levels):
    """Every panel's two-line title and the figure's title are drawn whole, not clipped."""
    policy = OffsetIntegrator(task.config.time_step)
    traces = trace_paths(policy, task, np.linspace(0, 2, num_levels), episodes=2, seed=1)
    figure = plot_paths(traces, train_sigma=1.0)
    FigureCanvasAgg(figure).draw()
    renderer = figure.canvas.get_renderer()
    texts = [ax.title for ax in figure.axes] + [figure._suptitle]
    for text in texts:
        box = text.get_window_extent(renderer)
        assert box.y1 <= figure.bbox.y1 and box.y0 >= 0, text.get_text()
        assert box.x0 >= 0 and box.x1 <= figure.bbox.x1, text.get_text()
    assert "(half-sides)" in figure.axes[0].get_title()


def test_traces_need_a_path_integration_task():
    task = make_task("NoisyRegulator-v0")
    with pytest.raises(ValueError, match="`task` must be a PathIntegrationTask, got RegulatorTask"):
        trace_paths(OffsetIntegrator(0.02), task, LEVELS)


def test_bad_episode_counts_are_refused(task, traces):
    with pytest.raises(ValueError, match="`episodes` must be an integer >= 1, got 0"):
        trace_paths(OffsetIntegrator(0.02), task, LEVELS, episodes=0)
    with pytest.raises(ValueError, match="`max_episodes` must be an integer >= 1, got 0"):
        plot_paths(traces, max_episodes=0)


def test_distance_errors_by_hand():
    traces = PathTraces(
        levels=np.array([0.0]), true=np.zeros((1, 3, 2)), decoded=np.ones((1, 1, 2, 2))
    )
    np.testing.assert_allclose(traces.distance_errors, np.sqrt(2))
