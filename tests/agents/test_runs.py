"""Tests of the run folder (save, load, atomic writes, errors) and of the model registry."""

import csv
import json
import os

import pytest
import torch
from torch import nn

from agents import (
    CTRNN,
    MODEL_KINDS,
    CTRNNConfig,
    TrainConfig,
    build_model,
    load_run,
    model_kind,
    train,
    train_run,
)
from agents.errors import CorruptRun, NotARunFolder
from agents.run_lifecycle import LOCK_FILE
from agents.runs import (
    CHECKPOINT_FILE,
    HISTORY_COLUMNS,
    HISTORY_FILE,
    RUN_FILE,
    WEIGHTS_FILE,
    read_history,
)
from noise_envs import RegulatorTask, make_task

TASK_ID = "NoisyRegulator-v0"
TASK_KWARGS = {"steps": 10, "settle_steps": 5, "setpoint_range": (0.3, 0.8)}
MODEL_CONFIG = CTRNNConfig(input_size=1, output_size=1, hidden_size=8, dt=20.0)
TRAIN_CONFIG = TrainConfig(
    sigma=0.1, iterations=12, batch_size=16, learning_rate=3e-2, checkpoint_every=5
)


@pytest.fixture(scope="module")
def complete_run(tmp_path_factory):
    """A finished 12-iteration run: its folder and the model that training returned."""
    folder = tmp_path_factory.mktemp("run")
    task = make_task(TASK_ID, **TASK_KWARGS)
    model = CTRNN(MODEL_CONFIG, generator=torch.Generator().manual_seed(0))
    result = train(model, task, TRAIN_CONFIG, run_dir=folder, progress=False)
    return folder, result


@pytest.fixture
def run_copy(complete_run, tmp_path):
    """A copy of the finished run that a test may damage."""
    folder, _ = complete_run
    for name in (RUN_FILE, WEIGHTS_FILE, CHECKPOINT_FILE, HISTORY_FILE):
        (tmp_path / name).write_bytes((folder / name).read_bytes())
    return tmp_path


def edit_record(folder, **changes):
    record = json.loads((folder / RUN_FILE).read_text())
    record.update(changes)
    (folder / RUN_FILE).write_text(json.dumps(record))


def outputs(model):
    inputs = torch.linspace(-1, 1, 3 * 4).reshape(3, 4, 1)
    with torch.no_grad():
        return model(inputs, sigma=0.2, noise=torch.Generator().manual_seed(9))[0]


def test_loaded_run_reproduces_the_trained_model_exactly(complete_run):
    """load_run gives the configs that were used and a model with bitwise the same outputs."""
    folder, result = complete_run
    run = load_run(folder)
    assert torch.equal(outputs(run.model), outputs(result.model))
    assert run.model_config == MODEL_CONFIG
    assert run.train_config == TRAIN_CONFIG
    assert (run.task_id, run.model_kind, run.status) == (TASK_ID, "ctrnn", "complete")
    assert (run.iterations_done, run.noise_convention) == (12, "per_step")
    assert run.task().config == make_task(TASK_ID, **TASK_KWARGS).config
    assert run.history == result.history


def test_run_json_holds_the_documented_record(complete_run):
    """run.json has exactly the documented keys, with the task's full config as kwargs."""
    record = json.loads((complete_run[0] / RUN_FILE).read_text())
    assert (record["format_version"], record["trainer"]) == (2, "supervised")
    assert record["task"] == {
        "id": TASK_ID,
        "kwargs": RegulatorTask(**TASK_KWARGS).config.to_dict(),
    }
    assert record["model"] == {"kind": "ctrnn", "config": MODEL_CONFIG.to_dict()}
    assert record["train"] == TRAIN_CONFIG.to_dict()
    assert (record["status"], record["iterations_done"]) == ("complete", 12)
    assert record["noise_convention"] == "per_step"
    assert isinstance(record["package_version"], str)


def test_history_csv_has_one_row_per_iteration(complete_run):
    """history.csv has the five documented columns and rows for iterations 1..12."""
    with open(complete_run[0] / HISTORY_FILE, newline="") as handle:
        rows = list(csv.reader(handle))
    assert tuple(rows[0]) == HISTORY_COLUMNS
    assert [int(row[0]) for row in rows[1:]] == list(range(1, 13))
    assert [float(row[1]) for row in rows[1:]] == [row["loss"] for row in complete_run[1].history]


def test_folder_holds_exactly_the_run_files(complete_run):
    """After training, the folder holds the four run files and the (released) lock file, and no
    temporary file or pid file."""
    names = sorted(os.listdir(complete_run[0]))
    assert names == sorted([RUN_FILE, WEIGHTS_FILE, CHECKPOINT_FILE, HISTORY_FILE, LOCK_FILE])


def test_checkpoint_holds_only_data(complete_run):
    """The checkpoint loads with weights_only=True and holds only tensors, numbers and strings."""
    checkpoint = torch.load(complete_run[0] / CHECKPOINT_FILE, weights_only=True)
    allowed = (torch.Tensor, int, float, str, bool, type(None))

    def walk(value):
        if isinstance(value, dict):
            for key, item in value.items():
                assert isinstance(key, (str, int)), key
                walk(item)
        elif isinstance(value, (list, tuple)):
            for item in value:
                walk(item)
        else:
            assert isinstance(value, allowed), type(value)

    walk(checkpoint)
    assert checkpoint["iteration"] == 12
    assert checkpoint["rng"]["env"].dtype == torch.uint8
    assert checkpoint["rng"]["noise"].dtype == torch.uint8


def test_train_run_again_on_a_complete_run_changes_nothing(complete_run, tmp_path):
    """train_run builds the same run as train; calling it again on the folder keeps the weights."""
    folder, result = complete_run
    run = train_run(
        tmp_path,
        TASK_ID,
        MODEL_CONFIG.to_dict(),
        TRAIN_CONFIG,
        task_kwargs=TASK_KWARGS,
        progress=False,
    )
    weights = (tmp_path / WEIGHTS_FILE).read_bytes()
    assert weights == (folder / WEIGHTS_FILE).read_bytes()
    again = train_run(
        tmp_path, TASK_ID, MODEL_CONFIG, TRAIN_CONFIG, task_kwargs=TASK_KWARGS, progress=False
    )
    assert (tmp_path / WEIGHTS_FILE).read_bytes() == weights
    assert torch.equal(outputs(again.model), outputs(run.model))
    assert again.history == run.history
    columns = ("iteration", "loss", "grad_norm")
    assert [[row[c] for c in columns] for row in run.history] == [
        [row[c] for c in columns] for row in result.history
    ]


def test_run_repr_names_folder_task_and_status(complete_run):
    """The repr shows where the run is, what it trained on and how far it got."""
    text = repr(load_run(complete_run[0]))
    assert str(complete_run[0]) in text
    assert "NoisyRegulator-v0" in text
    assert "complete, 12/12 iterations" in text


def test_running_run_loads_the_last_checkpoint(run_copy, complete_run):
    """A run that stopped after its checkpoint at iteration 12 loads those weights as running."""
    edit_record(run_copy, status="running")
    (run_copy / WEIGHTS_FILE).unlink()
    run = load_run(run_copy)
    assert (run.status, run.iterations_done) == ("running", 12)
    assert torch.equal(outputs(run.model), outputs(complete_run[1].model))


@pytest.mark.parametrize(
    ("damage", "error", "message"),
    [
        (lambda f: (f / RUN_FILE).unlink(), NotARunFolder, "is not a run folder: it has no run"),
        (lambda f: (f / RUN_FILE).write_text("{not json"), CorruptRun, "run.json is not valid"),
        (lambda f: (f / RUN_FILE).write_text("[1, 2]"), CorruptRun, "must hold a JSON object"),
        (lambda f: edit_record(f, format_version=3), CorruptRun, r"format_version 3; .*\[1, 2\]"),
        (lambda f: edit_record(f, format_version=True), CorruptRun, "format_version True"),
        (lambda f: edit_record(f, extra=1), CorruptRun, r"unknown \['extra'\]"),
        (lambda f: edit_record(f, status="done"), CorruptRun, "`status` must be one of"),
        (lambda f: edit_record(f, trainer="dpo"), CorruptRun, "`trainer` must be one of"),
        (lambda f: edit_record(f, iterations_done=-1), CorruptRun, "`iterations_done` must be"),
        (lambda f: edit_record(f, iterations_done="12"), CorruptRun, "`iterations_done` must be"),
        (lambda f: edit_record(f, task={"id": TASK_ID}), CorruptRun, "`task` must be an object"),
        (
            lambda f: edit_record(f, task={"id": 5, "kwargs": {}}),
            CorruptRun,
            "`task.id` must be a JSON str, got 5",
        ),
        (
            lambda f: edit_record(f, task={"id": "NoisyRegulatr-v0", "kwargs": {}}),
            CorruptRun,
            "unknown environment id 'NoisyRegulatr-v0'.*Did you mean",
        ),
        (
            lambda f: edit_record(f, task={"id": TASK_ID, "kwargs": {"stepz": 3}}),
            CorruptRun,
            "run.json: .*stepz",
        ),
        (
            lambda f: edit_record(
                f, model={"kind": "ctrnn", "config": {"input_size": 1, "outputs": 1}}
            ),
            CorruptRun,
            "run.json: unknown CTRNNConfig option 'outputs'",
        ),
        (
            lambda f: edit_record(f, model={"kind": "lstm", "config": {}}),
            CorruptRun,
            r"run.json: `kind` must be one of \['ctrnn', ",
        ),
        (lambda f: edit_record(f, train={"sigma": -1.0}), CorruptRun, "run.json: `sigma` must"),
        (
            lambda f: edit_record(f, iterations_done=7),
            CorruptRun,
            "complete at `iterations_done` 7",
        ),
    ],
)
def test_a_folder_that_is_not_a_run_is_refused(run_copy, damage, error, message):
    """Missing, malformed, newer-format or inconsistent run.json raise a RunError saying what."""
    damage(run_copy)
    with pytest.raises(error, match=message):
        load_run(run_copy)


def test_an_empty_folder_is_not_a_run(tmp_path):
    """An empty folder is named in the error."""
    with pytest.raises(NotARunFolder, match=f"{tmp_path} is not a run folder"):
        load_run(tmp_path)


def test_truncated_weights_are_refused(run_copy):
    """Half a weights file raises CorruptRun naming the file."""
    data = (run_copy / WEIGHTS_FILE).read_bytes()
    (run_copy / WEIGHTS_FILE).write_bytes(data[: len(data) // 2])
    with pytest.raises(CorruptRun, match=f"cannot read the weights file .*{WEIGHTS_FILE}"):
        load_run(run_copy)


def test_truncated_checkpoint_is_refused(run_copy):
    """Half a checkpoint of a running run raises CorruptRun naming the file."""
    edit_record(run_copy, status="running")
    data = (run_copy / CHECKPOINT_FILE).read_bytes()
    (run_copy / CHECKPOINT_FILE).write_bytes(data[: len(data) // 2])
    with pytest.raises(CorruptRun, match=f"cannot read the checkpoint .*{CHECKPOINT_FILE}"):
        load_run(run_copy)


def test_checkpoint_with_code_is_refused(run_copy):
    """A checkpoint that would need unpickling an object is refused, not executed."""
    edit_record(run_copy, status="running")
    torch.save({"iteration": 1, "model": nn.Linear(1, 1)}, run_copy / CHECKPOINT_FILE)
    with pytest.raises(CorruptRun, match=f"cannot read the checkpoint .*{CHECKPOINT_FILE}"):
        load_run(run_copy)


@pytest.mark.parametrize(
    ("status", "file"), [("running", CHECKPOINT_FILE), ("complete", WEIGHTS_FILE)]
)
def test_weights_of_another_shape_are_refused(run_copy, status, file):
    """Weights saved for 8 hidden units do not load into a 16-unit config; the file is named."""
    config = MODEL_CONFIG.replace(hidden_size=16).to_dict()
    edit_record(run_copy, status=status, model={"kind": "ctrnn", "config": config})
    if file == WEIGHTS_FILE:
        (run_copy / CHECKPOINT_FILE).unlink()  # a complete run loads without its checkpoint
    with pytest.raises(CorruptRun, match=f"{file} does not match the model config: model 'W' is"):
        load_run(run_copy)


def test_history_with_other_columns_is_refused(run_copy):
    """A history.csv with unexpected columns raises CorruptRun naming the file."""
    (run_copy / HISTORY_FILE).write_text("step,loss\n1,0.5\n")
    with pytest.raises(CorruptRun, match=f"{HISTORY_FILE} must have the columns"):
        read_history(run_copy)


def test_build_model_from_a_dict_equals_from_the_config():
    """A model rebuilt from its config's JSON dict has the same config and, seeded, the same weights."""
    from_config = build_model("ctrnn", MODEL_CONFIG, generator=torch.Generator().manual_seed(4))
    from_dict = build_model(
        "ctrnn", json.loads(MODEL_CONFIG.to_json()), generator=torch.Generator().manual_seed(4)
    )
    assert from_dict.config == MODEL_CONFIG
    assert torch.equal(from_config.W, from_dict.W)
    assert model_kind(from_dict) == "ctrnn"
    assert MODEL_KINDS["ctrnn"] == (CTRNNConfig, CTRNN)


def test_build_model_rejects_unknown_kinds_and_foreign_configs():
    """An unknown kind lists the known ones; a config of another class is named."""
    with pytest.raises(ValueError, match=r"`kind` must be one of .*'ctrnn'.*Did you mean 'ctrnn'"):
        build_model("ctrn", MODEL_CONFIG)
    with pytest.raises(ValueError, match="a 'ctrnn' model needs a CTRNNConfig, got TrainConfig"):
        build_model("ctrnn", TRAIN_CONFIG)


def test_model_kind_rejects_unregistered_modules():
    """A module that is not in the registry cannot be saved in a run."""
    with pytest.raises(ValueError, match="Linear is not a registered model kind"):
        model_kind(nn.Linear(1, 1))
