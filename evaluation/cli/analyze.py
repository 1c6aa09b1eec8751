"""``noisepref analyze``: explain trained runs' noise preference."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from agents.ctrnn import CTRNN
from agents.noise_distribution import training_noise
from agents.runs import Run
from evaluation.cli._common import add_command, add_common_options, check_output, load_run_folder
from evaluation.cli._options import add_config_arguments
from evaluation.cli._types import nonempty_path

HELP = "explain trained runs' noise preference: fixed points, noise shift, bias, kinks"

DESCRIPTION = (
    "Analyse trained CTRNN runs at their training noise: noise-free fixed points, the "
    "noise-induced shift of the stationary mean (simulated and mean-field), the output "
    "bias it causes at other test noise, and the share of units near the kink. Prints a "
    "report and writes mechanism.txt and mechanism_*.png per run, plus "
    "kink_occupancy.png comparing several runs. Every run folder is checked first."
)


def add(commands: Any) -> None:
    """Add ``noisepref analyze`` to the sub-command parsers ``commands``."""
    from evaluation.mechanism.analysis import AnalysisConfig

    parser = add_command(commands, "analyze", _analyze, HELP, DESCRIPTION)
    parser.add_argument("runs", nargs="+", type=nonempty_path, help="CTRNN run folders to analyse")
    parser.add_argument(
        "--out",
        type=nonempty_path,
        help="output folder, one subfolder per run (default: the run folders)",
    )
    parser.set_defaults(config_options=add_config_arguments(parser, AnalysisConfig))
    add_common_options(parser)


def _analyze(args: argparse.Namespace) -> int:
    from evaluation.mechanism.analysis import write_reports

    config = args.config_options.build(args)
    if args.out is not None:
        check_output(args.out, "--out", folder=True)
    runs = [_load_ctrnn_run(path, args.device) for path in args.runs]  # all checked first
    reports = _analyze_all(runs, config, args.device)
    folders = {
        label: args.out / label if args.out else run.path
        for label, run in zip(reports, runs, strict=True)
    }
    summary_folder = args.out or args.runs[0].resolve().parent
    written = write_reports(reports, folders, summary_folder=summary_folder)
    print("wrote " + ", ".join(str(path) for path in written if path.suffix == ".png"))
    return 0


def _analyze_all(runs: list[Run], config: Any, device: str) -> dict[str, Any]:
    """The mechanism report of each run, by run folder name, each printed as it is done."""
    from evaluation.mechanism.analysis import analyze_model

    reports = {}
    for run in runs:
        label = run.path.resolve().name
        noise = training_noise(run.train_config)
        reports[label] = analyze_model(
            run.model,
            run.task(),
            train_sigma=noise.mean,
            config=config,
            label=label,
            device=device,
            train_noise=noise,
        )
        print(reports[label].summary(), end="\n\n")
    return reports


def _load_ctrnn_run(path: Path, device: str) -> Run:
    run = load_run_folder(path, device)
    if not isinstance(run.model, CTRNN):
        raise ValueError(
            f"{path} holds a {run.model_kind} run; `noisepref analyze` explains CTRNN runs "
            "(trained by `noisepref train --algo supervised`)"
        )
    return run
