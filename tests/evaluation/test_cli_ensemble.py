"""``noisepref train`` with several values of --placement, --sigma or --seed trains one ensemble."""

from __future__ import annotations

import re

import pytest
import torch

from agents.ensemble_training import member_run_name
from agents.runs import RUN_FILE, load_run
from evaluation.cli import main

TINY = [
    *("--task", "NoisyRegulator-v0", "--task-kwargs", '{"steps": 6, "settle_steps": 2}'),
    *("--hidden-size", "4", "--iterations", "3", "--batch-size", "4", "--no-progress"),
    *("--threads", "1"),
]


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    return err[0]


def test_several_values_write_one_run_folder_per_member(tmp_path, capsys):
    out = tmp_path / "ens"
    argv = ["train", *TINY, "--sigma", "0.25", "0.5", "--placement", "in", "out", "--seeds", "3"]
    assert main([*argv, "--out", str(out)]) == 0
    members = {(p, s, 3) for p in ("in", "out") for s in (0.25, 0.5)}
    assert {path.name for path in out.iterdir()} == {member_run_name(*m) for m in members}
    for placement, sigma, seed in members:
        run = load_run(out / member_run_name(placement, sigma, seed))
        assert (run.model.config.placement, run.train_config.sigma) == (placement, sigma)
        assert (run.train_config.seed, run.train_config.iterations) == (seed, 3)
        assert len(run.history) == 3
    assert "trained 4 members as one ensemble" in capsys.readouterr().out


def test_a_member_is_the_run_that_training_it_alone_writes(tmp_path):
    """The lone ``train`` of one member (its own command) gives the member's weights."""
    ens, lone = tmp_path / "ens", tmp_path / "lone"
    assert main(["train", *TINY, "--sigma", "0.5", "--seed", "0", "1", "--out", str(ens)]) == 0
    assert main(["train", *TINY, "--sigma", "0.5", "--seed", "1", "--out", str(lone)]) == 0
    member = load_run(ens / member_run_name("in", 0.5, 1)).model.state_dict()
    alone = load_run(lone).model.state_dict()
    assert member.keys() == alone.keys()
    for name, weight in alone.items():
        torch.testing.assert_close(member[name], weight, rtol=1e-5, atol=1e-6)
    other = load_run(ens / member_run_name("in", 0.5, 0)).model.state_dict()
    assert any(not torch.allclose(other[name], alone[name]) for name in alone)  # seeds matter


def test_one_value_each_keeps_the_single_run_in_out(tmp_path):
    out = tmp_path / "run"
    assert main(["train", *TINY, "--sigma", "0.5", "--placement", "out", "--out", str(out)]) == 0
    assert (out / RUN_FILE).is_file()
    run = load_run(out)
    assert (run.model.config.placement, run.train_config.sigma) == ("out", 0.5)


@pytest.mark.parametrize(
    ("argv", "match"),
    [
        (
            [*TINY, "--placement", "in", "sideways"],
            r"`--placement` must be one of \['in', 'out'\], got 'sideways'",
        ),
        (["--algo", "ppo", "--sigma", "0.25", "0.5"], "only --algo supervised does .*--algo ppo"),
        ([*TINY, "--seed", "0", "0"], "--seed must not repeat a value, got 0 0"),
        ([*TINY, "--sigma", "0.1", "0.2", "--sigma-dist", "uniform:0,1"], "fixed --sigma levels"),
    ],
)
def test_a_bad_ensemble_is_one_usage_line(argv, match, tmp_path, capsys):
    out = tmp_path / "never"
    assert main(["train", *argv, "--out", str(out)]) == 2
    line = one_error_line(capsys)
    assert line.startswith("noisepref train: error: ")
    assert re.search(match, line), line
    assert not out.exists()
