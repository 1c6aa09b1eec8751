"""``noisepref demo``: noise-in vs noise-out CTRNNs, trained, swept, compared and plotted."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from evaluation.cli._common import add_command, add_common_options, check_output, run_options
from evaluation.cli._options import add_config_arguments
from evaluation.cli._types import nonempty_path
from evaluation.demo import PlacementConfig, compare_placements, demo_verdicts, write_demo_outputs

HELP = "the main job: noise-in vs noise-out CTRNNs, trained, swept, compared and plotted"

DESCRIPTION = (
    "Train a noise-in and a noise-out CTRNN at the same training noise, sweep their test "
    "noise, print the preference table and write the plot. The run folders are named by "
    "their config (OUT/noise-in-sigma0.5, ...), so another --sigma is another pair of "
    "runs; re-running the same config resumes or reuses it."
)


def add(commands: Any) -> None:
    """Add ``noisepref demo`` to the sub-command parsers ``commands``."""
    parser = add_command(commands, "demo", _demo, HELP, DESCRIPTION)
    parser.add_argument(
        "--out",
        type=nonempty_path,
        default=Path("demo_output"),
        help="output folder (default: demo_output)",
    )
    parser.set_defaults(config_options=add_config_arguments(parser, PlacementConfig))
    add_common_options(parser)


def _demo(args: argparse.Namespace) -> int:
    check_output(args.out, "--out", folder=True)
    config = args.config_options.build(args)
    comparison = compare_placements(config, out_dir=args.out, **run_options(args))
    paths = write_demo_outputs(comparison, args.out)
    print(comparison.table())
    print()
    for claim, ok in demo_verdicts(comparison):
        print(f"[{'PASS' if ok else 'FAIL'}] {claim}")
    print(f"\nwrote {paths['table']} and {paths['figure']}")
    return 0
