"""Tests of evaluation.sb3_sweep: the noise sweep through SB3's own vector envs and predict()."""

from __future__ import annotations

import sys

import numpy as np
import pytest

pytest.importorskip("sb3_contrib")

from stable_baselines3 import PPO

from agents.sb3.model import SB3Policy
from agents.sb3.recurrent import CTRNNRecurrentPolicy, NoisyRecurrentPPO
from agents.sb3.vec_env import make_sb3_vec_env
from evaluation.sb3_sweep import noise_level, sweep_vec_env
from evaluation.sweep import sweep_noise
from evaluation.sweep_result import SweepResult
from noise_envs import make_task

TASK = {"steps": 6, "settle_steps": 2, "setpoint": 0.7}  # every episode the same trial


@pytest.fixture(scope="module")
def algorithm():
    algorithm = NoisyRecurrentPPO(
        CTRNNRecurrentPolicy,
        make_sb3_vec_env("NoisyRegulator-v0", 2, **TASK),
        n_steps=8,
        batch_size=8,
        policy_kwargs={"hidden_size": 5, "sigma": 0.3, "dt": 20.0},
        device="cpu",
    )
    algorithm.policy.action_net.bias.data.fill_(0.4)
    return algorithm


def test_slow_path_equals_the_batched_sweep_without_noise(algorithm):
    """At sigma 0 on a fixed trial, predict() in a DummyVecEnv and the batched sweep give the
    same mse in every episode: both act deterministically with the same policy."""
    slow = sweep_vec_env(
        algorithm, "NoisyRegulator-v0", [0.0], episodes=5, num_envs=2, task_kwargs=TASK
    )
    fast = sweep_noise(
        SB3Policy(algorithm.policy), make_task("NoisyRegulator-v0", **TASK), [0.0], episodes=5
    )
    assert isinstance(slow, SweepResult)
    np.testing.assert_allclose(slow.values("mse"), fast.values("mse"), rtol=1e-5)
    assert slow.values("mse").shape == (1, 5)
    assert (slow.task_id, slow.primary_metric, slow.metric_directions) == (
        fast.task_id,
        fast.primary_metric,
        fast.metric_directions,
    )


def test_levels_are_paired_and_the_noise_level_restored(algorithm):
    """Noise changes the episodes, a repeated sweep repeats them exactly, and the core's own
    noise level is back to its training value afterwards."""
    first = sweep_vec_env(algorithm, "NoisyRegulator-v0", [1.0, 0.0], episodes=4, task_kwargs=TASK)
    again = sweep_vec_env(algorithm, "NoisyRegulator-v0", [0.0, 1.0], episodes=4, task_kwargs=TASK)
    np.testing.assert_array_equal(first.metrics["mse"], again.metrics["mse"])
    assert first.levels.tolist() == [0.0, 1.0]
    assert np.ptp(first.metrics["mse"][0]) == 0.0  # no noise: one trial, one outcome
    assert np.ptp(first.metrics["mse"][1]) > 0.0
    assert algorithm.policy.lstm_actor.sigma == 0.3
    assert (first.num_levels, first.num_episodes) == (2, 4)


def test_models_without_noise_sweep_only_zero():
    """A stock MlpPolicy runs at level 0; a nonzero level is refused by noise_level."""
    model = PPO(
        "MlpPolicy", make_sb3_vec_env("NoisyRegulator-v0", 1), n_steps=8, batch_size=8, device="cpu"
    )
    result = sweep_vec_env(
        model, "NoisyRegulator-v0", [0.0], episodes=2, num_envs=1, task_kwargs=TASK
    )
    assert result.metrics["mse"].shape == (1, 2)
    with pytest.raises(ValueError, match="`sigma` must be 0 for a ActorCriticPolicy"):
        sweep_vec_env(model, "NoisyRegulator-v0", [0.5], episodes=2, task_kwargs=TASK)
    with pytest.raises(ValueError, match="`levels` must be"):
        sweep_vec_env(model, "NoisyRegulator-v0", [-1.0], task_kwargs=TASK)
    with noise_level(model.policy, 0.0):
        pass


def test_feedforward_noise_restarts_for_every_level():
    """A noisy-MLP policy draws predict()'s noise from a generator that each level reseeds, so a
    repeated sweep repeats its noisy episodes exactly."""
    from agents.sb3.feedforward import NoisyActorCriticPolicy, NoisyPPO

    model = NoisyPPO(
        NoisyActorCriticPolicy,
        make_sb3_vec_env("NoisyRegulator-v0", 1),
        n_steps=8,
        batch_size=8,
        policy_kwargs={"hidden_size": 5, "sigma": 0.3},
        device="cpu",
    )
    first = sweep_vec_env(model, "NoisyRegulator-v0", [1.0], episodes=3, task_kwargs=TASK)
    again = sweep_vec_env(model, "NoisyRegulator-v0", [0.0, 1.0], episodes=3, task_kwargs=TASK)
    np.testing.assert_array_equal(first.metrics["mse"][0], again.metrics["mse"][1])
    assert np.ptp(first.metrics["mse"]) > 0.0


def test_bad_seed_and_missing_sb3_are_reported(algorithm, monkeypatch):
    """A negative seed is refused before anything runs; without stable-baselines3 the error
    says which extra to install."""
    with pytest.raises(ValueError, match="`seed` must be an integer >= 0, got -1"):
        sweep_vec_env(algorithm, "NoisyRegulator-v0", [0.0], seed=-1, task_kwargs=TASK)
    monkeypatch.setitem(sys.modules, "stable_baselines3.common.vec_env", None)
    with pytest.raises(ImportError, match=r"needs stable-baselines3: pip install 'noise-pref"):
        sweep_vec_env(algorithm, "NoisyRegulator-v0", [0.0], episodes=1, task_kwargs=TASK)
