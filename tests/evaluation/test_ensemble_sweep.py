"""sweep_ensemble: member k's result is sweep_noise of ensemble.member(k) with the same seed."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import evaluation
from agents.ctrnn import CTRNNConfig
from agents.ensemble import CTRNNEnsemble
from evaluation.ensemble_sweep import sweep_ensemble
from evaluation.sweep import sweep_noise
from evaluation.sweep_result import SweepResult
from noise_envs import make_task

LEVELS = [0.0, 0.3, 1.0]


@pytest.fixture(scope="module", params=["NoisyFunctionApprox-v0", "NoisyRegulator-v0"])
def task(request):
    if request.param == "NoisyRegulator-v0":  # closed loop, with observation noise
        return make_task(request.param, steps=10, settle_steps=3, obs_noise=0.1)
    return make_task(request.param, steps=8, response_steps=3)


@pytest.fixture(scope="module")
def ensemble(task):
    config = CTRNNConfig(input_size=task.obs_size, output_size=task.action_size, hidden_size=6)
    return CTRNNEnsemble.from_seeds(config, [0, 1, 2], ["in", "out", "in"])


def _assert_same(result, alone):
    assert result.task_id == alone.task_id and result.seed == alone.seed
    np.testing.assert_array_equal(result.levels, alone.levels)
    assert result.metrics.keys() == alone.metrics.keys()
    for name, values in alone.metrics.items():
        np.testing.assert_allclose(result.metrics[name], values, rtol=1e-5, atol=1e-6)


def test_one_seed_gives_every_member_its_lone_sweep(task, ensemble):
    results = sweep_ensemble(ensemble, task, LEVELS, episodes=5, seed=7, max_rows=9)  # 2 chunks
    assert len(results) == 3
    for k, result in enumerate(results):
        _assert_same(
            result, sweep_noise(ensemble.member(k), task, LEVELS, episodes=5, seed=7, max_rows=9)
        )


def test_one_seed_per_member_gives_each_its_own_lone_sweep(task, ensemble):
    seeds = [4, 5, 6]
    results = sweep_ensemble(ensemble, task, LEVELS, episodes=4, seed=seeds)
    for k, result in enumerate(results):
        _assert_same(
            result, sweep_noise(ensemble.member(k), task, LEVELS, episodes=4, seed=seeds[k])
        )
    # other seeds, other episodes: the per-member streams are really the members' own
    assert not np.allclose(results[0].values(), results[2].values())


def test_bad_seeds_and_policies_are_refused(task, ensemble):
    with pytest.raises(ValueError, match=r"one per member \(3\), got 2 seeds"):
        sweep_ensemble(ensemble, task, LEVELS, episodes=2, seed=[1, 2])
    with pytest.raises(ValueError, match="must be a CTRNNEnsemble"):
        sweep_ensemble(ensemble.member(0), task, LEVELS, episodes=2)


def test_a_diverged_member_is_named_not_reported_best_at_zero(task, ensemble):
    """A member with NaN weights gives NaN metrics: the sweep names it instead of a sigma*."""
    broken = CTRNNEnsemble.from_members([ensemble.member(k) for k in range(3)])
    with torch.no_grad():
        broken.b_out[1].fill_(float("nan"))
    with pytest.raises(ValueError, match=r"member 1: the model's outputs are not finite"):
        sweep_ensemble(broken, task, LEVELS, episodes=2)


def test_noisepref_sweep_reads_a_member_run_folder(tmp_path):
    """A member's folder is a run folder to the CLI too: `noisepref sweep` sweeps it."""
    from agents.ensemble_training import train_ensemble_runs
    from agents.train_config import TrainConfig
    from evaluation.cli import main

    runs = train_ensemble_runs(
        tmp_path,
        "NoisyFunctionApprox-v0",
        CTRNNConfig(input_size=1, output_size=1, hidden_size=4),
        TrainConfig(iterations=2, batch_size=4),
        sigmas=[0.5],
        placements=["in", "out"],
        task_kwargs={"steps": 6, "response_steps": 2},
        progress=False,
    )
    folder = runs[1].path
    assert main(["sweep", str(folder), "--levels", "0,0.5", "--episodes", "4"]) == 0
    swept = SweepResult.from_csv(folder / "sweep.csv")
    np.testing.assert_array_equal(swept.levels, [0.0, 0.5])
    assert swept.num_episodes == 4


def test_sweep_noise_refuses_an_ensemble_and_names_sweep_ensemble():
    """Its rows would pool the members' episodes into one result."""
    task = make_task("NoisyFunctionApprox-v0", steps=5, response_steps=2)
    config = CTRNNConfig(input_size=1, output_size=1, hidden_size=4)
    ensemble = CTRNNEnsemble.from_seeds(config, [0, 1], ["in", "out"])
    with pytest.raises(ValueError, match=r"CTRNNEnsemble of 2 members.*sweep_ensemble"):
        sweep_noise(ensemble, task, [0.0, 0.5], episodes=4)
    assert evaluation.sweep_ensemble is sweep_ensemble  # exported beside sweep_noise
