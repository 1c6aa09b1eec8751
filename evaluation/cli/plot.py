"""``noisepref plot``: metric against test noise for swept runs."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from agents.noise_distribution import training_noise
from evaluation.cli._common import add_command, add_figure_out, check_output, load_run_folder
from evaluation.cli._types import nonempty_path
from evaluation.plots.multitask import plot_perf_by_task
from evaluation.plots.sweep import plot_sweep, save_figure
from evaluation.sweep_result import SweepResult
from noise_envs.multitask import MultitaskTask

HELP = "plot metric against test noise for swept runs"

DESCRIPTION = "Plot sweeps (run folders holding sweep.csv, or sweep CSV files) in one figure."


def add(commands: Any) -> None:
    """Add ``noisepref plot`` to the sub-command parsers ``commands``."""
    parser = add_command(commands, "plot", _plot, HELP, DESCRIPTION)
    parser.add_argument(
        "sweeps", nargs="+", type=nonempty_path, help="run folders or sweep CSV files"
    )
    add_figure_out(parser, "noise_preference.png")
    parser.add_argument("--metric", help="metric to plot (default: the task's primary metric)")
    scale = parser.add_mutually_exclusive_group()
    scale.add_argument(
        "--log-y",
        dest="log_y",
        action="store_true",
        default=None,
        help="log-scale the metric axis (default: linear for bounded metrics, log for errors)",
    )
    scale.add_argument("--linear-y", dest="log_y", action="store_false", help="linear metric axis")
    parser.add_argument(
        "--by-task",
        action="store_true",
        help="one sweep of NoisyMultitask-v0: one small panel per task and the mean over tasks",
    )


def _read_sweep(path: Path) -> SweepResult:
    """The sweep table of a run folder or a CSV file; a file that is not one is named."""
    csv_path = path / "sweep.csv" if path.is_dir() else path
    if path.is_dir() and not csv_path.is_file():
        raise ValueError(f"{path} has no sweep.csv: run `noisepref sweep {path}` first")
    if not csv_path.is_file():
        raise ValueError(f"{path} does not exist: give a run folder or a sweep CSV file")
    try:
        return SweepResult.from_csv(csv_path)
    except (ValueError, TypeError, KeyError, IndexError) as error:
        detail = str(error).replace(f"{csv_path}: ", "").replace(str(csv_path), "it")
        raise ValueError(
            f"{csv_path} is not a sweep table written by `noisepref sweep`: {detail}"
        ) from error


def _plot(args: argparse.Namespace) -> int:
    check_output(args.out, "--out", folder=False)
    results, train_sigma = {}, {}
    for path in args.sweeps:
        label = path.resolve().name if path.is_dir() else path.stem
        results[label] = _read_sweep(path)
        if path.is_dir():
            train_sigma[label] = training_noise(load_run_folder(path, "cpu").train_config).mean
    for result in results.values():
        result.resolve_metric(args.metric)  # checked before drawing anything
    if args.by_task:
        return _plot_by_task(args, results, train_sigma)
    figure = plot_sweep(
        results, metric=args.metric, train_sigma=train_sigma or None, log_y=args.log_y
    )
    print(f"wrote {save_figure(figure, args.out)}")
    return 0


def _plot_by_task(
    args: argparse.Namespace, results: dict[str, SweepResult], train_sigma: dict[str, float]
) -> int:
    if len(results) != 1:
        raise ValueError(f"`--by-task` draws one sweep, got {len(results)}: {list(results)}")
    (label, result), path = next(iter(results.items())), args.sweeps[0]
    if "task" not in result.metrics:
        raise ValueError(
            f"`--by-task` needs a sweep with the trials' `task` label (a {MultitaskTask.id} "
            f"run), but {path} ({result.task_id}) has only {sorted(result.metrics)}"
        )
    metric = result.resolve_metric(args.metric)
    figure = plot_perf_by_task(result, train_sigma.get(label), metric)
    print(f"wrote {save_figure(figure, args.out)}")
    return 0
