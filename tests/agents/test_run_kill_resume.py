"""Kill-and-resume and concurrency of run folders, with trainers in their own processes.

A worker process (``run_worker.py``) stops at a named point and writes a marker; the test then
kills it with SIGKILL, so no timing is guessed.
"""

from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from agents import load_run
from agents.errors import RunLocked
from agents.run_files import WEIGHTS_FILE
from agents.run_lifecycle import LOCK_FILE, PID_FILE

ROOT = Path(__file__).resolve().parents[2]
WORKER = Path(__file__).with_name("run_worker.py")
POINTS = ("after_checkpoint", "mid_iteration", "final_write")


def _load_worker():
    spec = importlib.util.spec_from_file_location("run_worker", WORKER)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


run_worker = _load_worker()
pytestmark = pytest.mark.skipif(os.name != "posix", reason="SIGKILL and flock are POSIX")


def start_worker(trainer, folder, point, marker, iterations=None):
    command = [sys.executable, str(WORKER), trainer, str(folder), point, str(marker)]
    environment = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(
        [*command, *([str(iterations)] if iterations else [])],
        cwd=ROOT,
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def wait_for(process, marker, timeout=120.0):
    """Wait until the worker wrote ``marker``; fail with its stderr if it ended first."""
    deadline = time.monotonic() + timeout
    while not marker.exists():
        if process.poll() is not None:
            pytest.fail(f"worker ended with {process.returncode}: {process.stderr.read().decode()}")
        if time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"worker did not reach its point in {timeout} s")
        time.sleep(0.02)


def kill(process):
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    process.stderr.close()


def temporaries(folder):
    return sorted(name for name in os.listdir(folder) if name.endswith(".tmp"))


@pytest.fixture(scope="module")
def straight_supervised(tmp_path_factory):
    """The uninterrupted supervised run's weights."""
    folder = tmp_path_factory.mktemp("straight")
    result = run_worker.train("supervised", folder)
    return {name: value.clone() for name, value in result.model.state_dict().items()}


@pytest.mark.parametrize("point", POINTS)
def test_supervised_resumes_bit_identically_after_sigkill(tmp_path, point, straight_supervised):
    """SIGKILL after the first checkpoint, mid-iteration or during the final write: resuming
    removes the killed writer's temporary files, is not blocked by its lock, and ends with
    bitwise the weights of an uninterrupted run."""
    folder, marker = tmp_path / "run", tmp_path / "marker"
    process = start_worker("supervised", folder, point, marker)
    wait_for(process, marker)
    kill(process)
    killed = load_run(folder)
    assert killed.status == "running"
    assert killed.iterations_done == {"after_checkpoint": 2, "mid_iteration": 2}.get(point, 6)
    if point == "final_write":
        assert len(temporaries(folder)) == 1  # the weights' temporary file, complete
    result = run_worker.train("supervised", folder)
    for name, value in result.model.state_dict().items():
        assert torch.equal(value, straight_supervised[name]), name
    run = load_run(folder)
    assert (run.status, run.iterations_done, len(run.history)) == ("complete", 6, 6)
    assert temporaries(folder) == []
    assert not (folder / PID_FILE).exists()


@pytest.mark.parametrize("point", POINTS)
def test_rl_resumes_after_sigkill_and_continues_training(tmp_path, point):
    """The RL trainer killed at the same points resumes from its last checkpoint: the history up
    to it is kept, the step counter continues, and the run completes with new weights."""
    pytest.importorskip("sb3_contrib")
    folder, marker = tmp_path / "run", tmp_path / "marker"
    process = start_worker("rl", folder, point, marker)
    wait_for(process, marker)
    kill(process)
    killed = load_run(folder)
    kept = {"after_checkpoint": 2, "mid_iteration": 2, "final_write": 4}[point]
    assert (killed.status, killed.iterations_done) == ("running", kept)
    before = {name: value.clone() for name, value in killed.model.state_dict().items()}
    result = run_worker.train("rl", folder)
    assert [row["iteration"] for row in result.history] == [1, 2, 3, 4]
    assert [row["timesteps"] for row in result.history] == [12, 24, 36, 48]
    assert result.history[:kept] == killed_rows(killed, result)[:kept]
    run = load_run(folder)
    assert (run.status, run.iterations_done, len(run.history)) == ("complete", 4, 4)
    changed = any(
        not torch.equal(value, before[name]) for name, value in run.model.state_dict().items()
    )
    assert changed == (kept < 4)
    assert temporaries(folder) == []


def killed_rows(killed, result):
    """The resumed run's first rows, as they were read back from the killed run's files."""
    return [
        {**row, **{key: killed_row[key] for key in ("loss", "learning_rate", "seconds")}}
        for row, killed_row in zip(result.history, killed.history, strict=False)
    ]


@pytest.mark.parametrize("iterations", [None, 10])
def test_a_second_trainer_on_a_locked_folder_fails_at_once_naming_the_pid(tmp_path, iterations):
    """While one trainer holds the folder, a second one (same config, or more iterations) fails
    at once with RunLocked naming the first one's pid, and changes nothing; once the holder is
    killed, its stale lock does not block a resume."""
    folder, marker = tmp_path / "run", tmp_path / "marker"
    process = start_worker("supervised", folder, "after_checkpoint", marker)
    try:
        wait_for(process, marker)
        files = {name: (folder / name).read_bytes() for name in os.listdir(folder)}
        tick = time.monotonic()
        with pytest.raises(RunLocked, match=f"being written by process {process.pid}"):
            run_worker.train("supervised", folder, iterations)
        assert time.monotonic() - tick < 5.0
        assert {name: (folder / name).read_bytes() for name in os.listdir(folder)} == files
        assert load_run(folder).iterations_done == 2
    finally:
        kill(process)
    assert (folder / LOCK_FILE).exists()
    result = run_worker.train("supervised", folder, iterations)
    assert result.iterations_done == (iterations or 6)


def test_a_reader_during_training_never_sees_an_unfinished_run_labelled_complete(tmp_path):
    """load_run, called over and over while another process trains with a checkpoint every two
    iterations, gets running states whose history matches their iteration, and complete only
    with every iteration done and the final weights. The trainer waits after its first
    checkpoint until the reader has read it, so a running state is seen however busy the
    machine is; the reads after that race the trainer at whatever speed each gets."""
    folder, marker = tmp_path / "run", tmp_path / "marker"
    process = start_worker("supervised", folder, "handshake", marker, 200)
    seen = []
    try:
        wait_for(process, marker)
        first = load_run(folder)
        seen.append((first.status, first.iterations_done, len(first.history), first.model))
        marker.with_name(marker.name + ".go").touch()
        while process.poll() is None:
            run = load_run(folder)
            seen.append((run.status, run.iterations_done, len(run.history), run.model))
    finally:
        process.wait(timeout=120)
    assert process.returncode == 0, process.stderr.read().decode()
    process.stderr.close()
    final = load_run(folder)
    assert (final.status, final.iterations_done) == ("complete", 200)
    assert (first.status, first.iterations_done) == ("running", 2)
    for status, done, rows, model in seen:
        assert rows == done and done % 2 == 0
        if status == "complete":
            assert done == 200
            for name, value in model.state_dict().items():
                assert torch.equal(value, final.model.state_dict()[name]), name
    assert (folder / WEIGHTS_FILE).exists()
