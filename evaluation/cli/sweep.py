"""``noisepref sweep``: a run's metric at many test noise levels and its noise preference."""

from __future__ import annotations

import argparse
import contextlib
import errno
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from agents.noise_distribution import training_noise
from agents.run_lifecycle import run_lock
from evaluation.cli._common import (
    add_command,
    add_common_options,
    add_seed,
    check_output,
    check_run_folder,
    load_run_folder,
    run_options,
)
from evaluation.cli._types import noise_levels, nonempty_path, positive_int
from evaluation.plots.multitask import by_task_table
from evaluation.stats import preference, preference_table
from evaluation.sweep import sweep_noise
from evaluation.sweep_result import summary_table
from noise_envs.multitask import MultitaskTask

HELP = "sweep a trained run's test noise and report its noise preference"

DESCRIPTION = (
    "Evaluate a run at many test noise levels (all batched, common random "
    "numbers). The table is written only when the sweep succeeds."
)


def add(commands: Any) -> None:
    """Add ``noisepref sweep`` to the sub-command parsers ``commands``."""
    parser = add_command(commands, "sweep", _sweep, HELP, DESCRIPTION)
    parser.add_argument("run", type=nonempty_path, help="run folder written by `noisepref train`")
    parser.add_argument(
        "--levels",
        type=noise_levels,
        help="comma-separated test noise levels >= 0 (default: 17 levels from 0 to 2x the "
        "training noise, its upper level for a distribution, or to 1 if it was 0)",
    )
    parser.add_argument(
        "--episodes", type=positive_int, default=256, help="episodes per level (default: 256)"
    )
    add_seed(parser, "the sweep")
    parser.add_argument("--metric", help="metric to report (default: the task's primary metric)")
    parser.add_argument("--out", type=nonempty_path, help="CSV to write (default: RUN/sweep.csv)")
    add_common_options(parser)


def default_levels(train_sigma: float) -> np.ndarray:
    """17 test noise levels from 0 to twice the training noise (to 1 for a run trained without)."""
    top = 2.0 * train_sigma if train_sigma > 0 else 1.0
    return np.linspace(0.0, top, 17)


_READ_ONLY = (errno.EACCES, errno.EPERM, errno.EROFS)
"""The errors of a folder we may not write (permissions, a read-only file system)."""


@contextlib.contextmanager
def _sweep_lock(folder: Path, out: Path) -> Iterator[None]:
    """The run folder's writer lock (RunLocked at once if a trainer or sweep holds it).

    A run folder we may not write (read only) is swept unlocked when the table goes elsewhere:
    no writer of ours can be changing it.
    """
    with contextlib.ExitStack() as stack:
        try:
            stack.enter_context(run_lock(folder))
        except OSError as error:
            if error.errno not in _READ_ONLY or folder.resolve() in out.resolve().parents:
                raise
        yield


def _sweep(args: argparse.Namespace) -> int:
    check_run_folder(args.run)  # before the lock, which would create a missing folder
    out = args.out or args.run / "sweep.csv"
    check_output(out, "--out", folder=False)
    with _sweep_lock(args.run, out):
        return _sweep_locked(args, out)


def _sweep_locked(args: argparse.Namespace, out: Path) -> int:
    """``noisepref sweep`` with the run folder locked: load, sweep, then write the table."""
    run = load_run_folder(args.run, args.device)
    task = run.task()
    metric = task.metric(args.metric).name  # checked before computing anything
    noise = training_noise(run.train_config)
    result = sweep_noise(
        run.model,
        task,
        default_levels(noise.high) if args.levels is None else args.levels,
        episodes=args.episodes,
        seed=args.seed,
        **run_options(args),
    )
    label = run.path.resolve().name
    tables = [
        summary_table({label: result}, metric=metric),
        preference_table({label: preference(result, metric)}, {label: noise.mean}),
    ]
    if result.task_id == MultitaskTask.id and "task" in result.metrics:
        tables.append(by_task_table(result, metric))
    path = result.to_csv(out)
    print("\n\n".join(tables))
    print(f"\nwrote {path}")
    return 0
