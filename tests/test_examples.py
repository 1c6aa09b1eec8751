"""Every example runs end to end with tiny settings and writes what its docstring promises."""

from __future__ import annotations

import runpy
import sys
import tempfile
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"

TINY_TRAINING = ["--iterations", "2", "--hidden-size", "4"]
TINY_SWEEP = ["--episodes", "4", "--num-levels", "3"]


def run_example(name: str, argv: list[str], monkeypatch) -> None:
    """Run ``examples/<name>.py`` as a script, in this process, with ``argv``."""
    monkeypatch.setattr(sys, "argv", [str(EXAMPLES / f"{name}.py"), *argv])
    runpy.run_path(str(EXAMPLES / f"{name}.py"), run_name="__main__")


def test_quickstart(tmp_path, monkeypatch, capsys):
    run_example("quickstart", ["--iterations", "2", "--out", str(tmp_path / "q.png")], monkeypatch)
    assert (tmp_path / "q.png").stat().st_size > 0
    assert "noise-in" in capsys.readouterr().out


@pytest.mark.filterwarnings("ignore:`log_y` ignored")  # two iterations reach no goal
def test_maze_imitation(tmp_path, monkeypatch):
    argv = ["--size", "3", *TINY_TRAINING, *TINY_SWEEP, "--out-dir", str(tmp_path), "--no-progress"]
    run_example("maze_imitation", argv, monkeypatch)
    for name in ("noise_preference.png", "paths_noise-in.png", "summary.csv"):
        assert (tmp_path / name).is_file(), name
    assert len(list(tmp_path.glob("maze-*/sweep_model.csv"))) == 2  # a grid cell per placement


def test_path_integration(tmp_path, monkeypatch):
    argv = [
        "--steps",
        "5",
        *TINY_TRAINING,
        *TINY_SWEEP,
        "--out-dir",
        str(tmp_path),
        "--no-progress",
    ]
    run_example("path_integration", argv, monkeypatch)
    for name in ("noise_preference.png", "paths_noise-out.png", "summary.json", "summary.csv"):
        assert (tmp_path / name).is_file(), name


def test_mechanism(tmp_path, monkeypatch):
    run_example("mechanism", [*TINY_TRAINING, "--out-dir", str(tmp_path)], monkeypatch)
    for name in ("noise_preference.png", "output_bias.png", "noise-in/mechanism.txt"):
        assert (tmp_path / name).is_file(), name


def test_rl_regulator(tmp_path, monkeypatch):
    pytest.importorskip("sb3_contrib")
    argv = [
        "--iterations", "1", "--supervised-iterations", "2", "--num-envs", "2",
        "--num-steps", "8", "--episodes", "4", "--hidden-size", "4", "--steps", "6",
        "--settle-steps", "2", "--out-dir", str(tmp_path), "--no-progress",
    ]  # fmt: skip
    run_example("rl_regulator", argv, monkeypatch)
    assert (tmp_path / "noise_preference.png").is_file()


def test_rl_maze(tmp_path, monkeypatch):
    pytest.importorskip("sb3_contrib")
    argv = [
        "--timesteps", "64", "--num-envs", "2", "--num-steps", "16", "--batch-size", "16",
        "--episodes", "2", "--hidden-size", "4", "--out-dir", str(tmp_path), "--verbose", "0",
    ]  # fmt: skip
    private_tmp = tmp_path / "tmp"
    private_tmp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(private_tmp))  # where SB3's default logger writes
    run_example("rl_maze", [*argv, "--verbose", "1"], monkeypatch)
    for name in ("model.json", "weights.safetensors", "sweep.csv"):
        assert (tmp_path / name).is_file(), name
    assert not list(private_tmp.glob("SB3-*")), "the example left an SB3 logger folder behind"


def test_cleanrl_ppo_maze(monkeypatch, capsys):
    run_example(
        "cleanrl_ppo_maze", ["--total-timesteps", "64", "--num-envs", "2", "--num-steps", "16"],
        monkeypatch,
    )  # fmt: skip
    assert capsys.readouterr().out


def test_multitask(tmp_path, monkeypatch, capsys):
    argv = [
        "--laptop", "--tasks", "fdgo,dmsnogo", "--iterations", "2", "--hidden-size", "4",
        "--episodes", "8", "--num-levels", "2", "--out-dir", str(tmp_path), "--no-progress",
    ]  # fmt: skip
    run_example("multitask", argv, monkeypatch)
    for name in ("summary.json", "perf_by_task.png", "trials_go.png", "trials_matching.png"):
        assert (tmp_path / "noise-in" / name).is_file(), name
    assert "dmsnogo" in capsys.readouterr().out
