"""RL training across a noise distribution: one level per PPO iteration, stored in run.json."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

pytest.importorskip("sb3_contrib")

from agents import load_run
from agents.noise_distribution import NoiseDistribution
from agents.sb3 import training
from agents.sb3.config import CTRNNPolicyConfig, MLPPolicyConfig, RLTrainConfig

TASK_ID = "NoisyRegulator-v0"
TASK = {"steps": 6, "settle_steps": 2}


def rl_config(**changes):
    base = RLTrainConfig(
        sigma_dist=NoiseDistribution.uniform(0.1, 0.9, per="batch"),
        iterations=3,
        num_envs=2,
        num_steps=12,
        batch_size=12,
        epochs=1,
        checkpoint_every=3,
    )
    return base.replace(**changes)


def expected_level(seed, iteration):
    """The level of one iteration, drawn independently as the trainer's docstring says."""
    state = np.random.SeedSequence([seed, iteration]).generate_state(1, dtype=np.uint64)
    u = torch.rand(1, dtype=torch.float64, generator=torch.Generator().manual_seed(int(state[0])))
    return float((0.1 + 0.8 * u).float())


@pytest.mark.parametrize(
    ("policy", "holder"),
    [
        (CTRNNPolicyConfig(hidden_size=4, dt=20.0), lambda p: (p.lstm_actor, p.lstm_critic)),
        (MLPPolicyConfig(hidden_size=4), lambda p: (p.mlp_extractor, None)),
    ],
)
def test_each_ppo_iteration_trains_at_its_own_drawn_level(monkeypatch, tmp_path, policy, holder):
    seen = []
    iterate = training._iterate

    def recording(algorithm, iteration, rate, metric):
        actor, critic = holder(algorithm.policy)
        critic_level = critic.sigma if critic is not None else actor.critic_sigma
        seen.append((iteration, actor.sigma, critic_level))
        return iterate(algorithm, iteration, rate, metric)

    monkeypatch.setattr(training, "_iterate", recording)
    algo = "recurrent_ppo" if isinstance(policy, CTRNNPolicyConfig) else "ppo"
    config = rl_config(algo=algo, seed=3)
    training.train_rl(
        TASK_ID, policy, config, task_kwargs=TASK, run_dir=tmp_path / "rl", progress=False
    )
    assert [row[0] for row in seen] == [1, 2, 3]
    for iteration, actor_level, critic_level in seen:
        assert actor_level == pytest.approx(expected_level(3, iteration), abs=1e-7)
        assert critic_level == actor_level  # the noisy critic (default) trains at it too
    record = json.loads((tmp_path / "rl" / "run.json").read_text())
    assert record["train"]["sigma_dist"]["kind"] == "uniform"
    assert record["model"]["config"]["sigma"] == 0.9  # the policy is built at the upper level
    assert load_run(tmp_path / "rl").train_config.sigma_dist == config.sigma_dist


def test_rl_refuses_a_level_per_episode():
    with pytest.raises(ValueError, match=r"one noise level per PPO iteration: `sigma_dist` needs"):
        RLTrainConfig(sigma_dist="uniform:0,1")


def test_fixed_sigma_rl_config_is_stored_as_before():
    assert "sigma_dist" not in RLTrainConfig(sigma=0.5).to_dict()
