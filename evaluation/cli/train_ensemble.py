"""``noisepref train`` given several values of --placement, --sigma or --seed: one ensemble.

Every combination of the values is a member; the members train together as one ensemble
(:func:`agents.ensemble_training.train_ensemble_runs`, ``--algo supervised`` only), each into its
own run folder ``OUT/noise-<placement>-sigma<sigma>-seed<seed>``, the run that training it
alone would write. One value of each keeps ``train``'s single run in ``OUT`` itself.
"""

from __future__ import annotations

import argparse
from typing import Any

from agents.ctrnn import CTRNNConfig
from agents.ensemble_training import train_ensemble_runs
from agents.noise import PLACEMENTS
from agents.runs import Run
from agents.supervised import TrainConfig
from evaluation.cli._common import run_options
from evaluation.cli._options import flag
from noise_envs._checks import check_choice

ENSEMBLE_FIELDS = ("placement", "sigma", "seed")
"""The config fields whose options take several values: an ensemble of every combination."""


def add_ensemble_options(parser: argparse.ArgumentParser) -> None:
    """Describe ensembles in ``train --help`` and accept ``--seeds`` for ``--seed``."""
    group = parser.add_argument_group(
        "ensembles",
        "several values of --placement, --sigma or --seed train every combination as one "
        "ensemble (--algo supervised), a run folder each: OUT/noise-<placement>-sigma<sigma>-"
        "seed<seed>, e.g. --sigma 0.25 0.5 1.0 --placement in out --seeds 0 1 2",
    )
    group.add_argument(
        "--seeds", dest="seed", type=int, nargs="+", metavar="SEED", help="the same as --seed"
    )


def ensemble_members(args: argparse.Namespace) -> dict[str, list[Any]] | None:
    """The values of ``ENSEMBLE_FIELDS`` given, when one has several; None for a single run.

    Either way each field of ``args`` is left holding its first value, so the configs built from
    ``args`` are those of the first member (or of the single run).

    Raises:
        ValueError: several values with another algorithm than supervised or with
            --sigma-dist, a repeated value, or a placement that is not "in" or "out".
    """
    given = {name: getattr(args, name, None) for name in ENSEMBLE_FIELDS}
    given = {name: values for name, values in given.items() if values is not None}
    for name, values in given.items():
        setattr(args, name, values[0])
    several = [f"{flag(n)} {' '.join(map(str, v))}" for n, v in given.items() if len(v) > 1]
    if not several:
        return None
    if args.algo != "supervised":
        raise ValueError(
            f"{', '.join(several)}: several values train an ensemble, which only --algo "
            f"supervised does (got --algo {args.algo}); give one value of each"
        )
    if args.sigma_dist is not None:
        raise ValueError(
            f"{', '.join(several)}: an ensemble trains its members at fixed --sigma levels; "
            f"--sigma-dist {args.sigma_dist} trains a single run"
        )
    for name, values in given.items():
        if len(set(values)) != len(values):
            raise ValueError(
                f"{flag(name)} must not repeat a value, got {' '.join(map(str, values))}"
            )
    for placement in given.get("placement", ()):
        check_choice("--placement", placement, PLACEMENTS)
    return given


def train_members(
    args: argparse.Namespace,
    model_config: CTRNNConfig,
    train_config: TrainConfig,
    members: dict[str, list[Any]],
) -> list[Run]:
    """Train the ensemble of ``members`` into ``args.out``; the members' runs."""
    return train_ensemble_runs(
        args.out,
        args.task,
        model_config,
        train_config,
        placements=members.get("placement"),
        sigmas=members.get("sigma"),
        seeds=members.get("seed"),
        task_kwargs=args.task_kwargs,
        overwrite=args.overwrite,
        **run_options(args),
    )
