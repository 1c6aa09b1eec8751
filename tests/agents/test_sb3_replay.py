"""PPO with noisy policies: the update replays the rollout's noise, so the ratio starts at 1.

The acceptance test of the noise-consistent update: before any gradient step PPO's probability
ratio is 1 within 1e-5 at sigma = 0.5 noise-in, and with the replay disabled the same
measurement shows the bias.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

pytest.importorskip("sb3_contrib")

from stable_baselines3.common.logger import Logger

from agents.sb3.feedforward import NoisyActorCriticPolicy, NoisyPPO
from agents.sb3.recurrent import CTRNNRecurrentPolicy, NoisyRecurrentPPO
from agents.sb3.vec_env import make_sb3_vec_env

TASK = {"steps": 10, "settle_steps": 5}
NUM_ENVS, NUM_STEPS, BATCH = 3, 20, 15  # minibatches cut episodes and environments


def make_algorithm(recurrent, *, sigma=0.5, replay=True, placement="in", learning_rate=3e-4):
    envs = make_sb3_vec_env("NoisyRegulator-v0", NUM_ENVS, **TASK)
    envs.seed(0)
    options = {"hidden_size": 8, "sigma": sigma, "replay_noise": replay, "placement": placement}
    if recurrent:
        options["dt"] = 20.0
    algorithm_class = NoisyRecurrentPPO if recurrent else NoisyPPO
    policy_class = CTRNNRecurrentPolicy if recurrent else NoisyActorCriticPolicy
    algorithm = algorithm_class(
        policy_class,
        envs,
        n_steps=NUM_STEPS,
        batch_size=BATCH,
        n_epochs=1,
        learning_rate=learning_rate,
        policy_kwargs=options,
        seed=0,
        device="cpu",
    )
    # a silent logger of our own: SB3's default one writes SB3-<date> folders into /tmp
    algorithm.set_logger(Logger(folder=None, output_formats=[]))
    return algorithm


def collect(algorithm):
    _, callback = algorithm._setup_learn(10_000, None)
    algorithm.collect_rollouts(algorithm.env, callback, algorithm.rollout_buffer, NUM_STEPS)


def ratios_before_any_update(algorithm):
    """exp(new log-prob - rollout log-prob) over every sample, as PPO's update computes it."""
    collect(algorithm)
    algorithm.policy.set_training_mode(True)  # as in PPO.train: noise must not depend on it
    recurrent = isinstance(algorithm, NoisyRecurrentPPO)
    ratios = []
    with torch.no_grad():
        for data in algorithm.rollout_buffer.get(BATCH):
            if recurrent:
                _, log_prob, _ = algorithm.policy.evaluate_actions(
                    data.observations, data.actions, data.lstm_states, data.episode_starts
                )
                mask = data.mask > 1e-8
            else:
                _, log_prob, _ = algorithm.policy.evaluate_actions(data.observations, data.actions)
                mask = torch.ones_like(log_prob, dtype=torch.bool)
            ratios.append(torch.exp(log_prob - data.old_log_prob)[mask])
    ratios = torch.cat(ratios)
    assert ratios.numel() == NUM_ENVS * NUM_STEPS
    return ratios


@pytest.mark.parametrize("recurrent", [True, False], ids=["recurrent_ppo", "ppo"])
def test_ratio_is_one_before_any_update_when_noise_is_replayed(recurrent):
    """sigma = 0.5 noise-in: every ratio is 1 within 1e-5."""
    ratios = ratios_before_any_update(make_algorithm(recurrent))
    assert (ratios - 1).abs().max().item() < 1e-5


@pytest.mark.parametrize("recurrent", [True, False], ids=["recurrent_ppo", "ppo"])
def test_fresh_noise_biases_the_ratio(recurrent):
    """The same measurement with the replay disabled: the ratio is off by far more than 1e-5
    (at sigma 0 the two coincide, so the difference is the noise's)."""
    ratios = ratios_before_any_update(make_algorithm(recurrent, replay=False))
    assert (ratios - 1).abs().max().item() > 1e-3
    quiet = ratios_before_any_update(make_algorithm(recurrent, sigma=0.0, replay=False))
    assert (quiet - 1).abs().max().item() < 1e-5


@pytest.mark.parametrize("recurrent", [True, False], ids=["recurrent_ppo", "ppo"])
def test_sb3_update_sees_no_policy_change_at_zero_learning_rate(recurrent):
    """Through stable-baselines3's own train(): with learning rate 0 its logged approximate KL
    and clip fraction are 0 with the replay, and not without it."""
    logged = {}
    for replay in (True, False):
        algorithm = make_algorithm(recurrent, replay=replay, learning_rate=0.0)
        collect(algorithm)
        algorithm.train()
        logged[replay] = algorithm.logger.name_to_value["train/approx_kl"]
    assert abs(logged[True]) < 1e-10
    assert logged[False] > 1e-8


def test_recurrent_positions_number_environments_and_steps():
    """Each stored state's c holds e * (n_steps + 1) + k for environment e, step k; rollouts are
    numbered 0, 1, ... in both cores."""
    algorithm = make_algorithm(True)
    collect(algorithm)
    stored = algorithm.rollout_buffer.cell_states_pi[:, 0, :, 0]  # [n_steps, n_envs]
    expected = np.arange(NUM_ENVS)[None, :] * (NUM_STEPS + 1) + np.arange(NUM_STEPS)[:, None]
    np.testing.assert_array_equal(stored, expected)
    np.testing.assert_array_equal(algorithm.rollout_buffer.cell_states_vf[:, 0, :, 0], expected)
    assert [core.rollout for core in algorithm.policy.cores] == [0, 0]
    collect(algorithm)
    assert [core.rollout for core in algorithm.policy.cores] == [1, 1]


def test_feedforward_positions_of_a_minibatch():
    """The replay buffer gives each sample of a minibatch the position it had in the rollout."""
    algorithm = make_algorithm(False)
    collect(algorithm)
    buffer = algorithm.rollout_buffer
    data = next(buffer.get(BATCH))
    del data
    env, step = np.divmod(buffer.last_indices, NUM_STEPS)
    np.testing.assert_array_equal(buffer.sample_positions().numpy(), env * (NUM_STEPS + 1) + step)


def test_noise_does_not_depend_on_train_or_eval_mode():
    """Rollouts run in eval mode and updates in train mode; the policy's outputs are the same."""
    algorithm = make_algorithm(True)
    policy = algorithm.policy
    obs = torch.full((NUM_ENVS, 1), 0.5)
    state = tuple(torch.zeros(1, NUM_ENVS, 8) for _ in range(2))
    states = type(algorithm._last_lstm_states)(state, state)
    starts = torch.zeros(NUM_ENVS)
    outputs = []
    for training in (False, True):
        policy.set_training_mode(training)
        with torch.no_grad():
            outputs.append(policy.predict_values(obs, states.vf, starts))
    assert torch.equal(outputs[0], outputs[1])


def test_policy_options_are_validated():
    with pytest.raises(ValueError, match="`lstm_hidden_size` is an LSTM option"):
        make_sb3 = make_sb3_vec_env("NoisyRegulator-v0", 1)
        NoisyRecurrentPPO(
            CTRNNRecurrentPolicy, make_sb3, policy_kwargs={"lstm_hidden_size": 4}, device="cpu"
        )
    with pytest.raises(ValueError, match="`placement` must be one of"):
        make_algorithm(True, placement="inside")
    with pytest.raises(ValueError, match="`net_arch` is replaced"):
        NoisyPPO(
            NoisyActorCriticPolicy,
            make_sb3_vec_env("NoisyRegulator-v0", 1),
            policy_kwargs={"net_arch": [4]},
            device="cpu",
        )


def test_plain_recurrent_ppo_is_warned_about():
    """sb3-contrib's own RecurrentPPO never numbers rollouts or environments: every environment
    would replay the same noise, so the policy warns once when it collects a rollout."""
    from sb3_contrib import RecurrentPPO

    algorithm = RecurrentPPO(
        CTRNNRecurrentPolicy,
        make_sb3_vec_env("NoisyRegulator-v0", NUM_ENVS, **TASK),
        n_steps=NUM_STEPS,
        batch_size=BATCH,
        policy_kwargs={"hidden_size": 4, "sigma": 0.5},
        device="cpu",
    )
    algorithm.set_logger(Logger(folder=None, output_formats=[]))
    with pytest.warns(UserWarning, match="without NoisyRecurrentPPO"):
        collect(algorithm)
