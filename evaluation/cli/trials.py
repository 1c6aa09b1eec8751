"""``noisepref trials``: NoisyMultitask-v0 trials, inputs, targets and a run's outputs."""

from __future__ import annotations

import argparse
from typing import Any

from agents.noise_distribution import training_noise
from evaluation.cli._common import (
    add_command,
    add_common_options,
    add_figure_out,
    add_seed,
    check_output,
    load_run_folder,
)
from evaluation.cli._errors import warn
from evaluation.cli._types import nonempty_path
from evaluation.plots.multitask import FAMILIES, plot_trials
from evaluation.plots.sweep import save_figure
from noise_envs._checks import check_choice
from noise_envs.multitask import MultitaskTask
from noise_envs.multitask_trials import ALIASES, TASK_NAMES, resolve_task_name

HELP = f"draw {MultitaskTask.id} trials: inputs, targets and a run's outputs over time"

DESCRIPTION = (
    f"Draw one trial of each chosen {MultitaskTask.id} task, a column each: the fixation "
    "input, target and output, input rings 1 and 2, the target ring and the network's "
    "output ring as heat maps (units against time); grey marks unscored steps. With "
    "RUN, the run's network acts at its training noise (or --sigma) in the run's task "
    "options (dt, ring size); without RUN (or with --env-only), inputs and targets only."
)


def add(commands: Any) -> None:
    """Add ``noisepref trials`` to the sub-command parsers ``commands``."""
    parser = add_command(commands, "trials", _trials, HELP, DESCRIPTION)
    parser.add_argument(
        "run", nargs="?", type=nonempty_path, help=f"a {MultitaskTask.id} run folder (optional)"
    )
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument(
        "--task",
        type=_task_names,
        help="comma-separated task names or neurogym aliases, e.g. fdgo,dm1,dms",
    )
    which.add_argument(
        "--family", choices=FAMILIES, help="the tasks of one family of Yang et al.'s Fig. 1"
    )
    add_figure_out(parser, "trials.png")
    parser.add_argument(
        "--sigma", type=float, help="the network's noise level (default: its training noise)"
    )
    add_seed(parser, "the trials and the noise")
    parser.add_argument(
        "--obs-noise",
        type=float,
        default=0.0,
        help="input noise of the trials (default: 0, clean inputs)",
    )
    parser.add_argument("--dt", type=float, help="time step in ms without RUN (default: 20)")
    parser.add_argument(
        "--env-only", action="store_true", help="inputs and targets only, even with RUN"
    )
    add_common_options(parser)


def _task_names(text: str) -> list[str]:
    """Comma-separated task names, each one of the suite's or an alias."""
    names = [item.strip() for item in text.split(",") if item.strip()]
    if not names:
        raise argparse.ArgumentTypeError(f"must name at least one task, got {text!r}")
    for name in names:
        if resolve_task_name(name) is None:
            try:
                check_choice("--task", name, (*TASK_NAMES, *ALIASES))
            except ValueError as error:
                raise argparse.ArgumentTypeError(str(error)) from None
    return [resolve_task_name(name) for name in names]


def _trials(args: argparse.Namespace) -> int:
    check_output(args.out, "--out", folder=False)
    names = list(FAMILIES[args.family]) if args.family else args.task
    options: dict[str, Any] = {"dt": args.dt} if args.dt is not None else {}
    policy, sigma = None, 0.0
    if args.run is not None:
        if args.dt is not None:
            raise ValueError("`--dt` is the run's own with RUN; give it only without RUN")
        run = load_run_folder(args.run, args.device)
        if run.task_id != MultitaskTask.id:
            raise ValueError(f"{args.run} is a {run.task_id} run; trials draws {MultitaskTask.id}")
        options = dict(run.task_kwargs)
        if not args.env_only:
            policy, sigma = run.model, training_noise(run.train_config).mean
            _warn_untrained_tasks(names, run.task())
    if args.sigma is not None:
        if policy is None:
            raise ValueError("`--sigma` sets a network's noise: give a RUN (without --env-only)")
        sigma = args.sigma
    figure = plot_trials(
        names,
        policy,
        sigma=sigma,
        seed=args.seed,
        obs_noise=args.obs_noise,
        task_options=options,
        device=args.device,
    )
    path = save_figure(figure, args.out)
    shown = f"the network's outputs at sigma {sigma:g}" if policy is not None else "no network"
    print(f"wrote {path} ({', '.join(names)}; {shown})")
    return 0


def _warn_untrained_tasks(names: list[str], task: MultitaskTask) -> None:
    untrained = [name for name in names if name not in task.task_names]
    if untrained:
        warn("trials", f"the run was not trained on {', '.join(untrained)}")
