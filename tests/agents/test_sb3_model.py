"""Tests of agents.sb3.model: trained SB3 policies as Policy objects, and the run model kinds."""

from __future__ import annotations

import numpy as np
import pytest
import torch

pytest.importorskip("sb3_contrib")

from sb3_contrib import RecurrentPPO
from stable_baselines3 import PPO

from agents import build_model, model_kind
from agents.policy import Policy
from agents.sb3.config import CTRNNModelConfig, CTRNNPolicyConfig, MLPModelConfig
from agents.sb3.feedforward import NoisyActorCriticPolicy, NoisyPPO
from agents.sb3.keyed_noise import keyed_normal
from agents.sb3.model import CTRNNPolicyModel, NoisyMLPPolicyModel, SB3Policy, policy_model
from agents.sb3.recurrent import CTRNNRecurrentPolicy, NoisyRecurrentPPO
from agents.sb3.vec_env import make_sb3_vec_env
from evaluation.sweep import sweep_noise
from noise_envs import make_task

TASK = {"steps": 6, "settle_steps": 2}
NUM_ENVS = 3


def envs():
    return make_sb3_vec_env("NoisyRegulator-v0", NUM_ENVS, **TASK)


def recurrent_policy(sigma=0.0, **options):
    algorithm = NoisyRecurrentPPO(
        CTRNNRecurrentPolicy,
        envs(),
        n_steps=8,
        batch_size=8,
        policy_kwargs={"hidden_size": 6, "sigma": sigma, "dt": 20.0, **options},
        device="cpu",
    )
    randomise_heads(algorithm.policy)
    return algorithm.policy


def feedforward_policy(sigma=0.0):
    algorithm = NoisyPPO(
        NoisyActorCriticPolicy,
        envs(),
        n_steps=8,
        batch_size=8,
        policy_kwargs={"hidden_size": 6, "sigma": sigma},
        device="cpu",
    )
    randomise_heads(algorithm.policy)
    return algorithm.policy


def randomise_heads(policy):
    """SB3 starts the action head near zero (gain 0.01); make actions large enough to clip."""
    with torch.no_grad():
        policy.action_net.weight.normal_(0.0, 10.0, generator=torch.Generator().manual_seed(0))
        policy.action_net.bias.fill_(0.5)


def observations(steps=5):
    g = torch.Generator().manual_seed(1)
    return torch.rand(steps, NUM_ENVS, 1, generator=g) * 2 - 1


def sb3_episode(policy, obs):
    """Deterministic actions of SB3's own predict over an episode, state threaded through."""
    state, actions = None, []
    for t, step_obs in enumerate(obs.numpy()):
        starts = np.full(NUM_ENVS, t == 0)
        action, state = policy.predict(step_obs, state, starts, deterministic=True)
        actions.append(action)
    return np.stack(actions)


def adapter_episode(policy, obs, sigma=0.0, noise_of=lambda t: None):
    adapter = SB3Policy(policy)
    state, actions = adapter.initial_state(NUM_ENVS), []
    with torch.no_grad():
        for t, step_obs in enumerate(obs):
            action, state = adapter.step(step_obs, state, sigma, noise_of(t))
            actions.append(action.numpy())
    return np.stack(actions)


def test_recurrent_adapter_equals_sb3_predict_without_noise():
    """At sigma 0 the Policy path gives the actions SB3's predict gives (clipped to [-1, 1])."""
    policy = recurrent_policy()
    obs = observations()
    want = sb3_episode(policy, obs)
    assert (np.abs(want) == 1.0).any() and (np.abs(want) < 1.0).any()
    np.testing.assert_allclose(adapter_episode(policy, obs), want, rtol=1e-6, atol=1e-7)


def test_recurrent_adapter_replays_sb3_noise_when_given_its_samples():
    """With sigma 0.5 and the samples SB3's predict draws (keyed by the predict positions
    -(n + 1) 2**16 + t), the Policy path gives SB3's noisy actions: two code paths, one maths."""
    policy = recurrent_policy(sigma=0.5)
    obs = observations()
    start = -(torch.arange(NUM_ENVS) + 1) * 2**16

    def noise_of(t):
        return keyed_normal((0, 0, 0, start + t), 6)

    want = sb3_episode(policy, obs)
    got = adapter_episode(policy, obs, 0.5, noise_of)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    assert not np.allclose(got, adapter_episode(policy, obs))


def test_feedforward_adapter_equals_the_extractor_path():
    """The noisy MLP's Policy path equals SB3's predict at sigma 0, and the extractor's keyed
    path at sigma 0.5 when given the same samples."""
    obs = observations()[0]
    quiet = feedforward_policy()
    want, _ = quiet.predict(obs.numpy(), deterministic=True)
    np.testing.assert_allclose(adapter_episode(quiet, obs[None])[0], want, rtol=1e-6)

    noisy = feedforward_policy(sigma=0.5)
    positions = torch.tensor([4, 9, 30])
    xi = keyed_normal((0, 0, 0, positions), noisy.mlp_extractor.policy_net.noise_size)
    noisy.mlp_extractor.positions = positions
    with torch.no_grad():
        latent = noisy.mlp_extractor.forward_actor(obs)
        want = torch.clamp(noisy.action_net(latent), -1, 1).numpy()
    noisy.mlp_extractor.positions = None
    got = adapter_episode(noisy, obs[None], 0.5, lambda t: xi)[0]
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_stock_sb3_policies_are_adapted_at_zero_noise():
    """SB3's MlpPolicy and sb3-contrib's MlpLstmPolicy run through the adapter (state [B, 0] and
    [B, 2H]) and give predict's actions; a nonzero sigma is refused, as they have no noisy core."""
    obs = observations()
    lstm = RecurrentPPO(
        "MlpLstmPolicy", envs(), n_steps=8, batch_size=8, device="cpu",
        policy_kwargs={"lstm_hidden_size": 4},
    ).policy  # fmt: skip
    randomise_heads(lstm)
    np.testing.assert_allclose(adapter_episode(lstm, obs), sb3_episode(lstm, obs), rtol=1e-5)
    assert SB3Policy(lstm).initial_state(2).shape == (2, 8)
    mlp = PPO("MlpPolicy", envs(), n_steps=8, batch_size=8, device="cpu").policy
    want, _ = mlp.predict(obs[0].numpy(), deterministic=True)
    np.testing.assert_allclose(adapter_episode(mlp, obs[:1])[0], want, rtol=1e-6)
    with pytest.raises(ValueError, match="`sigma` must be 0 for a ActorCriticPolicy"):
        SB3Policy(mlp).step(obs[0], SB3Policy(mlp).initial_state(NUM_ENVS), 0.1)


def test_sweep_runs_on_adapted_policies():
    """The batched noise sweep takes the adapter unchanged; at sigma 0 every episode of a fixed
    setpoint is the same, and the levels differ once noise enters."""
    adapter = SB3Policy(recurrent_policy(sigma=0.5))
    assert isinstance(adapter, Policy)
    task = make_task("NoisyRegulator-v0", setpoint=0.6, **TASK)
    result = sweep_noise(adapter, task, [0.0, 1.0], episodes=8)
    mse = result.values("mse")
    assert np.ptp(mse[0]) == 0.0
    assert np.ptp(mse[1]) > 0.0


@pytest.mark.parametrize("recurrent", [True, False], ids=["recurrent_ppo", "ppo"])
def test_run_models_rebuild_from_json_with_identical_outputs(recurrent):
    """policy_model() gives the registered run model; rebuilding it from its JSON config and
    loading its state dict gives exactly the same actions and states (same xi)."""
    policy = recurrent_policy(sigma=0.5) if recurrent else feedforward_policy(sigma=0.5)
    model = policy_model(policy)
    kind = model_kind(model)
    assert kind == ("recurrent_ppo_ctrnn" if recurrent else "ppo_noisy_mlp")
    rebuilt = build_model(kind, type(model.config).from_json(model.config.to_json()).to_dict())
    rebuilt.load_state_dict(model.state_dict())
    obs = observations()
    g = torch.Generator().manual_seed(3)
    size = 6 if recurrent else policy.mlp_extractor.policy_net.noise_size
    xi = torch.randn(len(obs), NUM_ENVS, size, generator=g)
    for a, b in zip(
        adapter_episode(model.policy, obs, 0.7, lambda t: xi[t]),
        adapter_episode(rebuilt.policy, obs, 0.7, lambda t: xi[t]),
        strict=True,
    ):
        assert np.array_equal(a, b)


def test_model_configs_hold_the_spaces():
    """A model config records the Box bounds it was built for, and validates them."""
    task = make_task("NoisyRegulator-v0", obs_noise=0.2)
    config = CTRNNModelConfig.for_spaces(
        CTRNNPolicyConfig(hidden_size=3), task.observation_space, task.action_space
    )
    assert config.observation_space() == task.observation_space
    assert config.policy_config() == CTRNNPolicyConfig(hidden_size=3)
    bad = {**config.to_dict(), "action_low": [1.0]}
    with pytest.raises(ValueError, match="`action` bounds need low < high"):
        CTRNNModelConfig.from_dict(bad)
    spaces = {k: v for k, v in bad.items() if k.startswith(("observation", "action"))}
    with pytest.raises(ValueError, match="non-empty and of equal length"):
        MLPModelConfig.from_dict({**spaces, "action_low": []})


def test_repr_names_policy_and_core():
    assert repr(SB3Policy(recurrent_policy(sigma=0.5))).startswith(
        "SB3Policy(CTRNNRecurrentPolicy, core=CTRNNCore(in=1, hidden=6, relu, noise in, sigma=0.5"
    )
    assert isinstance(policy_model(feedforward_policy()), NoisyMLPPolicyModel)
    assert isinstance(policy_model(recurrent_policy()), CTRNNPolicyModel)
