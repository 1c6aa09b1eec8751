"""``noisepref train``: two stages, ``--algo`` first, then that algorithm's options."""

from __future__ import annotations

import argparse
import itertools
from collections.abc import Sequence
from typing import Any, NoReturn

from agents.ctrnn import CTRNNConfig
from agents.noise_distribution import NOISE_PER, SPEC_EXAMPLES, NoiseDistribution, training_noise
from agents.runs import Run
from agents.sb3.config import RL_ALGOS, CTRNNPolicyConfig, MLPPolicyConfig, RLTrainConfig
from agents.supervised import TrainConfig, train_run
from evaluation.cli._common import (
    add_command,
    add_common_options,
    add_overwrite,
    check_output,
    command_line_advice,
    run_options,
)
from evaluation.cli._errors import Parser, warn
from evaluation.cli._options import add_config_arguments
from evaluation.cli._types import json_object, nonempty_path
from evaluation.cli.train_ensemble import (
    ENSEMBLE_FIELDS,
    add_ensemble_options,
    ensemble_members,
    train_members,
)
from noise_envs.registration import make_task

ALGOS = ("supervised", *RL_ALGOS)


def _algo_configs(algo: str) -> list[tuple[type, tuple[str, ...]]]:
    """The config classes whose fields are ``train --algo ALGO``'s options, and the fields left out.

    The RL policies' ``sigma`` and ``seed`` are the training config's (the trainer replaces
    them), so they are options of RLTrainConfig only.
    """
    if algo == "supervised":
        return [(CTRNNConfig, ("input_size", "output_size")), (TrainConfig, ())]
    policy = CTRNNPolicyConfig if algo == "recurrent_ppo" else MLPPolicyConfig
    return [(policy, ("sigma", "seed")), (RLTrainConfig, ("algo",))]


def requested_algo(argv: Sequence[str]) -> str:
    """The value of ``train``'s ``--algo`` (the last one given), or supervised."""
    algo = "supervised"
    for token, following in itertools.pairwise([*argv, ""]):
        value = following if token == "--algo" else token.removeprefix("--algo=")
        if (token == "--algo" or token.startswith("--algo=")) and value in ALGOS:
            algo = value
    return algo


def add(commands: Any, algo: str) -> None:
    """Add ``noisepref train`` to the sub-command parsers ``commands``."""
    parser = add_command(
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
        type=json_object,
        help="task options as a JSON object, e.g. '{\"steps\": 30}'",
    )
    parser.add_argument(
        "--out", required=True, type=nonempty_path, help="run folder to write (or resume)"
    )
    add_overwrite(parser, "anything but this run", " and train afresh")
    groups = [
        add_config_arguments(
            parser, cls, exclude=exclude, title=f"{cls.__name__} options", many=ENSEMBLE_FIELDS
        )
        for cls, exclude in _algo_configs(algo)
    ]
    if algo == "supervised":
        add_ensemble_options(parser)
    _add_noise_distribution(parser)
    add_common_options(parser)
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


def refuse_extras(
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
    probe = Parser(add_help=False)
    return {
        name
        for cls, exclude in _algo_configs(algo)
        for name in add_config_arguments(probe, cls, exclude=exclude).flags
    }


def _train(args: argparse.Namespace) -> int:
    check_output(args.out, "--out", folder=True)
    members = ensemble_members(args)  # None: one run; args holds the (first member's) values
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
    _warn_without_noise((members or {}).get("sigma", [training_noise(train_config).high]))
    trainer = train_run if args.algo == "supervised" else _train_rl_run
    with command_line_advice():  # the library's advice, in the command line's words
        if members is not None:
            runs = train_members(args, model_config, train_config, members)
        else:
            runs = [
                trainer(
                    args.out,
                    args.task,
                    model_config,
                    train_config,
                    task_kwargs=args.task_kwargs,
                    overwrite=args.overwrite,
                    **run_options(args),
                )
            ]
    for run in runs:
        final = run.history[-1]["loss"] if run.history else float("nan")
        print(
            f"{run!r}\nfinal {'training' if args.algo == 'supervised' else 'PPO'} loss {final:.4g}"
        )
    if members is not None:
        print(f"trained {len(runs)} members as one ensemble, a run folder each in {args.out}")
    if dist is not None:
        print(f"training noise {dist.describe()} (mean {dist.mean:.3g}, upper level {dist.high:g})")
    return 0


def _train_rl_run(*args: Any, **kwargs: Any) -> Run:
    from agents.sb3.training import train_rl_run  # needs the `rl` extra (stable-baselines3)

    return train_rl_run(*args, **kwargs)


def _warn_without_noise(levels: list[float]) -> None:
    """Warn when a network (an ensemble member) trains at noise level 0 at most."""
    if 0 in levels:
        warn(
            "train",
            "--sigma is 0: the network trains without noise, so a noise sweep of it cannot show "
            "a preference for its training noise (give --sigma > 0 for a noise study)",
        )
