"""evaluation.remedies: fixed-noise, noise-distribution and recalibrated networks side by side."""

import csv
import dataclasses
import math

import pytest

import evaluation.remedies as remedies
from agents import load_run
from evaluation.cli import main
from evaluation.grid.spec import GridSpec, SweepSpec, TaskSpec
from evaluation.remedies import check_task, run_remedies


def tiny_preset(name, scale="quick"):
    """A function-approximation grid small enough for a unit test."""
    return GridSpec(
        tasks=(
            TaskSpec(
                id="NoisyFunctionApprox-v0",
                label="function_approx",
                options={"steps": 10, "response_steps": 3},
            ),
        ),
        name="function_approx",
        model={"hidden_size": 6, "dt": 20.0},
        training={"iterations": 4, "batch_size": 8},
        train_sigmas=(0.25, 0.5),
        seeds=(0, 1),
        sweep=SweepSpec(test_sigmas=(0.0, 0.5), episodes=8),
    )


@pytest.fixture
def tiny(monkeypatch):
    monkeypatch.setattr(remedies, "preset", tiny_preset)


def test_three_remedies_per_seed_swept_at_zero_sigma_and_twice_it(tiny, tmp_path):
    result = run_remedies("function_approx", tmp_path, analyze=False)
    assert [(row["remedy"], row["seed"]) for row in result.rows] == [
        ("fixed", 0),
        ("distribution", 0),
        ("recalibrated", 0),
        ("fixed", 1),
        ("distribution", 1),
        ("recalibrated", 1),
    ]
    for sweep in result.sweeps.values():
        assert sweep.levels.tolist() == [0.0, 0.5, 1.0]
        assert sweep.num_episodes == 16  # both seeds' episodes pooled
    dist_run = load_run(tmp_path / result.rows[1]["folder"])
    assert dist_run.train_config.sigma_dist.spec == "uniform:0,1"
    recal_run = load_run(tmp_path / result.rows[2]["folder"])
    assert recal_run.trainer == "recalibrate" and recal_run.train_config.to_sigma == 0.0
    assert recal_run.train_config.source.endswith(result.rows[0]["folder"])
    # The table's numbers are the sweeps' own means.
    fixed = load_run(tmp_path / result.rows[0]["folder"])
    assert fixed.train_config.sigma == 0.5
    with open(tmp_path / "remedies.csv", newline="") as handle:
        written = list(csv.DictReader(handle))
    assert float(written[0]["at_zero"]) == pytest.approx(result.rows[0]["at_zero"])
    assert all((tmp_path / name).is_file() for name in ("remedies.md", "remedies.png"))
    assert "distribution" in result.table() and "uniform:0,1" in result.table()


def test_a_second_run_reuses_every_network(tiny, tmp_path):
    first = run_remedies("function_approx", tmp_path, analyze=False)
    stamps = {p: p.stat().st_mtime_ns for p in tmp_path.glob("*/weights.safetensors")}
    second = run_remedies("function_approx", tmp_path, analyze=False)
    assert {p: p.stat().st_mtime_ns for p in tmp_path.glob("*/weights.safetensors")} == stamps
    assert [r["at_zero"] for r in first.rows] == [r["at_zero"] for r in second.rows]


def test_analyze_adds_output_bias_and_kink_share_of_the_trained_networks(tiny, tmp_path):
    result = run_remedies("function_approx", tmp_path, analyze=True)
    for row in result.rows:
        analysed = row["seed"] == 0 and row["remedy"] != "recalibrated"
        assert math.isfinite(row["kink_occupancy"]) == analysed
        assert math.isfinite(row["output_bias"]) == analysed


def test_bad_choices_are_refused(tiny, tmp_path):
    with pytest.raises(ValueError, match=r"`sigma` must be one of the preset's training levels"):
        run_remedies("function_approx", tmp_path, sigma=0.3)
    with pytest.raises(ValueError, match=r"`task` must be one of"):
        check_task("weather")


def test_an_rl_preset_is_refused(tmp_path):
    with pytest.raises(ValueError, match=r"preset 'rl_regulator' trains by RL"):
        run_remedies("rl_regulator", tmp_path)


def test_noisepref_reproduce_remedies(tiny, tmp_path, capsys):
    out = tmp_path / "out"
    args = ["reproduce", "remedies", "--out", str(out), "--no-progress"]
    assert main(args) == 0
    assert "recalibrated" in capsys.readouterr().out
    text = (out / "remedies.md").read_text()
    assert text.startswith("## Remedies") and "| function_approx | fixed |" in text
    assert (out / "remedies_function_approx" / "remedies.png").is_file()
    assert main([*args, "--remedies-tasks", "weather"]) == 2
    assert "`task` must be one of" in capsys.readouterr().err


def test_the_distribution_network_is_the_grid_cell_of_its_training_noise_factor(tiny, tmp_path):
    """The remedies' distribution cell is the preset grid's cell for a ``train_sigmas`` entry."""
    result = run_remedies("function_approx", tmp_path, analyze=False)
    grid = dataclasses.replace(
        tiny_preset("function_approx"),
        placements=("in",),
        train_sigmas=("uniform:0,1",),
        sweep=SweepSpec(test_sigmas=(0.0, 0.5, 1.0), episodes=8),  # 0, sigma, 2 sigma
    )
    expected = [cell.folder_name for cell in grid.cells()]
    folders = [row["folder"] for row in result.rows if row["remedy"] == "distribution"]
    assert folders == expected
    assert folders[0].startswith("function_approx-in-uniform0_1-obs0-seed0-")
