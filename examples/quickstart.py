"""Train a noise-in CTRNN on function approximation, sweep its test noise, print its preference.

Run: python examples/quickstart.py [--sigma 0.5] [--iterations 400] [--device cpu]
"""

import argparse

import gymnasium
import torch

from agents import CTRNN, CTRNNConfig, TrainConfig, train
from evaluation import plot_sweep, preference, preference_table, save_figure, sweep_noise
from noise_envs import make_task


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sigma", type=float, default=0.5, help="training noise level")
    parser.add_argument("--iterations", type=int, default=400, help="training iterations")
    parser.add_argument("--device", default="cpu", help="torch device")
    parser.add_argument("--out", default="quickstart.png", help="where to write the plot")
    args = parser.parse_args()

    # The Gymnasium view of the task (importing noise_envs registered it)...
    env = gymnasium.make("NoisyFunctionApprox-v0")
    obs, info = env.reset(seed=0)
    print("one episode's observation:", obs, "teacher target:", info["target"])

    # ...and the batched simulator behind the same id, for the fast paths.
    task = make_task("NoisyFunctionApprox-v0")
    config = CTRNNConfig(input_size=task.obs_size, output_size=task.action_size, hidden_size=32)
    model = CTRNN(config, generator=torch.Generator().manual_seed(0))
    train(
        model,
        task,
        TrainConfig(sigma=args.sigma, iterations=args.iterations, batch_size=64),
        device=args.device,
    )

    levels = torch.linspace(0.0, 2.0 * args.sigma, 17)
    result = sweep_noise(model, task, levels, episodes=256, device=args.device)
    print(preference_table({"noise-in": preference(result)}, {"noise-in": args.sigma}))
    save_figure(plot_sweep({"noise-in": result}, train_sigma=args.sigma), args.out)
    print("wrote", args.out)


if __name__ == "__main__":
    main()
