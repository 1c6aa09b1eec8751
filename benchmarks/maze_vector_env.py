"""NoisyMaze-v0 vector env throughput: the native TaskVectorEnv against gymnasium's SyncVectorEnv.

Both run ``--num-envs`` copies of ``NoisyMaze-v0`` (default options: the fixed 5 x 5 maze) with
next-step autoreset, driven by the same uniform random actions in [-1, 1]^2, so episodes end by
truncation at the horizon or by chance at the goal and are reset along the way. The native
:class:`~noise_envs.vector_env.TaskVectorEnv` (``gymnasium.make_vec(...,
vectorization_mode="vector_entry_point")``) steps all rows as one tensor program; the
``SyncVectorEnv`` (``vectorization_mode="sync"``) steps one :class:`~noise_envs.env.TaskEnv` per
row in a Python loop. The two are timed alternately in one process, each the best of
``--repeats`` runs, and reported as environment steps per second (vector steps x num_envs).

Run ``python benchmarks/maze_vector_env.py --help`` for the options.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence

import gymnasium
import numpy as np
import torch

import noise_envs  # noqa: F401  (registers the environment ids)

from _shared import machine_description  # benchmarks/_shared.py beside this script

ENV_ID = "NoisyMaze-v0"


def make_envs(mode: str, num_envs: int, device: str) -> gymnasium.vector.VectorEnv:
    """The vector env of ``mode``: "vector_entry_point" (native) or "sync"."""
    options = {"device": device} if mode == "vector_entry_point" else {}
    return gymnasium.make_vec(ENV_ID, num_envs=num_envs, vectorization_mode=mode, **options)


def steps_per_second(envs: gymnasium.vector.VectorEnv, actions: np.ndarray, seed: int) -> float:
    """Environment steps per second over ``actions [T, N, 2]``, after a reset with ``seed``."""
    envs.reset(seed=seed)
    tick = time.perf_counter()
    for action in actions:
        envs.step(action)
    return actions.shape[0] * actions.shape[1] / (time.perf_counter() - tick)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The command-line options."""
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--num-envs", type=int, default=64, help="environments N")
    parser.add_argument("--steps", type=int, default=300, help="vector steps per timed run")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs of each (best kept)")
    parser.add_argument("--device", default="cpu", help="where the native vector env runs")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)"
    )
    args = parser.parse_args(argv)
    for name in ("num_envs", "steps", "repeats"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1")
    return args


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    print(f"machine: {machine_description()}")
    rng = np.random.default_rng(args.seed)
    actions = rng.uniform(-1, 1, (args.steps, args.num_envs, 2)).astype(np.float32)
    envs = {
        "native TaskVectorEnv": make_envs("vector_entry_point", args.num_envs, args.device),
        "SyncVectorEnv of TaskEnvs": make_envs("sync", args.num_envs, "cpu"),
    }
    print(
        f"{ENV_ID}, {args.num_envs} envs, {args.steps} vector steps of random actions, "
        f"best of {args.repeats}\n"
    )
    best = dict.fromkeys(envs, 0.0)
    for _ in range(args.repeats):
        for name, env in envs.items():
            best[name] = max(best[name], steps_per_second(env, actions, args.seed))
    for name, rate in best.items():
        print(f"{name:27s} {rate:12,.0f} env steps/s")
    native, sync = best.values()
    print(f"ratio native / sync: {native / sync:.1f}x")


if __name__ == "__main__":
    main()
