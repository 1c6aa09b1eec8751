"""``noisepref``: the command line over the library (train, sweep, plot, envs, demo)."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from agents.ctrnn import CTRNNConfig
from agents.runs import load_run
from agents.supervised import TrainConfig, TrainingDiverged, train_run
from evaluation._argparse import add_config_arguments, config_from_arguments
from evaluation.demo import PlacementConfig, compare_placements, demo_verdicts, write_demo_outputs
from evaluation.plots.sweep import plot_sweep, save_figure
from evaluation.stats import preference, preference_table
from evaluation.sweep import sweep_noise
from evaluation.sweep_result import SweepResult, summary_table
from noise_envs.registration import TASKS, make_task

__all__ = ["build_parser", "main"]

DESCRIPTION = """\
Study noise preference in recurrent networks (Eckstein & Srinivasan, TMLR 2026): train CTRNNs
with noise inside or outside the activation, sweep their test noise, and see which level each
network performs best at.

  noisepref demo --out demo_output        the main job, about a minute on 2 CPU cores
  noisepref envs                          list the environments
  noisepref train --task NoisyFunctionApprox-v0 --placement in --sigma 0.5 --out runs/in
  noisepref sweep runs/in                 sweep its test noise, print the preference
  noisepref plot runs/in runs/out --out noise.png
  noisepref analyze runs/in runs/out      explain the preference: shifts, bias, kink occupancy
"""


def build_parser() -> argparse.ArgumentParser:
    """The ``noisepref`` argument parser with its subcommands."""
    parser = argparse.ArgumentParser(
        prog="noisepref",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_envs(commands)
    _add_train(commands)
    _add_sweep(commands)
    _add_plot(commands)
    _add_demo(commands)
    _add_analyze(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``noisepref``; bad input exits with code 2 and a one-line message."""
    args = build_parser().parse_args(argv)
    if getattr(args, "threads", None) is not None:
        torch.set_num_threads(args.threads)
    try:
        return args.handler(args)
    except (ValueError, TrainingDiverged) as error:
        print(f"noisepref {args.command}: error: {error}", file=sys.stderr)
        return 2


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--device", default="cpu", help="torch device, e.g. cpu or cuda (default: cpu)"
    )
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")
    parser.add_argument(
        "--threads",
        type=_positive_int,
        default=None,
        help="torch CPU threads (default: torch's choice); 1 is best for small networks on a "
        "machine that is busy with other work",
    )


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1, got {text!r}")
    return value


def _add_envs(commands) -> None:
    parser = commands.add_parser("envs", help="list the registered environments")
    parser.set_defaults(handler=_envs)


def _envs(args: argparse.Namespace) -> int:
    for env_id, cls in sorted(TASKS.items()):
        task = cls()
        summary = (cls.__doc__ or "").strip().splitlines()[0]
        metrics = ", ".join(
            f"{m.name}{'*' if m.name == cls.primary_metric else ''} "
            f"({'higher' if m.higher_is_better else 'lower'})"
            for m in cls.metrics
        )
        print(f"{env_id:28s} {summary}")
        print(
            f"{'':28s} obs {task.obs_size}, action {task.action_size}, "
            f"horizon {task.horizon}; metrics: {metrics}"
        )
    return 0


def _add_train(commands) -> None:
    parser = commands.add_parser(
        "train",
        help="train a CTRNN by supervised BPTT into a run folder (resumes an interrupted run)",
        description="Train a CTRNN in a task by BPTT on the masked teacher loss (closed-loop tasks "
        "step by step inside the task, open-loop ones as whole sequences).",
    )
    parser.add_argument("--task", default="NoisyFunctionApprox-v0", help="environment id")
    parser.add_argument(
        "--task-kwargs",
        default="{}",
        type=json.loads,
        help="task options as JSON, e.g. '{\"steps\": 30}'",
    )
    parser.add_argument("--out", required=True, type=Path, help="run folder to write (or resume)")
    add_config_arguments(parser, CTRNNConfig, exclude=("input_size", "output_size"))
    add_config_arguments(parser, TrainConfig)
    _add_rl_arguments(parser)
    _common(parser)
    parser.set_defaults(handler=_train)


def _train(args: argparse.Namespace) -> int:
    if not isinstance(args.task_kwargs, dict):
        raise ValueError(f"`--task-kwargs` must be a JSON object, got {args.task_kwargs!r}")
    if args.algo != "supervised":
        return _train_rl(args)
    task = make_task(args.task, **args.task_kwargs)
    model_config = config_from_arguments(
        CTRNNConfig, args, input_size=task.obs_size, output_size=task.action_size
    )
    train_config = config_from_arguments(TrainConfig, args)
    run = train_run(
        args.out,
        args.task,
        model_config,
        train_config,
        task_kwargs=args.task_kwargs,
        device=args.device,
        progress=not args.no_progress,
    )
    final = run.history[-1]["loss"] if run.history else float("nan")
    print(f"{run!r}\nfinal training loss {final:.4g}")
    return 0


def _add_sweep(commands) -> None:
    parser = commands.add_parser(
        "sweep",
        help="sweep a trained run's test noise and report its noise preference",
        description="Evaluate a run at many test noise levels (all batched, common random numbers).",
    )
    parser.add_argument("run", type=Path, help="run folder written by `noisepref train`")
    parser.add_argument(
        "--levels",
        help="comma-separated test noise levels (default: 17 levels from 0 to 2x the training noise)",
    )
    parser.add_argument(
        "--episodes", type=int, default=256, help="episodes per level (default: 256)"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the sweep (default: 0)")
    parser.add_argument("--metric", help="metric to report (default: the task's primary metric)")
    parser.add_argument("--out", type=Path, help="CSV to write (default: RUN/sweep.csv)")
    _common(parser)
    parser.set_defaults(handler=_sweep)


def _levels(text: str | None, train_sigma: float) -> np.ndarray:
    if text is None:
        top = 2.0 * train_sigma if train_sigma > 0 else 1.0
        return np.linspace(0.0, top, 17)
    try:
        return np.array([float(item) for item in text.split(",") if item.strip()])
    except ValueError as error:
        raise ValueError(f"`--levels` must be comma-separated numbers, got {text!r}") from error


def _sweep(args: argparse.Namespace) -> int:
    run = load_run(args.run, device=args.device)
    result = sweep_noise(
        run.model,
        run.task(),
        _levels(args.levels, run.train_config.sigma),
        episodes=args.episodes,
        seed=args.seed,
        device=args.device,
        progress=not args.no_progress,
    )
    path = result.to_csv(args.out or run.path / "sweep.csv")
    label = run.path.name
    print(summary_table({label: result}, metric=args.metric))
    print()
    print(
        preference_table({label: preference(result, args.metric)}, {label: run.train_config.sigma})
    )
    print(f"\nwrote {path}")
    return 0


def _add_plot(commands) -> None:
    parser = commands.add_parser(
        "plot",
        help="plot metric against test noise for swept runs",
        description="Plot sweeps (run folders holding sweep.csv, or sweep CSV files) in one figure.",
    )
    parser.add_argument("sweeps", nargs="+", type=Path, help="run folders or sweep CSV files")
    parser.add_argument(
        "--out", type=Path, default=Path("noise_preference.png"), help="PNG to write"
    )
    parser.add_argument("--metric", help="metric to plot (default: the task's primary metric)")
    parser.set_defaults(handler=_plot)


def _plot(args: argparse.Namespace) -> int:
    results, train_sigma = {}, {}
    for path in args.sweeps:
        csv_path = path / "sweep.csv" if path.is_dir() else path
        if not csv_path.is_file():
            raise ValueError(f"{csv_path} does not exist: run `noisepref sweep {path}` first")
        label = path.name if path.is_dir() else path.stem
        results[label] = SweepResult.from_csv(csv_path)
        if path.is_dir():
            train_sigma[label] = load_run(path).train_config.sigma
    figure = plot_sweep(results, metric=args.metric, train_sigma=train_sigma or None)
    print(f"wrote {save_figure(figure, args.out)}")
    return 0


def _add_demo(commands) -> None:
    parser = commands.add_parser(
        "demo",
        help="the main job: noise-in vs noise-out CTRNNs, trained, swept, compared and plotted",
        description=(
            "Train a noise-in and a noise-out CTRNN at the same training noise, sweep their test "
            "noise, print the preference table and write the plot. Re-running resumes."
        ),
    )
    parser.add_argument("--out", type=Path, default=Path("demo_output"), help="output folder")
    add_config_arguments(parser, PlacementConfig)
    _common(parser)
    parser.set_defaults(handler=_demo)


def _demo(args: argparse.Namespace) -> int:
    config = config_from_arguments(PlacementConfig, args)
    comparison = compare_placements(
        config, out_dir=args.out, device=args.device, progress=not args.no_progress
    )
    paths = write_demo_outputs(comparison, args.out)
    print(comparison.table())
    print()
    for claim, ok in demo_verdicts(comparison):
        print(f"[{'PASS' if ok else 'FAIL'}] {claim}")
    print(f"\nwrote {paths['table']} and {paths['figure']}")
    return 0


def _add_analyze(commands) -> None:
    from evaluation.mechanism.analysis import AnalysisConfig

    parser = commands.add_parser(
        "analyze",
        help="explain trained runs' noise preference: fixed points, noise shift, bias, kinks",
        description=(
            "Analyse trained CTRNN runs at their training noise: noise-free fixed points, the "
            "noise-induced shift of the stationary mean (simulated and mean-field), the output "
            "bias it causes at other test noise, and the share of units near the kink. Prints a "
            "report and writes mechanism.txt and mechanism_*.png per run, plus "
            "kink_occupancy.png comparing several runs."
        ),
    )
    parser.add_argument("runs", nargs="+", type=Path, help="run folders to analyse")
    parser.add_argument(
        "--out", type=Path, help="output folder, one subfolder per run (default: the run folders)"
    )
    add_config_arguments(parser, AnalysisConfig)
    _common(parser)
    parser.set_defaults(handler=_analyze)


def _analyze(args: argparse.Namespace) -> int:
    from evaluation.mechanism.analysis import AnalysisConfig, analyze_run, write_reports

    config = config_from_arguments(AnalysisConfig, args)
    reports, folders = {}, {}
    for path in args.runs:
        label = path.resolve().name
        reports[label] = analyze_run(path, config, device=args.device)
        folders[label] = args.out / label if args.out else path
        print(reports[label].summary(), end="\n\n")
    summary_folder = args.out or args.runs[0].resolve().parent
    written = write_reports(reports, folders, summary_folder=summary_folder)
    print("wrote " + ", ".join(str(path) for path in written if path.suffix == ".png"))
    return 0


def _add_rl_arguments(parser: argparse.ArgumentParser) -> None:
    from agents.sb3.config import RL_ALGOS, CTRNNPolicyConfig, MLPPolicyConfig, RLTrainConfig

    parser.add_argument(
        "--algo",
        default="supervised",
        choices=("supervised", *RL_ALGOS),
        help="supervised BPTT (default), ppo (a noisy MLP policy) or recurrent_ppo (a CTRNN core), "
        "the last two with stable-baselines3; unset RL options take RLTrainConfig's defaults",
    )
    taken = {"algo"} | {
        f.name for cls in (CTRNNConfig, TrainConfig) for f in dataclasses.fields(cls)
    }
    for config_class in (RLTrainConfig, CTRNNPolicyConfig, MLPPolicyConfig):
        names = [field.name for field in dataclasses.fields(config_class)]
        add_config_arguments(parser, config_class, exclude=[n for n in names if n in taken])
        taken.update(names)


def _train_rl(args: argparse.Namespace) -> int:
    from agents.sb3.config import CTRNNPolicyConfig, MLPPolicyConfig, RLTrainConfig
    from agents.sb3.training import train_rl_run

    policy_class = CTRNNPolicyConfig if args.algo == "recurrent_ppo" else MLPPolicyConfig
    run = train_rl_run(
        args.out,
        args.task,
        config_from_arguments(policy_class, args),
        config_from_arguments(RLTrainConfig, args),
        task_kwargs=args.task_kwargs,
        device=args.device,
        progress=not args.no_progress,
    )
    final = run.history[-1]["loss"] if run.history else float("nan")
    print(f"{run!r}\nfinal PPO loss {final:.4g}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
