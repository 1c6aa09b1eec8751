"""Learning test: a small Yang-style CTRNN learns fdgo, reactgo and fdanti together at dt = 20 ms."""

from __future__ import annotations

import pytest
import torch

from agents.ctrnn import CTRNN, CTRNNConfig
from agents.rollout import rollout
from agents.supervised import TrainConfig, train
from noise_envs import MultitaskTask
from noise_envs.multitask_trials import TASK_NAMES

TASKS = ("fdgo", "reactgo", "fdanti")


@pytest.mark.science
def test_a_64_unit_ctrnn_learns_go_reactgo_and_anti_at_yangs_time_step():
    """64 softplus units, sigmoid read-out, W = 0.5 I, Yang's recurrent and input noise, trained
    on mixed-length batches of the three tasks with the open-loop trainer: perf >= 0.9 on each
    (measured: 1.0 on each after 300 iterations, about 35 s on one thread)."""
    task = MultitaskTask(tasks=TASKS)
    config = CTRNNConfig.yang2019(task.obs_size, task.action_size, hidden_size=64)
    model = CTRNN(config, torch.Generator().manual_seed(0))
    train_config = TrainConfig(sigma=0.05, iterations=400, batch_size=64, learning_rate=3e-3)
    train(model, task, train_config, progress=False)
    with torch.no_grad():
        result = rollout(
            model,
            task,
            900,
            sigma=0.05,
            env_rng=123,
            noise=torch.Generator().manual_seed(7),
        )
    perf = {
        name: result.metrics["perf"][result.metrics["task"] == TASK_NAMES.index(name)].mean().item()
        for name in TASKS
    }
    assert all(value >= 0.9 for value in perf.values()), perf
