"""Every bad option, batch size, action and environment id raises an error that names it."""

import math
import re

import gymnasium
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import noise_envs  # noqa: F401  (registers the ids)
from noise_envs import TASKS, FunctionApproxTask, RegulatorTask, TaskEnv, make_task, task_class
from noise_envs._checks import check_finite_tensor
from noise_envs.core import MAX_ACTION_MAGNITUDE


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"steps": 0}, "`steps` must be an integer >= 1, got 0"),
        ({"steps": -3}, "`steps` must be an integer >= 1, got -3"),
        ({"steps": 2.5}, "`steps` must be an integer >= 1, got 2.5"),
        ({"steps": True}, "`steps` must be an integer >= 1, got True"),
        ({"input_dim": 0}, "`input_dim` must be an integer >= 1, got 0"),
        ({"response_steps": 0}, "`response_steps` must be an integer >= 1, got 0"),
        ({"steps": 5, "response_steps": 6}, "`response_steps` must be <= `steps` (5), got 6"),
        (
            {"function": "sine"},
            "`function` must be one of ['sin', 'quadratic', 'abs', 'tanh_step'], got 'sine'. Did you mean 'sin'?",
        ),
        ({"obs_noise": -0.1}, "`obs_noise` must be >= 0, got -0.1"),
        ({"obs_noise": float("nan")}, "`obs_noise` must be finite, got nan"),
        ({"obs_noise": "0.1"}, "`obs_noise` must be a real number, got '0.1'"),
    ],
)
def test_function_approx_options(options, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        FunctionApproxTask(**options)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"setpoint": 1.5}, "`setpoint` must be in [-1.0, 1.0], got 1.5"),
        ({"setpoint": -2}, "`setpoint` must be in [-1.0, 1.0], got -2"),
        ({"setpoint_range": (0.0, 2.0)}, "`setpoint_range[1]` must be in [-1.0, 1.0], got 2.0"),
        ({"setpoint_range": (-1.5, 0.0)}, "`setpoint_range[0]` must be in [-1.0, 1.0], got -1.5"),
        ({"setpoint_range": (0.5, 0.2)}, "`setpoint_range` must have low <= high, got (0.5, 0.2)"),
        (
            {"setpoint_range": (0.1, 0.2, 0.3)},
            "`setpoint_range` must be (low, high), got (0.1, 0.2, 0.3)",
        ),
        ({"steps": 0}, "`steps` must be an integer >= 1, got 0"),
        (
            {"steps": 10, "settle_steps": 10},
            "`settle_steps` must be an integer in [0, steps) = [0, 10), got 10",
        ),
        (
            {"settle_steps": 2.5},
            "`settle_steps` must be an integer in [0, steps) = [0, 60), got 2.5",
        ),
        ({"settle_steps": -1}, "`settle_steps` must be >= 0, got -1"),
        ({"obs_noise": -1.0}, "`obs_noise` must be >= 0, got -1.0"),
    ],
)
def test_regulator_options(options, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        RegulatorTask(**options)


@settings(max_examples=30, deadline=None)
@given(obs_noise=st.floats(max_value=-1e-9, allow_nan=False, allow_infinity=False))
def test_any_negative_obs_noise_is_refused(obs_noise):
    """Property: no negative noise level is accepted by either task."""
    for task_cls in (FunctionApproxTask, RegulatorTask):
        with pytest.raises(ValueError, match="`obs_noise` must be >= 0"):
            task_cls(obs_noise=obs_noise)


@settings(max_examples=30, deadline=None)
@given(steps=st.integers(max_value=0))
def test_any_non_positive_steps_is_refused(steps):
    """Property: episodes need at least one step."""
    with pytest.raises(
        ValueError, match=re.escape(f"`steps` must be an integer >= 1, got {steps}")
    ):
        FunctionApproxTask(steps=steps)


def test_unknown_option_name_is_named():
    """A misspelt keyword is refused, naming it (TypeError today; see the report for ValueError)."""
    with pytest.raises((TypeError, ValueError), match="setpont"):
        RegulatorTask(setpont=0.5)


@pytest.mark.parametrize("batch_size", [0, -1, 2.0])
def test_reset_batch_size_must_be_positive(batch_size):
    with pytest.raises(ValueError, match=f"`batch_size` must be an integer >= 1, got {batch_size}"):
        RegulatorTask().reset(batch_size, generator=0)


def test_simulator_action_of_wrong_shape():
    task = FunctionApproxTask()
    state, _ = task.reset(2, generator=0)
    with pytest.raises(
        ValueError, match=re.escape("Expected `action` of shape [2, 1], got (2, 2)")
    ):
        task.step(state, torch.zeros(2, 2))
    with pytest.raises(ValueError, match=re.escape("Expected `action` of shape [2, 1], got (2,)")):
        task.step(state, torch.zeros(2))


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_simulator_action_must_be_finite(bad):
    task = RegulatorTask()
    state, _ = task.reset(2, generator=0)
    with pytest.raises(ValueError, match="`action` must be finite"):
        task.step(state, torch.tensor([[0.0], [bad]]))


@pytest.mark.parametrize("action", [np.zeros(2), np.zeros((1, 1)), np.float32(0.0)])
def test_env_action_of_wrong_shape_names_the_expected_shape(action):
    env = TaskEnv("NoisyRegulator-v0")
    env.reset(seed=0)
    with pytest.raises(ValueError, match=r"Expected `action` of shape \[1\], got"):
        env.step(action)


def test_env_action_with_nan_is_refused():
    env = TaskEnv("NoisyFunctionApprox-v0", input_dim=2)
    env.reset(seed=0)
    with pytest.raises(ValueError, match="`action` must be finite"):
        env.step(np.array([0.0, np.nan], dtype=np.float32))


def test_unknown_id_in_make_task_suggests_the_closest():
    message = f"unknown environment id 'NoisyRegulater-v0'; registered ids: {sorted(TASKS)}. Did you mean 'NoisyRegulator-v0'?"
    with pytest.raises(ValueError, match=re.escape(message)):
        make_task("NoisyRegulater-v0")


def test_unknown_namespaced_id_suggests_the_bare_one():
    with pytest.raises(ValueError, match=re.escape("Did you mean 'NoisyFunctionApprox-v0'?")):
        task_class("noise_envs/NoisyFunctionAprox-v0")


def test_unknown_id_in_env_constructor():
    with pytest.raises(ValueError, match="unknown environment id 'NoisyMaze-v9'"):
        TaskEnv("NoisyMaze-v9")


def test_unknown_id_in_gymnasium_make_suggests_the_closest():
    """Gymnasium's own registry error, with its did-you-mean."""
    with pytest.raises(gymnasium.error.NameNotFound, match="Did you mean: `NoisyRegulator`"):
        gymnasium.make("NoisyRegulater-v0")


@pytest.mark.parametrize("dtype", [torch.float16, torch.float32, torch.float64])
def test_check_finite_tensor_counts_nan_and_infinite_entries(dtype):
    """The count in the message is the number of bad entries put in (2 NaN, 1 inf)."""
    values = torch.tensor([0.0, float("nan"), 1.0, float("inf"), float("nan")], dtype=dtype)
    with pytest.raises(ValueError, match=r"`x` must be finite, got 2 NaN and 1 infinite entries"):
        check_finite_tensor("x", values)


def test_check_finite_tensor_passes_finite_and_integer_tensors_through():
    """Finite float tensors and integer tensors (always finite) are returned as they are."""
    values = torch.tensor([1e38, -1e38, 0.5])  # large, but their sum is finite
    assert check_finite_tensor("x", values) is values
    integers = torch.tensor([1, 2, 3])
    assert check_finite_tensor("x", integers) is integers


def test_check_finite_tensor_names_entries_whose_sum_overflows():
    """Finite entries near float32's limit whose sum overflows are refused, not called NaN."""
    with pytest.raises(
        ValueError, match=r"`x` must be finite, got entries so large \(max 3e\+38\)"
    ):
        check_finite_tensor("x", torch.full((4,), 3e38))


def test_action_at_the_magnitude_limit_is_accepted_and_just_above_refused():
    """MAX_ACTION_MAGNITUDE is inclusive: 1e6 steps, the next float32 above it does not."""
    task = RegulatorTask(steps=2, settle_steps=0)
    state, _ = task.reset(1, generator=0)
    limit = torch.tensor([[MAX_ACTION_MAGNITUDE]])
    _, _, reward, _ = task.step(state, limit)
    target, _ = task.teacher(state)
    torch.testing.assert_close(reward, -((limit - target) ** 2).sum(-1))
    above = torch.nextafter(limit, torch.tensor(math.inf))
    with pytest.raises(ValueError, match=r"got max \|action\| = 1e\+06"):
        task.step(state, above)
