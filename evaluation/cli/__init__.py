"""``noisepref``: the command line over the library (envs, train, sweep, plot, demo, analyze).

Every user error ends in one line on stderr, ``noisepref COMMAND: error: ...``, never a traceback
(``--debug`` shows it): exit code 2 for bad arguments (argparse's usage errors, ``ValueError``,
``TypeError``, a path that names the wrong kind of thing), 1 for failures while doing valid work
(:class:`~agents.errors.RunError`, :class:`~agents.errors.TrainingDiverged`, ``OSError``).
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import itertools
import json
import math
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, NoReturn

import numpy as np
import torch

from agents.ctrnn import CTRNN, CTRNNConfig
from agents.errors import CorruptRun, NotARunFolder, RunError, TrainingDiverged
from agents.noise_distribution import NOISE_PER, SPEC_EXAMPLES, NoiseDistribution, training_noise
from agents.run_lifecycle import run_lock
from agents.runs import RUN_FILE, Run, load_run
from agents.sb3.config import RL_ALGOS, CTRNNPolicyConfig, MLPPolicyConfig, RLTrainConfig
from agents.supervised import TrainConfig, train_run
from evaluation.cli._options import add_config_arguments
from evaluation.demo import PlacementConfig, compare_placements, demo_verdicts, write_demo_outputs
from evaluation.plots.multitask import FAMILIES, by_task_table, plot_perf_by_task, plot_trials
from evaluation.plots.sweep import plot_sweep, save_figure
from evaluation.stats import preference, preference_table
from evaluation.sweep import sweep_noise
from evaluation.sweep_result import SweepResult, summary_table
from noise_envs._checks import check_choice
from noise_envs.core import Metric
from noise_envs.multitask import MultitaskTask
from noise_envs.multitask_trials import ALIASES, TASK_NAMES, resolve_task_name
from noise_envs.registration import TASKS, make_task

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
  noisepref recalibrate runs/in --to-sigma 0 --out runs/in-at-0   refit the read-out for noise 0

Errors are one line (exit 2: bad arguments, 1: the run or the system failed); `noisepref --debug
COMMAND ...` shows the traceback.
"""

ALGOS = ("supervised", *RL_ALGOS)

USAGE_ERRORS = (ValueError, TypeError)
RUNTIME_ERRORS = (RunError, TrainingDiverged, OSError)
RL_MODULES = ("stable_baselines3", "sb3_contrib")
"""The packages of the ``rl`` extra: a run that needs them says so in one line."""


class _Parser(argparse.ArgumentParser):
    """An argument parser whose usage errors are one line (and exit code 2)."""

    def error(self, message: str) -> NoReturn:
        """Print ``PROG: error: MESSAGE`` on one line and exit with code 2."""
        self.exit(2, f"{self.prog}: error: {_one_line(message)} (see `{self.prog} --help`)\n")


def _one_line(text: object) -> str:
    return " ".join(str(text).split())


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``noisepref``; returns the exit code (argparse's usage errors exit 2 themselves)."""
    argv = _join_negative_values(list(sys.argv[1:] if argv is None else argv))
    parser = build_parser(algo=_requested_algo(argv))
    args, extras = parser.parse_known_args(argv)
    if extras:
        _refuse_extras(parser, args, extras)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    try:
        return args.handler(args)
    except KeyboardInterrupt:
        if args.debug:
            raise
        return _fail(args, "interrupted", 130)
    except ModuleNotFoundError as error:
        package = (error.name or "").split(".")[0]
        if args.debug or package not in (*RL_MODULES, "ray"):
            raise
        extra = "ray" if package == "ray" else "rl"
        message = f"this needs {package}: pip install 'noise-preference[{extra}]'"
        return _fail(args, message, 1)
    except (*RUNTIME_ERRORS, *USAGE_ERRORS) as error:
        if args.debug:
            raise
        code = 1 if isinstance(error, RUNTIME_ERRORS) else 2
        return _fail(args, _message(error), code)


def _fail(args: argparse.Namespace, message: str, code: int) -> int:
    print(f"noisepref {args.command}: error: {_one_line(message)}", file=sys.stderr)
    return code


def _message(error: BaseException) -> str:
    if isinstance(error, OSError) and error.strerror and error.filename:
        return f"{error.strerror}: {error.filename}"
    return str(error) or type(error).__name__


def _warn(command: str, message: str) -> None:
    print(f"noisepref {command}: warning: {_one_line(message)}", file=sys.stderr)


def build_parser(algo: str = "supervised") -> argparse.ArgumentParser:
    """The ``noisepref`` parser; ``train`` takes the options of training algorithm ``algo``."""
    parser = _Parser(
        prog="noisepref",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        allow_abbrev=False,
    )
    parser.add_argument(
        "--debug", action="store_true", help="show the traceback of an error (also after COMMAND)"
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_envs(commands)
    _add_train(commands, algo)
    _add_sweep(commands)
    _add_plot(commands)
    _add_demo(commands)
    _add_analyze(commands)
    _add_grid(commands)
    _add_reproduce(commands)
    _add_recalibrate(commands)
    _add_trials(commands)
    return parser


def _add_command(commands: Any, name: str, handler: Callable, **kwargs: Any) -> _Parser:
    parser = commands.add_parser(name, allow_abbrev=False, **kwargs)
    parser.add_argument(
        "--debug", action="store_true", default=argparse.SUPPRESS, help="show the traceback"
    )
    parser.set_defaults(handler=handler, threads=None)
    return parser


# ---------------------------------------------------------------------------------------------
# Argument types: each refuses a bad value with one line naming what is allowed.


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1, got {text!r}")
    return value


def _nonnegative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be an integer >= 0, got {text!r}")
    return value


def _available_devices() -> list[str]:
    devices = ["cpu"] + [f"cuda:{index}" for index in range(torch.cuda.device_count())]
    if torch.backends.mps.is_available():
        devices.append("mps")
    return devices


def _device(text: str) -> str:
    """A torch device that exists on this machine (cpu, cuda, cuda:N or mps)."""
    available = ", ".join(_available_devices())
    try:
        device = torch.device(text)
    except (RuntimeError, ValueError):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a device; available here: {available}"
        ) from None
    index = 0 if device.index is None else device.index
    usable = {
        "cpu": True,
        "cuda": index < torch.cuda.device_count(),
        "mps": torch.backends.mps.is_available(),
    }
    if not usable.get(device.type, False):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not available on this machine; available here: {available}"
        )
    return text


def _path(text: str) -> Path:
    """A non-empty path (``''`` would mean the current folder)."""
    if not text.strip():
        raise argparse.ArgumentTypeError("must name a file or folder, got ''")
    return Path(text)


def _json_object(text: str) -> dict[str, Any]:
    shown = repr(text) if len(text) <= 80 else f"{text[:60]!r}... ({len(text)} characters)"
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise argparse.ArgumentTypeError(
            f"must be a JSON object such as '{{\"steps\": 30}}', got {shown} ({error})"
        ) from None
    except RecursionError:  # nesting deeper than the parser's recursion limit
        raise argparse.ArgumentTypeError(
            f"must be a JSON object such as '{{\"steps\": 30}}', got {shown}, nested too deep"
        ) from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(
            f"must be a JSON object such as '{{\"steps\": 30}}', got {shown}"
        )
    return value


def _levels(text: str) -> np.ndarray:
    """Comma-separated test noise levels, each finite and >= 0."""
    try:
        levels = [float(item) for item in text.split(",") if item.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"must be comma-separated numbers such as 0,0.25,0.5, got {text!r}"
        ) from None
    bad = [level for level in levels if not (math.isfinite(level) and level >= 0)]
    if not levels or bad:
        raise argparse.ArgumentTypeError(f"test noise levels must be finite and >= 0, got {text!r}")
    return np.array(levels)


def _join_negative_values(argv: list[str]) -> list[str]:
    """``--levels -1,0.5`` -> ``--levels=-1,0.5``: argparse takes ``-1,0.5`` for an option."""
    joined: list[str] = []
    for token in argv:
        if joined and joined[-1] == "--levels" and token[:2] not in ("--", "-h"):
            joined[-1] = f"--levels={token}"
        else:
            joined.append(token)
    return joined


def _check_output(path: Path, option: str, *, folder: bool) -> None:
    """Refuse an output path that names the wrong kind of thing (a folder for a file, ...)."""
    if folder and path.exists() and not path.is_dir():
        raise ValueError(f"`{option}` must name a folder, but {path} is a file")
    if not folder and path.is_dir():
        raise ValueError(f"`{option}` must name a file, but {path} is a folder")


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--device",
        type=_device,
        default="cpu",
        help="torch device: cpu, cuda, cuda:N or mps, where available (default: cpu)",
    )
    parser.add_argument(
        "--no-progress",
        action="store_true",
        help="hide progress bars (they are shown only when stderr is a terminal)",
    )
    parser.add_argument(
        "--threads",
        type=_positive_int,
        default=None,
        help="torch CPU threads (default: torch's choice); 1 is best for small networks on a "
        "machine that is busy with other work",
    )


# ---------------------------------------------------------------------------------------------
# Run folders given as arguments.


def _check_run_folder(path: Path) -> None:
    """Refuse a path that is not a run folder (missing, a file, or without ``run.json``)."""
    if not path.exists():
        raise ValueError(f"{path} is not a run folder: it does not exist")
    if not path.is_dir():
        raise ValueError(f"{path} is not a run folder: it is a file")
    if not (path / RUN_FILE).is_file():
        raise NotARunFolder(f"{path} is not a run folder: it has no {RUN_FILE}")


def _load_run(path: Path, device: str) -> Run:
    """Load a run folder; a path that is not one is refused before anything is computed."""
    _check_run_folder(path)
    try:
        return load_run(path, device=device)
    except RunError:
        raise
    except ValueError as error:
        raise CorruptRun(str(error)) from error


# ---------------------------------------------------------------------------------------------
# envs


def _add_envs(commands: Any) -> None:
    _add_command(commands, "envs", _envs, help="list the registered environments")


def _envs(args: argparse.Namespace) -> int:
    for env_id, cls in sorted(TASKS.items()):
        task = cls()
        summary = (cls.__doc__ or "").strip().splitlines()[0]
        metrics = ", ".join(
            f"{m.name}{'*' if m.name == cls.primary_metric else ''} ({_direction(m)})"
            for m in cls.metrics
        )
        print(f"{env_id:28s} {summary}")
        print(
            f"{'':28s} obs {task.obs_size}, action {task.action_size}, "
            f"horizon {task.horizon}; metrics: {metrics}"
        )
    return 0


def _direction(metric: Metric) -> str:
    """How ``envs`` describes a metric: its direction, or ``label`` for a per-episode label."""
    if metric.label:
        return "label"
    return "higher" if metric.higher_is_better else "lower"


# ---------------------------------------------------------------------------------------------
# train: two stages, --algo first, then that algorithm's options.


def _algo_configs(algo: str) -> list[tuple[type, tuple[str, ...]]]:
    """The config classes whose fields are ``train --algo ALGO``'s options, and the fields left out.

    The RL policies' ``sigma`` and ``seed`` are the training config's (the trainer replaces
    them), so they are options of RLTrainConfig only.
    """
    if algo == "supervised":
        return [(CTRNNConfig, ("input_size", "output_size")), (TrainConfig, ())]
    policy = CTRNNPolicyConfig if algo == "recurrent_ppo" else MLPPolicyConfig
    return [(policy, ("sigma", "seed")), (RLTrainConfig, ("algo",))]


def _requested_algo(argv: Sequence[str]) -> str:
    """The value of ``train``'s ``--algo`` (the last one given), or supervised."""
    algo = "supervised"
    for token, following in itertools.pairwise([*argv, ""]):
        value = following if token == "--algo" else token.removeprefix("--algo=")
        if (token == "--algo" or token.startswith("--algo=")) and value in ALGOS:
            algo = value
    return algo


def _add_train(commands: Any, algo: str) -> None:
    parser = _add_command(
        commands,
        "train",
        _train,
        help="train a CTRNN (or, with --algo, an RL policy) into a run folder; resumes",
        description=(
            "Train a network in a task into a run folder (an interrupted run resumes). --algo "
            "supervised (the default) trains a CTRNN by BPTT on the masked teacher loss; --algo "
            "recurrent_ppo (a CTRNN core) and --algo ppo (a noisy MLP) learn by reinforcement "
            "with stable-baselines3 (pip install 'noise-preference[rl]'). Each algorithm has its "
            f"own options and defaults, listed below for --algo {algo}: see `noisepref train "
            "--algo ALGO --help` for another."
        ),
    )
    parser.add_argument(
        "--algo",
        default="supervised",
        choices=ALGOS,
        help="training algorithm (default: supervised); its options follow",
    )
    parser.add_argument("--task", default="NoisyFunctionApprox-v0", help="environment id")
    parser.add_argument(
        "--task-kwargs",
        default={},
        type=_json_object,
        help="task options as a JSON object, e.g. '{\"steps\": 30}'",
    )
    parser.add_argument("--out", required=True, type=_path, help="run folder to write (or resume)")
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="if --out holds anything but this run, move it aside into OUT/.replaced-* (never "
        "deleted) and train afresh",
    )
    groups = [
        add_config_arguments(parser, cls, exclude=exclude, title=f"{cls.__name__} options")
        for cls, exclude in _algo_configs(algo)
    ]
    _add_noise_distribution(parser)
    _common(parser)
    parser.set_defaults(config_options=groups)


def _add_noise_distribution(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("training noise distribution (instead of --sigma)")
    group.add_argument(
        "--sigma-dist",
        metavar="SPEC",
        help=f"draw the training noise level from a distribution: {SPEC_EXAMPLES} (weights after "
        "@); sweeps then default to 0..2x its upper level, tables use its mean level",
    )
    group.add_argument(
        "--sigma-per",
        choices=NOISE_PER,
        help="with --sigma-dist: one level per episode (row, the default of supervised "
        "training) or per batch (RL: per PPO iteration, its only choice)",
    )


def _noise_distribution(args: argparse.Namespace) -> NoiseDistribution | None:
    """The ``--sigma-dist`` / ``--sigma-per`` options as a distribution (None without them)."""
    if args.sigma_dist is None:
        if args.sigma_per is not None:
            raise ValueError("--sigma-per applies to --sigma-dist only; give --sigma-dist SPEC")
        return None
    if args.sigma is not None:
        raise ValueError(
            f"give either --sigma ({args.sigma}) or --sigma-dist ({args.sigma_dist}), not both"
        )
    try:
        per = args.sigma_per or ("row" if args.algo == "supervised" else "batch")
        return NoiseDistribution.parse(args.sigma_dist, per=per)
    except ValueError as error:
        raise ValueError(f"--sigma-dist {args.sigma_dist!r}: {error}") from None


def _refuse_extras(
    parser: argparse.ArgumentParser, args: argparse.Namespace, extras: list[str]
) -> NoReturn:
    """Name an option that belongs to another training algorithm, or any unknown argument."""
    command = getattr(args, "command", "")
    if command == "train":
        for token in extras:
            name = token.split("=", 1)[0]
            owners = [algo for algo in ALGOS if algo != args.algo and name in _algo_flags(algo)]
            if owners:
                parser.exit(
                    2,
                    f"noisepref train: error: {name} does not apply to --algo {args.algo} "
                    f"(it is an option of --algo {' and '.join(owners)}; see `noisepref train "
                    f"--algo {args.algo} --help`)\n",
                )
    parser.exit(
        2,
        f"noisepref {command}: error: unrecognized arguments: {' '.join(extras)} "
        f"(see `noisepref {command} --help`)\n",
    )


def _algo_flags(algo: str) -> set[str]:
    probe = _Parser(add_help=False)
    return {
        name
        for cls, exclude in _algo_configs(algo)
        for name in add_config_arguments(probe, cls, exclude=exclude).flags
    }


def _train(args: argparse.Namespace) -> int:
    _check_output(args.out, "--out", folder=True)
    model_options, train_options = args.config_options
    dist = _noise_distribution(args)
    noise = {} if dist is None else {"sigma_dist": dist}
    if args.algo == "supervised":
        train_config = train_options.build(args, **noise)
        task = make_task(args.task, **args.task_kwargs)
        model_config = model_options.build(
            args, input_size=task.obs_size, output_size=task.action_size
        )
    else:
        train_config = train_options.build(args, algo=args.algo, **noise)
        model_config = model_options.build(args)
    _warn_without_noise(training_noise(train_config).high)
    trainer = train_run if args.algo == "supervised" else _train_rl_run
    try:
        run = trainer(
            args.out,
            args.task,
            model_config,
            train_config,
            task_kwargs=args.task_kwargs,
            device=args.device,
            progress=not args.no_progress,
            overwrite=args.overwrite,
        )
    except RunError as error:  # the library's advice, in the command line's words
        raise type(error)(str(error).replace("overwrite=True", "--overwrite")) from error
    final = run.history[-1]["loss"] if run.history else float("nan")
    print(f"{run!r}\nfinal {'training' if args.algo == 'supervised' else 'PPO'} loss {final:.4g}")
    if dist is not None:
        print(f"training noise {dist.describe()} (mean {dist.mean:.3g}, upper level {dist.high:g})")
    return 0


def _train_rl_run(*args: Any, **kwargs: Any) -> Run:
    from agents.sb3.training import train_rl_run  # needs the `rl` extra (stable-baselines3)

    return train_rl_run(*args, **kwargs)


def _warn_without_noise(highest: float) -> None:
    if highest == 0:
        _warn(
            "train",
            "--sigma is 0: the network trains without noise, so a noise sweep of it cannot show "
            "a preference for its training noise (give --sigma > 0 for a noise study)",
        )


# ---------------------------------------------------------------------------------------------
# sweep


def _add_sweep(commands: Any) -> None:
    parser = _add_command(
        commands,
        "sweep",
        _sweep,
        help="sweep a trained run's test noise and report its noise preference",
        description="Evaluate a run at many test noise levels (all batched, common random "
        "numbers). The table is written only when the sweep succeeds.",
    )
    parser.add_argument("run", type=_path, help="run folder written by `noisepref train`")
    parser.add_argument(
        "--levels",
        type=_levels,
        help="comma-separated test noise levels >= 0 (default: 17 levels from 0 to 2x the "
        "training noise, its upper level for a distribution, or to 1 if it was 0)",
    )
    parser.add_argument(
        "--episodes", type=_positive_int, default=256, help="episodes per level (default: 256)"
    )
    parser.add_argument(
        "--seed", type=_nonnegative_int, default=0, help="seed of the sweep (default: 0)"
    )
    parser.add_argument("--metric", help="metric to report (default: the task's primary metric)")
    parser.add_argument("--out", type=_path, help="CSV to write (default: RUN/sweep.csv)")
    _common(parser)


def _default_levels(train_sigma: float) -> np.ndarray:
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
    _check_run_folder(args.run)  # before the lock, which would create a missing folder
    out = args.out or args.run / "sweep.csv"
    _check_output(out, "--out", folder=False)
    with _sweep_lock(args.run, out):
        return _sweep_locked(args, out)


def _sweep_locked(args: argparse.Namespace, out: Path) -> int:
    """``noisepref sweep`` with the run folder locked: load, sweep, then write the table."""
    run = _load_run(args.run, args.device)
    task = run.task()
    metric = task.metric(args.metric).name  # checked before computing anything
    noise = training_noise(run.train_config)
    result = sweep_noise(
        run.model,
        task,
        _default_levels(noise.high) if args.levels is None else args.levels,
        episodes=args.episodes,
        seed=args.seed,
        device=args.device,
        progress=not args.no_progress,
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


# ---------------------------------------------------------------------------------------------
# plot


def _add_plot(commands: Any) -> None:
    parser = _add_command(
        commands,
        "plot",
        _plot,
        help="plot metric against test noise for swept runs",
        description="Plot sweeps (run folders holding sweep.csv, or sweep CSV files) in one figure.",
    )
    parser.add_argument("sweeps", nargs="+", type=_path, help="run folders or sweep CSV files")
    parser.add_argument(
        "--out",
        type=_path,
        default=Path("noise_preference.png"),
        help="figure to write; its extension names the format (default: noise_preference.png)",
    )
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
    _check_output(args.out, "--out", folder=False)
    results, train_sigma = {}, {}
    for path in args.sweeps:
        label = path.resolve().name if path.is_dir() else path.stem
        results[label] = _read_sweep(path)
        if path.is_dir():
            train_sigma[label] = training_noise(_load_run(path, "cpu").train_config).mean
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


# ---------------------------------------------------------------------------------------------
# demo


def _add_demo(commands: Any) -> None:
    parser = _add_command(
        commands,
        "demo",
        _demo,
        help="the main job: noise-in vs noise-out CTRNNs, trained, swept, compared and plotted",
        description=(
            "Train a noise-in and a noise-out CTRNN at the same training noise, sweep their test "
            "noise, print the preference table and write the plot. The run folders are named by "
            "their config (OUT/noise-in-sigma0.5, ...), so another --sigma is another pair of "
            "runs; re-running the same config resumes or reuses it."
        ),
    )
    parser.add_argument(
        "--out",
        type=_path,
        default=Path("demo_output"),
        help="output folder (default: demo_output)",
    )
    parser.set_defaults(config_options=add_config_arguments(parser, PlacementConfig))
    _common(parser)


def _demo(args: argparse.Namespace) -> int:
    _check_output(args.out, "--out", folder=True)
    config = args.config_options.build(args)
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


# ---------------------------------------------------------------------------------------------
# analyze


def _add_analyze(commands: Any) -> None:
    from evaluation.mechanism.analysis import AnalysisConfig

    parser = _add_command(
        commands,
        "analyze",
        _analyze,
        help="explain trained runs' noise preference: fixed points, noise shift, bias, kinks",
        description=(
            "Analyse trained CTRNN runs at their training noise: noise-free fixed points, the "
            "noise-induced shift of the stationary mean (simulated and mean-field), the output "
            "bias it causes at other test noise, and the share of units near the kink. Prints a "
            "report and writes mechanism.txt and mechanism_*.png per run, plus "
            "kink_occupancy.png comparing several runs. Every run folder is checked first."
        ),
    )
    parser.add_argument("runs", nargs="+", type=_path, help="CTRNN run folders to analyse")
    parser.add_argument(
        "--out",
        type=_path,
        help="output folder, one subfolder per run (default: the run folders)",
    )
    parser.set_defaults(config_options=add_config_arguments(parser, AnalysisConfig))
    _common(parser)


def _analyze(args: argparse.Namespace) -> int:
    from evaluation.mechanism.analysis import write_reports

    config = args.config_options.build(args)
    if args.out is not None:
        _check_output(args.out, "--out", folder=True)
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
        if not noise.is_fixed:
            print(
                f"{label}: trained across {noise.describe()}; analysed at its mean level "
                f"{noise.mean:.3g}, levels from 0 to {config.max_level_factor:g}x it\n"
            )
        reports[label] = analyze_model(
            run.model,
            run.task(),
            train_sigma=noise.mean,
            config=config,
            label=label,
            device=device,
        )
        print(reports[label].summary(), end="\n\n")
    return reports


def _load_ctrnn_run(path: Path, device: str) -> Run:
    run = _load_run(path, device)
    if not isinstance(run.model, CTRNN):
        raise ValueError(
            f"{path} holds a {run.model_kind} run; `noisepref analyze` explains CTRNN runs "
            "(trained by `noisepref train --algo supervised`)"
        )
    return run


# ---------------------------------------------------------------------------------------------
# reproduce remedies


def _reproduce_remedies(args: argparse.Namespace) -> int:
    """``noisepref reproduce remedies``: :func:`evaluation.remedies.run_remedies` per task."""
    from agents.atomic import atomic_write_bytes, atomic_write_text
    from evaluation.remedies import SUMMARY_FILE, check_task, run_remedies

    tasks = [check_task(name.strip()) for name in args.remedies_tasks.split(",") if name.strip()]
    if args.readme is not None:
        raise ValueError("--readme applies to the grid presets; remedies write OUT/remedies.md")
    sections = []
    for task in tasks:
        result = run_remedies(
            task,
            args.out / f"remedies_{task}",
            scale=args.scale,
            device=args.device,
            progress=not args.no_progress,
        )
        print(f"{task} ({result.seconds / 60:.1f} min)\n{result.table()}\n")
        sections.append(f"### {task}\n\n" + (result.files[1]).read_text(encoding="utf-8"))
        if args.publish is not None:
            folder = args.publish / f"remedies_{task}"
            folder.mkdir(parents=True, exist_ok=True)
            for file in result.files:
                atomic_write_bytes(folder / file.name, file.read_bytes())
    command = (
        f"noisepref reproduce remedies --remedies-tasks {','.join(tasks)} --scale {args.scale}"
    )
    text = f"## Remedies\n\n`{command}`\n\n" + "\n".join(sections)
    for folder in dict.fromkeys(filter(None, (args.out, args.publish))):
        atomic_write_text(folder / SUMMARY_FILE, text)
        print(f"wrote {folder / SUMMARY_FILE}")
    return 0


# ---------------------------------------------------------------------------------------------
# recalibrate


def _add_recalibrate(commands: Any) -> None:
    parser = _add_command(
        commands,
        "recalibrate",
        _recalibrate,
        help="refit a run's linear read-out for another noise level into a new run folder",
        description=(
            "Recalibrate a trained run for the noise level it will meet, without retraining its "
            "recurrent weights: run episodes of its task at --to-sigma, refit the linear read-out "
            "by least squares on the states seen (closed form, seconds), and write a new run "
            "folder that records the source run, the noise, the method, the episodes and the "
            "seed. --bias-shift first moves the unit biases by the mean-field shift. The new run "
            "sweeps, plots and analyses like any run."
        ),
    )
    parser.add_argument("run", type=_path, help="the run folder to recalibrate (left unchanged)")
    parser.add_argument(
        "--to-sigma", type=float, required=True, help="the noise level to recalibrate for (>= 0)"
    )
    parser.add_argument("--out", type=_path, required=True, help="the new run folder to write")
    parser.add_argument(
        "--bias-shift",
        action="store_true",
        help="also move the unit biases by the mean-field shift (noise-in CTRNNs)",
    )
    parser.add_argument(
        "--episodes",
        type=_positive_int,
        default=512,
        help="episodes whose states the read-out is fitted on (default: 512)",
    )
    parser.add_argument(
        "--seed", type=_nonnegative_int, default=0, help="seed of those episodes (default: 0)"
    )
    parser.add_argument(
        "--ridge",
        type=float,
        default=1e-8,
        help="ridge penalty on the read-out weights, relative to the mse (default: 1e-8)",
    )
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="if --out holds anything else, move it aside into OUT/.replaced-* (never deleted)",
    )
    _common(parser)


def _recalibrate(args: argparse.Namespace) -> int:
    from evaluation.recalibrate import recalibrate

    _check_output(args.out, "--out", folder=True)
    source = _load_run(args.run, args.device)  # a path that is not a run is refused first
    try:
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
    except RunError as error:
        raise type(error)(str(error).replace("overwrite=True", "--overwrite")) from error
    print(f"{run!r}\nread-out fitted at sigma {args.to_sigma:g}: mse {run.history[-1]['loss']:.4g}")
    return 0


# ---------------------------------------------------------------------------------------------
# grid, reproduce


def _grid_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--workers",
        type=_positive_int,
        default=1,
        help="cells trained at once: local worker processes (1: this process), or the CPUs of "
        "the local Ray cluster started without --address (default: 1)",
    )
    parser.add_argument(
        "--backend",
        choices=("local", "ray"),
        default="local",
        help="local worker processes, or Ray tasks (pip install 'noise-preference[ray]')",
    )
    parser.add_argument(
        "--address", help="the Ray cluster to join (auto, ray://host:port); default: start one"
    )
    _common(parser)


def _add_grid(commands: Any) -> None:
    parser = _add_command(
        commands,
        "grid",
        _grid,
        help="train and sweep every cell of an experiment grid (TOML), resumable",
        description=(
            "Validate a grid spec (see examples/grid.toml), then train and sweep each cell not yet "
            "done into OUT/<cell>-<hash>; write OUT/summary.csv (one row per cell: sigma*, its "
            "interval, the metric at 0 and at sigma*, their ratio), settings.txt and the figures. "
            "Rerunning skips finished cells, resumes partial ones and redoes corrupt ones."
        ),
    )
    parser.add_argument("spec", type=_path, help="the grid spec, a TOML file")
    parser.add_argument("--out", type=_path, required=True, help="the grid's output folder")
    _grid_options(parser)


def _grid(args: argparse.Namespace) -> int:
    from evaluation.grid import load_spec, run_grid

    if not args.spec.is_file():
        raise ValueError(f"{args.spec} is not a grid spec: no such file")
    _check_output(args.out, "--out", folder=True)
    result = run_grid(
        load_spec(args.spec),
        args.out,
        workers=args.workers,
        backend=args.backend,
        address=args.address,
        device=args.device,
        progress=not args.no_progress,
    )
    print(result.settings_table())
    print(
        f"\n{len(result.ran)} cells run, {len(result.skipped)} already done, "
        f"{result.seconds:.0f} s; wrote {args.out / 'summary.csv'} and "
        f"{sum(p.suffix == '.png' for p in result.files)} figures"
    )
    return 0


def _add_reproduce(commands: Any) -> None:
    from evaluation.grid.presets import SCALES, preset_names

    parser = _add_command(
        commands,
        "reproduce",
        _reproduce,
        help="run the preset grids behind the README's results (one task or all)",
        description=(
            "Run the preset grid of a task (or of all of them) at quick scale (minutes per task "
            "on 2 CPU cores) or paper scale (a GPU or a cluster), into OUT/<task>/, and write "
            "OUT/results.md: one row per task, placement and training sigma, with the verdict."
        ),
    )
    parser.add_argument(
        "task",
        choices=(*preset_names(), "all", "remedies"),
        help="the preset, or all; remedies: fixed-noise vs noise-distribution training vs "
        "recalibration on --remedies-tasks",
    )
    parser.add_argument(
        "--remedies-tasks",
        default="function_approx",
        help="with remedies: comma-separated presets to compare them on (default: function_approx)",
    )
    parser.add_argument("--scale", choices=SCALES, default="quick", help="(default: quick)")
    parser.add_argument(
        "--out", type=_path, default=Path("reproduce_output"), help="(default: reproduce_output)"
    )
    parser.add_argument(
        "--publish",
        type=_path,
        help="also copy each task's summary, settings and figures (not the run folders) into "
        "PUBLISH/<task>/ and write PUBLISH/results.md",
    )
    parser.add_argument(
        "--readme",
        type=_path,
        help="also write the results between the <!-- grid-results --> markers of this file",
    )
    _grid_options(parser)


def _reproduce(args: argparse.Namespace) -> int:
    from agents.atomic import atomic_write_text
    from evaluation.grid import run_grid
    from evaluation.grid.presets import preset, preset_names
    from evaluation.grid.report import publish, replace_section, results_markdown

    _check_output(args.out, "--out", folder=True)
    if args.task == "remedies":
        return _reproduce_remedies(args)
    names = preset_names() if args.task == "all" else [args.task]
    if args.readme is not None and not args.readme.is_file():
        raise ValueError(f"`--readme` {args.readme} is not a file")
    results = {}
    for name in names:
        results[name] = run_grid(
            preset(name, args.scale),
            args.out / name,
            workers=args.workers,
            backend=args.backend,
            address=args.address,
            device=args.device,
            progress=not args.no_progress,
        )
        print(f"{name} ({results[name].seconds / 60:.1f} min)\n{results[name].settings_table()}\n")
    command = f"noisepref reproduce {args.task} --scale {args.scale}"
    home, files = args.out, None
    if args.publish is not None:
        home, files = args.publish, {n: publish(r, args.publish / n) for n, r in results.items()}
    for folder in dict.fromkeys((args.out, home)):
        section = results_markdown(
            results, scale=args.scale, figures_from=folder, command=command, files=files
        )
        atomic_write_text(folder / "results.md", section)
        print(f"wrote {folder / 'results.md'}")
    if args.readme is not None:
        relinked = results_markdown(
            results,
            scale=args.scale,
            figures_from=args.readme.parent,
            command=command,
            files=files,
        )
        text = replace_section(args.readme.read_text(encoding="utf-8"), relinked)
        atomic_write_text(args.readme, text)
        print(f"wrote the results section of {args.readme}")
    return 0


# ---------------------------------------------------------------------------------------------
# trials (NoisyMultitask-v0)


def _add_trials(commands: Any) -> None:
    parser = _add_command(
        commands,
        "trials",
        _trials,
        help=f"draw {MultitaskTask.id} trials: inputs, targets and a run's outputs over time",
        description=(
            f"Draw one trial of each chosen {MultitaskTask.id} task, a column each: the fixation "
            "input, target and output, input rings 1 and 2, the target ring and the network's "
            "output ring as heat maps (units against time); grey marks unscored steps. With "
            "RUN, the run's network acts at its training noise (or --sigma) in the run's task "
            "options (dt, ring size); without RUN (or with --env-only), inputs and targets only."
        ),
    )
    parser.add_argument(
        "run", nargs="?", type=_path, help=f"a {MultitaskTask.id} run folder (optional)"
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
    parser.add_argument(
        "--out",
        type=_path,
        default=Path("trials.png"),
        help="figure to write; its extension names the format (default: trials.png)",
    )
    parser.add_argument(
        "--sigma", type=float, help="the network's noise level (default: its training noise)"
    )
    parser.add_argument(
        "--seed", type=_nonnegative_int, default=0, help="seed of the trials and the noise"
    )
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
    _common(parser)


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
    _check_output(args.out, "--out", folder=False)
    names = list(FAMILIES[args.family]) if args.family else args.task
    options: dict[str, Any] = {"dt": args.dt} if args.dt is not None else {}
    policy, sigma = None, 0.0
    if args.run is not None:
        if args.dt is not None:
            raise ValueError("`--dt` is the run's own with RUN; give it only without RUN")
        run = _load_run(args.run, args.device)
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
        _warn("trials", f"the run was not trained on {', '.join(untrained)}")

