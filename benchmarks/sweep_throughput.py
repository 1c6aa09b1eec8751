"""Noise-sweep throughput: the batched sweep against the per-episode Gymnasium loop.

Both evaluate the same CTRNN on ``NoisyFunctionApprox-v0`` (x ~ U(-1, 1) shown for 50 steps,
target sin(pi x) over the last 20) at the same test noise levels. The batched sweep is
:func:`evaluation.sweep.sweep_noise`: every level x every episode in one closed-loop rollout. The
loop is what a user would otherwise write: ``gymnasium.make("NoisyFunctionApprox-v0")``, one
episode at a time, the model stepped per observation under ``torch.no_grad()`` with its noise
from a ``torch.Generator``, the numpy observation converted to torch every step, and the MSE read
from ``info["episode_metrics"]`` at the end. The loop is slow, so by default it runs a subset of
the episodes of every level and its time is extrapolated linearly to all of them (the output
says so).

Run ``python benchmarks/sweep_throughput.py --help`` for the options.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence

import gymnasium
import numpy as np
import torch

import noise_envs  # noqa: F401  (registers the environment ids)
from agents.ctrnn import CTRNN, CTRNNConfig
from agents.supervised import TrainConfig, train
from evaluation.sweep import sweep_noise
from noise_envs import make_task

from _shared import machine_description, positive_int  # benchmarks/_shared.py beside this script

ENV_ID = "NoisyFunctionApprox-v0"
"""The swept task, with its default options (50 steps, the last 20 scored)."""


def trained_model(args: argparse.Namespace) -> CTRNN:
    """A CTRNN (noise inside f) trained ``args.train_iterations`` steps at sigma 0.1, or untrained."""
    task = make_task(ENV_ID)
    config = CTRNNConfig(
        input_size=task.obs_size, output_size=task.action_size, hidden_size=args.hidden_size
    )
    model = CTRNN(config, generator=torch.Generator().manual_seed(args.seed))
    if args.train_iterations > 0:
        train_config = TrainConfig(
            sigma=0.1, iterations=args.train_iterations, batch_size=64, seed=args.seed
        )
        train(model, task, train_config, device=args.device, progress=False)
    return model


def batched_sweep(model: CTRNN, levels: np.ndarray, args: argparse.Namespace) -> np.ndarray:
    """MSE ``[L, E]`` from one :func:`~evaluation.sweep.sweep_noise` call."""
    result = sweep_noise(
        model, make_task(ENV_ID), levels, episodes=args.episodes, seed=args.seed, device=args.device
    )
    return result.values("mse")


def loop_sweep(model: CTRNN, levels: np.ndarray, episodes: int, seed: int) -> np.ndarray:
    """MSE ``[L, episodes]``: one Gymnasium episode at a time, the model stepped per observation."""
    device = model.W.device
    env = gymnasium.make(ENV_ID)
    generator = torch.Generator(device=device).manual_seed(seed)
    env.reset(seed=seed)  # seeds the environment once; later resets continue its stream
    mse = np.empty((len(levels), episodes))
    with torch.no_grad():
        for i, sigma in enumerate(levels):
            for e in range(episodes):
                obs, info = env.reset()
                h = model.initial_state(1, device)
                done = False
                while not done:
                    x = torch.as_tensor(obs, dtype=torch.float32, device=device).unsqueeze(0)
                    action, h = model.step(x, h, float(sigma), generator)
                    obs, _, terminated, truncated, info = env.step(action[0].cpu().numpy())
                    done = terminated or truncated
                mse[i, e] = info["episode_metrics"]["mse"]
    env.close()
    return mse


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The command-line options."""
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--device", default="cpu", help="where the model and the sweep run")
    parser.add_argument("--hidden-size", type=positive_int, default=32, help="CTRNN units")
    parser.add_argument("--levels", type=positive_int, default=16, help="test noise levels L")
    parser.add_argument("--max-level", type=float, default=1.0, help="levels span [0, this]")
    parser.add_argument("--episodes", type=positive_int, default=256, help="episodes per level E")
    parser.add_argument(
        "--loop-episodes",
        type=positive_int,
        default=32,
        help="episodes per level the loop really runs; its time is scaled to --episodes",
    )
    parser.add_argument(
        "--train-iterations",
        type=int,
        default=100,
        help="train the CTRNN this long first (0: untrained weights; timing does not depend on it)",
    )
    parser.add_argument(
        "--repeats", type=positive_int, default=3, help="timed batched sweeps (best)"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch.set_num_threads; 0 keeps torch's default. 1 by default: the loop's batch-1 "
        "ops cannot use more, and on a busy machine threads of one op wait for each other",
    )
    args = parser.parse_args(argv)
    if not 1 <= args.loop_episodes <= args.episodes:
        parser.error(f"--loop-episodes must be in [1, --episodes], got {args.loop_episodes}")
    return args


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    print(f"machine: {machine_description(args.device)}")
    tick = time.perf_counter()
    model = trained_model(args)
    trained = (
        f"trained {args.train_iterations} iterations at sigma 0.1 "
        f"({time.perf_counter() - tick:.1f} s)"
        if args.train_iterations
        else "untrained"
    )
    print(f"model: CTRNN, {args.hidden_size} relu units, noise inside f, {trained}")
    levels = np.linspace(0.0, args.max_level, args.levels)
    total = args.levels * args.episodes
    print(
        f"sweep: {ENV_ID}, {args.levels} levels in [0, {args.max_level:g}] x {args.episodes} "
        f"episodes = {total} episodes of 50 steps\n"
    )

    batched_sweep(model, levels[:2], argparse.Namespace(**{**vars(args), "episodes": 2}))
    times = []
    for _ in range(args.repeats):
        tick = time.perf_counter()
        batched = batched_sweep(model, levels, args)
        times.append(time.perf_counter() - tick)
    batched_time = min(times)
    print(f"batched sweep_noise: {batched_time:.3f} s (best of {args.repeats})")

    tick = time.perf_counter()
    looped = loop_sweep(model, levels, args.loop_episodes, args.seed)
    measured = time.perf_counter() - tick
    loop_time = measured * args.episodes / args.loop_episodes
    ran = args.levels * args.loop_episodes
    if args.loop_episodes < args.episodes:
        print(
            f"gymnasium loop:      {loop_time:.1f} s, EXTRAPOLATED linearly from {ran} episodes "
            f"({args.loop_episodes} per level) that took {measured:.1f} s "
            f"({measured / ran * 1e3:.1f} ms per episode)"
        )
    else:
        print(f"gymnasium loop:      {loop_time:.1f} s (all {total} episodes run)")
    print(f"speed-up batched / loop: {loop_time / batched_time:.0f}x")

    gap = np.abs(batched.mean(axis=1) - looped.mean(axis=1)).max()
    print(
        f"\nagreement (other random numbers, same distribution): mean MSE over levels "
        f"{batched.mean():.4f} batched, {looped.mean():.4f} loop; largest per-level gap {gap:.4f}"
    )


if __name__ == "__main__":
    main()
