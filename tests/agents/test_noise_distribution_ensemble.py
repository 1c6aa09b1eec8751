"""An ensemble member trained across a noise distribution ends where training it alone ends."""

from __future__ import annotations

import pytest
import torch

from agents.ctrnn import CTRNN, CTRNNConfig
from agents.ensemble import CTRNNEnsemble
from agents.ensemble_training import train_ensemble
from agents.supervised import TrainConfig, train
from noise_envs import make_task

TOLERANCE = {"rtol": 1e-5, "atol": 1e-6}
"""Float rounding of batched vs. single matrix products (as the ensemble's own tests allow)."""


def test_members_with_their_own_noise_distributions_equal_lone_runs():
    task = make_task("NoisyFunctionApprox-v0", steps=20, response_steps=5)
    config = CTRNNConfig(input_size=task.obs_size, output_size=task.action_size, hidden_size=8)
    base = TrainConfig(iterations=10, batch_size=8, learning_rate=1e-2)
    configs = [
        base.replace(sigma_dist="uniform:0,1", seed=0),
        base.replace(sigma=0.5, seed=1),
        base.replace(sigma_dist="discrete:0,0.5,1@1,2,1", seed=2).replace(
            sigma_dist={"kind": "discrete", "levels": [0, 0.5, 1], "per": "batch"}
        ),
    ]
    seeds = [0, 1, 2]
    ensemble = CTRNNEnsemble.from_seeds(config, seeds, ["in"] * 3)
    result = train_ensemble(ensemble, task, configs, progress=False)
    assert result.diverged == {}
    for k, member_config in enumerate(configs):
        alone = CTRNN(config, torch.Generator().manual_seed(seeds[k]))
        train(alone, task, member_config, progress=False)
        for name, value in alone.state_dict().items():
            torch.testing.assert_close(ensemble.member(k).state_dict()[name], value, **TOLERANCE)


@pytest.mark.parametrize("open_loop", [True, False])
def test_members_draw_their_noise_exactly_when_their_lone_runs_do(tmp_path, monkeypatch, open_loop):
    """A member whose levels are drawn always draws its samples (as alone, even if every level
    of the iteration is 0); a member at a fixed sigma of 0 never does. Both hold when no member
    of the ensemble has noise due, and both leave the generators where lone runs leave them,
    whether the sequence runs at once or step by step inside the task (closed loop)."""
    task = make_task("NoisyFunctionApprox-v0", steps=20, response_steps=5)
    monkeypatch.setattr(task, "open_loop", open_loop)  # its episodes end together: same draws
    config = CTRNNConfig(input_size=task.obs_size, output_size=task.action_size, hidden_size=8)
    base = TrainConfig(iterations=12, batch_size=8, learning_rate=1e-2, checkpoint_every=12)
    configs = [
        base.replace(sigma_dist={"kind": "discrete", "levels": [0, 1], "per": "batch"}, seed=0),
        base.replace(sigma=0.0, seed=1),
    ]
    ensemble = CTRNNEnsemble.from_seeds(config, [0, 1], ["in", "in"])
    folders = [tmp_path / "drawn", tmp_path / "zero"]
    train_ensemble(ensemble, task, configs, run_dirs=folders, progress=False)
    for k, member_config in enumerate(configs):
        alone = CTRNN(config, torch.Generator().manual_seed(k))
        train(alone, task, member_config, run_dir=tmp_path / f"alone{k}", progress=False)
        for name, value in alone.state_dict().items():
            torch.testing.assert_close(ensemble.member(k).state_dict()[name], value, **TOLERANCE)
        member_rng = torch.load(folders[k] / "checkpoint.pt", weights_only=True)["rng"]
        alone_rng = torch.load(tmp_path / f"alone{k}" / "checkpoint.pt", weights_only=True)["rng"]
        for stream in ("env", "noise"):
            assert torch.equal(member_rng[stream], alone_rng[stream]), (k, stream)
