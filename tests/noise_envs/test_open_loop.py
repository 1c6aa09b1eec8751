"""Open-loop episodes made in advance equal what stepping the task meets, whatever the actions."""

from __future__ import annotations

import pytest
import torch

from noise_envs import make_task
from noise_envs.core import OpenLoopEpisode
from noise_envs.random import RandomSource
from noise_envs.registration import TASKS

OPEN_LOOP_CASES = [
    ("NoisyFunctionApprox-v0", {"steps": 7, "response_steps": 3}),
    ("NoisyFunctionApprox-v0", {"steps": 7, "response_steps": 3, "obs_noise": 0.2}),
    ("NoisyFunctionApprox-v0", {"steps": 1, "response_steps": 1, "obs_noise": 0.2}),
    ("NoisyFunctionApprox-v0", {"input_dim": 2, "function": "abs", "obs_noise": 0.1}),
    ("NoisyRegulator-v0", {"steps": 9, "settle_steps": 4, "obs_noise": 0.3}),
    ("NoisyPathIntegration-v0", {"steps": 12, "settle_steps": 2}),
    (
        "NoisyPathIntegration-v0",
        {
            "steps": 8,
            "target": "place_cells",
            "num_place_cells": 16,
            "start": "random_cued",
            "velocity_encoding": "speed_heading",
            "obs_noise": 0.05,
        },
    ),
]


def stepped_episode(task, batch_size: int, source: RandomSource) -> OpenLoopEpisode:
    """Observations, targets and masks met by stepping the task with random actions."""
    state, obs = task.reset(batch_size, source)
    actions = torch.Generator().manual_seed(99)
    observations, targets, masks = [], [], []
    for _ in range(task.horizon):
        target, mask = task.teacher(state)
        observations.append(obs)
        targets.append(target)
        masks.append(mask * (~state.done).unsqueeze(-1))
        action = torch.rand(batch_size, task.action_size, generator=actions) * 2 - 1
        state, obs, _, _ = task.step(state, action)
    return OpenLoopEpisode(torch.stack(observations), torch.stack(targets), torch.stack(masks))


@pytest.mark.parametrize("batch_size", [5, 16])
@pytest.mark.parametrize(("task_id", "options"), OPEN_LOOP_CASES)
def test_open_loop_episode_equals_stepping(task_id, options, batch_size):
    """Bitwise the same observations (noise included), targets and masks as a stepped episode,
    and the task's generator ends in the same state."""
    task = make_task(task_id, **options)
    assert task.open_loop
    made_source, stepped_source = RandomSource.from_seed(3), RandomSource.from_seed(3)
    made = task.open_loop_episode(batch_size, made_source)
    stepped = stepped_episode(task, batch_size, stepped_source)
    steps = task.horizon
    assert made.observations.shape == (steps, batch_size, task.obs_size)
    assert made.targets.shape == made.masks.shape == (steps, batch_size, task.action_size)
    for name in ("observations", "targets", "masks"):
        assert torch.equal(getattr(made, name), getattr(stepped, name)), f"{name} differ"
    assert torch.equal(made_source.normal(2, 3), stepped_source.normal(2, 3))


def test_teacher_loss_is_the_masked_mean_squared_error_by_hand():
    """Two steps, two rows, one action dimension: the loss computed by hand."""
    episode = OpenLoopEpisode(
        observations=torch.zeros(2, 2, 1),
        targets=torch.tensor([[[1.0], [0.0]], [[2.0], [-1.0]]]),
        masks=torch.tensor([[[0.0], [1.0]], [[1.0], [1.0]]]),
    )
    actions = torch.tensor([[[5.0], [0.5]], [[1.0], [1.0]]])
    # scored squared errors: 0.5^2, 1^2, 2^2 over 3 weights
    expected = (0.25 + 1.0 + 4.0) / 3
    assert episode.teacher_loss(actions).item() == pytest.approx(expected)
    with pytest.raises(ValueError, match=r"Expected `actions` of shape \[2, 2, 1\]"):
        episode.teacher_loss(torch.zeros(2, 2, 2))


def test_closed_loop_tasks_refuse_to_make_episodes_in_advance():
    """The maze's observations depend on the actions: it says so and names the way out."""
    task = make_task("NoisyMaze-v0")
    assert not task.open_loop
    with pytest.raises(ValueError, match=r"NoisyMaze-v0 is closed loop.*agents.rollout.rollout"):
        task.open_loop_episode(4, 0)


def test_every_registered_task_declares_whether_it_is_open_loop():
    """Only the maze reacts to actions; every other registered task is open loop."""
    assert {task_id: task.open_loop for task_id, task in TASKS.items()} == {
        task_id: task_id != "NoisyMaze-v0" for task_id in TASKS
    }
