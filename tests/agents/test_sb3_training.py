"""Tests of agents.sb3.training and `noisepref train --algo`: RL runs in the supervised run format."""

from __future__ import annotations

import json
import tempfile

import numpy as np
import pytest
import torch

pytest.importorskip("sb3_contrib")

from agents import load_run
from agents.errors import CorruptRun, NotARunFolder, RunMismatch, TrainingDiverged
from agents.runs import read_history, read_run_record
from agents.sb3.config import CTRNNPolicyConfig, MLPPolicyConfig, RLTrainConfig
from agents.sb3.training import RL_HISTORY_FILE, train_rl, train_rl_run
from agents.supervised import TrainConfig
from evaluation.cli import main
from evaluation.sweep import sweep_noise

TASK_ID = "NoisyRegulator-v0"
TASK = {"steps": 6, "settle_steps": 2}
POLICY = CTRNNPolicyConfig(hidden_size=4, dt=20.0)


def config(**changes):
    base = RLTrainConfig(
        sigma=0.5,
        iterations=2,
        num_envs=2,
        num_steps=12,
        batch_size=12,
        epochs=2,
        checkpoint_every=1,
    )
    return base.replace(**changes)


def weights(policy):
    return {name: value.clone() for name, value in policy.state_dict().items()}


@pytest.fixture(scope="module")
def recurrent_run(tmp_path_factory):
    """A two-iteration RecurrentPPO run, and the policy the training returned."""
    folder = tmp_path_factory.mktemp("run")
    result = train_rl(TASK_ID, POLICY, config(), task_kwargs=TASK, run_dir=folder, progress=False)
    return folder, result


def test_run_folder_has_the_supervised_layout(recurrent_run):
    """run.json, weights, checkpoint and history as agents.runs writes them, plus rl_history.csv;
    run.json says trainer rl and holds the RLTrainConfig itself, which load_run gives back."""
    folder, result = recurrent_run
    record = read_run_record(folder)
    assert record["status"] == "complete"
    assert record["iterations_done"] == 2
    assert record["model"]["kind"] == "recurrent_ppo_ctrnn"
    assert record["model"]["config"]["sigma"] == 0.5
    assert record["task"] == {"id": TASK_ID, "kwargs": record["task"]["kwargs"]}
    assert record["task"]["kwargs"]["steps"] == 6
    assert record["trainer"] == "rl"
    assert RLTrainConfig.from_dict(record["train"]) == config()
    assert load_run(folder).train_config == config()
    assert [row["iteration"] for row in read_history(folder)] == [1, 2]
    assert (folder / RL_HISTORY_FILE).read_text().splitlines()[0] == (
        "iteration,timesteps,episodes,episode_reward,metric"
    )
    assert [row["timesteps"] for row in result.history] == [24, 48]


def test_saved_run_round_trips_outputs_exactly(recurrent_run):
    """load_run rebuilds the policy from JSON and safetensors: with the same xi it acts exactly
    like the trained policy, and a noise sweep gives identical numbers."""
    folder, result = recurrent_run
    run = load_run(folder)
    task = run.task()
    for model in (run.model, result.policy):
        model.eval()
    obs = torch.rand(5, 3, 1, generator=torch.Generator().manual_seed(0))
    xi = torch.randn(5, 3, 4, generator=torch.Generator().manual_seed(1))
    states = [run.model.initial_state(3), result.policy.initial_state(3)]
    with torch.no_grad():
        for t in range(5):
            (a, states[0]), (b, states[1]) = (
                model.step(obs[t], state, 0.5, xi[t])
                for model, state in zip((run.model, result.policy), states, strict=True)
            )
            assert torch.equal(a, b) and torch.equal(*states)
    sweeps = [sweep_noise(m, task, [0.0, 0.5], episodes=4) for m in (run.model, result.policy)]
    np.testing.assert_array_equal(sweeps[0].values(), sweeps[1].values())


def test_same_seed_same_weights_and_global_generators_untouched(recurrent_run):
    """Training is reproducible from config.seed, and leaves the global generators as they were."""
    _, result = recurrent_run
    torch_state, numpy_state = torch.random.get_rng_state(), np.random.get_state()  # noqa: NPY002
    again = train_rl(TASK_ID, POLICY, config(), task_kwargs=TASK, progress=False)
    for name, value in weights(result.algorithm.policy).items():
        assert torch.equal(value, again.algorithm.policy.state_dict()[name]), name
    assert torch.equal(torch_state, torch.random.get_rng_state())
    assert np.array_equal(numpy_state[1], np.random.get_state()[1])  # noqa: NPY002
    other = train_rl(TASK_ID, POLICY, config(seed=1), task_kwargs=TASK, progress=False)
    assert not torch.equal(
        other.algorithm.policy.lstm_actor.W, result.algorithm.policy.lstm_actor.W
    )


def test_resume_continues_from_the_checkpoint(tmp_path, recurrent_run):
    """Asking a finished two-iteration run for three trains one more iteration on top of it."""
    _, result = recurrent_run
    target = tmp_path / "resumed"
    train_rl(TASK_ID, POLICY, config(), task_kwargs=TASK, run_dir=target, progress=False)
    resumed = train_rl(
        TASK_ID, POLICY, config(iterations=3), task_kwargs=TASK, run_dir=target, progress=False
    )
    assert [row["iteration"] for row in resumed.history] == [1, 2, 3]
    timeless = [{k: v for k, v in row.items() if k != "seconds"} for row in resumed.history]
    assert timeless[:2] == [
        {k: v for k, v in row.items() if k != "seconds"} for row in result.history
    ]
    assert [row["timesteps"] for row in resumed.history] == [24, 48, 72]
    assert read_run_record(target)["iterations_done"] == 3
    with pytest.raises(RunMismatch, match=r"train\.epochs is 2 there, 1 here"):
        train_rl(
            TASK_ID, POLICY, config(epochs=1), task_kwargs=TASK, run_dir=target, progress=False
        )


def test_ppo_with_a_noisy_mlp(tmp_path, monkeypatch):
    """algo ppo trains a NoisyActorCriticPolicy into a run that loads back as ppo_noisy_mlp,
    and leaves no SB3 log folder in the temporary folder."""
    temporary = tmp_path / "tmp"
    temporary.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temporary))
    run = train_rl_run(
        tmp_path / "run",
        TASK_ID,
        MLPPolicyConfig(hidden_size=4, num_layers=1),
        config(algo="ppo"),
        task_kwargs=TASK,
        progress=False,
    )
    assert run.model_kind == "ppo_noisy_mlp"
    assert run.model.policy.mlp_extractor.sigma == 0.5
    assert sweep_noise(run.model, run.task(), [0.0, 0.5], episodes=2).values().shape == (2, 2)
    assert list(temporary.iterdir()) == []


def test_policy_config_must_fit_the_algorithm():
    with pytest.raises(ValueError, match="algo 'ppo' needs a MLPPolicyConfig"):
        train_rl(TASK_ID, POLICY, config(algo="ppo"), progress=False)
    with pytest.raises(ValueError, match="`config` must be an RLTrainConfig"):
        train_rl(TASK_ID, POLICY, TrainConfig(), progress=False)


@pytest.mark.parametrize(
    ("field", "value", "match"),
    [
        ("algo", "a2c", "`algo` must be one of"),
        ("num_envs", 0, "num_envs"),
        ("discount", 1.5, "discount"),
        ("learning_rate", 0.0, "learning_rate"),
        ("seed", -1, "seed"),
    ],
)
def test_train_config_validation(field, value, match):
    with pytest.raises(ValueError, match=match):
        RLTrainConfig(**{field: value})


def test_annealed_learning_rate_and_json_round_trip():
    """With annealing, iteration i of n runs at lr * (1 - (i - 1) / n); configs round-trip."""
    annealed = RLTrainConfig(learning_rate=1e-3, iterations=4, anneal_learning_rate=True)
    assert [annealed.learning_rate_at(i) for i in (1, 2, 4)] == pytest.approx(
        [1e-3, 7.5e-4, 2.5e-4]
    )
    assert RLTrainConfig().learning_rate_at(3) == 1e-3
    assert RLTrainConfig.from_json(annealed.to_json()) == annealed
    assert annealed.total_timesteps == 4 * 16 * 128


def test_cli_trains_and_sweeps_an_rl_run(tmp_path, capsys):
    """`noisepref train --algo recurrent_ppo` writes a run that `noisepref sweep` reads."""
    folder = tmp_path / "cli"
    code = main(
        [
            "train", "--algo", "recurrent_ppo", "--task", TASK_ID,
            "--task-kwargs", json.dumps(TASK), "--hidden-size", "4", "--sigma", "0.3",
            "--iterations", "1", "--num-envs", "2", "--num-steps", "6", "--batch-size", "6",
            "--epochs", "1", "--no-replay-noise", "--out", str(folder), "--no-progress",
        ]
    )  # fmt: skip
    assert code == 0, capsys.readouterr().err
    run = load_run(folder)
    assert run.model.config.hidden_size == 4
    assert run.model.config.replay_noise is False
    assert run.train_config.sigma == 0.3
    code = main(["sweep", str(folder), "--levels", "0,0.3", "--episodes", "4", "--no-progress"])
    assert code == 0, capsys.readouterr().err
    assert (folder / "sweep.csv").is_file()


def copy_run(source, target):
    target.mkdir()
    for path in source.iterdir():
        if path.is_file():
            (target / path.name).write_bytes(path.read_bytes())
    return target


@pytest.mark.parametrize("where", ["after_update", "before_rollout"])
def test_a_diverged_update_stops_and_keeps_the_last_good_checkpoint(tmp_path, monkeypatch, where):
    """A parameter that turns NaN in iteration 2 (whether the update's loss looked finite, or the
    next rollout's distribution refuses it) raises TrainingDiverged naming iteration 2; the
    checkpoint of iteration 1 stays and loads with finite weights."""
    import agents.sb3.training as training

    iterate = training._iterate

    def poisoned(algorithm, iteration, *args):
        if iteration == 2 and where == "before_rollout":
            with torch.no_grad():
                algorithm.policy.log_std.fill_(float("nan"))
        row = iterate(algorithm, iteration, *args)
        if iteration == 2 and where == "after_update":
            with torch.no_grad():
                algorithm.policy.log_std.fill_(float("nan"))
        return row

    monkeypatch.setattr(training, "_iterate", poisoned)
    with pytest.raises(TrainingDiverged, match=r"iteration 2: .*\['log_std'\]"):
        train_rl(TASK_ID, POLICY, config(), task_kwargs=TASK, run_dir=tmp_path, progress=False)
    run = load_run(tmp_path)
    assert (run.status, run.iterations_done) == ("running", 1)
    assert all(torch.isfinite(value).all() for value in run.model.state_dict().values())


def test_an_rl_run_refuses_a_supervised_folder(tmp_path):
    """A supervised run folder is not an RL run: NotARunFolder, nothing changed."""
    from agents import CTRNN, CTRNNConfig, train
    from noise_envs import make_task

    model = CTRNN(CTRNNConfig(input_size=1, output_size=1, hidden_size=3))
    train(model, make_task(TASK_ID, **TASK), TrainConfig(iterations=1, batch_size=2),
          run_dir=tmp_path, progress=False)  # fmt: skip
    before = {path.name: path.read_bytes() for path in tmp_path.iterdir()}
    with pytest.raises(NotARunFolder, match="holds a supervised run, not a rl one"):
        train_rl(TASK_ID, POLICY, config(), task_kwargs=TASK, run_dir=tmp_path, progress=False)
    assert {path.name: path.read_bytes() for path in tmp_path.iterdir()} == before


def test_rl_counters_that_disagree_with_the_iteration_are_refused(tmp_path, recurrent_run):
    """A checkpoint whose step counter is not iteration * num_envs * num_steps is CorruptRun."""
    folder = copy_run(recurrent_run[0], tmp_path / "run")
    checkpoint = torch.load(folder / "checkpoint.pt", weights_only=True)
    checkpoint["rng"]["num_timesteps"] = 5
    torch.save(checkpoint, folder / "checkpoint.pt")
    with pytest.raises(CorruptRun, match=r"`rng.num_timesteps` is 5, but `iteration` 2 .* 48"):
        train_rl(TASK_ID, POLICY, config(iterations=3), task_kwargs=TASK, run_dir=folder,
                 progress=False)  # fmt: skip


def test_a_format_1_rl_run_loads_its_config_from_rl_train_json(tmp_path, recurrent_run):
    """Format 1 wrote a TrainConfig summary in run.json and the RL config in rl_train.json;
    load_run reads the RLTrainConfig from there."""
    folder = copy_run(recurrent_run[0], tmp_path / "run")
    record = json.loads((folder / "run.json").read_text())
    (folder / "rl_train.json").write_text(json.dumps(record.pop("trainer") and record["train"]))
    summary = {
        key: record["train"][key] for key in TrainConfig.__dataclass_fields__ if key != "sigma_dist"
    }
    (folder / "run.json").write_text(json.dumps({**record, "format_version": 1, "train": summary}))
    run = load_run(folder)
    assert (run.trainer, run.train_config) == ("rl", config())
    (folder / "rl_train.json").unlink()
    with pytest.raises(CorruptRun, match="a format 1 RL run needs"):
        load_run(folder)
