"""train_ensemble: each member ends where training it alone with agents.supervised.train ends."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from agents.ctrnn import CTRNN, CTRNNConfig
from agents.ensemble import CTRNNEnsemble
from agents.ensemble_training import (
    clip_member_grad_norms,
    member_train_configs,
    train_ensemble,
)
from agents.errors import TrainingDiverged
from agents.supervised import TrainConfig, train
from noise_envs import make_task

TOLERANCE = {"rtol": 1e-5, "atol": 1e-6}
"""Float rounding of batched vs. single matrix products, after 20 iterations (seen: <= 6e-8)."""


@pytest.fixture(scope="module")
def task():
    return make_task("NoisyFunctionApprox-v0", steps=20, response_steps=5)


def _config(task, **changes) -> CTRNNConfig:
    return CTRNNConfig(
        input_size=task.obs_size, output_size=task.action_size, hidden_size=16, **changes
    )


def _train_alone(task, config, train_config, seed):
    model = CTRNN(config, torch.Generator().manual_seed(seed))
    return train(model, task, train_config, progress=False)


def test_each_member_equals_training_it_alone(task):
    """K = 4: noise in and out x two sigmas, one program; each member as if trained alone."""
    placements, sigmas, seeds = ["in", "in", "out", "out"], [0.3, 1.0, 0.3, 1.0], [0, 1, 2, 3]
    ensemble = CTRNNEnsemble.from_seeds(_config(task), seeds, placements)
    base = TrainConfig(iterations=20, batch_size=8, learning_rate=1e-2, grad_clip=0.5)
    result = train_ensemble(ensemble, task, base, sigmas=sigmas, seeds=seeds, progress=False)
    assert result.diverged == {}
    for k in range(4):
        member_config = dataclasses.replace(base, sigma=sigmas[k], seed=seeds[k])
        alone = _train_alone(task, _config(task, placement=placements[k]), member_config, seeds[k])
        member = ensemble.member(k)
        for name, value in alone.model.state_dict().items():
            torch.testing.assert_close(member.state_dict()[name], value, **TOLERANCE)
        assert [row["iteration"] for row in result.histories[k]] == list(range(1, 21))
        for mine, theirs in zip(result.histories[k], alone.history, strict=True):
            assert mine["loss"] == pytest.approx(theirs["loss"], rel=1e-5)
            assert mine["grad_norm"] == pytest.approx(theirs["grad_norm"], rel=1e-4)


def test_a_diverged_member_stops_at_its_last_good_weights_and_the_others_go_on(task):
    """lr 1 without clipping on unstable networks: members blow up at different iterations."""
    config = _config(task, recurrent_gain=3.0, dt=100.0)
    base = TrainConfig(iterations=10, batch_size=8, learning_rate=1.0, grad_clip=0.0)
    seeds = [0, 1, 2, 3]
    ensemble = CTRNNEnsemble.from_seeds(config, seeds)
    result = train_ensemble(ensemble, task, base, seeds=seeds, progress=False)
    assert result.diverged == {0: 2, 1: 2, 2: 6}  # member 3 survives
    # Exactly frozen: member 2's weights are the ensemble's after iteration 5, bit for bit.
    shorter = CTRNNEnsemble.from_seeds(config, seeds)
    train_ensemble(
        shorter, task, dataclasses.replace(base, iterations=5), seeds=seeds, progress=False
    )
    for name, value in shorter.member(2).state_dict().items():
        assert torch.equal(ensemble.member(2).state_dict()[name], value), name
    for k in range(4):
        member_config = dataclasses.replace(base, seed=seeds[k])
        if k in result.diverged:
            at = result.diverged[k]
            with pytest.raises(TrainingDiverged, match=f"iteration {at}"):
                _train_alone(task, config, member_config, seeds[k])
            member_config = dataclasses.replace(member_config, iterations=at - 1)
        alone = _train_alone(task, config, member_config, seeds[k])
        assert len(result.histories[k]) == member_config.iterations
        for name, value in alone.model.state_dict().items():
            # lr 1 on unstable networks amplifies rounding: seen 2e-6 absolute, 3e-5 relative
            torch.testing.assert_close(
                ensemble.member(k).state_dict()[name], value, rtol=1e-4, atol=1e-5
            )


def test_every_member_diverging_stops_training(task):
    ensemble = CTRNNEnsemble.from_seeds(_config(task), [0, 1])
    with torch.no_grad():
        ensemble.W.fill_(float("inf"))
    before = {name: value.clone() for name, value in ensemble.state_dict().items()}
    result = train_ensemble(
        ensemble, task, TrainConfig(iterations=3, batch_size=4), seeds=[0, 1], progress=False
    )
    assert result.diverged == {0: 1, 1: 1}
    assert result.histories == [[], []]
    for name, value in ensemble.state_dict().items():
        assert torch.equal(value, before[name]), name  # inf == inf: W is left as it was


def test_per_member_clipping_matches_clip_grad_norm_of_each_member():
    generator = torch.Generator().manual_seed(0)
    params = [torch.nn.Parameter(torch.zeros(3, 4, 2)), torch.nn.Parameter(torch.zeros(3, 5))]
    grads = [torch.randn(p.shape, generator=generator) * 3 for p in params]
    for param, grad in zip(params, grads, strict=True):
        param.grad = grad.clone()
    norms = clip_member_grad_norms(params, max_norm=1.0)
    for k in range(3):
        lone = [torch.nn.Parameter(torch.zeros(p.shape[1:])) for p in params]
        for param, grad in zip(lone, grads, strict=True):
            param.grad = grad[k].clone()
        expected = torch.nn.utils.clip_grad_norm_(lone, 1.0)
        torch.testing.assert_close(norms[k], expected)
        for param, mine in zip(lone, params, strict=True):
            torch.testing.assert_close(mine.grad[k], param.grad)


# --- bad input ------------------------------------------------------------------------------


def test_members_that_disagree_on_a_shared_option_are_refused(task):
    ensemble = CTRNNEnsemble.from_seeds(_config(task), [0, 1])
    configs = [TrainConfig(iterations=3), TrainConfig(iterations=4)]
    with pytest.raises(ValueError, match=r"share `iterations`.*member 1 has 4, member 0 has 3"):
        train_ensemble(ensemble, task, configs, progress=False)


def test_config_lists_of_the_wrong_length_are_refused(task):
    ensemble = CTRNNEnsemble.from_seeds(_config(task), [0, 1])
    with pytest.raises(ValueError, match=r"one TrainConfig per member \(2\), got 3"):
        train_ensemble(ensemble, task, TrainConfig(), seeds=[0, 1, 2], progress=False)
    with pytest.raises(ValueError, match="2 sigmas and 3 seeds"):
        member_train_configs(TrainConfig(), sigmas=[0.1, 0.2], seeds=[0, 1, 2])
    with pytest.raises(ValueError, match=r"K >= 1"):
        member_train_configs(TrainConfig(), seeds=[])
    with pytest.raises(ValueError, match="with one base TrainConfig, not with a list"):
        train_ensemble(ensemble, task, [TrainConfig()] * 2, seeds=[0, 1], progress=False)


def test_an_ensemble_that_does_not_fit_the_task_is_refused(task):
    config = CTRNNConfig(input_size=3, output_size=task.action_size, hidden_size=4)
    with pytest.raises(ValueError, match="`input_size` is 3"):
        train_ensemble(CTRNNEnsemble([config]), task, TrainConfig(), seeds=[0], progress=False)
    with pytest.raises(ValueError, match="must be a CTRNNEnsemble"):
        train_ensemble(CTRNN(config), task, TrainConfig(), seeds=[0], progress=False)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_training_on_cuda_matches_the_cpu(task):
    """Device-agnostic: the same members trained on CUDA end near their CPU weights."""
    seeds, placements = [0, 1], ["in", "out"]
    base = TrainConfig(iterations=5, batch_size=8, learning_rate=1e-2)
    weights = []
    for device in ("cpu", "cuda"):
        ensemble = CTRNNEnsemble.from_seeds(_config(task), seeds, placements)
        train_ensemble(
            ensemble, task, base, sigmas=[0.3, 0.3], seeds=seeds, device=device, progress=False
        )
        weights.append({k: v.cpu() for k, v in ensemble.state_dict().items()})
    for name, value in weights[0].items():
        torch.testing.assert_close(weights[1][name], value, rtol=1e-4, atol=1e-5)


def test_the_closed_loop_path_equals_training_alone(monkeypatch):
    """A task run closed loop (step by step inside it): each member still equals its lone run."""
    task = make_task("NoisyRegulator-v0", steps=12, settle_steps=3, obs_noise=0.05)
    monkeypatch.setattr(task, "open_loop", False)  # its episodes end together: same draws
    seeds, placements, sigmas = [0, 1], ["in", "out"], [0.4, 0.8]
    base = TrainConfig(iterations=5, batch_size=6, learning_rate=1e-2)
    ensemble = CTRNNEnsemble.from_seeds(_config(task), seeds, placements)
    train_ensemble(ensemble, task, base, sigmas=sigmas, seeds=seeds, progress=False)
    for k in range(2):
        config = dataclasses.replace(base, sigma=sigmas[k], seed=seeds[k])
        alone = _train_alone(task, _config(task, placement=placements[k]), config, seeds[k])
        for name, value in alone.model.state_dict().items():
            torch.testing.assert_close(ensemble.member(k).state_dict()[name], value, **TOLERANCE)
