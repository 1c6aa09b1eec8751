"""The `noisepref` command line: help texts, per-algorithm options, end-to-end runs, and one-line
errors (exit 2 for bad arguments, 1 for runtime failures), a traceback only with --debug."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from agents.errors import RunLocked, TrainingDiverged
from agents.mlp import NoisyMLPConfig
from agents.supervised import TrainConfig, train_run
from evaluation.cli import analyze as cli_analyze
from evaluation.cli import build_parser, main
from evaluation.cli import plot as cli_plot
from evaluation.cli import sweep as cli_sweep
from evaluation.cli import train as cli_train
from evaluation.demo import PlacementConfig

TINY_TASK = ["--task", "NoisyRegulator-v0", "--task-kwargs", '{"steps": 6, "settle_steps": 2}']
TINY_TRAIN = ["--hidden-size", "4", "--iterations", "3", "--batch-size", "4", "--no-progress"]
TINY_DEMO = [
    "--task", "NoisyRegulator-v0", "--hidden-size", "4", "--iterations", "2", "--batch-size", "4",
    "--episodes", "4", "--num-levels", "3", "--no-progress",
]  # fmt: skip
TINY_DEMO_CONFIG = {
    "task": "NoisyRegulator-v0",
    "hidden_size": 4,
    "iterations": 2,
    "batch_size": 4,
    "episodes": 4,
    "num_levels": 3,
}
REPO = Path(__file__).resolve().parents[2]


def help_text(argv, capsys) -> str:
    with pytest.raises(SystemExit) as exit_info:
        main([*argv, "--help"])
    assert exit_info.value.code == 0
    return capsys.readouterr().out


def option_help(text: str, flag: str) -> str:
    """The help paragraph of ``flag`` in an argparse help text, whitespace collapsed."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if f"{line.strip()} ".startswith(flag + " "))
    paragraph = [lines[start]]
    for line in lines[start + 1 :]:
        if not line.startswith(" " * 10) or line.strip().startswith("--"):
            break
        paragraph.append(line)
    return " ".join(" ".join(paragraph).split())


def assert_one_line_error(capsys, *fragments) -> str:
    """Exactly one stderr line, an error without a traceback, holding every fragment."""
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert "error:" in err and "Traceback" not in err
    for fragment in fragments:
        assert fragment in err, err
    return err


def assert_fails_with(argv, capsys, code, *fragments) -> str:
    assert main(argv) == code
    return assert_one_line_error(capsys, *fragments)


def assert_usage_error(argv, capsys, *fragments) -> str:
    """argparse refuses ``argv`` with exit code 2 and one line."""
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    return assert_one_line_error(capsys, *fragments)


@pytest.fixture
def trained_run(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", *TINY_TASK, *TINY_TRAIN, "--sigma", "0.2", "--out", str(run)]) == 0
    capsys.readouterr()
    return run


# --- help ------------------------------------------------------------------------------------


@pytest.mark.parametrize("command", ["train", "sweep", "plot", "envs", "demo", "analyze"])
def test_every_command_explains_itself(command, capsys):
    text = help_text([command], capsys)
    assert "usage: noisepref" in text
    if command in ("train", "sweep", "demo", "analyze"):
        assert "--device" in text


def test_top_level_help_names_debug_and_the_algorithm_help(capsys):
    text = help_text([], capsys)
    assert "--debug" in text
    assert "noisepref train --algo recurrent_ppo --help" in text


def test_supervised_help_shows_ctrnn_and_train_config_with_their_defaults(capsys):
    text = help_text(["train"], capsys)
    assert "Where the noise enters" in option_help(text, "--placement")
    assert "(default: 1000)" in option_help(text, "--iterations")  # TrainConfig's
    assert "(default: 64)" in option_help(text, "--hidden-size")  # CTRNNConfig's
    assert "(default: 0.003)" in option_help(text, "--learning-rate")
    assert "--learn-initial-state" in text and "--noise-scaling" in text
    for foreign in ("--num-envs", "--noisy-critic", "--num-layers", "--input-size"):
        assert foreign not in text


def test_recurrent_ppo_help_shows_its_own_options_and_defaults(capsys):
    text = help_text(["train", "--algo", "recurrent_ppo"], capsys)
    assert "CTRNNPolicyConfig options" in text and "RLTrainConfig options" in text
    assert "(default: 100)" in option_help(text, "--iterations")  # RLTrainConfig's, not 1000
    assert "(default: 0.001)" in option_help(text, "--learning-rate")
    assert "(default: 256)" in option_help(text, "--batch-size")
    assert "(default: 16)" in option_help(text, "--num-envs")
    assert "critic" in option_help(text, "--noisy-critic, --no-noisy-critic")
    for foreign in ("--learn-initial-state", "--num-layers", "TrainConfig options\n"):
        assert foreign not in text


def test_ppo_help_shows_the_mlp_policy_options(capsys):
    text = help_text(["train", "--algo", "ppo"], capsys)
    assert "(default: 2)" in option_help(text, "--num-layers")
    assert "--dt" not in text and "--recurrent-gain" not in text


@pytest.mark.parametrize(
    ("argv", "option", "owner"),
    [
        ([], "--num-envs", "ppo and recurrent_ppo"),
        (["--algo", "ppo"], "--learn-initial-state", "supervised"),
        (["--algo", "recurrent_ppo"], "--num-layers", "ppo"),
        (["--algo=ppo"], "--dt", "supervised and recurrent_ppo"),
    ],
)
def test_an_option_of_another_algorithm_is_an_error_naming_it(
    argv, option, owner, tmp_path, capsys
):
    out = tmp_path / "r"
    assert_usage_error(
        ["train", *argv, option, "--out", str(out)], capsys, option, f"--algo {owner}"
    )
    assert not out.exists()


def test_an_unknown_option_is_one_line(tmp_path, capsys):
    assert_usage_error(["train", "--bogus", "1", "--out", str(tmp_path)], capsys, "--bogus 1")


def test_envs_lists_every_registered_environment(capsys):
    from noise_envs import TASKS

    assert main(["envs"]) == 0
    text = capsys.readouterr().out
    for env_id in TASKS:
        assert env_id in text


# --- end to end ------------------------------------------------------------------------------


def test_train_sweep_plot_end_to_end(trained_run, tmp_path, capsys):
    assert (trained_run / "weights.safetensors").is_file()
    argv = ["sweep", str(trained_run), "--levels", "0,0.2,0.4", "--episodes", "8", "--no-progress"]
    assert main(argv) == 0
    captured = capsys.readouterr()
    assert "sigma*" in captured.out and (trained_run / "sweep.csv").is_file()
    assert captured.err == ""
    figure = tmp_path / "figure.png"
    assert main(["plot", str(trained_run), "--out", str(figure)]) == 0
    assert figure.stat().st_size > 5000


def test_training_without_noise_warns_in_one_line(tmp_path, capsys):
    assert main(["train", *TINY_TASK, *TINY_TRAIN, "--out", str(tmp_path / "r")]) == 0
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "warning" in err and "without noise" in err
    argv = ["train", *TINY_TASK, *TINY_TRAIN, "--sigma", "0.1", "--out", str(tmp_path / "s")]
    assert main(argv) == 0
    assert capsys.readouterr().err == ""


def test_demo_of_another_sigma_is_another_pair_of_runs(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), *TINY_DEMO]) == 0
    assert main(["demo", "--out", str(out), *TINY_DEMO, "--sigma", "1.0"]) == 0
    first = PlacementConfig(**TINY_DEMO_CONFIG)
    second = PlacementConfig(**TINY_DEMO_CONFIG, sigma=1.0)
    for config in (first, second):
        for placement in ("in", "out"):
            assert (out / config.run_name(placement) / "sweep.csv").is_file()
        assert (out / f"preference-{config.tag}.txt").is_file()
        assert (out / f"noise_preference-{config.tag}.png").is_file()
    assert first.tag != second.tag


def test_demo_run_names_spell_the_changed_training_options():
    assert PlacementConfig().tag == "sigma0.5"
    assert PlacementConfig().run_name("in") == "noise-in-sigma0.5"
    assert PlacementConfig(sigma=1.0).run_name("out") == "noise-out-sigma1"
    assert PlacementConfig(iterations=3, hidden_size=16).tag == "sigma0.5-hidden-size16-iterations3"
    assert PlacementConfig(learning_rate=0.01).tag == "sigma0.5-learning-rate0.01"
    # sweep options change the sweep, not the trained networks
    assert PlacementConfig(episodes=8, num_levels=3, max_level_factor=3.0).tag == "sigma0.5"


# --- progress bars -----------------------------------------------------------------------------


def test_no_progress_bar_when_output_is_a_file(tmp_path):
    """The demo (both trainers and the sweeps) piped into a file writes no bar."""
    log = tmp_path / "log.txt"
    argv = [a for a in TINY_DEMO if a != "--no-progress"]
    with log.open("w") as stream:
        result = subprocess.run(
            [sys.executable, "-m", "evaluation.cli", "demo", "--out", str(tmp_path / "d"), *argv],
            stdout=stream,
            stderr=subprocess.STDOUT,
            cwd=REPO,
            env={**os.environ, "PYTHONPATH": str(REPO)},
            check=False,
        )
    text = log.read_text()
    assert result.returncode == 0, text
    assert "\r" not in text and "it/s" not in text and "noise sweep" not in text
    assert "noise-in" in text


def test_progress_bar_on_a_terminal(tmp_path, capsys, monkeypatch):
    class Terminal:
        def __init__(self):
            self.text = ""

        def write(self, text):
            self.text += text

        def flush(self):
            pass

        def isatty(self):
            return True

    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    argv = ["train", *TINY_TASK, *TINY_TRAIN[:-1], "--sigma", "0.1", "--out", str(tmp_path / "r")]
    assert main(argv) == 0
    assert "train: 100%" in terminal.text


# --- one-line errors: bad arguments exit 2 -------------------------------------------------------


def test_unknown_environment_id_exits_2_with_a_suggestion(tmp_path, capsys):
    argv = ["train", "--task", "NoisyRegulatr-v0", "--out", str(tmp_path / "r"), *TINY_TRAIN]
    assert_fails_with(argv, capsys, 2, "NoisyRegulatr-v0", "Did you mean 'NoisyRegulator-v0'")


@pytest.mark.parametrize(
    ("option", "value", "fragments"),
    [
        ("--sigma", "-0.1", ("sigma", "-0.1")),
        ("--placement", "inside", ("placement", "inside")),
        ("--batch-size", "0", ("batch_size", "0")),
    ],
)
def test_bad_config_values_exit_2(option, value, fragments, tmp_path, capsys):
    out = tmp_path / "r"
    assert_fails_with(
        ["train", *TINY_TASK, option, value, "--out", str(out)], capsys, 2, *fragments
    )
    assert not out.exists()


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [("{bad", "--task-kwargs"), ("[1, 2]", "JSON object"), ('{"stepz": 3}', "stepz")],
)
def test_malformed_task_kwargs_exit_2(kwargs, fragment, tmp_path, capsys):
    out = tmp_path / "r"
    argv = ["train", "--task", "NoisyRegulator-v0", "--task-kwargs", kwargs, "--out", str(out)]
    try:
        code = main([*argv, *TINY_TRAIN])
    except SystemExit as exit_info:
        code = exit_info.code
    assert code == 2
    assert_one_line_error(capsys, fragment)
    assert not out.exists()


@pytest.mark.parametrize(
    ("device", "fragment"), [("banana", "not a device"), ("cuda", "not available"), ("cuda:7", "")]
)
def test_unavailable_device_is_refused_up_front(device, fragment, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 0)
    out = tmp_path / "r"
    argv = ["train", *TINY_TASK, *TINY_TRAIN, "--device", device, "--out", str(out)]
    assert_usage_error(argv, capsys, "--device", repr(device), fragment, "available here: cpu")
    assert not out.exists()


def test_empty_out_is_refused(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert_usage_error(["train", *TINY_TASK, *TINY_TRAIN, "--out", ""], capsys, "--out")
    assert list(tmp_path.iterdir()) == []


def test_out_naming_a_file_is_refused_and_left_alone(tmp_path, capsys):
    mine = tmp_path / "notes.txt"
    mine.write_text("my notes")
    argv = ["train", *TINY_TASK, *TINY_TRAIN, "--out", str(mine)]
    assert_fails_with(argv, capsys, 2, "--out", str(mine), "is a file")
    assert mine.read_text() == "my notes"


def test_sweep_levels_are_checked_before_anything_runs(trained_run, capsys):
    for levels in ("-1,0.5", "0,nan", "0,x", ","):
        argv = ["sweep", str(trained_run), "--levels", levels, "--no-progress"]
        assert_usage_error(argv, capsys, "--levels", repr(levels))
    assert not (trained_run / "sweep.csv").exists()


def test_sweep_metric_typo_leaves_the_previous_sweep_in_place(trained_run, capsys, monkeypatch):
    argv = ["sweep", str(trained_run), "--levels", "0,0.2", "--episodes", "4", "--no-progress"]
    assert main(argv) == 0
    table = trained_run / "sweep.csv"
    before = table.read_bytes(), table.stat().st_mtime_ns
    capsys.readouterr()
    monkeypatch.setattr(cli_sweep, "sweep_noise", lambda *a, **k: pytest.fail("the sweep ran"))
    assert_fails_with([*argv, "--metric", "mes"], capsys, 2, "'mes'", "mse")
    assert (table.read_bytes(), table.stat().st_mtime_ns) == before


def test_sweep_out_naming_a_folder_exits_2(trained_run, tmp_path, capsys):
    argv = ["sweep", str(trained_run), "--out", str(tmp_path), "--no-progress"]
    assert_fails_with(argv, capsys, 2, "--out", "is a folder")


SWEEP_QUICK = ["--levels", "0,0.2", "--episodes", "2", "--no-progress"]

HOLD_LOCK = """
import sys, time
from agents.run_lifecycle import run_lock
with run_lock(sys.argv[1]):
    print("held", flush=True)
    time.sleep(60)
"""


def test_sweep_of_a_folder_locked_by_another_process_fails_at_once(trained_run, capsys):
    """A writer in another process holds the lock: exit 1, one line naming its pid, no table."""
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(trained_run)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=REPO,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        argv = ["sweep", str(trained_run), *SWEEP_QUICK]
        assert_fails_with(argv, capsys, 1, str(trained_run), f"process {holder.pid}")
    finally:
        holder.kill()
        holder.wait()
    assert not (trained_run / "sweep.csv").exists()
    assert main(["sweep", str(trained_run), *SWEEP_QUICK]) == 0  # the dead holder blocks nothing


def test_a_sweep_holds_the_lock_against_a_second_sweep_and_a_trainer(
    trained_run, capsys, monkeypatch
):
    """While a sweep computes, a second sweep and a resumed training fail naming this pid."""
    nested = {}
    real_sweep = cli_sweep.sweep_noise

    def sweep_while_others_try(*args, **kwargs):
        nested["sweep"] = main(["sweep", str(trained_run), *SWEEP_QUICK])
        nested["sweep_err"] = capsys.readouterr().err
        resume = ["--sigma", "0.2", "--iterations", "5", "--out", str(trained_run)]
        nested["train"] = main(["train", *TINY_TASK, *TINY_TRAIN, *resume])
        nested["train_err"] = capsys.readouterr().err
        return real_sweep(*args, **kwargs)

    monkeypatch.setattr(cli_sweep, "sweep_noise", sweep_while_others_try)
    assert main(["sweep", str(trained_run), *SWEEP_QUICK]) == 0
    for command in ("sweep", "train"):
        err = nested[f"{command}_err"].strip()
        assert nested[command] == 1 and len(err.splitlines()) == 1, err
        assert f"noisepref {command}: error: " in err and f"process {os.getpid()}" in err
    assert (trained_run / "sweep.csv").is_file()
    assert not (trained_run / ".run.lock.pid").exists()  # released when the sweep ended


def test_deeply_nested_task_kwargs_are_one_usage_line(tmp_path, capsys):
    """5000 nested lists pass the JSON parser's recursion limit: exit 2, one short line."""
    nested = "[" * 5000 + "]" * 5000
    argv = ["train", *TINY_TRAIN, "--task-kwargs", nested, "--out", str(tmp_path / "run")]
    err = assert_usage_error(argv, capsys, "--task-kwargs", "(10000 characters), nested too deep")
    assert len(err) < 300 and not (tmp_path / "run").exists()


def test_sweep_of_a_missing_folder_creates_nothing(tmp_path, capsys):
    """The lock is taken only once the path is known to be a run folder."""
    missing = tmp_path / "missing"
    assert_fails_with(["sweep", str(missing), *SWEEP_QUICK], capsys, 2, "does not exist")
    assert not missing.exists()


def test_a_run_folder_we_may_not_write_is_swept_to_a_table_elsewhere(
    trained_run, tmp_path, capsys, monkeypatch
):
    """No lock can be taken in a read-only folder: the table may go elsewhere, not into it."""

    def read_only(folder):
        raise PermissionError(13, "Permission denied", str(folder / ".run.lock"))

    monkeypatch.setattr(cli_sweep, "run_lock", read_only)
    elsewhere = tmp_path / "elsewhere.csv"
    assert main(["sweep", str(trained_run), *SWEEP_QUICK, "--out", str(elsewhere)]) == 0
    assert elsewhere.is_file()
    capsys.readouterr()
    argv = ["sweep", str(trained_run), *SWEEP_QUICK]
    assert_fails_with(argv, capsys, 1, "Permission denied", ".run.lock")
    assert not (trained_run / "sweep.csv").exists()


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        (None, "does not exist"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\xff\xfe binary", "is not a sweep table"),
        (b"", "is not a sweep table"),
        (b"a,b,c\n1,2,3\n", "is not a sweep table"),
        (b'# {"format": 1}\nlevel,episode,mse\n0,0,zero\n', "is not a sweep table"),
    ],
)
def test_plot_of_a_file_that_is_not_a_sweep_names_it(content, fragment, tmp_path, capsys):
    given = tmp_path / "given.csv"
    if content is not None:
        given.write_bytes(content)
    figure = tmp_path / "figure.png"
    assert_fails_with(["plot", str(given), "--out", str(figure)], capsys, 2, str(given), fragment)
    assert not figure.exists()


@pytest.mark.parametrize(
    "content", [bytes(range(256)), b"level,episode,mse\n\xff\xfe\n", b"level\x00episode"]
)
def test_plot_of_a_binary_file_says_so_without_decoder_text(content, tmp_path, capsys):
    """Invalid UTF-8 or NUL bytes: one line naming the file, no codec or decode wording."""
    given = tmp_path / "weights.bin"
    given.write_bytes(content)
    err = assert_fails_with(
        ["plot", str(given), "--out", str(tmp_path / "f.png")],
        capsys,
        2,
        f"{given} is not a sweep table written by `noisepref sweep`: it is a binary file",
    )
    assert "codec" not in err and "decode" not in err and "\\x" not in err


def test_plot_of_unswept_run_says_what_to_do(tmp_path, capsys):
    assert_fails_with(["plot", str(tmp_path)], capsys, 2, "noisepref sweep")


def test_plot_metric_typo_exits_2_before_drawing(trained_run, tmp_path, capsys):
    assert main(["sweep", str(trained_run), "--levels", "0,0.2", "--episodes", "4"]) == 0
    capsys.readouterr()
    figure = tmp_path / "f.png"
    argv = ["plot", str(trained_run), "--metric", "mes", "--out", str(figure)]
    assert_fails_with(argv, capsys, 2, "mes")
    assert not figure.exists()


def test_analyze_checks_every_run_before_computing(trained_run, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(cli_analyze, "_analyze_all", lambda *a, **k: pytest.fail("analysis ran"))
    missing = tmp_path / "missing"
    assert_fails_with(["analyze", str(trained_run), str(missing)], capsys, 2, str(missing))
    empty = tmp_path / "empty"
    empty.mkdir()
    assert_fails_with(["analyze", str(trained_run), str(empty)], capsys, 1, "has no run.json")
    assert not (trained_run / "mechanism.txt").exists()


def test_analyze_refuses_a_run_that_is_not_a_ctrnn(trained_run, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(cli_analyze, "_analyze_all", lambda *a, **k: pytest.fail("analysis ran"))
    mlp = tmp_path / "mlp"
    train_run(
        mlp,
        "NoisyRegulator-v0",
        NoisyMLPConfig(input_size=1, output_size=1, hidden_size=4),
        TrainConfig(iterations=1, batch_size=2),
        model_kind="noisy_mlp",
        task_kwargs={"steps": 6, "settle_steps": 2},
        progress=False,
    )
    assert_fails_with(["analyze", str(trained_run), str(mlp)], capsys, 2, "noisy_mlp", "CTRNN")


# --- one-line errors: runtime failures exit 1 ----------------------------------------------------


def test_folder_that_is_not_a_run_exits_1(tmp_path, capsys):
    assert_fails_with(["sweep", str(tmp_path), "--no-progress"], capsys, 1, str(tmp_path))


def test_truncated_weights_file_exits_1(trained_run, capsys):
    weights = trained_run / "weights.safetensors"
    weights.write_bytes(weights.read_bytes()[:20])
    assert_fails_with(
        ["sweep", str(trained_run), "--no-progress"], capsys, 1, "weights.safetensors"
    )


@pytest.mark.parametrize(
    "error",
    [
        PermissionError(13, "Permission denied", "/runs/locked"),
        RunLocked("/runs/r is being written by pid 4242"),
        TrainingDiverged("the loss is nan at iteration 3"),
        OSError(28, "No space left on device", "/runs/r/checkpoint.pt"),
    ],
)
def test_runtime_failures_exit_1_in_one_line(error, tmp_path, capsys, monkeypatch):
    def fail(*args, **kwargs):
        raise error

    monkeypatch.setattr(cli_train, "train_run", fail)
    argv = ["train", *TINY_TASK, *TINY_TRAIN, "--sigma", "0.1", "--out", str(tmp_path / "r")]
    err = assert_fails_with(argv, capsys, 1, "noisepref train: error:")
    assert (getattr(error, "strerror", None) or str(error)) in err


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root may write anywhere")
def test_read_only_folder_exits_1(tmp_path, capsys):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        argv = ["train", *TINY_TASK, *TINY_TRAIN, "--out", str(locked / "run")]
        assert_fails_with(argv, capsys, 1, "Permission denied")
    finally:
        locked.chmod(0o700)


def test_debug_shows_the_traceback(tmp_path, capsys):
    mine = tmp_path / "notes.txt"
    mine.write_text("x")
    for argv in (["--debug", "train"], ["train", "--debug"]):
        with pytest.raises(ValueError, match="is a file"):
            main([*argv, *TINY_TASK, *TINY_TRAIN, "--out", str(mine)])


def test_interrupt_is_one_line(tmp_path, capsys, monkeypatch):
    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli_train, "train_run", interrupt)
    argv = ["train", *TINY_TASK, *TINY_TRAIN, "--sigma", "0.1", "--out", str(tmp_path / "r")]
    assert_fails_with(argv, capsys, 130, "interrupted")


def test_no_command_is_one_line(capsys):
    assert_usage_error([], capsys, "COMMAND")


def test_argparse_rejects_unknown_command(capsys):
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args(["fly"])
    assert exit_info.value.code == 2
    assert_one_line_error(capsys, "'fly'")


def test_console_script_entry_point_runs():
    result = subprocess.run(
        [sys.executable, "-m", "evaluation.cli", "envs"],
        capture_output=True,
        text=True,
        check=False,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
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
    capsys.readouterr()
    argv = ["train", *TINY_TASK, "--threads", "0", "--out", str(tmp_path / "s")]
    assert_usage_error(argv, capsys, "--threads: must be an integer >= 1, got '0'")


def test_a_folder_of_other_files_is_refused_until_overwrite_moves_them_aside(tmp_path, capsys):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "checkpoint.pt").write_bytes(b"my own file")
    argv = ["train", *TINY_TASK, *TINY_TRAIN, "--sigma", "0.1", "--out", str(out)]
    assert_fails_with(argv, capsys, 1, str(out), "--overwrite")
    assert (out / "checkpoint.pt").read_bytes() == b"my own file"
    assert main([*argv, "--overwrite"]) == 0
    moved = list(out.glob(".replaced-*/checkpoint.pt"))
    assert [path.read_bytes() for path in moved] == [b"my own file"]


def test_rl_training_without_the_rl_extra_says_what_to_install(tmp_path):
    """Without stable-baselines3 (hidden from a fresh interpreter), one line and exit 1."""
    script = (
        "import sys; sys.modules['stable_baselines3'] = None; from evaluation.cli import main; "
        f"sys.exit(main(['train', '--algo', 'ppo', '--sigma', '0.1', '--out', {str(tmp_path)!r}]))"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        check=False,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert result.returncode == 1, result.stderr
    assert result.stderr.strip().splitlines() == [
        "noisepref train: error: this needs stable_baselines3: pip install 'noise-preference[rl]'"
    ]


@pytest.mark.parametrize(("flags", "scale"), [([], "log"), (["--linear-y"], "linear")])
def test_plot_chooses_the_metric_axis_scale(flags, scale, trained_run, tmp_path, monkeypatch):
    assert main(["sweep", str(trained_run), "--levels", "0,0.2", "--episodes", "4"]) == 0
    figures = []
    monkeypatch.setattr(
        cli_plot, "save_figure", lambda figure, path: figures.append(figure) or path
    )
    assert main(["plot", str(trained_run), *flags, "--out", str(tmp_path / "f.png")]) == 0
    assert figures[0].axes[0].get_yscale() == scale  # mse is an error: log unless told


def test_plot_log_and_linear_exclude_each_other(trained_run, capsys):
    assert_usage_error(["plot", str(trained_run), "--log-y", "--linear-y"], capsys, "--linear-y")
