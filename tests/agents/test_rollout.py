"""Tests of agents.rollout and agents.policy: closed-loop rollouts against hand-computed losses."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from agents.ctrnn import CTRNN, CTRNNConfig
from agents.mlp import NoisyMLP, NoisyMLPConfig
from agents.policy import Policy, SequencePolicy
from agents.rollout import Rollout, rollout, teacher_loss, unroll
from noise_envs import RegulatorTask, make_task
from noise_envs.random import RandomSource

BATCH = 6
HIDDEN = 8


def as_numpy(tensor: torch.Tensor) -> np.ndarray:
    return tensor.detach().double().numpy()


def assert_same(actual: torch.Tensor, expected: torch.Tensor) -> None:
    np.testing.assert_array_equal(as_numpy(actual), as_numpy(expected))


def assert_near(actual: torch.Tensor, expected: torch.Tensor) -> None:
    np.testing.assert_allclose(as_numpy(actual), as_numpy(expected), rtol=1e-5, atol=1e-6)


def function_task():
    return make_task("NoisyFunctionApprox-v0", steps=10, response_steps=4, function="sin")


def regulator_task(**options):
    return make_task("NoisyRegulator-v0", **{"steps": 12, "settle_steps": 5, **options})


def make_ctrnn(task, *, placement="in", activation="softplus", seed=0) -> CTRNN:
    config = CTRNNConfig(
        input_size=task.obs_size,
        output_size=task.action_size,
        hidden_size=HIDDEN,
        activation=activation,
        placement=placement,
        dt=20.0,
        tau=100.0,
    )
    model = CTRNN(config, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        model.b.fill_(0.1)
        model.b_out.fill_(0.05)
    return model


def hand_targets_and_masks(task_id: str, observations: np.ndarray, first_scored: int):
    """Targets [T, B, A] from the (noise-free) cues, and masks that are 1 from first_scored on."""
    cue = observations[0]
    target = np.sin(math.pi * cue) if task_id == "function" else cue
    steps = observations.shape[0]
    targets = np.broadcast_to(target, (steps, *target.shape))
    masks = (np.arange(steps) >= first_scored).astype(float)[:, None, None]
    return targets, np.broadcast_to(masks, targets.shape)


CASES = [("function", function_task, 10 - 4), ("regulator", regulator_task, 5)]


@pytest.mark.parametrize(("task_id", "make", "first_scored"), CASES)
def test_teacher_loss_equals_hand_computed_mse(task_id, make, first_scored):
    """teacher_loss and per-row mse equal the masked squared error of the recorded actions."""
    task = make()
    model = make_ctrnn(task)
    result = rollout(
        model,
        task,
        BATCH,
        sigma=0.3,
        env_rng=1,
        noise=torch.Generator().manual_seed(2),
        record=True,
    )
    observations = result.observations.double().numpy()
    actions = result.actions.double().numpy()
    targets, masks = hand_targets_and_masks(task_id, observations, first_scored)
    # the cue is constant within an episode when there is no observation noise
    np.testing.assert_array_equal(
        observations, np.broadcast_to(observations[0], observations.shape)
    )
    squared = masks * (actions - targets) ** 2
    want_loss = squared.sum() / masks.sum()
    assert result.teacher_loss.item() == pytest.approx(want_loss, rel=1e-5)
    want_rows = squared.sum(axis=(0, 2)) / masks.sum(axis=(0, 2))
    np.testing.assert_allclose(result.metrics["mse"].detach().numpy(), want_rows, rtol=1e-5)


@pytest.mark.parametrize(("task_id", "make", "first_scored"), CASES)
def test_recorded_tensors_are_time_major_over_the_horizon(task_id, make, first_scored):
    """record=True returns [T, B, ...] with T = horizon; the policy states replay the actions."""
    task = make()
    model = make_ctrnn(task)
    result = rollout(model, task, BATCH, sigma=0.0, env_rng=3, record=True)
    steps = task.horizon
    assert result.steps == steps
    assert result.observations.shape == (steps, BATCH, task.obs_size)
    assert result.actions.shape == (steps, BATCH, task.action_size)
    assert result.policy_states.shape == (steps, BATCH, HIDDEN)
    assert result.alive.shape == (steps, BATCH)
    assert result.alive.all()
    assert result.state.done.all()
    assert_near(result.actions, model.readout(result.policy_states).detach())
    outputs, states = model(result.observations, sigma=0.0)
    assert_near(result.policy_states, states.detach())
    assert_near(result.actions, outputs.detach())


def test_without_record_nothing_is_kept_and_the_loss_is_the_same():
    """record=False keeps no trace but gives the same loss and metrics for the same seeds."""
    task = function_task()
    model = make_ctrnn(task)

    def run(record):
        return rollout(
            model,
            task,
            BATCH,
            sigma=0.2,
            env_rng=5,
            noise=torch.Generator().manual_seed(6),
            record=record,
        )

    plain, recorded = run(False), run(True)
    assert isinstance(plain, Rollout)
    for trace in (plain.observations, plain.actions, plain.policy_states, plain.alive):
        assert trace is None
    assert plain.teacher_loss.item() == recorded.teacher_loss.item()
    assert_same(plain.metrics["mse"], recorded.metrics["mse"])


def test_same_seeds_replay_and_other_noise_seeds_differ():
    """The same env and noise seeds replay a rollout exactly; another noise seed changes it."""
    task = regulator_task()
    model = make_ctrnn(task, placement="out")

    def actions(noise_seed):
        return rollout(
            model,
            task,
            BATCH,
            sigma=0.4,
            env_rng=7,
            noise=torch.Generator().manual_seed(noise_seed),
            record=True,
        ).actions

    assert_same(actions(1), actions(1))
    assert not torch.allclose(actions(1), actions(2))


def test_per_row_sigma_rows_match_separate_rollouts():
    """A [B] sigma in a rollout: the sigma-0 row equals a noise-free rollout's row."""
    task = function_task()
    model = make_ctrnn(task)
    sigma = torch.tensor([0.0, 0.5, 0.0, 1.0, 0.2, 0.0])
    mixed = rollout(
        model,
        task,
        BATCH,
        sigma=sigma,
        env_rng=4,
        noise=torch.Generator().manual_seed(0),
        record=True,
    )
    clean = rollout(model, task, BATCH, sigma=0.0, env_rng=4, record=True)
    zero_rows = sigma == 0
    assert_near(mixed.actions[:, zero_rows], clean.actions[:, zero_rows])
    assert not torch.allclose(mixed.actions[:, ~zero_rows], clean.actions[:, ~zero_rows])


def test_positive_sigma_without_noise_source_raises():
    """A noisy rollout with no noise source fails early and says how to pass one."""
    task = regulator_task()
    with pytest.raises(ValueError, match=r"needs `noise`"):
        rollout(make_ctrnn(task), task, 2, sigma=0.1, env_rng=0)


def test_gradients_reach_every_parameter_and_match_the_readout_bias_formula():
    """d loss / d b_out = 2 sum(mask (y - target)) / sum(mask), and all weights get a gradient."""
    task = function_task()
    model = make_ctrnn(task, activation="tanh")
    result = rollout(
        model,
        task,
        BATCH,
        sigma=0.1,
        env_rng=8,
        noise=torch.Generator().manual_seed(9),
        record=True,
    )
    result.teacher_loss.backward()
    targets, masks = hand_targets_and_masks(
        "function", result.observations.double().numpy(), first_scored=6
    )
    residual = masks * (result.actions.double().numpy() - targets)
    want = 2.0 * residual.sum(axis=(0, 1)) / masks.sum()
    np.testing.assert_allclose(model.b_out.grad.double().numpy(), want, rtol=1e-4, atol=1e-7)
    for name in ("W", "U", "b", "W_out", "b_out"):
        grad = getattr(model, name).grad
        assert grad is not None, name
        assert torch.isfinite(grad).all(), name
        assert grad.abs().sum() > 0, name


def test_ctrnn_is_a_policy_and_arbitrary_objects_are_not():
    """The CTRNN satisfies the runtime-checkable Policy protocol; an object without step does not."""
    assert isinstance(make_ctrnn(regulator_task()), Policy)
    assert not isinstance(object(), Policy)

    class OnlyInitialState:
        def initial_state(self, batch_size, device="cpu"):
            return None

    assert not isinstance(OnlyInitialState(), Policy)


class EchoPolicy:
    """Acts with its observation plus sigma * xi, and counts its steps in its state."""

    def initial_state(self, batch_size: int, device: torch.device | str = "cpu") -> torch.Tensor:
        return torch.zeros(batch_size, device=device)

    def step(self, obs, state, sigma=0.0, noise=None):
        action = obs
        if not (isinstance(sigma, float) and sigma == 0.0):
            sigma = torch.as_tensor(sigma, dtype=obs.dtype).reshape(-1, 1)
            action = obs + sigma * torch.randn(obs.shape, generator=noise)
        return action, state + 1


def test_hand_written_policy_is_a_policy_and_runs_in_a_rollout():
    """A minimal Policy echoing the setpoint has zero regulator loss; its state counts the steps."""
    task = regulator_task()
    policy = EchoPolicy()
    assert isinstance(policy, Policy)
    result = rollout(policy, task, BATCH, env_rng=0, record=True)
    assert result.teacher_loss.item() == 0.0
    assert torch.equal(result.metrics["mse"], torch.zeros(BATCH))
    steps = torch.arange(1, task.horizon + 1, dtype=torch.float32)
    assert torch.equal(result.policy_states, steps[:, None].expand(-1, BATCH))


def test_hand_written_policy_noise_gives_the_expected_loss():
    """Echo plus N(0, s^2) noise gives a regulator loss near s^2, computed from its own samples."""
    task = regulator_task(steps=40, settle_steps=10)
    result = rollout(
        EchoPolicy(),
        task,
        512,
        sigma=0.3,
        env_rng=0,
        noise=torch.Generator().manual_seed(1),
        record=True,
    )
    scored = (result.actions[10:] - result.observations[10:]) ** 2
    assert result.teacher_loss.item() == pytest.approx(scored.mean().item(), rel=1e-5)
    assert result.teacher_loss.item() == pytest.approx(0.09, rel=0.05)


def test_constant_policy_loss_is_the_squared_offset_from_a_fixed_setpoint():
    """Acting with a constant c on a fixed setpoint r costs exactly (c - r)^2."""

    class ConstantPolicy:
        def initial_state(self, batch_size, device="cpu"):
            return batch_size

        def step(self, obs, state, sigma=0.0, noise=None):
            return torch.full((state, 1), -0.25), state

    task = regulator_task(setpoint=0.5)
    result = rollout(ConstantPolicy(), task, BATCH, env_rng=0)
    assert result.teacher_loss.item() == pytest.approx(0.75**2, rel=1e-6)
    assert torch.allclose(result.metrics["mse"], torch.full((BATCH,), 0.75**2))


class StaggeredRegulator(RegulatorTask):
    """The regulator, but row i ends i % 3 steps before the horizon, so weight sums differ."""

    def _terminal(self, state):
        lengths = self.config.steps - torch.arange(state.batch_size, device=state.t.device) % 3
        return state.t >= lengths


def test_rows_that_end_early_are_frozen_and_weighted_by_their_scored_steps():
    """With unequal episode lengths, teacher_loss pools squared errors over alive scored steps."""
    task = StaggeredRegulator(steps=12, settle_steps=5)
    model = make_ctrnn(task)
    result = rollout(
        model,
        task,
        BATCH,
        sigma=0.2,
        env_rng=3,
        noise=torch.Generator().manual_seed(4),
        record=True,
    )
    lengths = 12 - np.arange(BATCH) % 3
    want_alive = np.arange(12)[:, None] < lengths[None, :]
    assert result.steps == 12
    np.testing.assert_array_equal(result.alive.numpy(), want_alive)
    np.testing.assert_array_equal(result.state.t.numpy(), lengths)
    scored = want_alive & (np.arange(12)[:, None] >= 5)
    setpoint = result.observations[0, :, 0].double().numpy()
    squared = scored * (result.actions[..., 0].double().numpy() - setpoint) ** 2
    assert result.teacher_loss.item() == pytest.approx(squared.sum() / scored.sum(), rel=1e-5)
    np.testing.assert_allclose(
        result.metrics["mse"].detach().numpy(), squared.sum(0) / scored.sum(0), rtol=1e-5
    )


def loss_and_gradients(compute_loss, model):
    loss = compute_loss()
    params = [param for param in model.parameters() if param.requires_grad]
    return loss.detach(), torch.autograd.grad(loss, params)


def both_losses(model, task, batch, sigma):
    """The closed-loop rollout's loss and teacher_loss's, each with its gradients."""

    def closed():
        return rollout(
            model, task, batch, sigma=sigma, env_rng=5, noise=RandomSource.from_seed(6)
        ).teacher_loss

    def sequence():
        return teacher_loss(
            model, task, batch, sigma=sigma, env_rng=5, noise=RandomSource.from_seed(6)
        )

    return loss_and_gradients(closed, model), loss_and_gradients(sequence, model)


@pytest.mark.parametrize("placement", ["in", "out"])
@pytest.mark.parametrize("sigma", [0.0, 0.4, "per_row"])
@pytest.mark.parametrize("batch", [BATCH, 16])
def test_open_loop_teacher_loss_equals_the_closed_loop_rollout(placement, sigma, batch):
    """Same loss and gradients as the rollout (float rounding apart): same episodes, same noise."""
    task = regulator_task(obs_noise=0.1)
    if sigma == "per_row":
        sigma = torch.linspace(0.0, 1.0, batch)
    model = make_ctrnn(task, placement=placement)
    (closed, closed_grads), (sequence, sequence_grads) = both_losses(model, task, batch, sigma)
    assert_near(sequence, closed)
    for got, want in zip(sequence_grads, closed_grads, strict=True):
        np.testing.assert_allclose(as_numpy(got), as_numpy(want), rtol=1e-4, atol=1e-6)


def test_teacher_loss_steps_a_policy_without_unroll_through_the_episode():
    """A NoisyMLP has no unroll: stepped through the inputs, it gives the rollout's loss."""
    task = function_task()
    model = NoisyMLP(NoisyMLPConfig(input_size=1, output_size=1, hidden_size=8))
    assert isinstance(model, Policy) and not isinstance(model, SequencePolicy)
    (closed, closed_grads), (sequence, sequence_grads) = both_losses(model, task, BATCH, 0.3)
    assert_near(sequence, closed)
    for got, want in zip(sequence_grads, closed_grads, strict=True):
        assert_near(got, want)


def test_closed_loop_tasks_get_the_rollout_loss_exactly():
    """On the maze, teacher_loss is the closed-loop rollout's loss, bit for bit."""
    task = make_task("NoisyMaze-v0", size=3)
    config = CTRNNConfig(input_size=task.obs_size, output_size=task.action_size, hidden_size=8)
    model = CTRNN(config)
    (closed, closed_grads), (sequence, sequence_grads) = both_losses(model, task, BATCH, 0.5)
    assert torch.equal(sequence, closed)
    for got, want in zip(sequence_grads, closed_grads, strict=True):
        assert torch.equal(got, want)


def test_unroll_uses_the_policy_sequence_method_or_steps_it():
    """unroll gives CTRNN.unroll for a sequence policy and the stepped actions for others."""
    task = regulator_task()
    model = make_ctrnn(task)
    assert isinstance(model, SequencePolicy)
    inputs = torch.rand(7, BATCH, 1, generator=torch.Generator().manual_seed(0))
    got = unroll(model, inputs, 0.2, RandomSource.from_seed(1))
    want = model.unroll(inputs, 0.2, RandomSource.from_seed(1))
    assert torch.equal(got, want)
    echoed = unroll(EchoPolicy(), inputs)
    assert torch.equal(echoed, inputs)


def test_one_source_for_task_and_noise_runs_the_closed_loop():
    """With env_rng and noise the same source the draws interleave; teacher_loss then is the
    rollout's loss bit for bit, and leaves the source where the rollout does."""
    task = regulator_task(obs_noise=0.1)
    model = make_ctrnn(task)
    shared, reference = RandomSource.from_seed(8), RandomSource.from_seed(8)
    got = teacher_loss(model, task, BATCH, sigma=0.3, env_rng=shared, noise=shared)
    want = rollout(model, task, BATCH, sigma=0.3, env_rng=reference, noise=reference)
    assert torch.equal(got, want.teacher_loss)
    assert torch.equal(shared.normal(2, 2), reference.normal(2, 2))
