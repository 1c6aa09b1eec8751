"""The grid runner: same table on every backend, resumable after a kill, corrupt cells redone."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from agents.runs import WEIGHTS_FILE
from evaluation.grid.cell_run import CELL_FILE
from evaluation.grid.cells import ensemble_chunks
from evaluation.grid.runner import run_grid
from evaluation.grid.spec import spec_from_dict
from evaluation.grid.summary import read_table

REPO = Path(__file__).resolve().parents[3]
GRID = {
    "tasks": [{"id": "NoisyFunctionApprox-v0", "options": {"steps": 10, "response_steps": 4}}],
    "placements": ["in", "out"],
    "train_sigmas": [0.25, 0.5, 1.0],
    "seeds": [0, 1],
    "model": {"hidden_size": 8},
    "training": {"iterations": 3, "batch_size": 8},
    "sweep": {"test_sigmas": [0, 0.5, 1.0], "episodes": 8},
}
"""2 placements x 3 sigmas x 2 seeds of function approximation, tiny."""


@pytest.fixture(scope="module")
def local_grid(tmp_path_factory):
    out = tmp_path_factory.mktemp("grid") / "local"
    return run_grid(spec_from_dict(GRID), out, workers=2, progress=False, figures=False)


@pytest.fixture(scope="session")
def ray_cluster():
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


def test_every_cell_has_a_row_and_a_folder(local_grid):
    assert len(local_grid.cells) == 12 and len(local_grid.ran) == 12 and not local_grid.skipped
    rows = read_table(local_grid.out_dir / "summary.csv")
    assert rows == local_grid.rows
    assert len(rows) == 12
    for row, cell in zip(rows, local_grid.cells, strict=True):
        assert row["folder"] == cell.folder_name
        assert (row["placement"], row["train_sigma"], row["seed"]) == (
            cell.placement,
            cell.train_sigma,
            cell.seed,
        )
        assert row["sigma_star_low"] <= row["sigma_star"] <= row["sigma_star_high"]
        assert row["ratio_low"] <= row["ratio"] <= row["ratio_high"] and row["ratio"] >= 1
        assert (local_grid.out_dir / cell.folder_name / WEIGHTS_FILE).is_file()


def test_the_same_table_with_ray(local_grid, ray_cluster, tmp_path):
    result = run_grid(
        spec_from_dict(GRID), tmp_path / "ray", backend="ray", progress=False, figures=False
    )
    assert ray_cluster.is_initialized()  # the test's cluster was used and left running
    local = (local_grid.out_dir / "summary.csv").read_bytes()
    assert (tmp_path / "ray" / "summary.csv").read_bytes() == local
    assert result.rows == local_grid.rows


def test_the_same_table_in_this_process(local_grid, tmp_path):
    result = run_grid(spec_from_dict(GRID), tmp_path / "one", progress=False, figures=False)
    assert (tmp_path / "one" / "summary.csv").read_bytes() == (
        local_grid.out_dir / "summary.csv"
    ).read_bytes()
    again = run_grid(spec_from_dict(GRID), tmp_path / "one", progress=False, figures=False)
    assert again.ran == [] and len(again.skipped) == 12 and again.rows == result.rows


@pytest.mark.parametrize("ensemble_size", [1, 4])
def test_a_killed_runner_resumes_with_only_the_missing_cells(tmp_path, ensemble_size):
    out = tmp_path / "killed"
    script = (
        "import json, sys; from evaluation.grid import run_grid, spec_from_dict\n"
        "if __name__ == '__main__':\n"
        "    run_grid(spec_from_dict(json.loads(sys.argv[1])), sys.argv[2], progress=False,"
        " figures=False)\n"
    )
    grid = GRID | {
        "training": {"iterations": 30, "batch_size": 8, "checkpoint_every": 5},
        "ensemble_size": ensemble_size,
    }
    process = subprocess.Popen(
        [sys.executable, "-c", script, json.dumps(grid), str(out)],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    deadline = time.monotonic() + 600  # generous: a loaded machine may take minutes for three cells
    while len(list(out.glob(f"*/{CELL_FILE}"))) < 3 and time.monotonic() < deadline:
        assert process.poll() is None, "the runner ended before it was killed"
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()
    done = {path.parent.name: path.stat().st_mtime_ns for path in out.glob(f"*/{CELL_FILE}")}
    assert 3 <= len(done) < 12
    result = run_grid(spec_from_dict(grid), out, progress=False, figures=False)
    assert sorted(result.skipped) == sorted(done)
    assert sorted(result.ran) == sorted(set(c.folder_name for c in result.cells) - set(done))
    for name, stamp in done.items():
        assert (out / name / CELL_FILE).stat().st_mtime_ns == stamp
    fresh = run_grid(spec_from_dict(grid), tmp_path / "fresh", progress=False, figures=False)
    assert result.rows == fresh.rows  # a resumed cell ends where an uninterrupted one does


def test_a_truncated_weights_file_is_detected_and_its_cell_redone(local_grid, tmp_path):
    out = tmp_path / "truncated"
    first = run_grid(spec_from_dict(GRID), out, progress=False, figures=False)
    victim = first.cells[4].folder_name
    weights = out / victim / WEIGHTS_FILE
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    second = run_grid(spec_from_dict(GRID), out, progress=False, figures=False)
    assert second.ran == [victim] and len(second.skipped) == 11
    assert second.rows == first.rows  # retrained from scratch: the same network again
    moved = list((out / victim).glob(".replaced-*"))
    assert len(moved) == 1 and (moved[0] / WEIGHTS_FILE).stat().st_size < weights.stat().st_size


def test_the_figures_of_each_task_and_axis(tmp_path):
    grid = GRID | {
        "seeds": [0],
        "train_sigmas": [0.5, 1.0],
        "sweep": {"axes": ["model", "env"], "test_sigmas": [0, 1.0], "test_obs_noise": [0, 0.1]},
    }
    result = run_grid(spec_from_dict(grid), tmp_path, progress=False)
    names = sorted(path.name for path in result.files if path.suffix == ".png")
    assert names == sorted(
        f"function_approx-{axis}-{kind}.png"
        for axis in ("model", "env")
        for kind in ("curves", "heatmap", "sigma_star")
    )
    assert {row["axis"] for row in result.rows} == {"model", "env"}
    env_rows = [row for row in result.rows if row["axis"] == "env"]
    assert all(row["sigma_star"] in (0.0, 0.1) for row in env_rows)


def test_bad_options_are_refused_before_anything_trains(tmp_path):
    with pytest.raises(ValueError, match="`workers` must be"):
        run_grid(spec_from_dict(GRID), tmp_path / "a", workers=0)
    with pytest.raises(ValueError, match="`backend`"):
        run_grid(spec_from_dict(GRID), tmp_path / "b", backend="slurm")
    with pytest.raises(ValueError, match="seeds"):
        run_grid(spec_from_dict(GRID | {"seeds": []}), tmp_path / "c")
    assert not (tmp_path / "c").exists()


def test_cells_of_one_architecture_train_as_ensembles(local_grid, tmp_path):
    """Four members per ensemble: each is the network its cell trains alone, up to rounding."""
    result = run_grid(
        spec_from_dict(GRID | {"ensemble_size": 4}), tmp_path, progress=False, figures=False
    )
    assert len(result.ran) == 12
    for alone, together in zip(local_grid.rows, result.rows, strict=True):
        assert alone["folder"] == together["folder"]
        for name in ("metric_at_zero", "metric_at_sigma_star"):
            assert together[name] == pytest.approx(alone[name], rel=1e-4), name
    again = run_grid(
        spec_from_dict(GRID | {"ensemble_size": 4}), tmp_path, progress=False, figures=False
    )
    assert again.ran == [] and again.rows == result.rows


def test_ensemble_chunks_follow_the_spec_alone():
    cells = spec_from_dict(GRID | {"train_obs_noise": [0.0, 0.1]}).cells()
    chunks = ensemble_chunks(cells, 5)
    assert [len(chunk) for chunk in chunks] == [5, 5, 2, 5, 5, 2]  # 12 cells per obs noise
    assert all(len({cell.group for cell in chunk}) == 1 for chunk in chunks)
    assert [cell for chunk in chunks for cell in chunk] == cells
    assert [len(chunk) for chunk in ensemble_chunks(cells, 1)] == [1] * 24
    mlp = spec_from_dict(GRID | {"model_kind": "noisy_mlp"}).cells()
    assert [len(chunk) for chunk in ensemble_chunks(mlp, 4)] == [1] * 12


def test_a_failing_cell_is_named_and_the_others_are_summarised(tmp_path, monkeypatch):
    import evaluation.grid.cell_run as cell_run
    from agents.errors import RunError, TrainingDiverged

    train = cell_run._train

    def diverge_at_sigma_one(cell, folder, device, progress):
        if cell.train_sigma == 1.0 and cell.placement == "out":
            raise TrainingDiverged("training diverged at iteration 2: loss nan")
        return train(cell, folder, device, progress)

    monkeypatch.setattr(cell_run, "_train", diverge_at_sigma_one)
    with pytest.raises(
        RunError, match=r"2 of 12 grid cells failed .*out-sigma1-.*TrainingDiverged"
    ):
        run_grid(spec_from_dict(GRID), tmp_path, progress=False, figures=False)
    rows = read_table(tmp_path / "summary.csv")
    assert len(rows) == 10
    assert not any(row["placement"] == "out" and row["train_sigma"] == 1.0 for row in rows)


def test_the_parquet_table_holds_the_csv_rows(local_grid):
    parquet = pytest.importorskip("pyarrow.parquet")
    table = parquet.read_table(local_grid.out_dir / "summary.parquet").to_pylist()
    assert table == read_table(local_grid.out_dir / "summary.csv")
