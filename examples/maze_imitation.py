"""Maze navigation by closed-loop imitation: train CTRNNs on NoisyMaze-v0, sweep, draw their paths.

Each network learns the shortest-path oracle's velocity along the states it visits itself (the
supervised trainer runs it closed-loop in the batched maze), at training noise ``--sigma`` with
the noise inside (``in``) or outside (``out``) its activation. The networks are the cells of a
small experiment grid (:mod:`evaluation.grid`: one placement each), trained and swept into
``--out-dir`` with its ``summary.csv``; a rerun skips what is done and resumes what was
interrupted. The script prints the success rate and path efficiency
at zero and at the training noise, the preference table of every metric, and writes
``noise_preference.png`` (path efficiency against test noise) and ``paths_<label>.png`` (one start
and goal, several test noise levels).

With the defaults (the fixed 5 x 5 maze, 128 relu units, sigma 0.5, 1000 iterations) the noise-in
network reaches the goal in every test episode at its training noise. A preference for nonzero
test noise needs a larger training noise: try ``--sigma 1.0`` (see
``tests/science/test_maze_preference.py``).

    python examples/maze_imitation.py --help
    python examples/maze_imitation.py --size 3 --iterations 100  # a quick look
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from agents import load_run
from evaluation import plot_sweep, preference, preference_table, save_figure
from evaluation.demo import placement_grid
from evaluation.grid import TaskSpec, run_grid
from evaluation.grid.figures import load_grid_sweeps
from evaluation.plots.maze import maze_trajectories, plot_maze_trajectories
from noise_envs import make_task

ENV_ID = "NoisyMaze-v0"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    add = parser.add_argument
    add("--out-dir", type=Path, default=Path("runs/maze"), help="where runs and figures go")
    add("--placements", default="in,out", help="comma-separated noise placements to train")
    add("--sigma", type=float, default=0.5, help="training noise of every network")
    add("--size", type=int, default=5, help="cells per side of the fixed maze")
    add("--maze-seed", type=int, default=0, help="seed of the fixed maze")
    add("--max-speed", type=float, default=0.25, help="cells per step at action 1")
    add("--hidden-size", type=int, default=128, help="recurrent units")
    add("--activation", default="relu", help="relu, softplus, tanh or sigmoid")
    add("--dt", type=float, default=20.0, help="time step of the network (ms)")
    add("--tau", type=float, default=100.0, help="time constant of the network (ms)")
    add("--iterations", type=int, default=1000, help="training iterations per network")
    add("--batch-size", type=int, default=64, help="episodes per training iteration")
    add("--learning-rate", type=float, default=3e-3, help="Adam learning rate")
    add("--episodes", type=int, default=256, help="episodes per test noise level")
    add("--num-levels", type=int, default=9, help="test levels from 0 to 2 x sigma")
    add("--seed", type=int, default=0, help="seed of the weights, the training data and the sweep")
    add("--device", default="cpu", help="cpu, cuda, cuda:1, ...")
    add("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    add("--no-progress", action="store_true", help="hide the progress bars")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    task_kwargs = {"size": args.size, "maze_seed": args.maze_seed, "max_speed": args.max_speed}
    task = make_task(ENV_ID, **task_kwargs)
    print("\n".join(task.maze_text))
    levels = np.linspace(0.0, 2.0 * args.sigma, args.num_levels)
    start, goal = farthest_pair(task)
    result = run_grid(
        placement_grid(
            "maze_imitation",
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
    sweeps, summary = {}, {}
    for found in load_grid_sweeps(result.cells, args.out_dir):
        label = f"noise-{found.cell.placement}"
        sweeps[label] = found.result
        summary[label] = describe(found.result, args.sigma)
        model = load_run(args.out_dir / found.cell.folder_name, device=args.device).model
        paths = maze_trajectories(
            model, task, levels[::2], start_cell=start, goal_cell=goal, episodes=3, seed=args.seed
        )
        save_figure(plot_maze_trajectories(task, paths), args.out_dir / f"paths_{label}.png")
    save_figure(plot_sweep(sweeps, train_sigma=args.sigma), args.out_dir / "noise_preference.png")
    for metric in ("path_efficiency", "success", "oracle_mse"):
        table = {
            label: preference(sweep, metric, seed=args.seed) for label, sweep in sweeps.items()
        }
        print(f"\n{metric}\n{preference_table(table, dict.fromkeys(table, args.sigma))}")
    print(json.dumps(summary, indent=2))
    (args.out_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(f"wrote {args.out_dir}/noise_preference.png and paths_<label>.png")


def farthest_pair(task) -> tuple[int, int]:
    """The start and goal cells of the maze's longest shortest path, for the path figure."""
    goal, start = divmod(int(task.paths.distance.argmax()), task.num_cells)
    return start, goal


def describe(sweep, sigma: float) -> dict[str, float]:
    """Success and path efficiency at zero and at the training noise."""
    at_train = int(np.argmin(np.abs(sweep.levels - sigma)))
    out = {}
    for metric in ("success", "path_efficiency", "oracle_mse"):
        means = sweep.values(metric).mean(axis=1)
        out[f"{metric}_at_zero"] = float(means[0])
        out[f"{metric}_at_train_sigma"] = float(means[at_train])
    return out


if __name__ == "__main__":
    main()
