"""RecurrentPPO with a CTRNN core on NoisyRegulator-v0: does an RL-trained network prefer noise?

Trains, for each noise placement, a CTRNN by RecurrentPPO (stable-baselines3 / sb3-contrib, the
update replaying the rollout's noise) and, as the reference, the same CTRNN by supervised BPTT,
all at training noise ``--sigma``. The networks are the cells of two small experiment grids
(:mod:`evaluation.grid`, one per trainer, one cell per placement) under ``--out-dir``/``rl`` and
``--out-dir``/``bptt``: each cell is trained, then swept over test noise with common random
numbers; re-running skips what is done and resumes what was interrupted. The script prints the mse
table, the preference table and writes ``noise_preference.png``.

    pip install 'noise-preference[rl]'
    python examples/rl_regulator.py --help
    python examples/rl_regulator.py --iterations 20 --supervised-iterations 200  # a quick look
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from evaluation import plot_sweep, preference, preference_table, save_figure, summary_table
from evaluation.grid import GridSpec, SweepSpec, TaskSpec, run_grid
from evaluation.grid.figures import load_grid_sweeps

ENV_ID = "NoisyRegulator-v0"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    add = parser.add_argument
    add("--out-dir", type=Path, default=Path("runs/rl_regulator"), help="runs and figure go here")
    add("--placements", default="in,out", help="comma-separated noise placements")
    add("--sigma", type=float, default=0.5, help="training noise of every network")
    add("--steps", type=int, default=30, help="steps per episode")
    add("--settle-steps", type=int, default=15, help="steps before the output is scored")
    add("--hidden-size", type=int, default=16, help="CTRNN units")
    add("--dt", type=float, default=20.0, help="time step (ms)")
    add("--tau", type=float, default=100.0, help="time constant (ms)")
    add("--iterations", type=int, default=60, help="RecurrentPPO iterations")
    add("--num-envs", type=int, default=16, help="environments per rollout")
    add("--num-steps", type=int, default=60, help="steps per environment per rollout")
    add("--learning-rate", type=float, default=3e-3, help="RL learning rate (annealed to 0)")
    add("--supervised-iterations", type=int, default=1000, help="BPTT reference iterations")
    add("--episodes", type=int, default=512, help="episodes per test noise level")
    add("--seed", type=int, default=0, help="seed of weights, environments, noise and sweep")
    add("--threads", type=int, default=1, help="torch.set_num_threads")
    add("--no-progress", action="store_true", help="hide the progress bars")
    return parser.parse_args(argv)


def rl_spec(args: argparse.Namespace, task: TaskSpec, sweep: SweepSpec) -> GridSpec:
    """RecurrentPPO with a CTRNN core, one cell per placement."""
    return GridSpec(
        name="rl_regulator",
        tasks=(task,),
        trainer="rl",
        placements=tuple(args.placements.split(",")),
        train_sigmas=(args.sigma,),
        seeds=(args.seed,),
        model={
            "hidden_size": args.hidden_size,
            "dt": args.dt,
            "tau": args.tau,
            "log_std_init": -1.0,
        },
        training={
            "algo": "recurrent_ppo",
            "iterations": args.iterations,
            "num_envs": args.num_envs,
            "num_steps": args.num_steps,
            "batch_size": args.num_envs * args.num_steps // 2,
            "epochs": 10,
            "learning_rate": args.learning_rate,
            "anneal_learning_rate": True,
            "discount": 0.9,
        },
        sweep=sweep,
    )


def bptt_spec(args: argparse.Namespace, task: TaskSpec, sweep: SweepSpec) -> GridSpec:
    """The supervised (BPTT) reference, one cell per placement."""
    return GridSpec(
        name="bptt_regulator",
        tasks=(task,),
        placements=tuple(args.placements.split(",")),
        train_sigmas=(args.sigma,),
        seeds=(args.seed,),
        model={"hidden_size": args.hidden_size, "dt": args.dt, "tau": args.tau},
        training={
            "iterations": args.supervised_iterations,
            "batch_size": 64,
            "learning_rate": 1e-2,
        },
        sweep=sweep,
    )


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    task = TaskSpec(
        id=ENV_ID,
        label="regulator",
        options={"steps": args.steps, "settle_steps": args.settle_steps},
    )
    levels = np.linspace(0.0, 2.0 * args.sigma, 9)
    sweep = SweepSpec(
        test_sigmas=tuple(float(level) for level in levels), episodes=args.episodes, seed=args.seed
    )
    sweeps = {}
    for kind, spec in (("rl", rl_spec(args, task, sweep)), ("bptt", bptt_spec(args, task, sweep))):
        out = args.out_dir / kind
        result = run_grid(spec, out, progress=not args.no_progress, figures=False)
        for found in load_grid_sweeps(result.cells, out):
            sweeps[f"{kind} noise-{found.cell.placement}"] = found.result
    print(summary_table(sweeps))
    print()
    print(
        preference_table(
            {k: preference(v) for k, v in sweeps.items()}, dict.fromkeys(sweeps, args.sigma)
        )
    )
    at_sigma = int(np.argmin(np.abs(levels - args.sigma)))
    for placement in args.placements.split(","):
        rl, bptt = (
            sweeps[f"{kind} noise-{placement}"].values().mean(1)[at_sigma]
            for kind in ("rl", "bptt")
        )
        print(
            f"noise-{placement}: mse at the training noise, RL / BPTT = {rl:.3g} / {bptt:.3g} = {rl / bptt:.2f}"
        )
    path = save_figure(
        plot_sweep(sweeps, train_sigma=args.sigma), args.out_dir / "noise_preference.png"
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
