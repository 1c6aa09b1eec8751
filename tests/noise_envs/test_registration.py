"""Registration: every id reaches the same simulator through make_task, make and make_vec."""

import subprocess
import sys
import textwrap
import warnings

import gymnasium
import pytest

from noise_envs import (
    TASKS,
    FunctionApproxTask,
    MazeTask,
    MultitaskTask,
    PathIntegrationTask,
    RegulatorTask,
    TaskEnv,
    TaskVectorEnv,
    make_task,
    register_envs,
    task_class,
)

ENV_IDS = sorted(TASKS)


def test_the_registry_holds_both_tasks():
    assert TASKS == {
        "NoisyFunctionApprox-v0": FunctionApproxTask,
        "NoisyRegulator-v0": RegulatorTask,
        "NoisyMaze-v0": MazeTask,
        "NoisyPathIntegration-v0": PathIntegrationTask,
        "NoisyMultitask-v0": MultitaskTask,
    }


@pytest.mark.parametrize("env_id", ENV_IDS)
@pytest.mark.parametrize("prefix", ["", "noise_envs/"])
def test_every_id_is_registered_bare_and_namespaced(env_id, prefix):
    """gymnasium.make gives a TaskEnv around the registered task class, wrapped by Gymnasium."""
    env = gymnasium.make(prefix + env_id)
    assert isinstance(env.unwrapped, TaskEnv)
    assert type(env.unwrapped.task) is TASKS[env_id]
    assert env.spec.id == prefix + env_id
    assert env.spec.vector_entry_point == "noise_envs.vector_env:TaskVectorEnv"


@pytest.mark.parametrize(
    "env_id", ["NoisyRegulator-v0", "noise_envs/NoisyRegulator-v0", "noise_envs:NoisyRegulator-v0"]
)
def test_task_class_accepts_every_spelling(env_id):
    assert task_class(env_id) is RegulatorTask


def test_kwargs_pass_through_gymnasium_make():
    """setpoint=0.5 reaches the task: the observation and the target are 0.5 exactly."""
    env = gymnasium.make("NoisyRegulator-v0", setpoint=0.5)
    obs, info = env.reset(seed=0)
    assert obs.tolist() == [0.5] and info["target"].tolist() == [0.5]
    assert env.unwrapped.task.config == make_task("NoisyRegulator-v0", setpoint=0.5).config


def test_kwargs_pass_through_make_vec():
    envs = gymnasium.make_vec(
        "NoisyFunctionApprox-v0", num_envs=2, input_dim=3, steps=4, response_steps=4
    )
    assert isinstance(envs, TaskVectorEnv)
    assert envs.observation_space.shape == (2, 3)
    assert (
        envs.task.config
        == make_task("NoisyFunctionApprox-v0", input_dim=3, steps=4, response_steps=4).config
    )


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_make_vec_uses_the_vector_entry_point(env_id):
    envs = gymnasium.make_vec(env_id, num_envs=3, vectorization_mode="vector_entry_point")
    assert isinstance(envs, TaskVectorEnv) and envs.num_envs == 3
    assert repr(envs) == f"TaskVectorEnv({env_id}, num_envs=3)"
    obs, _ = envs.reset(seed=0)
    assert obs.shape == (3, *envs.single_observation_space.shape)


def test_make_with_the_module_prefix_imports_the_package_lazily():
    """In a fresh interpreter that never imports noise_envs, "noise_envs:Id" still works."""
    script = textwrap.dedent(
        """
        import sys
        import gymnasium
        assert "noise_envs" not in sys.modules
        env = gymnasium.make("noise_envs:NoisyRegulator-v0", setpoint=0.25)
        obs, info = env.reset(seed=0)
        print(type(env.unwrapped).__name__, obs.tolist())
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "TaskEnv [0.25]"


def test_make_task_returns_the_simulator_for_the_same_options():
    task = make_task("noise_envs/NoisyFunctionApprox-v0", function="abs", steps=3, response_steps=1)
    assert isinstance(task, FunctionApproxTask)
    assert (task.config.function, task.horizon) == ("abs", 3)


def test_registering_twice_is_harmless():
    """register_envs skips ids that exist, so re-importing or calling it again does not warn."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        register_envs()
    assert all(env_id in gymnasium.registry for env_id in ENV_IDS)
