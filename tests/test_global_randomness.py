"""Library code never reads or reseeds torch's global generators (STYLE 13, DESIGN "Conventions").

A user's ``torch.manual_seed(0)`` before a call into the library must mean the same thing after
it: each test seeds the global generators, calls one entry point that draws randomness (with no
seed or generator where the API allows it), and checks that the global CPU state, and every CUDA
device's state where CUDA is available, is byte for byte what it was.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
import torch

from agents import CTRNN, CTRNNConfig, TrainConfig, train
from evaluation.sweep import sweep_noise
from noise_envs import make_task
from noise_envs.env import TaskEnv

TASK_ID = "NoisyRegulator-v0"
TASK = {"steps": 6, "settle_steps": 2}


def global_states() -> list[torch.Tensor]:
    """torch's global generator states: the CPU one, then one per CUDA device."""
    states = [torch.random.get_rng_state()]
    if torch.cuda.is_available():
        states += torch.cuda.get_rng_state_all()
    return states


@pytest.fixture
def assert_generators_unchanged() -> Iterator[Callable[[], None]]:
    """Seed the global generators; the returned check asserts their states did not move."""
    torch.manual_seed(1234)
    before = global_states()

    def check() -> None:
        after = global_states()
        assert len(after) == len(before)
        for old, new in zip(before, after, strict=True):
            assert torch.equal(old, new)

    return check


def tiny_ctrnn(task) -> CTRNN:
    config = CTRNNConfig(input_size=task.obs_size, output_size=task.action_size, hidden_size=4)
    return CTRNN(config, generator=torch.Generator().manual_seed(0))


def test_the_check_sees_a_reseed(assert_generators_unchanged):
    """The fixture's check is not vacuous: torch.seed(), what RandomSource(None) used to call,
    moves the global state."""
    torch.seed()
    with pytest.raises(AssertionError):
        assert_generators_unchanged()


def test_task_reset_without_a_generator(assert_generators_unchanged):
    """Task.reset(generator=None) draws fresh randomness (two resets differ) from its own
    generator."""
    task = make_task("NoisyFunctionApprox-v0")
    first, _ = task.reset(8)
    second, _ = task.reset(8)
    assert not torch.equal(first.cue, second.cue)
    assert_generators_unchanged()


def test_env_reset_without_a_seed(assert_generators_unchanged):
    """TaskEnv.reset() without a seed seeds itself from the OS through np_random."""
    env = TaskEnv(TASK_ID, **TASK)
    env.reset()
    env.step(env.action_space.sample())
    env.reset()
    assert_generators_unchanged()


def test_sweep(assert_generators_unchanged):
    task = make_task(TASK_ID, **TASK)
    sweep_noise(tiny_ctrnn(task), task, [0.0, 0.5], episodes=3)
    assert_generators_unchanged()


def test_supervised_training(assert_generators_unchanged):
    task = make_task(TASK_ID, **TASK)
    config = TrainConfig(sigma=0.3, iterations=2, batch_size=4, checkpoint_every=1)
    train(tiny_ctrnn(task), task, config, progress=False)
    assert_generators_unchanged()


def test_ensemble_training_into_run_folders(assert_generators_unchanged, tmp_path):
    """Writing the members' run folders copies their weights out without drawing new ones."""
    from agents.ensemble_training import train_ensemble_runs

    config = TrainConfig(iterations=2, batch_size=4, checkpoint_every=1)
    task = make_task(TASK_ID, **TASK)
    model = CTRNNConfig(input_size=task.obs_size, output_size=task.action_size, hidden_size=4)
    train_ensemble_runs(
        tmp_path, TASK_ID, model, config, sigmas=[0.3], placements=["in", "out"],
        seeds=[0], task_kwargs=TASK, progress=False,
    )  # fmt: skip
    assert_generators_unchanged()


def test_rl_training(assert_generators_unchanged):
    """train_rl seeds the global generators (stable-baselines3 draws from them) and restores
    them, CUDA's included."""
    pytest.importorskip("sb3_contrib")
    from agents.sb3.config import CTRNNPolicyConfig, RLTrainConfig
    from agents.sb3.training import train_rl

    config = RLTrainConfig(sigma=0.5, iterations=1, num_envs=2, num_steps=8, batch_size=8, epochs=1)
    train_rl(
        TASK_ID, CTRNNPolicyConfig(hidden_size=4, dt=20.0), config, task_kwargs=TASK, progress=False
    )
    assert_generators_unchanged()
