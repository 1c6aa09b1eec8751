"""Path integration: train noise-in and noise-out CTRNNs, sweep their test noise, plot their paths.

The networks are the cells of a small experiment grid (:mod:`evaluation.grid`: one placement
each), trained and swept into ``--out-dir`` with its ``summary.csv``; a rerun skips what is done
and resumes what was interrupted. The script prints the preference table on ``position_mse`` and
the mean distance error at the training noise, and writes ``noise_preference.png`` (metric against
test noise) and ``paths_<label>.png`` (true against decoded paths at a few test noise levels).

    python examples/path_integration.py --help
    python examples/path_integration.py --iterations 50 --steps 20 --hidden-size 32  # a quick look
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from agents import load_run
from evaluation import plot_sweep, preference, preference_table, save_figure
from evaluation.demo import placement_grid
from evaluation.grid import TaskSpec, run_grid
from evaluation.grid.figures import load_grid_sweeps
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
    result = run_grid(
        placement_grid(
            "path_integration",
            TaskSpec(id=ENV_ID, options=task_kwargs),
            args,
            levels,
            args.placements.split(","),
        ),
        args.out_dir,
        device=args.device,
        progress=not args.no_progress,
        figures=False,
    )
    sweeps, preferences, summary = {}, {}, {}
    for found in load_grid_sweeps(result.cells, args.out_dir):
        label = f"noise-{found.cell.placement}"
        sweeps[label] = found.result
        preferences[label] = preference(found.result, seed=args.seed)
        summary[label] = describe_errors(found.result, args.sigma)
        model = load_run(args.out_dir / found.cell.folder_name, device=args.device).model
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
