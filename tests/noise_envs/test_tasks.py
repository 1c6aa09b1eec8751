"""Mechanics of the function-approximation and regulator simulators against hand-computed values."""

import math

import numpy as np
import pytest
import torch

from noise_envs import FunctionApproxTask, RegulatorTask

NUMPY_FUNCTIONS = {
    "sin": lambda x: np.sin(math.pi * x),
    "quadratic": lambda x: x**2,
    "abs": np.abs,
    "tanh_step": lambda x: np.tanh(5.0 * x),
}


def short_task(task_class, steps, **options):
    """A task with ``steps`` steps, the last one scored."""
    window = (
        {"response_steps": 1} if task_class is FunctionApproxTask else {"settle_steps": steps - 1}
    )
    return task_class(steps=steps, **window, **options)


def run_episode(task, state, actions):
    """Step through ``actions`` ([T, B, A]); returns states, rewards and dones per step."""
    states, rewards, dones = [state], [], []
    for action in actions:
        state, _, reward, done = task.step(state, action)
        states.append(state)
        rewards.append(reward)
        dones.append(done)
    return states, torch.stack(rewards), torch.stack(dones)


@pytest.mark.parametrize("name", sorted(NUMPY_FUNCTIONS))
def test_function_approx_target_is_f_of_the_cue(name):
    """The teacher target equals the named f applied to x, recomputed in numpy."""
    task = FunctionApproxTask(input_dim=3, function=name)
    state, obs = task.reset(64, generator=0)
    target, _ = task.teacher(state)
    x = obs.numpy().astype(np.float64)
    np.testing.assert_allclose(target.numpy(), NUMPY_FUNCTIONS[name](x), atol=1e-6)


def test_function_approx_cue_is_uniform_in_the_unit_cube():
    """x ~ U([-1, 1]^d): inside the cube, mean about 0 and variance about 1/3."""
    task = FunctionApproxTask(input_dim=2)
    _, obs = task.reset(20000, generator=1)
    assert obs.shape == (20000, 2)
    assert obs.min() >= -1.0 and obs.max() <= 1.0
    np.testing.assert_allclose(obs.mean(0).numpy(), 0.0, atol=0.02)
    np.testing.assert_allclose(obs.var(0).numpy(), 1.0 / 3.0, atol=0.01)


def test_function_approx_mask_window_covers_the_last_response_steps():
    """mask is 1 exactly on steps t >= steps - response_steps."""
    task = FunctionApproxTask(steps=6, response_steps=2)
    state, _ = task.reset(2, generator=0)
    masks = []
    for _ in range(6):
        _, mask = task.teacher(state)
        masks.append(mask[:, 0])
        state, _, _, _ = task.step(state, torch.zeros(2, 1))
    expected = torch.tensor([0, 0, 0, 0, 1, 1], dtype=torch.float32)
    torch.testing.assert_close(torch.stack(masks), expected[:, None].expand(6, 2))


def test_function_approx_rewards_termination_and_mse_by_hand():
    """Reward = -(a - x^2)^2 on scored steps, 0 before; done at `steps`; mse = window mean."""
    task = FunctionApproxTask(steps=4, response_steps=2, function="quadratic")
    state, obs = task.reset(3, generator=5)
    x = obs[:, 0].double()
    actions = torch.tensor([[0.9, -0.3, 0.1], [0.2, 0.4, 0.5], [0.3, 0.0, -1.0], [0.7, 0.8, 0.2]])
    states, rewards, dones = run_episode(task, state, actions[..., None])
    errors = (actions.double() - x**2) ** 2
    expected_rewards = -errors * torch.tensor([0.0, 0.0, 1.0, 1.0], dtype=torch.float64)[:, None]
    torch.testing.assert_close(rewards.double(), expected_rewards, rtol=1e-6, atol=1e-6)
    assert dones.tolist() == [[False] * 3, [False] * 3, [False] * 3, [True] * 3]
    final = states[-1]
    assert not final.truncated.any()
    mse = task.episode_metrics(final)["mse"].double()
    torch.testing.assert_close(mse, errors[2:].mean(0), rtol=1e-6, atol=1e-7)


def test_feedforward_function_approx_scores_its_single_step():
    """steps = 1: the one step is scored and ends the episode."""
    task = FunctionApproxTask(steps=1, response_steps=1, function="abs")
    state, obs = task.reset(4, generator=0)
    _, mask = task.teacher(state)
    assert mask.eq(1).all()
    action = torch.full((4, 1), 0.5)
    state, _, reward, done = task.step(state, action)
    assert done.all()
    torch.testing.assert_close(reward, -((0.5 - obs[:, 0].abs()) ** 2))


def test_user_callable_function_sets_the_action_size_and_target():
    """A callable f: [B, d] -> [B, k] fixes the action size k and is the target."""
    task = FunctionApproxTask(input_dim=2, function=lambda x: 0.5 * x.sum(-1, keepdim=True))
    assert task.action_space.shape == (1,)
    assert task.observation_space.shape == (2,)
    state, obs = task.reset(5, generator=3)
    target, _ = task.teacher(state)
    torch.testing.assert_close(target, 0.5 * (obs[:, :1] + obs[:, 1:]))


def test_regulator_setpoints_lie_in_the_range_and_are_the_target():
    """Setpoints are drawn in setpoint_range, shown as the observation and used as the target."""
    task = RegulatorTask(setpoint_range=(0.3, 0.6))
    state, obs = task.reset(2000, generator=0)
    target, _ = task.teacher(state)
    assert obs.min() >= 0.3 and obs.max() < 0.6
    assert abs(obs.mean().item() - 0.45) < 0.01
    torch.testing.assert_close(target, obs)


def test_regulator_fixed_setpoint_mask_and_mse_by_hand():
    """Fixed r = 0.5: mask from settle_steps on; mse is the mean of (a - r)^2 after settling."""
    task = RegulatorTask(setpoint=0.5, steps=5, settle_steps=3)
    state, obs = task.reset(1, generator=0)
    assert obs.item() == 0.5
    actions = torch.tensor([0.0, 1.0, 0.2, 0.4, 0.9])
    states, rewards, dones = run_episode(task, state, actions[:, None, None])
    masks = [task.teacher(s)[1].item() for s in states[:-1]]
    assert masks == [0.0, 0.0, 0.0, 1.0, 1.0]
    expected = [0.0, 0.0, 0.0, -((0.4 - 0.5) ** 2), -((0.9 - 0.5) ** 2)]
    np.testing.assert_allclose(rewards[:, 0].numpy(), expected, atol=1e-6)
    assert dones[:, 0].tolist() == [False, False, False, False, True]
    mse = task.episode_metrics(states[-1])["mse"].item()
    assert mse == pytest.approx((0.1**2 + 0.4**2) / 2, abs=1e-6)


@pytest.mark.parametrize("task_class", [FunctionApproxTask, RegulatorTask])
def test_observation_noise_has_the_requested_std(task_class):
    """obs - cue has mean 0 and std obs_noise, fresh each step."""
    task = task_class(obs_noise=0.1)
    state, obs0 = task.reset(8000, generator=2)
    state, obs1, _, _ = task.step(state, torch.zeros(8000, task.action_size))
    for obs in (obs0, obs1):
        noise = (obs - state.cue).flatten()
        assert abs(noise.mean().item()) < 0.005
        assert noise.std().item() == pytest.approx(0.1, rel=0.03)
    correlation = np.corrcoef((obs0 - state.cue).flatten(), (obs1 - state.cue).flatten())[0, 1]
    assert abs(correlation) < 0.05


@pytest.mark.parametrize("task_class", [FunctionApproxTask, RegulatorTask])
def test_zero_observation_noise_shows_the_cue_exactly(task_class):
    """With obs_noise = 0 every observation is the cue itself."""
    task = task_class()
    state, obs = task.reset(16, generator=0)
    torch.testing.assert_close(obs, state.cue, rtol=0, atol=0)
    _, obs, _, _ = task.step(state, torch.zeros(16, task.action_size))
    torch.testing.assert_close(obs, state.cue, rtol=0, atol=0)


@pytest.mark.parametrize("task_class", [FunctionApproxTask, RegulatorTask])
def test_noisy_observations_stay_in_the_observation_space(task_class):
    """Large noise is clipped to the finite bounds 1 + 5 * obs_noise."""
    task = short_task(task_class, 3, obs_noise=0.6)
    bound = 1.0 + 5.0 * 0.6
    np.testing.assert_allclose(task.observation_space.high, bound)
    state, obs = task.reset(20000, generator=0)
    all_obs = [obs]
    for _ in range(2):
        state, obs, _, _ = task.step(state, torch.zeros(20000, task.action_size))
        all_obs.append(obs)
    stacked = torch.cat(all_obs)
    assert stacked.abs().max().item() <= bound
    assert all(task.observation_space.contains(row.numpy()) for row in stacked[:200])


@pytest.mark.parametrize("task_class", [FunctionApproxTask, RegulatorTask])
def test_ended_rows_are_frozen(task_class):
    """After the episode ends, steps leave t, the error sums and done alone and pay reward 0."""
    task = short_task(task_class, 2, obs_noise=0.1)
    state, _ = task.reset(3, generator=0)
    for _ in range(2):
        state, _, _, done = task.step(state, torch.full((3, task.action_size), 0.3))
    assert done.all()
    metrics = task.episode_metrics(state)["mse"].clone()
    later, _, reward, done = task.step(state, torch.full((3, task.action_size), -0.9))
    assert reward.eq(0).all() and done.all()
    assert later.t.tolist() == [2, 2, 2]
    torch.testing.assert_close(later.error_sum, state.error_sum)
    torch.testing.assert_close(later.weight_sum, state.weight_sum)
    torch.testing.assert_close(task.episode_metrics(later)["mse"], metrics)


@pytest.mark.parametrize("task_class", [FunctionApproxTask, RegulatorTask])
def test_same_seed_gives_the_same_episode(task_class):
    """Two resets with seed 7 give identical observations step by step; seed 8 differs."""

    def observations(seed):
        state, obs = task.reset(4, generator=seed)
        trace = [obs]
        for _ in range(3):
            state, obs, _, _ = task.step(state, torch.zeros(4, task.action_size))
            trace.append(obs)
        return torch.stack(trace)

    task = task_class(obs_noise=0.2)
    for step, (a, b) in enumerate(zip(observations(7), observations(7), strict=True)):
        assert torch.equal(a, b), f"step {step} differs"
    assert not torch.equal(observations(7), observations(8))


def test_a_step_does_not_mutate_the_given_state():
    """Task.step is pure: the input state's tensors are unchanged."""
    task = FunctionApproxTask(steps=3, response_steps=2)
    state, _ = task.reset(2, generator=0)
    before = {name: getattr(state, name).clone() for name in ("t", "done", "error_sum", "cue")}
    task.step(state, torch.ones(2, 1))
    for name, value in before.items():
        assert torch.equal(getattr(state, name), value), name
