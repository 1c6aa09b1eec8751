"""TaskVectorEnv: N rows as one tensor program that equal N TaskEnvs and the batched simulator."""

import pickle

import gymnasium
import numpy as np
import pytest
import torch
from gymnasium.error import ResetNeeded
from gymnasium.utils.env_checker import data_equivalence
from gymnasium.vector import AutoresetMode
from gymnasium.vector.utils import batch_space

from noise_envs import TASKS, RandomSource, RegulatorTask, TaskEnv, TaskVectorEnv, make_task

ENV_IDS = sorted(TASKS)
NUM_ENVS = 3


def short_options(env_id, steps, **extra):
    """Options for an episode of ``steps`` steps whose last two are scored."""
    if env_id == "NoisyFunctionApprox-v0":
        return {"steps": steps, "response_steps": 2, **extra}
    if env_id == "NoisyMultitask-v0":  # trials of 2 to 5 steps, or of at least 10
        if steps < 5:
            return {"tasks": ("fdgo", "reactgo"), "dt": 500.0, **extra}
        return {"tasks": "reactgo", "dt": 100.0, **extra}
    if env_id == "NoisyMaze-v0":  # every step is scored; goals end some episodes sooner
        return {"max_steps": steps, **extra}
    return {"steps": steps, "settle_steps": steps - 2, **extra}


def random_actions(num_steps, num_envs, action_size, seed=0):
    return (
        np.random.default_rng(seed)
        .uniform(-1, 1, (num_steps, num_envs, action_size))
        .astype(np.float32)
    )


class RenderedRegulator(RegulatorTask):
    """A task that declares a render mode, to exercise the adapter's render hook."""

    render_modes = ("ansi",)

    def render(self, state, mode):
        return [f"t={t}" for t in state.t.tolist()]


def single_envs_trace(env_id, options, seed, actions, partial_reset_at):
    """N TaskEnvs driven by hand with next-step autoreset; row 0 is also reset at one step."""
    envs = [TaskEnv(env_id, **options) for _ in range(NUM_ENVS)]
    first = np.stack([env.reset(seed=seed + i)[0] for i, env in enumerate(envs)])
    ended = [False] * NUM_ENVS
    trace = [first]
    for step, action in enumerate(actions):
        if step == partial_reset_at:
            envs[0].reset()
            ended[0] = False
        rows = []
        for i, env in enumerate(envs):
            if ended[i]:
                rows.append((env.reset()[0], 0.0, False, False))
            else:
                rows.append(env.step(action[i])[:4])
            ended[i] = rows[-1][2] or rows[-1][3]
        obs, rewards, terminated, truncated = (
            np.array(column) for column in zip(*rows, strict=True)
        )
        trace.append((obs, rewards, terminated, truncated))
    return trace


def vector_trace(envs, seed, actions, partial_reset_at):
    """The same protocol through a vector env, partial reset via options['reset_mask']."""
    trace = [envs.reset(seed=seed)[0]]
    row_zero = np.array([True] + [False] * (NUM_ENVS - 1))
    for step, action in enumerate(actions):
        if step == partial_reset_at:
            envs.reset(options={"reset_mask": row_zero})
        trace.append(envs.step(action)[:4])
    return trace


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_vector_env_equals_single_envs_step_for_step(env_id):
    """Obs, rewards and flags equal N seeded TaskEnvs across autoresets, with noisy observations."""
    options = short_options(env_id, 4, obs_noise=0.3)
    envs = TaskVectorEnv(env_id, NUM_ENVS, **options)
    actions = random_actions(14, NUM_ENVS, envs.single_action_space.shape[0])
    expected = single_envs_trace(env_id, options, 10, actions, partial_reset_at=2)
    got = vector_trace(envs, 10, actions, partial_reset_at=2)
    assert np.array_equal(got[0], expected[0])
    for step, (a, b) in enumerate(zip(got[1:], expected[1:], strict=True)):
        for name, x, y in zip(("obs", "rewards", "terminated", "truncated"), a, b, strict=True):
            assert x.dtype == y.dtype and np.array_equal(x, y), f"{name} differ at step {step}"
    ended = np.stack([t[2] | t[3] for t in got[1:]])  # terminated or truncated
    assert ended[:, 0].sum() >= 2 and ended[:, 1:].sum() >= 4, "no autoreset exercised"
    assert not np.array_equal(ended[:, 0], ended[:, 1]), "rows should end apart"


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_vector_env_equals_gymnasiums_sync_vector_env_including_infos(env_id):
    """Everything, infos and their masks included, equals SyncVectorEnv over TaskEnvs."""
    options = short_options(env_id, 3, obs_noise=0.2)
    ours = gymnasium.make_vec(env_id, NUM_ENVS, vectorization_mode="vector_entry_point", **options)
    sync = gymnasium.make_vec(env_id, NUM_ENVS, vectorization_mode="sync", **options)
    assert data_equivalence(ours.reset(seed=0), sync.reset(seed=0), exact=True)
    actions = random_actions(9, NUM_ENVS, ours.single_action_space.shape[0], seed=1)
    row_one = np.array([False, True, False])
    for step, action in enumerate(actions):
        if step == 4:
            reset = [env.reset(seed=7, options={"reset_mask": row_one}) for env in (ours, sync)]
            assert data_equivalence(*reset, exact=True), "partial reset differs"
        a, b = ours.step(action), sync.step(action)
        assert data_equivalence(a, b, exact=True), f"step {step}: {a} != {b}"


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_vector_env_equals_the_simulator_with_the_same_row_generators(env_id):
    """Row generators seeded from default_rng(s + i) reproduce the vector env in the simulator."""
    options = short_options(env_id, 5, obs_noise=0.4)
    task = make_task(env_id, **options)
    generators = [
        torch.Generator().manual_seed(int(np.random.default_rng(20 + i).integers(2**63 - 1)))
        for i in range(NUM_ENVS)
    ]
    state, expected_obs = task.reset(NUM_ENVS, generator=RandomSource(generators))
    envs = TaskVectorEnv(env_id, NUM_ENVS, **options)
    obs, _ = envs.reset(seed=20)
    np.testing.assert_array_equal(obs, expected_obs.numpy())
    for step, action in enumerate(random_actions(5, NUM_ENVS, task.action_size, seed=2)):
        state, expected_obs, reward, done = task.step(state, torch.from_numpy(action))
        obs, rewards, terminated, truncated, _ = envs.step(action)
        np.testing.assert_array_equal(obs, expected_obs.numpy(), err_msg=f"step {step}")
        np.testing.assert_array_equal(rewards, reward.double().numpy(), err_msg=f"step {step}")
        np.testing.assert_array_equal(terminated | truncated, done.numpy(), err_msg=f"step {step}")


def test_spaces_and_autoreset_metadata():
    envs = TaskVectorEnv("NoisyFunctionApprox-v0", 4, input_dim=2)
    assert envs.single_observation_space == envs.task.observation_space
    assert envs.single_action_space == envs.task.action_space
    assert envs.observation_space == batch_space(envs.task.observation_space, 4)
    assert envs.action_space == batch_space(envs.task.action_space, 4)
    assert envs.observation_space.shape == (4, 2)
    assert envs.metadata["autoreset_mode"] is AutoresetMode.NEXT_STEP
    obs, _ = envs.reset(seed=0)
    assert obs.dtype == np.float32 and envs.observation_space.contains(obs)


def test_autoreset_step_starts_a_new_episode_with_reward_zero():
    """The step after the end returns a fresh episode: reward 0, flags False, t = 0, mask 0."""
    envs = TaskVectorEnv("NoisyFunctionApprox-v0", 2, steps=2, response_steps=1)
    first, _ = envs.reset(seed=0)
    ones = np.ones((2, 1), dtype=np.float32)
    envs.step(ones)
    _, _, terminated, _, infos = envs.step(ones)
    assert terminated.tolist() == [True, True]
    np.testing.assert_allclose(
        infos["episode_metrics"]["mse"], (1 - np.sin(np.pi * first[:, 0])) ** 2, atol=1e-6
    )
    obs, rewards, terminated, truncated, infos = envs.step(ones)
    assert rewards.tolist() == [0.0, 0.0]
    assert not terminated.any() and not truncated.any()
    assert envs.state.t.tolist() == [0, 0]
    assert infos["mask"].tolist() == [[0.0], [0.0]] and "episode_metrics" not in infos
    assert not np.array_equal(obs, first)
    np.testing.assert_allclose(infos["target"], np.sin(np.pi * obs), atol=1e-6)


def test_episode_metrics_are_masked_to_the_rows_that_ended():
    """Rows that end apart report their metrics on their own step, zero elsewhere."""
    envs = TaskVectorEnv("NoisyRegulator-v0", 3, setpoint=0.5, steps=2, settle_steps=0)
    envs.reset(seed=0)
    actions = np.array([[0.5], [0.0], [1.0]], dtype=np.float32)
    envs.step(actions)
    envs.reset(options={"reset_mask": np.array([False, False, True])})
    _, _, terminated, _, infos = envs.step(actions)
    assert terminated.tolist() == [True, True, False]
    assert infos["_episode_metrics"].tolist() == [True, True, False]
    assert infos["episode_metrics"]["_mse"].tolist() == [True, True, False]
    np.testing.assert_allclose(infos["episode_metrics"]["mse"], [0.0, 0.25, 0.0])
    _, rewards, terminated, _, infos = envs.step(actions)
    assert terminated.tolist() == [False, False, True] and rewards.tolist() == [0.0, 0.0, -0.25]
    np.testing.assert_allclose(infos["episode_metrics"]["mse"], [0.0, 0.0, 0.25])


def test_reset_with_a_seed_per_row():
    """A list of seeds seeds each row as TaskEnv.reset(seed=...) would."""
    envs = TaskVectorEnv("NoisyFunctionApprox-v0", 3)
    obs, _ = envs.reset(seed=[3, None, 5])
    assert obs[0].tolist() == TaskEnv("NoisyFunctionApprox-v0").reset(seed=3)[0].tolist()
    assert obs[2].tolist() == TaskEnv("NoisyFunctionApprox-v0").reset(seed=5)[0].tolist()


def test_reset_without_a_seed_keeps_each_rows_generator():
    """reset(seed=None) after reset(seed=s) continues each row's np_random, as TaskEnv does."""
    envs = TaskVectorEnv("NoisyRegulator-v0", 2, obs_noise=0.1)
    envs.reset(seed=4)
    obs, _ = envs.reset()
    for i in range(2):
        env = TaskEnv("NoisyRegulator-v0", obs_noise=0.1)
        env.reset(seed=4 + i)
        assert obs[i].tolist() == env.reset()[0].tolist()


def test_returned_observations_are_copies():
    """Writing into returned obs does not leak into rows a partial reset leaves alone."""
    envs = TaskVectorEnv("NoisyRegulator-v0", 2)
    obs, _ = envs.reset(seed=0)
    kept = obs[1].copy()
    obs[:] = 9.0
    obs, _ = envs.reset(options={"reset_mask": np.array([True, False])})
    assert obs[1].tolist() == kept.tolist()


def test_step_before_reset_raises():
    with pytest.raises(ResetNeeded, match="Cannot call `step` before `reset`"):
        TaskVectorEnv("NoisyRegulator-v0", 2).step(np.zeros((2, 1), dtype=np.float32))


@pytest.mark.parametrize("num_envs", [0, -1, 2.0])
def test_num_envs_must_be_a_positive_integer(num_envs):
    with pytest.raises(ValueError, match=f"`num_envs` must be an integer >= 1, got {num_envs}"):
        TaskVectorEnv("NoisyRegulator-v0", num_envs)


@pytest.mark.parametrize("actions", [np.zeros(3), np.zeros((3, 2)), np.zeros((2, 1))])
def test_actions_of_the_wrong_shape(actions):
    envs = TaskVectorEnv("NoisyRegulator-v0", 3)
    envs.reset(seed=0)
    with pytest.raises(ValueError, match=r"Expected `actions` of shape \[3, 1\], got"):
        envs.step(actions)


def test_actions_with_nan():
    envs = TaskVectorEnv("NoisyRegulator-v0", 2)
    envs.reset(seed=0)
    with pytest.raises(ValueError, match="`action` must be finite"):
        envs.step(np.array([[0.0], [np.nan]]))


def test_seed_list_of_the_wrong_length():
    with pytest.raises(
        ValueError, match=r"`seed` must be None, an int or one seed per env \(3\), got 2"
    ):
        TaskVectorEnv("NoisyRegulator-v0", 3).reset(seed=[1, 2])


@pytest.mark.parametrize(
    "mask",
    [
        np.array([1, 0]),
        np.array([True, False], dtype=object),
        np.array([True, False, True]),
        np.array([False, False]),
    ],
)
def test_reset_mask_must_be_a_bool_array_with_a_true(mask):
    envs = TaskVectorEnv("NoisyRegulator-v0", 2)
    envs.reset(seed=0)
    with pytest.raises(
        ValueError, match=r"`options\['reset_mask'\]` must be a bool array of shape \(2,\)"
    ):
        envs.reset(options={"reset_mask": mask})


def test_first_reset_must_reset_every_row():
    with pytest.raises(ValueError, match="the first `reset` must reset every env"):
        TaskVectorEnv("NoisyRegulator-v0", 2).reset(options={"reset_mask": np.array([True, False])})


def test_unknown_reset_option():
    with pytest.raises(ValueError, match=r"the only reset option is 'reset_mask', got \['seed'\]"):
        TaskVectorEnv("NoisyRegulator-v0", 2).reset(options={"seed": 1})


def test_a_task_instance_with_options_is_refused():
    with pytest.raises(ValueError, match="can only be given with an environment id"):
        TaskVectorEnv(RegulatorTask(), 2, steps=5)


def test_repr():
    assert (
        repr(TaskVectorEnv("NoisyFunctionApprox-v0", 3))
        == "TaskVectorEnv(NoisyFunctionApprox-v0, num_envs=3)"
    )
    assert (
        repr(TaskVectorEnv(RegulatorTask(setpoint=0.5), 2))
        == "TaskVectorEnv(NoisyRegulator-v0, num_envs=2, setpoint=0.5)"
    )


def test_render_hook():
    """A task's declared render mode gives one frame per row; None by default."""
    assert TaskVectorEnv("NoisyRegulator-v0", 2).render() is None
    envs = TaskVectorEnv(RenderedRegulator(), 2, render_mode="ansi")
    envs.reset(seed=0)
    assert envs.render() == ("t=0", "t=0")
    with pytest.warns(UserWarning, match="NoisyRegulator-v0 cannot render 'rgb_array'"):
        refused = TaskVectorEnv("NoisyRegulator-v0", 2, render_mode="rgb_array")
    assert refused.render_mode is None


def test_pickle_round_trip_mid_episode():
    """An unpickled vector env continues exactly as the original, through an autoreset."""
    envs = TaskVectorEnv(
        "NoisyFunctionApprox-v0", 2, **short_options("NoisyFunctionApprox-v0", 3, obs_noise=0.3)
    )
    envs.reset(seed=1)
    actions = random_actions(6, 2, 1)
    envs.step(actions[0])
    copy = pickle.loads(pickle.dumps(envs))
    for step, action in enumerate(actions[1:]):
        assert data_equivalence(envs.step(action), copy.step(action), exact=True), f"step {step}"


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_vector_env_matches_the_cpu_one():
    options = short_options("NoisyRegulator-v0", 3, obs_noise=0.2)
    cpu = TaskVectorEnv("NoisyRegulator-v0", 4, **options)
    cuda = TaskVectorEnv("NoisyRegulator-v0", 4, device="cuda", **options)
    assert data_equivalence(cpu.reset(seed=0), cuda.reset(seed=0), exact=True)
    for action in random_actions(7, 4, 1):
        assert data_equivalence(cpu.step(action), cuda.step(action), exact=True)
