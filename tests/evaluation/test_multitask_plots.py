"""Multitask figures: one trial's inputs, targets and outputs; perf per task from a sweep."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from agents.ctrnn import CTRNN, CTRNNConfig
from evaluation.plots.multitask import FAMILIES, perf_by_task, plot_perf_by_task, plot_trials
from evaluation.sweep_result import SweepResult
from noise_envs import MultitaskTask
from noise_envs.multitask_trials import TASK_NAMES


def test_families_cover_the_twenty_tasks_once():
    names = [name for family in FAMILIES.values() for name in family]
    assert sorted(names) == sorted(TASK_NAMES)


def test_plot_trials_draws_the_trials_inputs_and_targets():
    """The heat maps hold the episode's rings and target ring (units against time)."""
    figure = plot_trials(["dm1", "ctxdm2"], seed=3)
    axes = np.array(figure.axes).reshape(4, 2)
    for column, name in enumerate(("dm1", "contextdm2")):
        episode = MultitaskTask(tasks=name, obs_noise=0.0).open_loop_episode(1, generator=3)
        obs, target = episode.observations[:, 0].numpy(), episode.targets[:, 0].numpy()
        ring_one, ring_two, target_ring = (axes[row, column].images[0] for row in (1, 2, 3))
        np.testing.assert_array_equal(ring_one.get_array(), obs[:, 1:33].T)
        np.testing.assert_array_equal(ring_two.get_array(), obs[:, 33:65].T)
        np.testing.assert_array_equal(target_ring.get_array(), target[:, 1:].T)
        assert axes[0, column].get_title() == f"{name} (rule {TASK_NAMES.index(name)})"


def test_plot_trials_adds_the_networks_outputs():
    config = CTRNNConfig(input_size=85, output_size=33, hidden_size=4, readout="sigmoid")
    model = CTRNN(config, torch.Generator().manual_seed(0))
    figure = plot_trials(["fdgo"], model, sigma=0.1)
    assert len(figure.axes) == 5
    output = figure.axes[4].images[0].get_array()
    assert output.shape[0] == 32 and ((output > 0) & (output < 1)).all()


def test_plot_trials_refuses_unknown_tasks():
    with pytest.raises(ValueError, match=r"`names` must be one of .*Did you mean 'dmsgo'"):
        plot_trials(["dmsgoo"])


def sweep(perf, task):
    return SweepResult(
        task_id="NoisyMultitask-v0",
        levels=np.array([0.0, 0.5]),
        metrics={"perf": np.array(perf, float), "task": np.array(task, float)},
        metric_directions={"perf": True, "task": False},
        primary_metric="perf",
        seed=0,
    )


def test_perf_by_task_by_hand():
    """Two levels, four trials: fdgo (task 0) and dm1 (task 6), two each."""
    result = sweep([[1, 0, 1, 1], [0, 0, 1, 0]], [[0, 0, 6, 6], [0, 0, 6, 6]])
    table = perf_by_task(result)
    assert list(table) == ["fdgo", "dm1"]
    np.testing.assert_allclose(table["fdgo"], [0.5, 0.0])
    np.testing.assert_allclose(table["dm1"], [1.0, 0.5])
    figure = plot_perf_by_task(result, train_sigma=0.5)
    visible = [axis for axis in figure.axes if axis.get_visible()]
    assert [axis.get_title() for axis in visible] == ["fdgo", "dm1", "mean over tasks"]
    np.testing.assert_allclose(visible[2].lines[0].get_ydata(), [0.75, 0.25])


def test_perf_by_task_needs_the_task_column():
    result = SweepResult(
        task_id="NoisyMultitask-v0",
        levels=np.array([0.0]),
        metrics={"perf": np.ones((1, 2))},
        metric_directions={"perf": True},
        primary_metric="perf",
        seed=0,
    )
    with pytest.raises(ValueError, match=r"`sweep metric` must be one of \['perf'\], got 'task'"):
        perf_by_task(result)


def test_sweep_figures_draw_perf_on_a_linear_axis():
    """perf declares bounds (0, 1): plot_sweep picks a linear axis for it (log for errors)."""
    from evaluation.plots.sweep import plot_sweep

    result = sweep([[1, 0, 1, 1], [0, 0, 1, 0]], [[0, 0, 6, 6], [0, 0, 6, 6]])
    assert plot_sweep({"run": result}).axes[0].get_yscale() == "linear"
