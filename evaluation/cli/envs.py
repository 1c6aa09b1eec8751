"""``noisepref envs``: list the registered environments."""

from __future__ import annotations

import argparse
from typing import Any

from evaluation.cli._common import add_command
from noise_envs.core import Metric
from noise_envs.registration import TASKS

HELP = "list the registered environments"


def add(commands: Any) -> None:
    """Add ``noisepref envs`` to the sub-command parsers ``commands``."""
    add_command(commands, "envs", _envs, HELP)


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
