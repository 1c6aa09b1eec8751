"""Registration: every id reaches the same simulator through make_task, make and make_vec."""

import inspect
import pickle
import pydoc
import subprocess
import sys
import textwrap
import warnings

import gymnasium
import numpy as np
import pytest

import noise_envs.env
import noise_envs.vector_env
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
from noise_envs.env import task_env_class
from noise_envs.vector_env import task_vector_env_class

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
    """gymnasium.make gives the task's own TaskEnv around its task class, wrapped by Gymnasium."""
    env = gymnasium.make(prefix + env_id)
    assert isinstance(env.unwrapped, TaskEnv)
    name = TASKS[env_id].__name__.removesuffix("Task")
    assert type(env.unwrapped).__name__ == f"{name}Env"
    assert type(env.unwrapped.task) is TASKS[env_id]
    assert env.spec.id == prefix + env_id
    assert env.spec.vector_entry_point == f"noise_envs.vector_env:{name}VectorEnv"


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
    name = TASKS[env_id].__name__.removesuffix("Task")
    assert repr(envs) == f"{name}VectorEnv({env_id}, num_envs=3)"
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
    assert result.stdout.strip() == "RegulatorEnv [0.25]"


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


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_help_shows_the_tasks_own_description(env_id):
    """help(env.unwrapped) starts with the task's docstring: spaces, rewards, episode end."""
    env = gymnasium.make(env_id)
    text = pydoc.render_doc(env.unwrapped, renderer=pydoc.plaintext)
    task_doc = inspect.cleandoc(TASKS[env_id].__doc__).split("\nExample")[0].rstrip()
    assert inspect.getdoc(env.unwrapped).startswith(task_doc)
    assert task_doc.splitlines()[0] in text and "A single environment (batch 1)" in text
    assert text.index(task_doc.splitlines()[0]) < text.index("A single environment (batch 1)")
    for section in ("## Observation Space", "## Action Space", "## Episode End", "## Metrics"):
        assert section in text, section
    envs = gymnasium.make_vec(env_id, num_envs=2, vectorization_mode="vector_entry_point")
    assert inspect.getdoc(envs).startswith(task_doc)


def test_task_adapter_classes_are_made_once_and_pickle_by_name():
    env = gymnasium.make("NoisyMaze-v0").unwrapped
    assert task_env_class(MazeTask) is type(env) is noise_envs.env.MazeEnv
    assert task_vector_env_class(MazeTask) is noise_envs.vector_env.MazeVectorEnv
    assert type(pickle.loads(pickle.dumps(env))) is type(env)
    assert noise_envs.env.MazeEnv(size=3).task.config.size == 3


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_max_episode_steps_is_the_default_horizon(env_id):
    """The spec's length is the task's; both end the default episode at the same step."""
    horizon = make_task(env_id).horizon
    assert gymnasium.spec(env_id).max_episode_steps == horizon
    assert gymnasium.spec(f"noise_envs/{env_id}").max_episode_steps == horizon
    env = gymnasium.make(env_id)
    assert env.spec.max_episode_steps == horizon
    env.reset(seed=0)
    action = np.zeros(env.action_space.shape, dtype=np.float32)
    steps, ended = 0, False
    while not ended:
        _, _, terminated, truncated, info = env.step(action)
        steps, ended = steps + 1, terminated or truncated
    assert steps <= horizon and "episode_metrics" in info  # the task ended it, not TimeLimit


def test_options_that_shorten_episodes_end_at_the_tasks_horizon():
    horizon = make_task("NoisyRegulator-v0", steps=3, settle_steps=0).horizon
    assert horizon < gymnasium.spec("NoisyRegulator-v0").max_episode_steps
    env = gymnasium.make("NoisyRegulator-v0", steps=3, settle_steps=0)
    env.reset(seed=0)
    results = [env.step(np.zeros(1, dtype=np.float32)) for _ in range(horizon)]
    assert [r[2] or r[3] for r in results] == [False] * (horizon - 1) + [True]
    assert "episode_metrics" in results[-1][4]


def test_options_that_lengthen_episodes_need_max_episode_steps_and_warn_without():
    """gymnasium.make's TimeLimit is the registered 228 steps whatever the options."""
    task = make_task("NoisyMaze-v0", size=7)
    assert task.horizon > 228
    cut = gymnasium.make("NoisyMaze-v0", size=7)
    cut.reset(seed=0)
    action = np.zeros(2, dtype=np.float32)
    steps = 0
    truncated = False
    while not truncated:
        *_, truncated, info = cut.step(action)
        steps += 1
    assert steps == 228 and "episode_metrics" not in info
    with pytest.warns(UserWarning, match=rf"max_episode_steps={task.horizon}\) \(or -1"):
        cut.reset(seed=1)
    for limit in (-1, task.horizon):
        env = gymnasium.make("NoisyMaze-v0", size=7, max_episode_steps=limit)
        env.reset(seed=0)
        steps, truncated = 0, False
        while not truncated:
            *_, truncated, info = env.step(action)
            steps += 1
        assert steps == task.horizon and info["episode_metrics"]["success"] == 0.0
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            env.reset(seed=1)


def test_make_vec_keeps_the_horizon_of_the_options_or_a_chosen_limit():
    """make_vec passes the registered 228 along: it is not a limit the user chose."""
    horizon = make_task("NoisyMaze-v0", size=7).horizon
    envs = gymnasium.make_vec("NoisyMaze-v0", num_envs=2, size=7)
    assert envs.max_episode_steps is None
    envs.reset(seed=0)
    actions = np.zeros((2, 2), dtype=np.float32)
    for _ in range(horizon - 1):
        _, _, _, truncated, _ = envs.step(actions)
        assert not truncated.any()
    _, _, terminated, truncated, infos = envs.step(actions)
    assert truncated.all() and not terminated.any() and infos["_episode_metrics"].all()
    limited = gymnasium.make_vec("NoisyMaze-v0", num_envs=2, max_episode_steps=5)
    limited.reset(seed=0)
    ends = [limited.step(actions)[3].tolist() for _ in range(6)]
    assert ends == [[False, False]] * 4 + [[True, True], [False, False]]
    with pytest.raises(ValueError, match="`max_episode_steps` must be an integer >= 1, got 0"):
        gymnasium.make_vec("NoisyMaze-v0", num_envs=2, max_episode_steps=0)
