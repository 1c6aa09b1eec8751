"""Tests of the whole-network mechanism analysis and ``noisepref analyze``."""

from __future__ import annotations

import pytest
import torch

from agents import CTRNN, CTRNNConfig
from agents.supervised import TrainConfig, train_run
from evaluation.cli import main
from evaluation.mechanism.analysis import AnalysisConfig, analyze_model, kink_table
from noise_envs import make_task

FAST = AnalysisConfig(
    num_inputs=3,
    num_levels=3,
    steps=40,
    burn_in=10,
    replicas=2,
    episodes=4,
    bias_replicas=2,
    num_initial=4,
)
FAST_FLAGS = [
    "--num-inputs", "3", "--num-levels", "3", "--steps", "40", "--burn-in", "10",
    "--replicas", "2", "--episodes", "4", "--bias-replicas", "2", "--num-initial", "4",
]  # fmt: skip


@pytest.fixture
def runs(tmp_path):
    folders = []
    for placement in ("in", "out"):
        folder = tmp_path / f"noise-{placement}"
        config = CTRNNConfig(input_size=1, output_size=1, hidden_size=4, placement=placement)
        train_run(
            folder,
            "NoisyFunctionApprox-v0",
            config,
            TrainConfig(sigma=0.3, iterations=2, batch_size=4),
            task_kwargs={"steps": 6, "response_steps": 3},
            progress=False,
        )
        folders.append(folder)
    return folders


def test_analysis_of_uncoupled_units():
    """Units without recurrence: one stable fixed point per input, known kink occupancy."""
    model = CTRNN(CTRNNConfig(input_size=1, output_size=1, hidden_size=3, dt=50.0))
    with torch.no_grad():
        model.W.zero_()
        model.U.zero_()
        model.b.copy_(torch.tensor([0.0, 5.0, -5.0]))
    task = make_task("NoisyFunctionApprox-v0", steps=6, response_steps=3)
    report = analyze_model(model, task, train_sigma=0.5, config=FAST, label="uncoupled")
    assert [len(points) for points in report.fixed_points] == [1, 1, 1]
    assert all(points[0].stable for points in report.fixed_points)
    assert report.kink.share == pytest.approx(1 / 3)
    assert report.kink.active_share == pytest.approx(1 / 3)
    assert (report.inputs[1:, 0] >= report.inputs[:-1, 0]).all()
    text = report.summary()
    assert text.startswith("uncoupled: relu, noise in, gamma 0.5, trained at sigma 0.5")
    assert "3 stable, 0 unstable" in text
    assert (
        "kink occupancy (|mean - kink| < 1 std at the training noise; relu's kink at 0): 33.3%"
        in text
    )
    assert "33.3% above the kink (on)" in text
    figures = report.figures()
    assert set(figures) == {"stationary_mean", "output_bias", "kink_distances"}
    assert all(fig.axes[0].get_title().startswith("uncoupled: ") for fig in figures.values())


def test_analysis_of_a_tanh_network_reports_knees_not_a_kink():
    model = CTRNN(CTRNNConfig(input_size=1, output_size=1, hidden_size=3, activation="tanh"))
    task = make_task("NoisyFunctionApprox-v0", steps=6, response_steps=3)
    text = analyze_model(model, task, train_sigma=0.5, config=FAST, label="tanh").summary()
    assert "knee occupancy (|mean - knee| < 1 std" in text
    assert "tanh's knees at +-0.658 (it has no kink" in text
    assert "beyond the knees (saturated)" in text
    assert "kink occupancy" not in text


def test_analysis_of_a_maze_network_reports_the_sweeps_mse():
    """Closed loop: no bias split; the mse column is the sweep's per-episode oracle_mse."""
    torch.manual_seed(0)
    model = CTRNN(CTRNNConfig(input_size=8, output_size=2, hidden_size=8, placement="out"))
    task = make_task("NoisyMaze-v0")
    report = analyze_model(model, task, train_sigma=1.0, config=FAST, label="maze")
    assert report.bias.closed_loop
    text = report.summary()
    assert "output bias: not defined on a closed-loop task" in text
    assert "mse (per episode, as the sweep)" in text
    assert "bias^2" not in text
    assert f"{report.bias.mse[0]:.4g} at zero noise" in text


def test_analyze_cli_writes_reports_and_figures(runs, tmp_path, capsys):
    out = tmp_path / "analysis"
    assert main(["analyze", *map(str, runs), "--out", str(out), *FAST_FLAGS]) == 0
    printed = capsys.readouterr().out
    assert "noise-in: relu, noise in" in printed and "noise-out: relu, noise out" in printed
    for label in ("noise-in", "noise-out"):
        assert (out / label / "mechanism.txt").read_text().startswith(f"{label}: relu")
        for stem in ("stationary_mean", "output_bias", "kink_distances"):
            assert (out / label / f"mechanism_{stem}.png").stat().st_size > 0
    assert (out / "kink_occupancy.png").stat().st_size > 0


def test_analyze_cli_defaults_to_the_run_folder(runs, capsys):
    assert main(["analyze", str(runs[0]), *FAST_FLAGS]) == 0
    assert (runs[0] / "mechanism_output_bias.png").is_file()
    assert "wrote" in capsys.readouterr().out


def test_analyze_cli_rejects_bad_options(runs, capsys):
    assert main(["analyze", str(runs[0]), "--k", "0"]) == 2
    assert "`k` must be > 0, got 0" in capsys.readouterr().err
    assert main(["analyze", str(runs[0].parent / "missing")]) == 2
    assert "is not a run folder" in capsys.readouterr().err


def test_kink_table_groups_by_placement_and_sigma():
    class Report:
        def __init__(self, placement, sigma, share):
            self.model = type("M", (), {"config": type("C", (), {"placement": placement})})
            self.train_sigma = sigma
            self.kink = type("K", (), {"share": share})

    reports = {
        "a": Report("in", 0.5, 0.4),
        "b": Report("in", 0.5, 0.6),
        "c": Report("out", 0.5, 0.1),
    }
    assert kink_table(reports) == {"noise-in": {0.5: [0.4, 0.6]}, "noise-out": {0.5: [0.1]}}


def test_config_validation():
    with pytest.raises(ValueError, match="`bias_replicas` must be >= 2, got 1"):
        AnalysisConfig(bias_replicas=1)
    with pytest.raises(ValueError, match="`num_levels` must be an integer >= 1"):
        AnalysisConfig(num_levels=0)
    assert AnalysisConfig.from_json(FAST.to_json()) == FAST
    assert FAST.levels(0.0).tolist() == [0.0, 1.0, 2.0]


def test_a_run_trained_across_a_distribution_is_analysed_at_its_mean_and_says_so(tmp_path):
    """A run trained across uniform(0, 1) is analysed at the mean, 0.5, and the report says
    it was trained across the distribution rather than "at sigma 0.5"."""
    from evaluation.mechanism.analysis import analyze_run

    folder = tmp_path / "across"
    train_run(
        folder,
        "NoisyFunctionApprox-v0",
        CTRNNConfig(input_size=1, output_size=1, hidden_size=4),
        TrainConfig(sigma=0.0, sigma_dist="uniform:0,1", iterations=2, batch_size=4),
        task_kwargs={"steps": 6, "response_steps": 3},
        progress=False,
    )
    report = analyze_run(folder, FAST)
    assert report.train_sigma == 0.5
    assert report.shift.levels.tolist() == pytest.approx([0.0, 0.5, 1.0])  # 2x the mean
    first = report.summary().splitlines()[0]
    assert first.endswith("trained across uniform:0,1 per row, analysed at its mean 0.5")
    assert "trained at sigma" not in first


def test_the_report_names_a_centre_other_than_the_distributions_mean():
    from agents.noise_distribution import NoiseDistribution

    model = CTRNN(CTRNNConfig(input_size=1, output_size=1, hidden_size=3))
    task = make_task("NoisyFunctionApprox-v0", steps=6, response_steps=3)
    noise = NoiseDistribution.parse("discrete:0,1")
    report = analyze_model(model, task, train_sigma=0.2, config=FAST, train_noise=noise)
    assert report.training_summary() == "trained across discrete:0,1 per row, analysed at sigma 0.2"
    fixed = NoiseDistribution.fixed(0.2)
    report = analyze_model(model, task, train_sigma=0.2, config=FAST, train_noise=fixed)
    assert report.training_summary() == "trained at sigma 0.2"
    with pytest.raises(
        ValueError, match=r"`train_noise` must be a NoiseDistribution or None, got str"
    ):
        analyze_model(model, task, train_sigma=0.2, config=FAST, train_noise="uniform:0,1")
