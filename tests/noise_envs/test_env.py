"""TaskEnv: the batch-1 Gymnasium adapter passes both checkers and converts, seeds and packs info."""

import pickle
import warnings

import gymnasium
import numpy as np
import pytest
import torch
from gymnasium.error import ResetNeeded
from gymnasium.utils.env_checker import check_env
from gymnasium.utils.env_match import check_environments_match
from stable_baselines3.common.env_checker import check_env as sb3_check_env

from noise_envs import TASKS, FunctionApproxTask, RegulatorTask, TaskEnv

ENV_IDS = sorted(TASKS)


def short_options(env_id, steps):
    """Options for an episode of ``steps`` steps whose last two are scored."""
    if env_id == "NoisyFunctionApprox-v0":
        return {"steps": steps, "response_steps": 2}
    if env_id == "NoisyMultitask-v0":  # trials of 2 to 5 steps, or of at least 10
        if steps < 5:
            return {"tasks": ("fdgo", "reactgo"), "dt": 500.0}
        return {"tasks": "reactgo", "dt": 100.0}
    if env_id == "NoisyMaze-v0":  # every step is scored; goals end some episodes sooner
        return {"max_steps": steps}
    return {"steps": steps, "settle_steps": steps - 2}


class RenderedRegulator(RegulatorTask):
    """A task that declares a render mode, to exercise the adapter's render hook."""

    render_modes = ("ansi",)
    render_fps = 4

    def render(self, state, mode):
        return [f"{mode}: t={t}" for t in state.t.tolist()]


@pytest.mark.parametrize("obs_noise", [0.0, 0.1])
@pytest.mark.parametrize("env_id", ENV_IDS)
def test_gymnasium_check_env_passes_without_warnings(env_id, obs_noise):
    env = gymnasium.make(env_id, obs_noise=obs_noise)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_env(env.unwrapped)


@pytest.mark.parametrize("obs_noise", [0.0, 0.1])
@pytest.mark.parametrize("env_id", ENV_IDS)
def test_sb3_check_env_passes_without_warnings(env_id, obs_noise):
    env = gymnasium.make(env_id, obs_noise=obs_noise)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sb3_check_env(env, warn=True)
        sb3_check_env(env.unwrapped, warn=True)


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_spaces_are_the_tasks_single_env_spaces(env_id):
    env = TaskEnv(env_id, obs_noise=0.2)
    assert env.observation_space == env.task.observation_space
    assert env.action_space == env.task.action_space
    assert (
        np.isfinite(env.observation_space.low).all()
        and np.isfinite(env.observation_space.high).all()
    )


def test_reset_returns_the_cue_and_the_first_teacher_signal():
    """No noise: obs is x, info target is sin(pi x), mask 0 before the response window."""
    env = TaskEnv("NoisyFunctionApprox-v0")
    obs, info = env.reset(seed=4)
    assert obs.dtype == np.float32 and obs.shape == (1,)
    assert info.keys() == {"target", "mask"}
    np.testing.assert_allclose(info["target"], np.sin(np.pi * obs), atol=1e-6)
    assert info["mask"].tolist() == [0.0]


def test_an_episode_by_hand():
    """Rewards, flags, next-action teacher signal and the mse metric for known actions."""
    env = TaskEnv("NoisyFunctionApprox-v0", function="quadratic", steps=3, response_steps=2)
    obs, info = env.reset(seed=0)
    target = float(obs[0]) ** 2
    masks, rewards, flags = [info["mask"][0]], [], []
    for action in (0.5, -0.2, 0.9):
        obs, reward, terminated, truncated, info = env.step(np.array([action], dtype=np.float32))
        assert isinstance(reward, float) and isinstance(terminated, bool)
        masks.append(info["mask"][0])
        rewards.append(reward)
        flags.append((terminated, truncated))
    expected = [0.0, -((-0.2 - target) ** 2), -((0.9 - target) ** 2)]
    np.testing.assert_allclose(rewards, expected, atol=1e-6)
    assert masks[:3] == [0.0, 1.0, 1.0]
    assert flags == [(False, False), (False, False), (True, False)]
    mse = info["episode_metrics"]["mse"]
    assert mse == pytest.approx(((-0.2 - target) ** 2 + (0.9 - target) ** 2) / 2, abs=1e-6)
    np.testing.assert_allclose(info["target"], [target], rtol=1e-6)


def test_episode_metrics_only_at_the_end():
    env = TaskEnv("NoisyRegulator-v0", steps=3, settle_steps=1)
    _, info = env.reset(seed=0)
    keys = [info.keys()]
    for _ in range(3):
        *_, info = env.step(np.zeros(1, dtype=np.float32))
        keys.append(set(info))
    assert keys[1:] == [{"target", "mask"}] * 2 + [{"target", "mask", "episode_metrics"}]


def test_reset_draws_the_torch_seed_from_np_random():
    """seed s: the simulator's generator is seeded by default_rng(s).integers(2**63 - 1), per reset."""
    env = TaskEnv("NoisyFunctionApprox-v0")
    np_random = np.random.default_rng(21)
    first, _ = env.reset(seed=21)
    second, _ = env.reset()
    for obs in (first, second):
        torch_seed = int(np_random.integers(2**63 - 1))
        x = 2 * torch.rand((1, 1), generator=torch.Generator().manual_seed(torch_seed)) - 1
        np.testing.assert_allclose(obs, x[0].numpy(), rtol=0, atol=1e-7)


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_same_seed_gives_the_same_episode(env_id):
    """Gymnasium's environment matcher: two envs, same seed, identical for 12 steps (2 episodes)."""
    options = {**short_options(env_id, 6), "obs_noise": 0.2}
    env_a, env_b = TaskEnv(env_id, **options), TaskEnv(env_id, **options)
    check_environments_match(env_a, env_b, num_steps=12, seed=3)


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_different_seeds_give_different_observation_noise(env_id):
    env = TaskEnv(env_id, obs_noise=0.2)
    assert not np.array_equal(env.reset(seed=1)[0], env.reset(seed=2)[0])


def test_step_before_reset_raises():
    with pytest.raises(ResetNeeded, match="Cannot call `step` before `reset`"):
        TaskEnv("NoisyRegulator-v0").step(np.zeros(1, dtype=np.float32))


def test_step_after_the_episode_ended_raises_until_reset():
    env = TaskEnv("NoisyRegulator-v0", steps=1, settle_steps=0)
    env.reset(seed=0)
    *_, terminated, _, _ = env.step(np.zeros(1, dtype=np.float32))
    assert terminated
    with pytest.raises(ResetNeeded, match="The episode has ended; call `reset`"):
        env.step(np.zeros(1, dtype=np.float32))
    env.reset()
    assert env.step(np.zeros(1, dtype=np.float32))[2]


def test_returned_arrays_are_copies():
    """Writing into obs or info arrays does not change the simulator's state."""
    env = TaskEnv("NoisyRegulator-v0")
    obs, info = env.reset(seed=0)
    cue = env.state.cue.clone()
    obs[:] = 9.0
    info["target"][:] = 9.0
    torch.testing.assert_close(env.state.cue, cue)
    torch.testing.assert_close(env.task.teacher(env.state)[0], cue)


def test_actions_of_other_dtypes_are_accepted():
    """float64 arrays and lists are converted to float32, as SB3 and users pass them."""
    env = TaskEnv("NoisyRegulator-v0", setpoint=0.5, steps=1, settle_steps=0)
    env.reset(seed=0)
    assert env.step([0.25])[1] == pytest.approx(-0.0625)


def test_a_task_instance_is_used_as_is():
    task = RegulatorTask(setpoint=-0.25)
    env = TaskEnv(task)
    assert env.task is task
    assert env.reset(seed=0)[0].tolist() == [-0.25]


def test_a_task_instance_with_options_is_refused():
    with pytest.raises(
        ValueError, match=r"task options \['steps'\] can only be given with an environment id"
    ):
        TaskEnv(FunctionApproxTask(), steps=3)


def test_a_task_of_the_wrong_type_is_refused():
    with pytest.raises(ValueError, match="`task` must be a Task or an environment id, got 3"):
        TaskEnv(3)


def test_reset_options_must_be_empty():
    env = TaskEnv("NoisyRegulator-v0")
    env.reset(seed=0, options={})
    with pytest.raises(ValueError, match="`options` must be empty or None"):
        env.reset(options={"setpoint": 0.3})


def test_no_render_modes_are_declared_so_render_returns_none():
    env = TaskEnv("NoisyFunctionApprox-v0")
    assert env.metadata["render_modes"] == [] and env.render_mode is None
    env.reset(seed=0)
    assert env.render() is None


def test_an_undeclared_render_mode_warns_and_renders_nothing():
    """As gymnasium.make does: a warning naming the mode and the modes there are, then None."""
    with pytest.warns(UserWarning, match=r"NoisyRegulator-v0 cannot render 'human' .*: \[\]"):
        env = TaskEnv("NoisyRegulator-v0", render_mode="human")
    assert env.render_mode is None
    env.reset(seed=0)
    assert env.render() is None


def test_stable_baselines3_make_vec_env_builds_our_envs():
    """make_vec_env asks every env for render_mode="rgb_array"; ours accept and step."""
    from stable_baselines3.common.env_util import make_vec_env

    with pytest.warns(UserWarning, match="cannot render 'rgb_array'"):
        envs = make_vec_env("NoisyRegulator-v0", n_envs=2, seed=0)
    obs = envs.reset()
    assert obs.shape == (2, 1)
    _, rewards, dones, _ = envs.step(np.zeros((2, 1), dtype=np.float32))
    assert rewards.shape == dones.shape == (2,) and np.all(rewards <= 0)
    envs.close()


def test_render_modes_declared_by_the_task_are_used():
    """A task's render_modes / render_fps reach metadata, and render() shows row 0."""
    env = TaskEnv(RenderedRegulator(), render_mode="ansi")
    assert env.metadata["render_modes"] == ["ansi"] and env.metadata["render_fps"] == 4
    env.reset(seed=0)
    env.step(np.zeros(1, dtype=np.float32))
    assert env.render() == "ansi: t=1"


def test_repr_shows_the_id_and_the_changed_options():
    assert repr(TaskEnv("NoisyFunctionApprox-v0")) == "TaskEnv(NoisyFunctionApprox-v0)"
    env = gymnasium.make("noise_envs/NoisyRegulator-v0", setpoint=0.5)
    assert repr(env.unwrapped) == "RegulatorEnv(NoisyRegulator-v0, setpoint=0.5)"


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_pickle_round_trip_mid_episode(env_id):
    """An unpickled env continues the episode exactly as the original does."""
    env = TaskEnv(env_id, **short_options(env_id, 5), obs_noise=0.3)
    env.reset(seed=8)
    env.step(np.full(env.action_space.shape, 0.1, dtype=np.float32))
    copy = pickle.loads(pickle.dumps(env))
    assert repr(copy) == repr(env)
    for step in range(6):
        action = np.full(env.action_space.shape, 0.1 * step, dtype=np.float32)
        if step == 4:
            results = [e.reset() for e in (env, copy)]
        else:
            results = [e.step(action) for e in (env, copy)]
        a, b = results
        assert gymnasium.utils.env_checker.data_equivalence(a, b, exact=True), f"step {step}"


def test_pickle_round_trip_of_a_made_env():
    """Gymnasium's wrapped env pickles too, and both copies reset identically with a seed."""
    env = gymnasium.make("NoisyFunctionApprox-v0", obs_noise=0.1)
    copy = pickle.loads(pickle.dumps(env))
    assert gymnasium.utils.env_checker.data_equivalence(
        env.reset(seed=1), copy.reset(seed=1), exact=True
    )


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_env_matches_the_cpu_env():
    """The simulator on CUDA gives the CPU episode (generators stay on the CPU)."""
    options = {"steps": 4, "response_steps": 2, "obs_noise": 0.2}
    cpu, cuda = (
        TaskEnv("NoisyFunctionApprox-v0", **options),
        TaskEnv("NoisyFunctionApprox-v0", device="cuda", **options),
    )
    check_environments_match(cpu, cuda, num_steps=6, seed=0)
