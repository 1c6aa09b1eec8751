"""Scientific regression tests of RL-trained CTRNNs on the regulator (RecurrentPPO, CPU, minutes).

RecurrentPPO with a CTRNN core, trained at sigma = 0.5 with the rollout's noise replayed in the
update, learns NoisyRegulator-v0 as well as a BPTT network trained for 300 iterations (measured:
mse 0.00206 against 0.00235 at the training noise; a BPTT network trained for 1000 iterations
reaches 0.00095, so RL at this budget is about 2x from converged BPTT). The noise sweep shows the
paper's direction in RL-trained agents too (measured mse at test noise 0 / 0.25 / 0.5 / 0.75 / 1):
noise-in 0.0055 / 0.0031 / 0.0021 / 0.0033 / 0.0060 (best at the training level, zero noise
2.7x worse), noise-out 0.0004 / 0.0008 / 0.0020 / 0.0041 / 0.0069 (best at zero).
About 95 s of CPU on one thread.
"""

from __future__ import annotations

import pytest
import torch

pytest.importorskip("sb3_contrib")

from agents import CTRNN, CTRNNConfig, TrainConfig, train
from agents.sb3.config import CTRNNPolicyConfig, RLTrainConfig
from agents.sb3.training import train_rl
from evaluation.stats import preference
from evaluation.sweep import sweep_noise
from noise_envs import make_task

pytestmark = pytest.mark.science

TASK_ID = "NoisyRegulator-v0"
TASK = {"steps": 30, "settle_steps": 15}
SIGMA = 0.5
LEVELS = [0.0, 0.25, 0.5, 0.75, 1.0]
HIDDEN, DT = 16, 20.0


def rl_config(seed: int) -> RLTrainConfig:
    # discount 0: the regulator's actions do not change what it shows next, so an action's
    # return is its own reward, the lowest-variance credit.
    return RLTrainConfig(
        sigma=SIGMA,
        iterations=40,
        num_envs=16,
        num_steps=60,
        batch_size=480,
        epochs=10,
        learning_rate=2e-3,
        discount=0.0,
        seed=seed,
    )


def train_agent(placement: str, seed: int = 0):
    policy = CTRNNPolicyConfig(hidden_size=HIDDEN, placement=placement, dt=DT, log_std_init=-1.0)
    result = train_rl(TASK_ID, policy, rl_config(seed), task_kwargs=TASK, progress=False)
    return result.policy


def sweep(policy):
    return sweep_noise(policy, make_task(TASK_ID, **TASK), LEVELS, episodes=512, seed=1)


@pytest.fixture(scope="module")
def noise_in_sweep():
    return sweep(train_agent("in"))


@pytest.fixture(scope="module")
def noise_out_sweep():
    return sweep(train_agent("out"))


@pytest.fixture(scope="module")
def supervised_mse():
    """Mean mse at test noise SIGMA of a BPTT-trained noise-in CTRNN of the same size."""
    config = CTRNNConfig(input_size=1, output_size=1, hidden_size=HIDDEN, dt=DT)
    model = CTRNN(config, generator=torch.Generator().manual_seed(0))
    train_config = TrainConfig(sigma=SIGMA, iterations=300, batch_size=64, learning_rate=1e-2)
    train(model, make_task(TASK_ID, **TASK), train_config, progress=False)
    result = sweep_noise(model, make_task(TASK_ID, **TASK), [SIGMA], episodes=512, seed=1)
    return float(result.values("mse").mean())


def test_recurrent_ppo_learns_the_regulator_like_bptt(noise_in_sweep, supervised_mse):
    """At the training noise the RL agent's mse is within 20% of the 300-iteration BPTT
    network's (or better), and far below the untrained level (about 0.4)."""
    rl_mse = float(noise_in_sweep.values("mse")[LEVELS.index(SIGMA)].mean())
    assert rl_mse <= 1.2 * supervised_mse, (rl_mse, supervised_mse)
    assert rl_mse < 0.01


def test_rl_noise_in_agent_prefers_nonzero_noise(noise_in_sweep):
    """sigma* > 0, zero noise clearly worse (ratio >= 1.3), and the preference significant."""
    found = preference(noise_in_sweep)
    assert found.sigma_star >= 0.25, found
    assert found.ratio >= 1.3, found
    assert found.significant, found


def test_rl_noise_out_agent_prefers_zero_noise(noise_out_sweep):
    """The noise-out agent does best at zero noise and gets worse as noise grows."""
    found = preference(noise_out_sweep)
    assert found.sigma_star == 0.0, found
    means = noise_out_sweep.values("mse").mean(1)
    assert (means[1:] > means[:-1]).all(), means
