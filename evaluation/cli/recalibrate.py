"""``noisepref recalibrate``: refit a run's linear read-out for another noise level."""

from __future__ import annotations

import argparse
from typing import Any

from evaluation.cli._common import (
    add_command,
    add_common_options,
    add_overwrite,
    add_seed,
    check_output,
    command_line_advice,
    load_run_folder,
)
from evaluation.cli._types import nonempty_path, positive_int

HELP = "refit a run's linear read-out for another noise level into a new run folder"

DESCRIPTION = (
    "Recalibrate a trained run for the noise level it will meet, without retraining its "
    "recurrent weights: run episodes of its task at --to-sigma, refit the linear read-out "
    "by least squares on the states seen (closed form, seconds), and write a new run "
    "folder that records the source run, the noise, the method, the episodes and the "
    "seed. --bias-shift first moves the unit biases by the mean-field shift. The new run "
    "sweeps, plots and analyses like any run."
)


def add(commands: Any) -> None:
    """Add ``noisepref recalibrate`` to the sub-command parsers ``commands``."""
    parser = add_command(commands, "recalibrate", _recalibrate, HELP, DESCRIPTION)
    parser.add_argument(
        "run", type=nonempty_path, help="the run folder to recalibrate (left unchanged)"
    )
    parser.add_argument(
        "--to-sigma", type=float, required=True, help="the noise level to recalibrate for (>= 0)"
    )
    parser.add_argument(
        "--out", type=nonempty_path, required=True, help="the new run folder to write"
    )
    parser.add_argument(
        "--bias-shift",
        action="store_true",
        help="also move the unit biases by the mean-field shift (noise-in CTRNNs)",
    )
    parser.add_argument(
        "--episodes",
        type=positive_int,
        default=512,
        help="episodes whose states the read-out is fitted on (default: 512)",
    )
    add_seed(parser, "those episodes")
    parser.add_argument(
        "--ridge",
        type=float,
        default=1e-8,
        help="ridge penalty on the read-out weights, relative to the mse (default: 1e-8)",
    )
    add_overwrite(parser, "anything else")
    add_common_options(parser)


def _recalibrate(args: argparse.Namespace) -> int:
    from evaluation.recalibrate import recalibrate

    check_output(args.out, "--out", folder=True)
    source = load_run_folder(args.run, args.device)  # a path that is not a run is refused first
    with command_line_advice():
        run = recalibrate(
            source.path,
            args.out,
            to_sigma=args.to_sigma,
            method="bias_shift+readout" if args.bias_shift else "readout",
            episodes=args.episodes,
            seed=args.seed,
            ridge=args.ridge,
            device=args.device,
            overwrite=args.overwrite,
        )
    print(f"{run!r}\nread-out fitted at sigma {args.to_sigma:g}: mse {run.history[-1]['loss']:.4g}")
    return 0
