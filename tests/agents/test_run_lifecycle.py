"""The run lifecycle's folder rules: what is refused, what is moved aside, what is checked.

Each case of issue 11 about run folders is a test here: the error class and message, and that
nothing in the folder changed.
"""

from __future__ import annotations

import json
import os

import pytest
import torch

from agents import CTRNN, CTRNNConfig, TrainConfig, load_run, train
from agents.errors import CorruptRun, NotARunFolder, RunError, RunLocked, RunMismatch
from agents.run_files import (
    CHECKPOINT_FILE,
    HISTORY_FILE,
    RUN_FILE,
    WEIGHTS_FILE,
    read_run_record,
)
from agents.run_lifecycle import LOCK_FILE, PID_FILE, run_lock
from noise_envs import make_task

TASK_ID = "NoisyRegulator-v0"
TASK_KWARGS = {"steps": 6, "settle_steps": 2}
CONFIG = TrainConfig(sigma=0.1, iterations=4, batch_size=8, learning_rate=3e-2, checkpoint_every=2)


def model(hidden_size=6, seed=0):
    config = CTRNNConfig(input_size=1, output_size=1, hidden_size=hidden_size, dt=20.0)
    return CTRNN(config, generator=torch.Generator().manual_seed(seed))


def run_training(folder, config=CONFIG, hidden_size=6, **options):
    task = make_task(TASK_ID, **TASK_KWARGS)
    return train(model(hidden_size), task, config, run_dir=folder, progress=False, **options)


def snapshot(folder):
    """Every file under ``folder`` with its bytes (hidden ones included)."""
    return {
        str(path.relative_to(folder)): path.read_bytes()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    folder = tmp_path_factory.mktemp("finished")
    run_training(folder)
    return folder


@pytest.fixture
def copy(finished, tmp_path):
    """A copy of the finished run folder that a test may change."""
    folder = tmp_path / "run"
    folder.mkdir()
    for name in (RUN_FILE, WEIGHTS_FILE, CHECKPOINT_FILE, HISTORY_FILE):
        (folder / name).write_bytes((finished / name).read_bytes())
    return folder


def edit_checkpoint(folder, change):
    checkpoint = torch.load(folder / CHECKPOINT_FILE, weights_only=True)
    change(checkpoint)
    torch.save(checkpoint, folder / CHECKPOINT_FILE)


def edit_record(folder, **changes):
    record = json.loads((folder / RUN_FILE).read_text())
    record.update(changes)
    (folder / RUN_FILE).write_text(json.dumps(record))


def test_a_users_own_files_are_refused_and_left_alone(tmp_path):
    """A folder with the user's checkpoint.pt and history.csv but no run.json is refused with
    NotARunFolder naming them; nothing is written, not even a lock."""
    (tmp_path / CHECKPOINT_FILE).write_bytes(b"my own checkpoint")
    (tmp_path / HISTORY_FILE).write_text("my,own\n1,2\n")
    before = snapshot(tmp_path)
    with pytest.raises(NotARunFolder, match=r"no run.json but holds checkpoint.pt, history.csv"):
        run_training(tmp_path)
    assert snapshot(tmp_path) == before
    assert sorted(os.listdir(tmp_path)) == [CHECKPOINT_FILE, HISTORY_FILE]


def test_a_run_that_lost_its_run_json_keeps_its_weights(copy):
    """A run folder without run.json, trained into with a different model, is refused: the old
    weights, checkpoint and history stay as they were."""
    (copy / RUN_FILE).unlink()
    before = snapshot(copy)
    with pytest.raises(NotARunFolder, match=r"checkpoint\.pt, history\.csv, weights\.safetensors"):
        run_training(copy, hidden_size=3)
    assert snapshot(copy) == before


def test_overwrite_moves_the_old_contents_aside(copy):
    """overwrite=True moves everything into .replaced-<time>-<pid>/ (bytes intact) and trains a
    new run in the folder."""
    (copy / RUN_FILE).unlink()
    (copy / "notes.txt").write_text("keep me")
    before = snapshot(copy)
    run_training(copy, hidden_size=3, overwrite=True)
    aside = [name for name in os.listdir(copy) if name.startswith(".replaced-")]
    assert len(aside) == 1
    assert snapshot(copy / aside[0]) == before
    run = load_run(copy)
    assert (run.status, run.model_config.hidden_size) == ("complete", 3)


def test_resume_false_moves_the_old_run_aside(copy):
    """resume=False starts over; the old run's files are kept in .replaced-*/, not deleted."""
    before = snapshot(copy)
    run_training(copy, resume=False)
    aside = [name for name in os.listdir(copy) if name.startswith(".replaced-")]
    assert [snapshot(copy / name) for name in aside] == [before]


@pytest.mark.parametrize("path", ["", " "])
def test_an_empty_run_dir_is_refused(path):
    with pytest.raises(ValueError, match=r"`run_dir` must name a folder for the run, got"):
        run_training(path)


def test_the_current_folder_is_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValueError, match=r"`run_dir` '\.' is the current folder"):
        run_training(".")
    assert os.listdir(tmp_path) == []


def test_a_file_is_not_a_run_folder(tmp_path):
    (tmp_path / "file").write_text("text")
    with pytest.raises(NotARunFolder, match="is a file, not a run folder"):
        run_training(tmp_path / "file")
    assert (tmp_path / "file").read_text() == "text"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda c: c.update(iteration=-5), r"`iteration` is -5, .* it must be in \[0, 4\]"),
        (lambda c: c.update(iteration=1), r"`iteration` is 1, but .*`iterations_done` 4"),
        (lambda c: c.update(iteration=True), r"`iteration` must be an integer, got True"),
        (lambda c: c.pop("optimizer"), r"missing keys \['optimizer'\]"),
        (lambda c: c.update(extra=1), r"unexpected \['extra'\]"),
        (lambda c: c["model"].pop("W"), r"`model` misses \['W'\]"),
        (lambda c: c["model"].update(W=torch.zeros(3, 3)), r"model 'W' is \(3, 3\).*\(6, 6\)"),
        (lambda c: c["model"].update(W=c["model"]["W"].double()), "'W' has dtype torch.float64"),
        (lambda c: c["model"]["W"].fill_(float("nan")), "'W' holds NaN or infinite"),
        (
            lambda c: c["rng"].update(env=torch.zeros(7, dtype=torch.uint8)),
            r"`rng.env` is \(\(7,\)",
        ),
        (lambda c: c["rng"].pop("noise"), r"`rng` must have keys \['env', 'noise'\]"),
        (
            lambda c: c["optimizer"]["state"][0].update(exp_avg=torch.zeros(2)),
            r"`optimizer.state\[0\].exp_avg` has shape \(2,\)",
        ),
        (
            lambda c: c["optimizer"]["param_groups"][0].update(params=[0]),
            r"`optimizer.param_groups` params are \[\[0\]\]",
        ),
    ],
)
def test_a_checkpoint_that_does_not_fit_is_refused_before_training(copy, change, message):
    """A checkpoint with an iteration out of range or disagreeing with run.json, a missing key,
    or a tensor of the wrong shape, dtype or value is CorruptRun naming the file and field;
    nothing is written."""
    edit_checkpoint(copy, change)
    before = snapshot(copy)
    with pytest.raises(CorruptRun, match=message):
        run_training(copy, CONFIG.replace(iterations=8))
    assert snapshot(copy) == before | {LOCK_FILE: b""}


def test_checkpoint_7_while_run_json_and_history_say_20_is_refused(tmp_path):
    """The issue's example: a checkpoint of iteration 7 in a run whose run.json and history.csv
    say 20 is CorruptRun naming both numbers, for the trainer and for load_run."""
    folder = tmp_path / "run"
    run_training(folder, CONFIG.replace(iterations=20))
    edit_checkpoint(folder, lambda c: c.update(iteration=7))
    with pytest.raises(CorruptRun, match=r"`iteration` is 7, but .*`iterations_done` 20"):
        run_training(folder, CONFIG.replace(iterations=20))
    with pytest.raises(CorruptRun, match=r"`iteration` is 7, but .*`iterations_done` 20"):
        load_run(folder)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("iteration,loss,grad_norm,learning_rate,seconds\n1,0.5,1,0.03,0.1\n", "has 1 rows"),
        ("iteration,loss,grad_norm,learning_rate,seconds\n2,0.5,1,0.03,0.1\n", "`iteration` is 2"),
        ("iteration,loss\n1,0.5\n", "must have the columns"),
        ("iteration,loss,grad_norm,learning_rate,seconds\n1,x,1,0.03,0.1\n", "line 2: could not"),
    ],
)
def test_a_history_that_disagrees_is_refused(copy, text, message):
    (copy / HISTORY_FILE).write_text(text)
    with pytest.raises(CorruptRun, match=message):
        run_training(copy, CONFIG.replace(iterations=8))
    with pytest.raises(CorruptRun, match=message):
        load_run(copy)


@pytest.mark.parametrize("depth", [100, 100_000])
def test_a_deeply_nested_run_json_is_corrupt_not_a_recursion_error(copy, depth):
    (copy / RUN_FILE).write_text("[" * depth + "]" * depth)
    with pytest.raises(CorruptRun, match=f"nests {depth} levels deep"):
        load_run(copy)
    with pytest.raises(CorruptRun, match=f"nests {depth} levels deep"):
        run_training(copy)


def test_a_huge_run_json_is_corrupt(copy):
    (copy / RUN_FILE).write_text(json.dumps({"padding": "x" * (1 << 20)}))
    with pytest.raises(CorruptRun, match="bytes; a run's JSON is at most 1048576"):
        load_run(copy)


def test_stale_temporary_files_of_the_run_are_removed_on_open(copy):
    """Temporary files of the run's own writers (new and old naming) go when the run is opened;
    a temporary-looking file of the user's stays."""
    stale = [
        f".{CHECKPOINT_FILE}.4242.0123abcd.tmp",
        f".{RUN_FILE}.{'0' * 32}.tmp",
        f".{WEIGHTS_FILE}.1.deadbeef.tmp",
    ]
    for name in stale:
        (copy / name).write_bytes(b"half")
    (copy / ".notes.txt.4242.0123abcd.tmp").write_text("mine")
    run_training(copy, CONFIG.replace(iterations=6))
    names = os.listdir(copy)
    assert not set(stale) & set(names)
    assert ".notes.txt.4242.0123abcd.tmp" in names


def test_a_locked_folder_is_refused_at_once_naming_the_pid(copy):
    """While this process holds the lock, a trainer fails with RunLocked naming its pid."""
    before = snapshot(copy)
    with run_lock(copy):
        assert (copy / PID_FILE).read_text().strip() == str(os.getpid())
        with pytest.raises(RunLocked, match=f"being written by process {os.getpid()}"):
            run_training(copy, CONFIG.replace(iterations=6))
        assert load_run(copy).status == "complete"  # readers are never blocked
    assert not (copy / PID_FILE).exists()
    assert snapshot(copy) == before | {LOCK_FILE: b""}


def test_a_stale_lock_and_pid_file_do_not_block_a_resume(copy):
    """A lock file and pid file left by a dead process (nobody holds the lock) are reused."""
    (copy / LOCK_FILE).write_text("")
    (copy / PID_FILE).write_text("999999\n")
    result = run_training(copy, CONFIG.replace(iterations=6))
    assert result.iterations_done == 6
    assert not (copy / PID_FILE).exists()


def test_another_trainer_kind_is_refused(copy):
    """A supervised run folder is not an RL run: NotARunFolder naming what it holds."""
    edit_record(copy, trainer="rl")
    with pytest.raises(NotARunFolder, match="holds a rl run, not a supervised one"):
        run_training(copy)


def test_more_iterations_than_asked_is_a_mismatch(copy):
    with pytest.raises(RunMismatch, match=r"already trained 4 iterations.*`iterations` = 3"):
        run_training(copy, CONFIG.replace(iterations=3))


def test_a_format_1_run_folder_loads_and_resumes(copy):
    """A run written in format 1 (no trainer key) still loads, and resuming writes format 2."""
    record = json.loads((copy / RUN_FILE).read_text())
    del record["trainer"]
    (copy / RUN_FILE).write_text(json.dumps({**record, "format_version": 1}))
    run = load_run(copy)
    assert (run.trainer, run.status, run.train_config) == ("supervised", "complete", CONFIG)
    run_training(copy, CONFIG.replace(iterations=6))
    assert read_run_record(copy)["format_version"] == 2
    assert json.loads((copy / RUN_FILE).read_text())["trainer"] == "supervised"


def test_training_again_on_a_complete_run_writes_nothing(copy):
    before = snapshot(copy)
    run_training(copy)
    assert snapshot(copy) == before | {LOCK_FILE: b""}


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_a_cuda_run_resumes_bit_identically_on_cuda(tmp_path):
    """The checkpoint of a CUDA run (CUDA generator states) passes the checks and resumes on CUDA
    to the weights of an uninterrupted CUDA run."""
    task = make_task(TASK_ID, **TASK_KWARGS)
    straight = train(model(), task, CONFIG, run_dir=tmp_path / "a", progress=False, device="cuda")
    train(model(), task, CONFIG.replace(iterations=2), run_dir=tmp_path / "b", progress=False,
          device="cuda")  # fmt: skip
    resumed = train(model(), task, CONFIG, run_dir=tmp_path / "b", progress=False, device="cuda")
    for name, value in resumed.model.state_dict().items():
        assert torch.equal(value, straight.model.state_dict()[name]), name


def test_overwriting_twice_in_a_second_keeps_both_old_runs(copy):
    """Each overwrite moves the previous contents into a folder of its own."""
    run_training(copy, overwrite=True)
    run_training(copy, overwrite=True)
    aside = sorted(name for name in os.listdir(copy) if name.startswith(".replaced-"))
    assert len(aside) == 2
    assert all((copy / name / RUN_FILE).is_file() for name in aside)


def test_load_run_reads_again_when_run_json_changes_underneath(copy, monkeypatch):
    """If run.json comes to describe another run while load_run reads the other files,
    load_run reads the folder again; if it never stops changing, RunError says so instead of
    mixing states."""
    import agents.runs

    load_once, calls = agents.runs._load_once, []

    def with_writer(folder, device, changes=1):
        calls.append(folder)
        if len(calls) <= changes:
            edit_record(folder, package_version=f"writer {len(calls)} of {changes}")
        return load_once(folder, device)

    monkeypatch.setattr(agents.runs, "_load_once", with_writer)
    assert load_run(copy).status == "complete"
    assert len(calls) == 2
    calls.clear()
    monkeypatch.setattr(agents.runs, "_load_once", lambda f, d: with_writer(f, d, changes=99))
    with pytest.raises(RunError, match="changed 5 times while the run was read"):
        load_run(copy)


def _rows_ahead(folder, rows):
    """Append history rows for iterations after the last one, as a trainer running on would."""
    text = (folder / HISTORY_FILE).read_text()
    last = int(text.strip().splitlines()[-1].split(",")[0])
    extra = "".join(f"{i},0.5,1,0.03,0.1\n" for i in range(last + 1, last + 1 + rows))
    (folder / HISTORY_FILE).write_text(text + extra)


def test_a_trainer_writing_on_during_the_read_gives_the_checkpoints_state(copy, monkeypatch):
    """While a trainer of the same run writes on (its progress in run.json moves, its history
    runs more than checkpoint_every rows past the checkpoint read), load_run returns the
    checkpoint's state with the rows up to it; the same folder at rest is CorruptRun."""
    import agents.runs

    edit_record(copy, status="running", iterations_done=2)  # checkpoint at 4 of 4, 4 rows
    load_once, calls = agents.runs._load_once, []

    def with_writer(folder, device, writing=False):
        calls.append(writing)
        if len(calls) == 1:
            _rows_ahead(folder, 3)  # 7 rows > checkpoint 4 + checkpoint_every 2
            edit_record(folder, iterations_done=4)
        return load_once(folder, device, writing)

    monkeypatch.setattr(agents.runs, "_load_once", with_writer)
    run = load_run(copy)
    assert calls == [False, True]
    assert (run.status, run.iterations_done, len(run.history)) == ("running", 4, 4)
    assert [row["iteration"] for row in run.history] == [1, 2, 3, 4]
    monkeypatch.undo()
    with pytest.raises(CorruptRun, match=r"history.csv has 7 rows, but .* `iteration` 4"):
        load_run(copy)


class _Payload:
    """Unpickling this would run ``touch MARKER`` (a weights_only load refuses it)."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize("kind", ["code", "random bytes"])
def test_a_checkpoint_that_is_not_plain_data_is_one_line_and_runs_nothing(copy, kind, recwarn):
    """A pickled os.system payload (protocol 4) or random bytes: CorruptRun in one line that
    gives torch's reason without its advice to load unsafely; no warning, nothing executed."""
    import pickle

    marker = copy.parent / "PWNED"
    with open(copy / CHECKPOINT_FILE, "wb") as file:
        if kind == "code":
            pickle.dump({"iteration": _Payload(marker)}, file, protocol=4)
        else:
            file.write(bytes(range(256)) * 4)
    before = snapshot(copy)
    with pytest.raises(CorruptRun, match=r"is not plain data .*was not unpickled \(\S") as caught:
        run_training(copy, CONFIG.replace(iterations=6))
    message = str(caught.value)
    assert "\n" not in message and "weights_only" not in message
    assert not marker.exists() and snapshot(copy) == before | {LOCK_FILE: b""}
    assert not [w for w in recwarn if "pickle protocol" in str(w.message)]
