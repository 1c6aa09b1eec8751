"""The `noisepref` command line: help texts, an end-to-end run, and one-line errors with exit 2."""

import subprocess
import sys

import pytest
import torch

from evaluation.cli import build_parser, main

TINY_TASK = ["--task", "NoisyRegulator-v0", "--task-kwargs", '{"steps": 6, "settle_steps": 2}']
TINY_TRAIN = ["--hidden-size", "4", "--iterations", "3", "--batch-size", "4", "--no-progress"]


@pytest.mark.parametrize("command", ["train", "sweep", "plot", "envs", "demo"])
def test_every_command_explains_itself(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    assert "usage: noisepref" in text
    if command in ("train", "sweep", "demo"):
        assert "--device" in text


def test_train_help_documents_config_fields_from_their_docstrings(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    text = capsys.readouterr().out
    assert "Where the noise enters" in text
    assert "--placement" in text and "--sigma" in text and "--noise-scaling" in text
    assert "--input-size" not in text


def test_envs_lists_every_registered_environment(capsys):
    from noise_envs import TASKS

    assert main(["envs"]) == 0
    text = capsys.readouterr().out
    for env_id in TASKS:
        assert env_id in text


def test_train_sweep_plot_end_to_end(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", *TINY_TASK, *TINY_TRAIN, "--sigma", "0.2", "--out", str(run)]) == 0
    assert (run / "weights.safetensors").is_file()
    assert (
        main(["sweep", str(run), "--levels", "0,0.2,0.4", "--episodes", "8", "--no-progress"]) == 0
    )
    text = capsys.readouterr().out
    assert "sigma*" in text and (run / "sweep.csv").is_file()
    figure = tmp_path / "figure.png"
    assert main(["plot", str(run), "--out", str(figure)]) == 0
    assert figure.stat().st_size > 5000


def assert_fails_with(argv, capsys, *fragments):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    for fragment in fragments:
        assert fragment in err


def test_unknown_environment_id_exits_2_with_a_suggestion(tmp_path, capsys):
    argv = ["train", "--task", "NoisyRegulatr-v0", "--out", str(tmp_path / "r"), *TINY_TRAIN]
    assert_fails_with(argv, capsys, "NoisyRegulatr-v0", "Did you mean 'NoisyRegulator-v0'")


def test_negative_sigma_exits_2(tmp_path, capsys):
    argv = ["train", *TINY_TASK, *TINY_TRAIN, "--sigma", "-0.1", "--out", str(tmp_path / "r")]
    assert_fails_with(argv, capsys, "sigma", "-0.1")


def test_unknown_placement_exits_2(tmp_path, capsys):
    argv = ["train", *TINY_TASK, *TINY_TRAIN, "--placement", "inside", "--out", str(tmp_path / "r")]
    assert_fails_with(argv, capsys, "placement", "inside")


def test_non_positive_batch_size_exits_2(tmp_path, capsys):
    argv = ["train", *TINY_TASK, "--batch-size", "0", "--out", str(tmp_path / "r")]
    assert_fails_with(argv, capsys, "batch_size", "0")


def test_folder_that_is_not_a_run_exits_2(tmp_path, capsys):
    assert_fails_with(["sweep", str(tmp_path), "--no-progress"], capsys, str(tmp_path))


def test_truncated_weights_file_exits_2(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", *TINY_TASK, *TINY_TRAIN, "--out", str(run)]) == 0
    weights = run / "weights.safetensors"
    weights.write_bytes(weights.read_bytes()[:20])
    capsys.readouterr()
    assert_fails_with(["sweep", str(run), "--no-progress"], capsys, "weights.safetensors")


def test_bad_levels_exit_2(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", *TINY_TASK, *TINY_TRAIN, "--out", str(run)]) == 0
    capsys.readouterr()
    assert_fails_with(["sweep", str(run), "--levels", "0,-1", "--no-progress"], capsys, "-1")


def test_plot_of_unswept_run_says_what_to_do(tmp_path, capsys):
    assert_fails_with(["plot", str(tmp_path)], capsys, "noisepref sweep")


def test_argparse_rejects_unknown_command():
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args(["fly"])
    assert exit_info.value.code == 2


def test_console_script_entry_point_runs():
    result = subprocess.run(
        [sys.executable, "-m", "evaluation.cli", "envs"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "NoisyFunctionApprox-v0" in result.stdout


def test_threads_sets_torch_threads_and_rejects_zero(tmp_path, capsys, monkeypatch):
    """--threads N calls torch.set_num_threads(N); 0 is refused by the parser with exit 2."""
    calls = []
    monkeypatch.setattr(torch, "set_num_threads", calls.append)
    argv = ["train", *TINY_TASK, *TINY_TRAIN, "--threads", "1", "--out", str(tmp_path / "r")]
    assert main(argv) == 0
    assert calls == [1]
    with pytest.raises(SystemExit) as exit_info:
        main(["train", *TINY_TASK, "--threads", "0", "--out", str(tmp_path / "s")])
    assert exit_info.value.code == 2
    assert "--threads: must be an integer >= 1, got '0'" in capsys.readouterr().err
