"""The README's command-line block runs as written, top to bottom, after `make demo`.

The block is read from README.md between ``<!-- cli-block -->`` and ``<!-- /cli-block -->``. Each
line runs through ``evaluation.cli.main`` in a fresh folder, with smaller budgets appended as
options (argparse takes the last value of a repeated option), so every word a user would type is
what runs here: a renamed option, a run that was never trained or a refused folder fails the test.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from evaluation.cli import main

ROOT = Path(__file__).resolve().parents[1]

SMALLER = {
    "envs": [],
    "train": ["--iterations", "3", "--batch-size", "8", "--hidden-size", "8"],
    "sweep": ["--episodes", "8"],
    "plot": [],
    "recalibrate": ["--episodes", "8"],
    "analyze": [
        "--num-inputs", "2", "--num-levels", "3", "--steps", "40", "--burn-in", "10",
        "--replicas", "2", "--episodes", "4", "--bias-replicas", "2", "--num-initial", "4",
    ],
    "demo": [
        "--iterations", "3", "--batch-size", "8", "--hidden-size", "8", "--episodes", "8",
        "--num-levels", "3",
    ],
}  # fmt: skip
"""Options appended to each command: smaller budgets, nothing else."""


def readme_block(name: str = "") -> list[list[str]]:
    """The commands of a README cli-block, each split as a shell would (comments dropped).

    The main block is marked ``<!-- cli-block -->``, others ``<!-- cli-block: NAME -->``; a line
    ending in a backslash continues on the next.
    """
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    marker = "<!-- cli-block -->" if not name else f"<!-- cli-block: {name} -->"
    pattern = re.escape(marker) + r"\s*```bash\n(.*?)```\s*<!-- /cli-block -->"
    match = re.search(pattern, text, re.S)
    assert match, f"README.md lost its {marker} ... <!-- /cli-block --> markers"
    joined = match.group(1).replace("\\\n", " ")
    lines = [shlex.split(line, comments=True) for line in joined.splitlines()]
    return [argv for argv in lines if argv]


def make_demo_command() -> list[str]:
    """The Makefile's `make demo` recipe, as a `noisepref` argv."""
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    directory = re.search(r"^DEMO_DIR \?= (\S+)$", makefile, re.M)
    recipe = re.search(r"^demo:.*\n\t\$\(BIN\)/(noisepref .*)$", makefile, re.M)
    assert directory and recipe, "the Makefile's demo target changed: update this test"
    return shlex.split(recipe.group(1).replace("$(DEMO_DIR)", directory.group(1)))


def test_the_block_is_found_and_every_line_is_a_noisepref_command():
    block = readme_block()
    assert len(block) >= 6
    for argv in block:
        assert argv[0] == "noisepref", argv
        assert argv[1] in SMALLER, f"no smaller budget for `{argv[1]}`: add it to SMALLER"


def test_the_readme_block_runs_as_written_after_make_demo(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    for argv in [make_demo_command(), *readme_block()]:
        command = argv[1]
        code = main([*argv[1:], *SMALLER[command]])
        captured = capsys.readouterr()
        assert code == 0, f"`{shlex.join(argv)}` failed: {captured.err}"
        assert "Traceback" not in captured.err
    for path in ("runs/in/sweep.csv", "runs/out/sweep.csv", "noise.png", "runs/in/mechanism.txt"):
        assert (tmp_path / path).is_file(), path
    demo_runs = sorted(p.name for p in (tmp_path / "demo_output").iterdir() if p.is_dir())
    assert len(demo_runs) == 4, demo_runs  # noise-in/out at sigma 0.5 (make demo) and at sigma 1


def test_the_ensemble_block_runs_as_written(tmp_path, monkeypatch, capsys):
    """Several --placement / --sigma / --seeds values: one ensemble, a run folder per member."""
    monkeypatch.chdir(tmp_path)
    block = readme_block("ensemble")
    assert [argv[1] for argv in block] == ["train", "sweep", "sweep", "plot"]
    for argv in block:
        code = main([*argv[1:], *SMALLER[argv[1]]])
        captured = capsys.readouterr()
        assert code == 0, f"`{shlex.join(argv)}` failed: {captured.err}"
    members = sorted(p.name for p in (tmp_path / "runs/grid").iterdir())
    assert len(members) == 8 and "noise-out-sigma0.5-seed1" in members, members
    assert (tmp_path / "grid.png").is_file()


@pytest.mark.parametrize("command", sorted(SMALLER))
def test_the_smaller_budgets_are_options_of_their_command(command):
    """Appending SMALLER[command] parses: the test shrinks budgets, it does not change commands."""
    from evaluation.cli import build_parser

    required = {"train": ["--out", "x"], "sweep": ["x"], "plot": ["x"], "analyze": ["x"]}
    required["recalibrate"] = ["x", "--to-sigma", "0", "--out", "y"]
    parsed = build_parser().parse_args([command, *required.get(command, []), *SMALLER[command]])
    assert parsed.command == command
