"""Path integration: train noise-in and noise-out CTRNNs, sweep their test noise, plot their paths.

Each network is a run folder under ``--out-dir`` (an interrupted run resumes). The script prints the
preference table on ``position_mse`` and the mean distance error at the training noise, and writes
``noise_preference.png`` (metric against test noise) and ``paths_<label>.png`` (true against decoded
paths at a few test noise levels).

    python examples/path_integration.py --help
    python examples/path_integration.py --iterations 50 --steps 20 --hidden-size 32  # a quick look
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from agents import CTRNNConfig, TrainConfig, load_run, train_run
from evaluation import plot_sweep, preference, preference_table, save_figure, sweep_noise
from evaluation.plots.path import plot_paths, trace_paths
from noise_envs import make_task

ENV_ID = "NoisyPathIntegration-v0"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add = parser.add_argument
    add(
        "--out-dir",
        type=Path,
        default=Path("runs/path_integration"),
        help="where runs and figures go",
    )
    add("--placements", default="in,out", help="comma-separated noise placements to train")
    add("--sigma", type=float, default=1.0, help="training noise of every network")
    add("--hidden-size", type=int, default=128, help="recurrent units")
    add(
        "--activation",
        default="tanh",
        help="relu, softplus, tanh or sigmoid (relu networks show no noise preference here)",
    )
    add("--dt", type=float, default=20.0, help="time step of the network (ms)")
    add("--tau", type=float, default=100.0, help="time constant of the network (ms)")
    add("--iterations", type=int, default=1000, help="training iterations per network")
    add("--batch-size", type=int, default=64, help="episodes per training iteration")
    add("--learning-rate", type=float, default=3e-3, help="Adam learning rate")
    add("--steps", type=int, default=100, help="steps per episode")
    add("--start", default="center", help="center or random_cued")
    add("--target", default="position", help="position or place_cells")
    add("--velocity-encoding", default="cartesian", help="cartesian or speed_heading")
    add("--episodes", type=int, default=256, help="episodes per test noise level")
    add("--num-levels", type=int, default=9, help="test levels from 0 to 2 x sigma")
    add("--seed", type=int, default=0, help="seed of the weights, the training data and the sweep")
    add("--device", default="cpu", help="cpu, cuda, cuda:1, ...")
    add("--no-progress", action="store_true", help="hide the progress bars")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    task_kwargs = {
        "steps": args.steps,
        "start": args.start,
        "target": args.target,
        "velocity_encoding": args.velocity_encoding,
    }
    task = make_task(ENV_ID, **task_kwargs)
    levels = np.linspace(0.0, 2.0 * args.sigma, args.num_levels)
    sweeps, preferences, summary = {}, {}, {}
    for placement in args.placements.split(","):
        label = f"noise-{placement}"
        model_config = CTRNNConfig(
            input_size=task.obs_size,
            output_size=task.action_size,
            hidden_size=args.hidden_size,
            activation=args.activation,
            placement=placement,
            dt=args.dt,
            tau=args.tau,
        )
        train_config = TrainConfig(
            sigma=args.sigma,
            iterations=args.iterations,
            batch_size=args.batch_size,
            learning_rate=args.learning_rate,
            seed=args.seed,
        )
        run_dir = args.out_dir / label
        train_run(
            run_dir,
            ENV_ID,
            model_config,
            train_config,
            task_kwargs=task_kwargs,
            device=args.device,
            progress=not args.no_progress,
        )
        model = load_run(run_dir, device=args.device).model
        sweeps[label] = sweep_noise(
            model, task, levels, episodes=args.episodes, seed=args.seed, device=args.device
        )
        sweeps[label].to_csv(run_dir / "sweep.csv")
        preferences[label] = preference(sweeps[label], seed=args.seed)
        summary[label] = describe_errors(sweeps[label], args.sigma)
        traces = trace_paths(model, task, levels[::2], seed=args.seed, device=args.device)
        save_figure(plot_paths(traces, train_sigma=args.sigma), args.out_dir / f"paths_{label}.png")
    save_figure(plot_sweep(sweeps, train_sigma=args.sigma), args.out_dir / "noise_preference.png")
    print(preference_table(preferences, dict.fromkeys(preferences, args.sigma)))
    print(json.dumps(summary, indent=2))
    (args.out_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")


def describe_errors(sweep, sigma: float) -> dict[str, float]:
    """Mean distance and position mse at zero and at the training noise (half-side units)."""
    at_zero = 0
    at_train = int(np.argmin(np.abs(sweep.levels - sigma)))
    distance = sweep.values("mean_distance_error").mean(axis=1)
    mse = sweep.values("position_mse").mean(axis=1)
    return {
        "mean_distance_at_train_sigma": float(distance[at_train]),
        "mean_distance_at_zero": float(distance[at_zero]),
        "mean_distance_at_train_sigma_over_arena_side": float(distance[at_train] / 2.0),
        "position_mse_at_train_sigma": float(mse[at_train]),
        "position_mse_at_zero": float(mse[at_zero]),
    }


if __name__ == "__main__":
    main()
