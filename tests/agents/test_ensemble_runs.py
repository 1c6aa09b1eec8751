"""Members' run folders: written like lone runs, read by load_run, resumed as a whole."""

from __future__ import annotations

import dataclasses
import json
import os

import pytest
import torch

import agents.ensemble_training as ensemble_training
from agents.ctrnn import CTRNN, CTRNNConfig
from agents.ensemble import CTRNNEnsemble
from agents.ensemble_training import train_ensemble
from agents.errors import RunMismatch
from agents.runs import load_run
from agents.supervised import TrainConfig, train
from noise_envs import make_task

PLACEMENTS, SIGMAS, SEEDS = ["in", "out"], [0.5, 0.2], [3, 4]
BASE = TrainConfig(iterations=6, batch_size=4, learning_rate=1e-2, checkpoint_every=2)


@pytest.fixture(scope="module")
def task():
    return make_task("NoisyFunctionApprox-v0", steps=10, response_steps=4)


def _config(task, **changes):
    return CTRNNConfig(
        input_size=task.obs_size, output_size=task.action_size, hidden_size=6, **changes
    )


def _ensemble(task):
    return CTRNNEnsemble.from_seeds(_config(task), SEEDS, PLACEMENTS)


def _train(task, folders, **changes):
    config = dataclasses.replace(BASE, **changes)
    return train_ensemble(
        _ensemble(task), task, config, sigmas=SIGMAS, seeds=SEEDS, run_dirs=folders, progress=False
    )


def test_a_member_folder_is_a_lone_run_folder(task, tmp_path):
    folders = [tmp_path / "in", tmp_path / "out"]
    result = _train(task, folders)
    assert result.run_dirs == folders
    alone_dir = tmp_path / "alone"
    model = CTRNN(_config(task, placement="in"), torch.Generator().manual_seed(SEEDS[0]))
    config = dataclasses.replace(BASE, sigma=SIGMAS[0], seed=SEEDS[0])
    train(model, task, config, run_dir=alone_dir, progress=False)
    assert sorted(os.listdir(folders[0])) == sorted(os.listdir(alone_dir))
    record = json.loads((folders[0] / "run.json").read_text())
    assert record == json.loads((alone_dir / "run.json").read_text())
    member, alone = load_run(folders[0]), load_run(alone_dir)
    assert (member.status, member.iterations_done, len(member.history)) == ("complete", 6, 6)
    assert member.model_config == alone.model_config and member.train_config == alone.train_config
    for name, value in alone.model.state_dict().items():
        torch.testing.assert_close(member.model.state_dict()[name], value, rtol=1e-5, atol=1e-6)
    assert load_run(folders[1]).model_config.placement == "out"
    assert load_run(folders[1]).train_config.sigma == SIGMAS[1]


def test_resume_after_an_interruption_is_bit_identical(task, tmp_path, monkeypatch):
    whole = [tmp_path / "whole-a", tmp_path / "whole-b"]
    _train(task, whole)
    parts = [tmp_path / "part-a", tmp_path / "part-b"]
    calls, losses = [0], ensemble_training.member_losses

    def interrupted(*args, **kwargs):
        calls[0] += 1
        if calls[0] == 5:  # after the checkpoint of iteration 4
            raise KeyboardInterrupt
        return losses(*args, **kwargs)

    monkeypatch.setattr(ensemble_training, "member_losses", interrupted)
    with pytest.raises(KeyboardInterrupt):
        _train(task, parts)
    monkeypatch.setattr(ensemble_training, "member_losses", losses)
    assert load_run(parts[0]).status == "running" and load_run(parts[0]).iterations_done == 4
    _train(task, parts)
    for one, other in zip(whole, parts, strict=True):
        a, b = load_run(one), load_run(other)
        assert b.status == "complete"
        for name, value in a.model.state_dict().items():
            assert torch.equal(b.model.state_dict()[name], value), name
        assert [row["loss"] for row in a.history] == [row["loss"] for row in b.history]


def test_a_lone_trainer_resumes_a_member_folder(task, tmp_path):
    folders = [tmp_path / "a", tmp_path / "b"]
    _train(task, folders, iterations=4)
    whole = _train(task, [tmp_path / "c", tmp_path / "d"])
    model = CTRNN(_config(task, placement="in"))
    config = dataclasses.replace(BASE, sigma=SIGMAS[0], seed=SEEDS[0])
    train(model, task, config, run_dir=folders[0], progress=False)
    for name, value in whole.ensemble.member(0).state_dict().items():
        torch.testing.assert_close(model.state_dict()[name], value, rtol=1e-5, atol=1e-6)


def test_folders_at_different_iterations_are_refused(task, tmp_path):
    _train(task, [tmp_path / "a", tmp_path / "b"], iterations=2)
    with pytest.raises(RunMismatch, match="different iterations"):
        _train(task, [tmp_path / "a", tmp_path / "new"])


def test_a_diverged_member_leaves_its_folder_at_its_last_checkpoint(task, tmp_path):
    task = make_task("NoisyFunctionApprox-v0", steps=20, response_steps=5)
    config = CTRNNConfig(input_size=1, output_size=1, hidden_size=16, recurrent_gain=3.0, dt=100.0)
    ensemble = CTRNNEnsemble.from_seeds(config, [0, 1, 2, 3])
    folders = [tmp_path / str(k) for k in range(4)]
    result = train_ensemble(
        ensemble,
        task,
        TrainConfig(
            iterations=8, batch_size=8, learning_rate=1.0, grad_clip=0.0, checkpoint_every=1
        ),
        seeds=[0, 1, 2, 3],
        run_dirs=folders,
        progress=False,
    )
    assert result.diverged == {0: 2, 1: 2, 2: 6}
    runs = [load_run(folder) for folder in folders]
    assert [(run.status, run.iterations_done) for run in runs] == [
        ("running", 1),
        ("running", 1),
        ("running", 5),
        ("complete", 8),
    ]
    for name, value in ensemble.member(2).state_dict().items():
        assert torch.equal(runs[2].model.state_dict()[name], value), name


def test_bad_run_dirs_are_refused(task, tmp_path):
    with pytest.raises(ValueError, match=r"one folder per member \(2\), got 1"):
        _train(task, [tmp_path / "a"])
    with pytest.raises(ValueError, match="must be distinct folders"):
        _train(task, [tmp_path / "a", tmp_path / "a"])
    with pytest.raises(ValueError, match="got one path"):
        _train(task, str(tmp_path / "a"))


def test_train_ensemble_runs_names_one_lone_run_per_member(tmp_path):
    from agents.ensemble_training import member_run_name, train_ensemble_runs
    from agents.supervised import train_run

    kwargs = {"steps": 8, "response_steps": 3}
    model_config = CTRNNConfig(input_size=1, output_size=1, hidden_size=5)
    config = TrainConfig(iterations=3, batch_size=4)
    runs = train_ensemble_runs(
        tmp_path,
        "NoisyFunctionApprox-v0",
        model_config,
        config,
        sigmas=[0.25, 1.0],
        placements=["in", "out"],
        seeds=[0, 1],
        task_kwargs=kwargs,
        progress=False,
    )
    names = [run.path.name for run in runs]
    assert names[:3] == [
        "noise-in-sigma0.25-seed0",
        "noise-in-sigma0.25-seed1",
        "noise-in-sigma1-seed0",
    ]
    assert len(names) == 8 and names[-1] == member_run_name("out", 1.0, 1)
    alone = train_run(
        tmp_path / "alone",
        "NoisyFunctionApprox-v0",
        dataclasses.replace(model_config, placement="out"),
        dataclasses.replace(config, sigma=1.0, seed=1),
        task_kwargs=kwargs,
        progress=False,
    )
    assert json.loads((runs[-1].path / "run.json").read_text()) == json.loads(
        (alone.path / "run.json").read_text()
    )
    for name, value in alone.model.state_dict().items():
        torch.testing.assert_close(runs[-1].model.state_dict()[name], value, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    ("lists", "message"),
    [
        ({"placements": ["in", "uot"]}, r"`placements` must be one of.*Did you mean 'out'"),
        ({"seeds": []}, r"`seeds` must hold at least one value"),
        ({"sigmas": [0.5, 0.5]}, r"`sigmas` must not repeat"),
    ],
)
def test_train_ensemble_runs_refuses_bad_lists(tmp_path, lists, message):
    from agents.ensemble_training import train_ensemble_runs

    model_config = CTRNNConfig(input_size=1, output_size=1, hidden_size=5)
    with pytest.raises(ValueError, match=message):
        train_ensemble_runs(
            tmp_path, "NoisyFunctionApprox-v0", model_config, TrainConfig(), progress=False, **lists
        )
