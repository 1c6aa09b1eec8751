"""Tests of agents.sb3.vec_env: a batched Gymnasium vector env as a stable-baselines3 VecEnv."""

from __future__ import annotations

import gymnasium
import numpy as np
import pytest

pytest.importorskip("stable_baselines3")

from gymnasium.vector import AutoresetMode
from stable_baselines3.common.vec_env import DummyVecEnv, VecMonitor

from agents.sb3.vec_env import SB3VecEnv, make_sb3_vec_env
from noise_envs.env import TaskEnv

TASK = {"steps": 4, "settle_steps": 1, "obs_noise": 0.1}


def test_batched_env_equals_sb3_dummy_vec_env_of_single_envs():
    """Step for step, SB3VecEnv over TaskVectorEnv gives what SB3's DummyVecEnv of TaskEnvs gives
    with the same seeds: observations, rewards, dones, terminal observations and truncation
    flags, across several episodes (so SB3's same-step autoreset is reproduced)."""
    num_envs = 3
    batched = make_sb3_vec_env("NoisyRegulator-v0", num_envs, **TASK)
    single = DummyVecEnv([lambda: TaskEnv("NoisyRegulator-v0", **TASK)] * num_envs)
    batched.seed(5)
    single.seed(5)
    np.testing.assert_array_equal(batched.reset(), single.reset())
    actions = np.random.default_rng(0).uniform(-1, 1, size=(8, num_envs, 1)).astype(np.float32)
    for action in actions:
        got, want = batched.step(action), single.step(action)
        for a, b in zip(got[:3], want[:3], strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-6)
        for info_a, info_b in zip(got[3], want[3], strict=True):
            assert ("terminal_observation" in info_a) == ("terminal_observation" in info_b)
            if "terminal_observation" in info_b:
                np.testing.assert_array_equal(
                    info_a["terminal_observation"], info_b["terminal_observation"]
                )
                assert info_a["TimeLimit.truncated"] == info_b.get("TimeLimit.truncated", False)
                assert info_a["episode_metrics"] == pytest.approx(info_b["episode_metrics"])
    assert got[2].all()  # eight steps of four-step episodes: every row ended twice


def test_vec_monitor_reports_episodes():
    """SB3's VecMonitor sees each episode's return and length through the adapter."""
    envs = VecMonitor(make_sb3_vec_env("NoisyRegulator-v0", 2, steps=3, settle_steps=0))
    envs.seed(0)
    obs = envs.reset()
    infos = None
    for _ in range(3):
        obs, _, dones, infos = envs.step(obs.copy())  # act the setpoint: zero error
    assert dones.all()
    assert [info["episode"]["l"] for info in infos] == [3, 3]
    assert [info["episode"]["r"] for info in infos] == [0.0, 0.0]


def test_attribute_access_and_wrapping():
    """get_attr / env_method reach the wrapped env once per row; no row is Gymnasium-wrapped."""
    envs = make_sb3_vec_env("NoisyRegulator-v0", 2)
    assert envs.get_attr("num_envs") == [2, 2]
    assert envs.env_is_wrapped(gymnasium.Wrapper) == [False, False]
    assert envs.env_method("render") == [None, None]
    assert envs.render_mode is None
    assert repr(envs).startswith("SB3VecEnv(RegulatorVectorEnv(NoisyRegulator-v0, num_envs=2")


def test_rejects_same_step_autoreset():
    """Only next-step autoreset can be converted."""
    env = gymnasium.make_vec("NoisyRegulator-v0", num_envs=1, vectorization_mode="sync")
    env.metadata["autoreset_mode"] = AutoresetMode.SAME_STEP
    with pytest.raises(ValueError, match="next-step autoreset"):
        SB3VecEnv(env)
