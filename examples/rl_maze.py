"""RecurrentPPO with a CTRNN core on the default NoisyMaze-v0, written the stable-baselines3 way.

The maze pays +1 at the goal and -0.01 per step. To speed learning up, training uses the maze's
``shaping`` option (``gymnasium.make("NoisyMaze-v0", shaping=...)``): potential-based shaping (Ng,
Harada & Russell 1999), ``shaping * (d(s) - d(s'))`` with ``d`` the distance to the goal along the
maze's corridors (``--shaping 0`` turns it off); shaping of this form leaves the optimal policies
unchanged, and every number printed (success, path efficiency) does not depend on the reward. The
same run from the CLI: ``noisepref train --algo recurrent_ppo --task NoisyMaze-v0 --task-kwargs
'{"shaping": 0.1}'``. The policy's CTRNN core has noise ``--sigma`` inside (or outside) its
activation, and the update replays each rollout step's noise
(:class:`agents.sb3.NoisyRecurrentPPO`).

After training, the script sweeps the policy's test noise on the batched maze (common random
numbers), prints success rate and path efficiency per level and the preference table, and writes
the policy as a run-style model (``model.json`` + ``weights.safetensors``).

    pip install 'noise-preference[rl]'
    python examples/rl_maze.py --help
    python examples/rl_maze.py --timesteps 200000 --out-dir runs/rl_maze_quick
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch
from stable_baselines3.common.logger import HumanOutputFormat, Logger
from stable_baselines3.common.vec_env import VecMonitor

from agents.atomic import atomic_write_text
from agents.runs import save_weights
from agents.sb3.model import policy_model
from agents.sb3.recurrent import CTRNNRecurrentPolicy, NoisyRecurrentPPO
from agents.sb3.vec_env import make_sb3_vec_env
from evaluation import preference, preference_table, summary_table, sweep_noise
from noise_envs import make_task

ENV_ID = "NoisyMaze-v0"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    add = parser.add_argument
    add("--out-dir", type=Path, default=Path("runs/rl_maze"), help="where the policy goes")
    add("--sigma", type=float, default=0.5, help="training noise of the CTRNN core")
    add("--placement", default="in", help="noise inside (in) or outside (out) the activation")
    add("--hidden-size", type=int, default=64, help="CTRNN units")
    add("--dt", type=float, default=20.0, help="time step (ms)")
    add("--tau", type=float, default=100.0, help="time constant (ms)")
    add("--timesteps", type=int, default=3_000_000, help="environment steps of training")
    add("--num-envs", type=int, default=32, help="environments per rollout")
    add("--num-steps", type=int, default=128, help="steps per environment per rollout")
    add("--batch-size", type=int, default=1024, help="steps per minibatch")
    add("--epochs", type=int, default=5, help="passes over each rollout")
    add("--learning-rate", type=float, default=1e-3, help="Adam learning rate (annealed to 0)")
    add("--discount", type=float, default=0.99, help="discount factor")
    add("--shaping", type=float, default=0.1, help="weight of the corridor shaping (0: none)")
    add("--episodes", type=int, default=256, help="episodes per test noise level")
    add("--seed", type=int, default=0, help="seed of weights, environments, noise and sweep")
    add("--threads", type=int, default=1, help="torch.set_num_threads")
    add("--verbose", type=int, default=1, help="stable-baselines3 verbosity")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    task = make_task(ENV_ID)
    print("\n".join(task.maze_text))
    envs = VecMonitor(make_sb3_vec_env(ENV_ID, args.num_envs, shaping=args.shaping))
    model = NoisyRecurrentPPO(
        CTRNNRecurrentPolicy,
        envs,
        learning_rate=lambda remaining: args.learning_rate * remaining,
        n_steps=args.num_steps,
        batch_size=args.batch_size,
        n_epochs=args.epochs,
        gamma=args.discount,
        policy_kwargs={
            "hidden_size": args.hidden_size,
            "placement": args.placement,
            "sigma": args.sigma,
            "dt": args.dt,
            "tau": args.tau,
            "seed": args.seed,
            "log_std_init": -0.5,
        },
        seed=args.seed,  # stable-baselines3 seeds the global generators (fine in a script)
        verbose=args.verbose,
        device="cpu",
    )
    # SB3's default logger also makes an SB3-<date> folder in the temporary folder; print only
    formats = [HumanOutputFormat(sys.stdout)] if args.verbose > 0 else []
    model.set_logger(Logger(folder=None, output_formats=formats))
    model.learn(args.timesteps)

    policy = policy_model(model.policy).eval()
    args.out_dir.mkdir(parents=True, exist_ok=True)
    save_weights(args.out_dir, policy)
    atomic_write_text(args.out_dir / "model.json", json.dumps(policy.config.to_dict(), indent=2))

    levels = np.linspace(0.0, 2.0 * args.sigma if args.sigma > 0 else 1.0, 9)
    result = sweep_noise(policy, task, levels, episodes=args.episodes, seed=args.seed)
    label = f"rl noise-{args.placement}"
    for metric in ("success", "path_efficiency"):
        print(summary_table({label: result}, metric=metric))
        print(preference_table({label: preference(result, metric)}, {label: args.sigma}))
    at_sigma = int(np.argmin(np.abs(levels - args.sigma)))
    success = result.values("success").mean(1)
    print(f"success at the training noise {args.sigma}: {success[at_sigma]:.3f}")
    result.to_csv(args.out_dir / "sweep.csv")


if __name__ == "__main__":
    main()
