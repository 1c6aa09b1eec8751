"""``noisepref`` on NoisyMultitask-v0: trials figures, per-task sweep tables and figures, envs."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from evaluation.cli import main
from evaluation.plots.multitask import by_task_table
from evaluation.sweep_result import SweepResult

TASK_KWARGS = '{"tasks": ["fdgo", "dm1"], "dt": 100.0, "obs_noise": 0.0}'
TINY = [
    "--task",
    "NoisyMultitask-v0",
    "--task-kwargs",
    TASK_KWARGS,
    "--hidden-size",
    "4",
    "--readout",
    "sigmoid",
    "--iterations",
    "2",
    "--batch-size",
    "4",
    "--no-progress",
    "--threads",
    "1",
]


@pytest.fixture(scope="module")
def multitask_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("mt") / "run"
    assert main(["train", *TINY, "--sigma", "0.1", "--out", str(run)]) == 0
    return run


def assert_one_line_error(capsys, code_expected: int, argv: list[str], *fragments: str) -> str:
    capsys.readouterr()
    try:
        code = main(argv)
    except SystemExit as exit_:  # argparse's usage errors exit themselves
        code = exit_.code
    assert code == code_expected
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("noisepref trials: error:"), err
    for fragment in fragments:
        assert fragment in err, err
    return err


def figure_size(path) -> tuple[int, int]:
    with Image.open(path) as image:
        return image.size


# --- trials -----------------------------------------------------------------------------------


def test_trials_without_a_run_draws_inputs_and_targets(tmp_path, capsys):
    out = tmp_path / "go.png"
    assert main(["trials", "--family", "go", "--out", str(out)]) == 0
    assert "fdgo, reactgo, delaygo; no network" in capsys.readouterr().out
    wide, high = figure_size(out)
    assert wide > high  # three columns of four rows


def test_trials_with_a_run_adds_its_outputs_at_its_training_noise(multitask_run, tmp_path, capsys):
    out = tmp_path / "fig.png"
    argv = ["trials", str(multitask_run), "--task", "go,dm1", "--out", str(out), "--threads", "1"]
    assert main(argv) == 0
    text = capsys.readouterr()
    assert "fdgo, dm1; the network's outputs at sigma 0.1" in text.out
    assert text.err == ""
    with_network = figure_size(out)
    assert main([*argv, "--env-only", "--out", str(tmp_path / "env.png")]) == 0
    assert "no network" in capsys.readouterr().out
    assert figure_size(tmp_path / "env.png")[1] < with_network[1]  # one row fewer


def test_trials_sigma_and_untrained_tasks(multitask_run, tmp_path, capsys):
    out = tmp_path / "fig.png"
    argv = ["trials", str(multitask_run), "--task", "dms", "--sigma", "0.3", "--out", str(out)]
    assert main(argv) == 0
    text = capsys.readouterr()
    assert "dmsgo; the network's outputs at sigma 0.3" in text.out
    assert "noisepref trials: warning: the run was not trained on dmsgo" in text.err


def test_trials_bad_arguments_are_one_line_usage_errors(multitask_run, tmp_path, capsys):
    out = str(tmp_path / "x.png")
    assert_one_line_error(
        capsys, 2, ["trials", "--task", "dmsgoo", "--out", out], "Did you mean 'dmsgo'"
    )
    assert_one_line_error(capsys, 2, ["trials", "--task", ",", "--out", out], "at least one task")
    assert_one_line_error(
        capsys, 2, ["trials", "--out", out], "one of the arguments --task --family"
    )
    assert_one_line_error(capsys, 2, ["trials", "--family", "dms", "--out", out], "invalid choice")
    assert_one_line_error(
        capsys, 2, ["trials", "--task", "fdgo", "--sigma", "0.2", "--out", out], "give a RUN"
    )
    assert_one_line_error(
        capsys,
        2,
        ["trials", str(multitask_run), "--task", "fdgo", "--dt", "20", "--out", out],
        "`--dt` is the run's own",
    )
    assert_one_line_error(
        capsys, 2, ["trials", "--task", "fdgo", "--dt", "0", "--out", out], "`dt` must be > 0"
    )
    assert_one_line_error(
        capsys,
        2,
        ["trials", "--task", "fdgo", "--obs-noise", "-1", "--out", out],
        "`obs_noise` must be >= 0",
    )
    assert_one_line_error(
        capsys,
        2,
        ["trials", str(multitask_run), "--task", "fdgo", "--sigma", "-1", "--out", out],
        "`sigma` must be",
    )
    assert_one_line_error(
        capsys, 2, ["trials", "--task", "fdgo", "--out", str(tmp_path)], "a folder"
    )
    assert_one_line_error(
        capsys, 2, ["trials", str(tmp_path / "none"), "--task", "fdgo"], "does not exist"
    )


def test_trials_refuses_a_run_of_another_task(tmp_path, capsys):
    run = tmp_path / "reg"
    tiny = ["--task", "NoisyRegulator-v0", "--task-kwargs", '{"steps": 4, "settle_steps": 1}']
    train = ["--hidden-size", "2", "--iterations", "1", "--batch-size", "2", "--no-progress"]
    assert main(["train", *tiny, *train, "--sigma", "0.1", "--out", str(run)]) == 0
    assert_one_line_error(
        capsys,
        2,
        ["trials", str(run), "--task", "fdgo", "--out", str(tmp_path / "x.png")],
        "is a NoisyRegulator-v0 run; trials draws NoisyMultitask-v0",
    )


# --- sweep and plot by task -------------------------------------------------------------------


def test_sweep_prints_perf_per_task_and_plot_by_task_draws_it(multitask_run, tmp_path, capsys):
    argv = ["sweep", str(multitask_run), "--levels", "0,0.2", "--episodes", "16", "--no-progress"]
    assert main([*argv, "--threads", "1"]) == 0
    text = capsys.readouterr().out
    sweep = SweepResult.from_csv(multitask_run / "sweep.csv")
    assert by_task_table(sweep) in text
    out = tmp_path / "by_task.png"
    assert main(["plot", str(multitask_run), "--by-task", "--out", str(out)]) == 0
    assert out.is_file()
    assert (
        main(["plot", str(multitask_run), "--by-task", "--metric", "mse", "--out", str(out)]) == 0
    )


def test_by_task_table_by_hand():
    """fdgo (task 0) perf 1, 0 / 0, 0; dm1 (task 6) 1, 1 / 1, 0; mean over tasks counts each once."""
    sweep = SweepResult(
        task_id="NoisyMultitask-v0",
        levels=np.array([0.0, 0.5]),
        metrics={
            "perf": np.array([[1, 0, 1, 1, 1], [0, 0, 1, 0, 1]], float),
            "task": np.array([[0, 0, 6, 6, 6], [0, 0, 6, 6, 6]], float),
        },
        metric_directions={"perf": True, "task": False},
        primary_metric="perf",
        seed=0,
    )
    lines = by_task_table(sweep).splitlines()
    assert lines[0].startswith("perf by task")
    assert lines[1].split() == ["task", "0", "0.5"]
    assert lines[3].split() == ["fdgo", "0.500", "0.000"]
    assert lines[4].split() == ["dm1", "1.000", "0.667"]
    assert lines[5].split() == ["mean", "over", "tasks", "0.750", "0.333"]


def test_plot_by_task_refuses_several_sweeps_and_sweeps_without_tasks(tmp_path, capsys):
    plain = SweepResult(
        task_id="NoisyRegulator-v0",
        levels=np.array([0.0]),
        metrics={"mse": np.ones((1, 2))},
        metric_directions={"mse": False},
        primary_metric="mse",
        seed=0,
    )
    path = plain.to_csv(tmp_path / "plain.csv")
    other = plain.to_csv(tmp_path / "other.csv")
    out = str(tmp_path / "x.png")
    for argv, fragment in [
        ([str(path), str(other)], "`--by-task` draws one sweep, got 2"),
        ([str(path)], "needs a sweep with the trials' `task` label"),
    ]:
        capsys.readouterr()
        assert main(["plot", *argv, "--by-task", "--out", out]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and fragment in err, err


# --- envs -------------------------------------------------------------------------------------


def test_envs_shows_the_task_label_as_a_label(capsys):
    assert main(["envs"]) == 0
    text = capsys.readouterr().out
    assert "metrics: perf* (higher), mse (lower), task (label)" in text


def test_trials_explains_itself_and_is_listed(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["trials", "--help"])
    assert exit_.value.code == 0
    text = capsys.readouterr().out
    for flag in ("--task", "--family", "--sigma", "--seed", "--env-only", "--device", "--threads"):
        assert flag in text
    with pytest.raises(SystemExit):
        main(["--help"])
    assert "noisepref trials" in capsys.readouterr().out
