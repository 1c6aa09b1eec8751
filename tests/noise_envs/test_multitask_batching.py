"""Rows of different lengths: a batch gives each row what running it alone gives.

Through the closed-loop rollout (:func:`agents.rollout.rollout`), the open-loop trainer path
(:meth:`~noise_envs.core.Task.open_loop_episode` + :func:`agents.rollout.unroll`) and the sweep.
Each row has its own generators for the task and the model's noise, so it draws the same numbers
in the batch as alone.
"""

from __future__ import annotations

import torch

from agents.ctrnn import CTRNN, CTRNNConfig
from agents.rollout import rollout, teacher_loss, unroll
from evaluation.sweep import sweep_noise
from noise_envs import MultitaskTask, RandomSource

TASKS = ["fdgo", "reactgo", "dm1", "dmsnogo", "delaydm1"]
ROWS = 5


def make_model() -> CTRNN:
    config = CTRNNConfig(
        input_size=85,
        output_size=33,
        hidden_size=12,
        activation="softplus",
        readout="sigmoid",
        dt=20.0,
        noise_scaling="sqrt_2_over_gamma",
    )
    return CTRNN(config, torch.Generator().manual_seed(0))


def sources(rows):
    """Per-row generators for the task and the model noise: row i's are seeded 10 + i, 50 + i."""
    env = RandomSource([torch.Generator().manual_seed(10 + i) for i in rows])
    noise = RandomSource([torch.Generator().manual_seed(50 + i) for i in rows])
    return env, noise


def task() -> MultitaskTask:
    return MultitaskTask(tasks=TASKS, obs_noise=0.05)


def per_row_loss_and_grad(model, loss_of_row, rows):
    values, grads = [], []
    for row in rows:
        loss = loss_of_row(row)
        values.append(loss.detach())
        grads.append(
            torch.autograd.grad(
                loss, [p for p in model.parameters() if p.requires_grad], retain_graph=True
            )
        )
    return torch.stack(values), grads


def assert_same_grads(batch_grads, alone_grads):
    for row, (a, b) in enumerate(zip(batch_grads, alone_grads, strict=True)):
        for g_batch, g_alone in zip(a, b, strict=True):
            torch.testing.assert_close(g_batch, g_alone, rtol=1e-4, atol=1e-7, msg=f"row {row}")


def test_rows_differ_in_length():
    state, _ = task().reset(ROWS, sources(range(ROWS))[0])
    assert len(set(state.length.tolist())) == ROWS
    assert int(state.length.max()) < task().horizon


def test_closed_loop_batch_equals_each_row_alone():
    """Per-row losses, metrics and gradients of a batch rollout equal single-row rollouts."""
    model = make_model()
    env, noise = sources(range(ROWS))
    batch = rollout(model, task(), ROWS, sigma=0.05, env_rng=env, noise=noise)
    assert batch.steps == int(batch.state.length.max())
    alone = []
    for row in range(ROWS):
        env, noise = sources([row])
        alone.append(rollout(model, task(), 1, sigma=0.05, env_rng=env, noise=noise))
        assert alone[-1].steps == int(batch.state.length[row])
    for name in ("perf", "mse", "task"):
        expected = torch.cat([result.metrics[name] for result in alone])
        torch.testing.assert_close(batch.metrics[name], expected, rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(
        batch.state.last_output,
        torch.cat([r.state.last_output for r in alone]),
        rtol=1e-5,
        atol=1e-7,
    )
    batch_losses, batch_grads = per_row_loss_and_grad(
        model, lambda i: batch.state.error_sum[i] / batch.state.weight_sum[i], range(ROWS)
    )
    alone_losses, alone_grads = per_row_loss_and_grad(
        model, lambda i: alone[i].state.teacher_mse[0], range(ROWS)
    )
    torch.testing.assert_close(batch_losses, alone_losses, rtol=1e-5, atol=1e-7)
    assert_same_grads(batch_grads, alone_grads)


def open_loop_row_losses(model, rows):
    """Per-row masked mean squared errors of the open-loop path, and the episode."""
    env, noise = sources(rows)
    episode = task().open_loop_episode(len(rows), env)
    actions = unroll(model, episode.observations, 0.05, noise)
    weighted = (episode.masks * (actions - episode.targets).square()).sum((0, 2))
    return weighted / episode.masks.sum((0, 2)), episode


def test_open_loop_batch_equals_each_row_alone_and_the_closed_loop():
    """The trainer's path: padded steps carry mask 0, so each row's loss and gradient are its own."""
    model = make_model()
    batch_losses, episode = open_loop_row_losses(model, list(range(ROWS)))
    lengths = task().reset(ROWS, sources(range(ROWS))[0])[0].length
    assert episode.observations.shape[0] == int(lengths.max())
    padded = torch.arange(int(lengths.max()))[:, None] >= lengths
    assert (episode.masks[padded] == 0).all() and padded.any()
    alone = [open_loop_row_losses(model, [row])[0] for row in range(ROWS)]
    torch.testing.assert_close(batch_losses, torch.cat(alone), rtol=1e-5, atol=1e-7)
    batch_grads = [
        torch.autograd.grad(
            batch_losses[i], [p for p in model.parameters() if p.requires_grad], retain_graph=True
        )
        for i in range(ROWS)
    ]
    alone_grads = [
        torch.autograd.grad(loss[0], [p for p in model.parameters() if p.requires_grad])
        for loss in alone
    ]
    assert_same_grads(batch_grads, alone_grads)
    env, noise = sources(range(ROWS))
    closed = rollout(model, task(), ROWS, sigma=0.05, env_rng=env, noise=noise)
    torch.testing.assert_close(batch_losses, closed.state.teacher_mse, rtol=1e-4, atol=1e-7)


def test_the_trainers_loss_is_the_same_on_either_path():
    """teacher_loss (open loop) equals the closed-loop rollout's loss on a mixed-length batch."""
    model = make_model()
    env, noise = sources(range(ROWS))
    open_loop = teacher_loss(model, task(), ROWS, sigma=0.05, env_rng=env, noise=noise)
    env, noise = sources(range(ROWS))
    closed = rollout(model, task(), ROWS, sigma=0.05, env_rng=env, noise=noise).teacher_loss
    torch.testing.assert_close(open_loop, closed, rtol=1e-4, atol=1e-7)


def test_a_sweep_keeps_the_task_label_so_perf_can_be_grouped_by_task():
    """The ``task`` column is the same trial's task at every level (common random numbers)."""
    result = sweep_noise(make_model(), MultitaskTask(), [0.0, 0.5], episodes=40, seed=1)
    assert set(result.metrics) == {"perf", "mse", "task"}
    labels = result.values("task")
    assert (labels[0] == labels[1]).all() and len(set(labels[0].tolist())) > 5
    assert result.primary_metric == "perf"
