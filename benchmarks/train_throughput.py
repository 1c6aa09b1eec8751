"""Training throughput: our BPTT trainer against a plain-PyTorch tutorial CTRNN loop.

Both train a CTRNN of the same size on the same function-approximation task (x ~ U(-1, 1) shown
for 50 steps, target sin(pi x) over the last 20), with the same batch, learning rate, Adam and
gradient clipping, at the same training noise. Ours is :func:`agents.supervised.train`, which takes
the open-loop task's whole episodes and runs the model over them as one sequence
(:func:`agents.rollout.teacher_loss`); the plain loop is
the neurogym / Yang-lab tutorial CTRNN (``input2h``, ``h2h``, ``recurrence``, a Python loop over
time, ``torch.stack``, a linear read-out, masked MSE). The two are measured side by side in one
process, in interleaved rounds, after a warm-up; the table gives iterations per second (best
round) and the ratio ours / plain.

Run ``python benchmarks/train_throughput.py --help`` for the options.
"""

from __future__ import annotations

import argparse
import math
import statistics
import time
from collections.abc import Callable, Sequence

import torch
from torch import nn

from agents.ctrnn import CTRNN, CTRNNConfig
from agents.supervised import TrainConfig, train
from noise_envs import make_task

from _shared import machine_description, positive_int  # benchmarks/_shared.py beside this script

STEPS = 50
"""Steps per episode of the benchmark task."""
RESPONSE_STEPS = 20
"""Scored steps at the end of each episode."""
DT, TAU = 10.0, 100.0
"""Time step and time constant in ms (alpha = gamma = 0.1 for both models)."""


class TutorialCTRNN(nn.Module):
    """The tutorial's CTRNN: ``h <- h (1 - alpha) + alpha relu(W_in x + W h + sigma xi)``."""

    def __init__(self, input_size: int, hidden_size: int, sigma: float, dt: float = DT) -> None:
        super().__init__()
        self.hidden_size = hidden_size
        self.alpha = dt / TAU
        self.sigma = sigma
        self.input2h = nn.Linear(input_size, hidden_size)
        self.h2h = nn.Linear(hidden_size, hidden_size)

    def init_hidden(self, input_shape: torch.Size) -> torch.Tensor:
        """Zeros ``[B, N]`` for inputs ``[T, B, I]``."""
        return torch.zeros(input_shape[1], self.hidden_size)

    def recurrence(self, input: torch.Tensor, hidden: torch.Tensor) -> torch.Tensor:
        """One Euler step with noise inside the activation."""
        noise = self.sigma * torch.randn_like(hidden)
        h_new = torch.relu(self.input2h(input) + self.h2h(hidden) + noise)
        return hidden * (1 - self.alpha) + h_new * self.alpha

    def forward(self, input: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Hidden states ``[T, B, N]`` and the last one ``[B, N]``."""
        hidden = self.init_hidden(input.shape).to(input.device)
        output = []
        for i in range(input.size(0)):
            hidden = self.recurrence(input[i], hidden)
            output.append(hidden)
        return torch.stack(output, dim=0), hidden


class TutorialNet(nn.Module):
    """The tutorial's ``RNNNet``: the CTRNN and a linear read-out ``fc``."""

    def __init__(self, input_size: int, hidden_size: int, output_size: int, sigma: float) -> None:
        super().__init__()
        self.rnn = TutorialCTRNN(input_size, hidden_size, sigma)
        self.fc = nn.Linear(hidden_size, output_size)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Outputs ``[T, B, O]`` and hidden states ``[T, B, N]``."""
        rnn_output, _ = self.rnn(x)
        return self.fc(rnn_output), rnn_output


def tutorial_batch(
    batch_size: int, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Inputs ``[T, B, 1]``, targets and the response-window mask, generated in torch."""
    x = torch.rand(batch_size, 1, device=device) * 2 - 1
    inputs = x.repeat(STEPS, 1, 1)
    target = torch.sin(math.pi * x).repeat(STEPS, 1, 1)
    mask = torch.zeros(STEPS, batch_size, 1, device=device)
    mask[STEPS - RESPONSE_STEPS :] = 1.0
    return inputs, target, mask


class PlainLoop:
    """The tutorial training loop: batch, forward, masked MSE, backward, clip, Adam step."""

    def __init__(self, hidden_size: int, batch_size: int, args: argparse.Namespace) -> None:
        self.device = torch.device(args.device)
        self.net = TutorialNet(1, hidden_size, 1, args.sigma).to(self.device)
        self.optimizer = torch.optim.Adam(self.net.parameters(), lr=args.learning_rate)
        self.batch_size = batch_size
        self.grad_clip = args.grad_clip

    def __call__(self, iterations: int) -> None:
        """Train ``iterations`` steps."""
        running_loss = 0.0
        for _ in range(iterations):
            inputs, target, mask = tutorial_batch(self.batch_size, self.device)
            output, _ = self.net(inputs)
            loss = ((output - target) ** 2 * mask).sum() / mask.sum()
            self.optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(self.net.parameters(), self.grad_clip)
            self.optimizer.step()
            running_loss += loss.item()


class OurTrainer:
    """:func:`agents.supervised.train` on the batched task, no run folder, no progress bar."""

    def __init__(self, hidden_size: int, batch_size: int, args: argparse.Namespace) -> None:
        self.task = make_task("NoisyFunctionApprox-v0", steps=STEPS, response_steps=RESPONSE_STEPS)
        config = CTRNNConfig(input_size=1, output_size=1, hidden_size=hidden_size, dt=DT, tau=TAU)
        self.model = CTRNN(config)
        self.args = args
        self.batch_size = batch_size
        self.calls = 0

    def __call__(self, iterations: int) -> None:
        """Train ``iterations`` steps (a fresh seed per call, so no call repeats another)."""
        self.calls += 1
        config = TrainConfig(
            sigma=self.args.sigma,
            iterations=iterations,
            batch_size=self.batch_size,
            learning_rate=self.args.learning_rate,
            grad_clip=self.args.grad_clip,
            seed=self.calls,
        )
        train(self.model, self.task, config, run_dir=None, device=self.args.device, progress=False)


def time_rounds(
    runners: dict[str, Callable[[int], None]],
    iterations: int,
    warmup: int,
    rounds: int,
    clock: Callable[[], float],
) -> dict[str, list[float]]:
    """Warm every runner up, then time ``rounds`` interleaved rounds; iterations/s per round."""
    for run in runners.values():
        run(warmup)
    speeds: dict[str, list[float]] = {name: [] for name in runners}
    for _ in range(rounds):
        for name, run in runners.items():
            tick = clock()
            run(iterations)
            speeds[name].append(iterations / (clock() - tick))
    return speeds


def format_row(cells: Sequence[str]) -> str:
    """One right-aligned row of the results table."""
    return "  ".join(cell.rjust(width) for cell, width in zip(cells, COLUMN_WIDTHS, strict=True))


COLUMN_WIDTHS = (6, 5, 17, 17, 10)
"""Widths of the table's columns: hidden, batch, ours, plain, ratio."""


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The command-line options."""
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "--hidden-sizes",
        type=positive_int,
        nargs="+",
        default=[32, 64, 128, 256],
        help="CTRNN units N",
    )
    parser.add_argument(
        "--batch-sizes",
        type=positive_int,
        nargs="+",
        default=[64, 128],
        help="episodes per iteration",
    )
    parser.add_argument(
        "--iterations", type=positive_int, default=10, help="iterations timed per round and runner"
    )
    parser.add_argument("--rounds", type=positive_int, default=3, help="interleaved timing rounds")
    parser.add_argument("--warmup", type=positive_int, default=3, help="untimed iterations first")
    parser.add_argument("--sigma", type=float, default=0.1, help="training noise (inside f)")
    parser.add_argument("--learning-rate", type=float, default=3e-3, help="Adam's, for both")
    parser.add_argument("--grad-clip", type=float, default=1.0, help="max gradient norm")
    parser.add_argument("--device", default="cpu", help="where both train")
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch.set_num_threads for both loops (None keeps torch's default)",
    )
    parser.add_argument(
        "--clock",
        choices=("wall", "cpu"),
        default="wall",
        help="wall: elapsed time; cpu: this process's CPU time, steadier on a shared machine "
        "(use it with --threads 1, where no thread waits or spins)",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)  # the plain loop draws from torch's global generator, as tutorials do
    clock = time.perf_counter if args.clock == "wall" else time.process_time
    print(f"machine: {machine_description(args.device)}")
    print(
        f"task: x ~ U(-1, 1) for {STEPS} steps, target sin(pi x) over the last {RESPONSE_STEPS}; "
        f"relu CTRNN, noise inside f, sigma {args.sigma}, alpha {DT / TAU:g}, Adam "
        f"lr {args.learning_rate}, clip {args.grad_clip}"
    )
    print(
        f"timing: {args.clock} clock; {args.warmup} warm-up iterations, then {args.rounds} "
        f"interleaved rounds of {args.iterations} iterations each; it/s of the best round "
        "(median in brackets)\n"
    )
    print(format_row(["hidden", "batch", "ours it/s", "plain it/s", "ours/plain"]))
    print(format_row(["-" * width for width in COLUMN_WIDTHS]))
    for hidden in args.hidden_sizes:
        for batch in args.batch_sizes:
            runners = {
                "ours": OurTrainer(hidden, batch, args),
                "plain": PlainLoop(hidden, batch, args),
            }
            speeds = time_rounds(runners, args.iterations, args.warmup, args.rounds, clock)
            ours, plain = max(speeds["ours"]), max(speeds["plain"])
            cells = [
                str(hidden),
                str(batch),
                f"{ours:.1f} ({statistics.median(speeds['ours']):.1f})",
                f"{plain:.1f} ({statistics.median(speeds['plain']):.1f})",
                f"{ours / plain:.2f}",
            ]
            print(format_row(cells), flush=True)


if __name__ == "__main__":
    main()
