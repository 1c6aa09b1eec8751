"""The command line's training noise distributions: --sigma-dist / --sigma-per, and what uses them."""

import json

import pytest

from agents import load_run
from agents.noise_distribution import NoiseDistribution
from evaluation.cli import main
from evaluation.cli.sweep import default_levels

TRAIN = ["train", "--iterations", "2", "--batch-size", "4", "--hidden-size", "4", "--no-progress"]


def test_train_stores_the_distribution_and_sweep_uses_its_levels(tmp_path, capsys):
    out = tmp_path / "u"
    args = [*TRAIN, "--sigma-dist", "discrete:0,0.4@1,3", "--sigma-per", "batch", "--out", str(out)]
    assert main(args) == 0
    assert "training noise discrete:0,0.4@1,3 per batch (mean 0.3, upper level 0.4)" in (
        capsys.readouterr().out
    )
    record = json.loads((out / "run.json").read_text())
    assert record["train"]["sigma"] == 0.0
    assert record["train"]["sigma_dist"] == {
        "kind": "discrete",
        "levels": [0.0, 0.4],
        "weights": [1.0, 3.0],
        "per": "batch",
    }
    assert load_run(out).train_config.sigma_dist == NoiseDistribution.discrete(
        (0, 0.4), (1, 3), per="batch"
    )
    capsys.readouterr()
    assert main(["sweep", str(out), "--episodes", "4", "--no-progress"]) == 0
    table = capsys.readouterr().out
    # The default levels run to twice the upper level 0.4; the train sigma column is the mean 0.3.
    assert "0.8" in table
    assert any(line.split()[:2] == ["u", "0.3"] for line in table.splitlines())


def test_default_levels_run_to_twice_the_upper_level():
    assert default_levels(NoiseDistribution.uniform(0, 1).high)[-1] == 2.0


def test_fixed_sigma_run_json_has_no_distribution(tmp_path):
    out = tmp_path / "f"
    assert main([*TRAIN, "--sigma", "0.5", "--out", str(out)]) == 0
    assert "sigma_dist" not in json.loads((out / "run.json").read_text())["train"]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (
            ["--sigma-dist", "uniform:1,0"],
            "--sigma-dist 'uniform:1,0': a uniform noise "
            "distribution needs low <= high, got low 1.0 > high 0.0",
        ),
        (["--sigma-dist", "uniform:-1,1"], "noise levels must be in [0, "),
        (["--sigma-dist", "discrete:0,1@0,0"], "sum to a positive number, got [0.0, 0.0]"),
        (["--sigma-dist", "log_uniform:0,1"], "needs low > 0"),
        (["--sigma-dist", "gauss:0,1"], "`noise distribution kind` must be one of"),
        (["--sigma-dist", "uniform:0,1", "--sigma", "0.5"], "give either --sigma (0.5) or"),
        (["--sigma-per", "batch"], "--sigma-per applies to --sigma-dist only"),
    ],
)
def test_bad_distributions_are_one_line_errors(tmp_path, capsys, extra, message):
    code = main([*TRAIN, *extra, "--out", str(tmp_path / "bad")])
    err = capsys.readouterr().err
    assert code == 2 and message in err and err.count("\n") == 1, err
    assert not (tmp_path / "bad").exists()


def test_sigma_per_takes_row_or_batch_only(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([*TRAIN, "--sigma-dist", "uniform:0,1", "--sigma-per", "episode", "--out", "x"])
    assert exit_info.value.code == 2
    assert "invalid choice: 'episode'" in capsys.readouterr().err


def test_analyze_centres_a_distribution_run_on_its_mean_level_and_says_so(tmp_path, capsys):
    out = tmp_path / "u"
    assert main([*TRAIN, "--sigma-dist", "uniform:0,0.6", "--out", str(out)]) == 0
    capsys.readouterr()
    small = ["--num-inputs", "2", "--num-levels", "3", "--steps", "40", "--burn-in", "10"]
    small += ["--replicas", "2", "--episodes", "4", "--bias-replicas", "2", "--num-initial", "2"]
    assert main(["analyze", str(out), *small, "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "trained across uniform:0,0.6 per row, analysed at its mean 0.3" in printed
    assert "trained at sigma" not in printed  # the report names the distribution, not a level
