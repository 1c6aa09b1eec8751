"""``noisepref``: the command line over the library (envs, train, sweep, plot, demo, analyze).

Every user error ends in one line on stderr, ``noisepref COMMAND: error: ...``, never a traceback
(``--debug`` shows it): exit code 2 for bad arguments (argparse's usage errors, ``ValueError``,
``TypeError``, a path that names the wrong kind of thing), 1 for failures while doing valid work
(:class:`~agents.errors.RunError`, :class:`~agents.errors.TrainingDiverged`, ``OSError``).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

import torch

from evaluation.cli import analyze, demo, envs, grid, plot, recalibrate, sweep, train, trials
from evaluation.cli._errors import Parser, run_handler
from evaluation.cli._types import join_negative_values

__all__ = ["build_parser", "main"]

DESCRIPTION = """\
Study noise preference in recurrent networks (Eckstein & Srinivasan, TMLR 2026): train CTRNNs
with noise inside or outside the activation, sweep their test noise, and see which level each
network performs best at.

  noisepref demo --out demo_output        the main job, about a minute on 2 CPU cores
  noisepref envs                          list the environments
  noisepref train --placement in --sigma 0.5 --out runs/in
  noisepref train --algo recurrent_ppo --help   each algorithm's own options and defaults
  noisepref sweep runs/in                 sweep its test noise, print the preference
  noisepref plot runs/in runs/out --out noise.png
  noisepref trials runs/mt --task fdgo,dm1 --out trials.png   multitask trials and outputs
  noisepref analyze runs/in runs/out      explain the preference: shifts, bias, kink occupancy
  noisepref grid examples/grid.toml --out grid_output --workers 2   a whole experiment grid
  noisepref reproduce function_approx --scale quick   the README's results, one task
  noisepref train --sigma-dist uniform:0,1 --out runs/u   train across noise levels instead
  noisepref train --sigma 0.25 0.5 --placement in out --seeds 0 1 --out runs/ens   one ensemble
  noisepref recalibrate runs/in --to-sigma 0 --out runs/in-at-0   refit the read-out for noise 0

Errors are one line (exit 2: bad arguments, 1: the run or the system failed); `noisepref --debug
COMMAND ...` shows the traceback.
"""


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``noisepref``; returns the exit code (argparse's usage errors exit 2 themselves)."""
    argv = join_negative_values(list(sys.argv[1:] if argv is None else argv))
    parser = build_parser(algo=train.requested_algo(argv))
    args, extras = parser.parse_known_args(argv)
    if extras:
        train.refuse_extras(parser, args, extras)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    return run_handler(args)


def build_parser(algo: str = "supervised") -> argparse.ArgumentParser:
    """The ``noisepref`` parser; ``train`` takes the options of training algorithm ``algo``."""
    parser = Parser(
        prog="noisepref",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        allow_abbrev=False,
    )
    parser.add_argument(
        "--debug", action="store_true", help="show the traceback of an error (also after COMMAND)"
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    envs.add(commands)
    train.add(commands, algo)
    sweep.add(commands)
    plot.add(commands)
    demo.add(commands)
    analyze.add(commands)
    grid.add_grid(commands)
    grid.add_reproduce(commands)
    recalibrate.add(commands)
    trials.add(commands)
    return parser
