"""Ensemble throughput: K CTRNNs trained as one program against training them one after another.

Network-iterations per second (K members x iterations / time) of
:func:`agents.ensemble_training.train_ensemble` at K = 1, 4, 16, 64, against our single-network
trainer :func:`agents.supervised.train`, whose rate is also the rate of training K networks one
after another (K runs take K times one run's time; it is measured once per size, side by side).
All train relu CTRNNs with noise inside f on the function-approximation task (x ~ U(-1, 1) shown
for 50 steps, target sin(pi x) over the last 20), Adam with gradient clipping.

When ``jax`` and ``optax`` are installed (``pip install -e .[bench]``) the same training written in
JAX (``lax.scan`` under ``jit``, optax Adam with clipping, the batch and noise drawn in JAX) is timed
beside ours as a compiled reference, one network. Set ``XLA_FLAGS=--xla_cpu_multi_thread_eigen=false``
(done here unless XLA_FLAGS is set) so that it too runs on one thread.

On a GPU, ``--device cuda --gpu-table`` prints instead seconds per iteration of 32-unit networks,
batch 64: the plain PyTorch tutorial loop (``benchmarks/train_throughput.py``'s), our single-network
trainer, and a 50-network ensemble, eager and with each iteration captured as a CUDA graph
(``train_ensemble(capture=True)``), with the captured ensemble's time over one network's (the
target: at most 2).

Run ``python benchmarks/ensemble_throughput.py --help`` for the options; ``--quick`` is a short run.
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import time
from collections.abc import Callable, Sequence

import torch

from agents.ctrnn import CTRNN, CTRNNConfig
from agents.ensemble import CTRNNEnsemble
from agents.ensemble_training import train_ensemble
from agents.supervised import TrainConfig, train
from noise_envs import make_task

from _shared import machine_description, positive_int  # benchmarks/_shared.py beside this script
from train_throughput import PlainLoop  # the tutorial loop, benchmarks/train_throughput.py

GPU_TABLE_HIDDEN, GPU_TABLE_BATCH, GPU_TABLE_MEMBERS = 32, 64, 50
"""The GPU table's sizes: units per network, episodes per network and iteration, members."""
GPU_TABLE_TARGET = 2.0
"""The captured ensemble's seconds per iteration over one network's that the GPU table aims at."""

STEPS, RESPONSE_STEPS = 50, 20
"""Steps per episode of the benchmark task, and the scored steps at its end."""
DT, TAU = 10.0, 100.0
"""Time step and time constant in ms (gamma = 0.1)."""

Runner = Callable[[int], None]
"""Trains a given number of iterations."""


def _task():
    return make_task("NoisyFunctionApprox-v0", steps=STEPS, response_steps=RESPONSE_STEPS)


def _config(hidden: int) -> CTRNNConfig:
    return CTRNNConfig(input_size=1, output_size=1, hidden_size=hidden, dt=DT, tau=TAU)


def _train_config(iterations: int, batch: int, args: argparse.Namespace, seed: int) -> TrainConfig:
    return TrainConfig(
        sigma=args.sigma,
        iterations=iterations,
        batch_size=batch,
        learning_rate=args.learning_rate,
        grad_clip=args.grad_clip,
        seed=seed,
    )


def single_runner(hidden: int, batch: int, args: argparse.Namespace) -> Runner:
    """Our trainer on one network (a fresh seed per call, so no call repeats another)."""
    task, model, calls = _task(), CTRNN(_config(hidden)), [0]

    def run(iterations: int) -> None:
        calls[0] += 1
        config = _train_config(iterations, batch, args, calls[0])
        train(model, task, config, device=args.device, progress=False)

    return run


def ensemble_runner(
    members: int, hidden: int, batch: int, args: argparse.Namespace, capture: bool = False
) -> Runner:
    """Our ensemble trainer on ``members`` networks, each with its own seed.

    ``capture``: each iteration one captured program (a CUDA graph on CUDA).
    """
    task, calls = _task(), [0]
    ensemble = CTRNNEnsemble.from_seeds(_config(hidden), range(members))

    def run(iterations: int) -> None:
        calls[0] += 1
        seeds = [calls[0] * members + k for k in range(members)]
        config = _train_config(iterations, batch, args, 0)
        train_ensemble(
            ensemble, task, config, seeds=seeds, device=args.device, progress=False, capture=capture
        )

    return run


def jax_runner(hidden: int, batch: int, args: argparse.Namespace) -> Runner | None:
    """The same training in JAX (``lax.scan`` under ``jit``, optax Adam, clipping), or None."""
    try:
        import jax
        import jax.numpy as jnp
        import optax
    except ImportError:
        return None
    gamma, sigma = DT / TAU, args.sigma
    keys = jax.random.split(jax.random.PRNGKey(0), 4)
    params = {
        "W": jax.random.normal(keys[0], (hidden, hidden)) * 0.9 / math.sqrt(hidden),
        "U": jax.random.normal(keys[1], (hidden, 1)),
        "b": jnp.zeros(hidden),
        "W_out": jax.random.normal(keys[2], (1, hidden)) / math.sqrt(hidden),
        "b_out": jnp.zeros(1),
    }

    def loss_fn(params, key):
        key_x, key_noise = jax.random.split(key)
        x = jax.random.uniform(key_x, (batch, 1), minval=-1.0, maxval=1.0)
        noise = sigma * jax.random.normal(key_noise, (STEPS, batch, hidden))
        drive = x @ params["U"].T + params["b"]

        def step(h, xi):
            h = (1 - gamma) * h + gamma * jax.nn.relu(h @ params["W"].T + drive + xi)
            return h, h

        _, states = jax.lax.scan(step, jnp.zeros((batch, hidden)), noise)
        outputs = states[-RESPONSE_STEPS:] @ params["W_out"].T + params["b_out"]
        return jnp.mean((outputs - jnp.sin(jnp.pi * x)) ** 2)

    optimizer = optax.chain(
        optax.clip_by_global_norm(args.grad_clip), optax.adam(args.learning_rate)
    )

    @jax.jit
    def update(params, state, key):
        key, sub = jax.random.split(key)
        loss, grads = jax.value_and_grad(loss_fn)(params, sub)
        updates, state = optimizer.update(grads, state, params)
        return optax.apply_updates(params, updates), state, key, loss

    carry = [params, optimizer.init(params), keys[3]]

    def run(iterations: int) -> None:
        loss = None
        for _ in range(iterations):
            carry[0], carry[1], carry[2], loss = update(*carry)
        jax.block_until_ready(loss)

    return run


def time_rounds(
    runners: dict[str, tuple[Runner, int, int]],
    warmup: int,
    rounds: int,
    clock: Callable[[], float],
) -> dict[str, list[float]]:
    """Warm up, then ``rounds`` interleaved rounds; network-iterations/s per round.

    ``runners`` maps a name to (runner, networks it trains, iterations per round).
    """
    for run, _, _ in runners.values():
        run(warmup)
    speeds: dict[str, list[float]] = {name: [] for name in runners}
    for _ in range(rounds):
        for name, (run, networks, iterations) in runners.items():
            tick = clock()
            run(iterations)
            speeds[name].append(networks * iterations / (clock() - tick))
    return speeds


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The command-line options."""
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    parser.add_argument("--hidden-sizes", type=positive_int, nargs="+", default=[32, 64, 128, 256])
    parser.add_argument("--batch-sizes", type=positive_int, nargs="+", default=[64, 128])
    parser.add_argument("--members", type=positive_int, nargs="+", default=[1, 4, 16, 64])
    parser.add_argument(
        "--network-iterations",
        type=positive_int,
        default=32,
        help="network-iterations per round and runner (an ensemble of K runs this / K, >= 2)",
    )
    parser.add_argument("--rounds", type=positive_int, default=3, help="interleaved rounds")
    parser.add_argument("--warmup", type=positive_int, default=2, help="untimed iterations first")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="a short run: 32 and 128 units, batch 64, K = 1, 4, 16, 2 rounds of 16",
    )
    parser.add_argument("--sigma", type=float, default=0.5, help="training noise (inside f)")
    parser.add_argument("--learning-rate", type=float, default=3e-3)
    parser.add_argument("--grad-clip", type=float, default=1.0)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (0: torch's default)")
    parser.add_argument("--clock", choices=("wall", "cpu"), default="cpu")
    parser.add_argument("--no-jax", action="store_true", help="skip the JAX reference")
    parser.add_argument(
        "--gpu-table",
        action="store_true",
        help=f"with --device cuda: seconds per iteration of the plain PyTorch loop, our single "
        f"network and a K={GPU_TABLE_MEMBERS} ensemble, eager and captured ({GPU_TABLE_HIDDEN} "
        f"units, batch {GPU_TABLE_BATCH}; wall clock)",
    )
    parser.add_argument(
        "--gpu-iterations",
        type=positive_int,
        default=20,
        help="--gpu-table: each round times n and 3n iterations per runner",
    )
    args = parser.parse_args(argv)
    if args.gpu_table and torch.device(args.device).type != "cuda":
        parser.error(f"--gpu-table times CUDA training: give --device cuda (got {args.device!r})")
    if args.gpu_table and not torch.cuda.is_available():
        parser.error(
            f"--gpu-table needs a CUDA device, but torch {torch.__version__} sees none "
            "(torch.cuda.is_available() is False)"
        )
    if args.quick:
        args.hidden_sizes, args.batch_sizes, args.members = [32, 128], [64], [1, 4, 16]
        args.rounds, args.network_iterations = 2, 16
    return args


def _row(cells: Sequence[str]) -> str:
    widths = (6, 5, 3, 13, 13, 7, 10, 9)
    return "  ".join(cell.rjust(width) for cell, width in zip(cells, widths, strict=True))


def main(argv: Sequence[str] | None = None) -> None:
    """Print the table: ensemble vs. one after another (and JAX), per size, batch and K."""
    os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false")
    args = parse_args(argv)
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    clock = time.perf_counter if args.clock == "wall" else time.process_time
    print(f"machine: {machine_description(args.device)}")
    print(f"uptime: {os.popen('uptime').read().strip()}")
    if args.gpu_table:
        gpu_table(args)
        return
    print(
        f"task: x ~ U(-1, 1) for {STEPS} steps, target sin(pi x) over the last {RESPONSE_STEPS}; "
        f"relu, noise in, sigma {args.sigma}, Adam lr {args.learning_rate}, clip {args.grad_clip}"
    )
    print(
        f"{args.clock} clock, best of {args.rounds} interleaved rounds (median in brackets); "
        "net-it/s = networks x iterations / s; 'one by one' = our trainer on one network, "
        "the rate of training K networks one after another\n"
    )
    print(
        _row(["hidden", "batch", "K", "ensemble", "one by one", "ratio", "JAX (1 net)", "ens/JAX"])
    )
    for hidden in args.hidden_sizes:
        for batch in args.batch_sizes:
            _measure(hidden, batch, args, clock)


def gpu_table(args: argparse.Namespace) -> None:
    """Print seconds per iteration on the GPU and the captured ensemble's ratio to one network.

    Each round times every runner over ``n`` and then ``3 n`` iterations; the difference over
    ``2 n`` is the time an iteration adds (the steady state of a long run), the rest the setup
    of a call (the trainer's, and the capture). Best of the rounds (median in brackets).
    """
    torch.manual_seed(0)  # the plain loop draws from torch's global generator, as tutorials do
    hidden, batch, members = GPU_TABLE_HIDDEN, GPU_TABLE_BATCH, GPU_TABLE_MEMBERS
    one, captured = "ours, one network", f"ours, K={members} captured"
    runners: dict[str, tuple[Runner, int]] = {
        "plain PyTorch loop": (PlainLoop(hidden, batch, args), 1),
        one: (single_runner(hidden, batch, args), 1),
        f"ours, K={members} eager": (ensemble_runner(members, hidden, batch, args), members),
        captured: (ensemble_runner(members, hidden, batch, args, capture=True), members),
    }
    n = args.gpu_iterations
    per_iteration: dict[str, list[float]] = {name: [] for name in runners}
    setup: dict[str, list[float]] = {name: [] for name in runners}
    for run, _ in runners.values():
        run(args.warmup)
    for _ in range(args.rounds):
        for name, (run, _) in runners.items():
            short, long = _cuda_seconds(run, n), _cuda_seconds(run, 3 * n)
            per_iteration[name].append((long - short) / (2 * n))
            setup[name].append(short - n * per_iteration[name][-1])
    print(
        f"task as above, {hidden} units, batch {batch} per network; wall clock, CUDA synchronized; "
        f"best of {args.rounds} rounds of {n} and {3 * n} iterations (median in brackets)\n"
    )
    print(f"{'trainer':>24}  {'networks':>8}  {'s / iteration':>19}  {'setup s / call':>15}")
    for name, (_, networks) in runners.items():
        print(
            f"{name:>24}  {networks:>8}  {min(per_iteration[name]):8.5f} "
            f"({statistics.median(per_iteration[name]):8.5f})  {min(setup[name]):15.3f}"
        )
    ratio = min(per_iteration[captured]) / min(per_iteration[one])
    verdict = "met" if ratio <= GPU_TABLE_TARGET else "missed"
    print(
        f"\n{captured} / {one}: {ratio:.2f} per iteration "
        f"(target <= {GPU_TABLE_TARGET:g}: {verdict})"
    )


def _cuda_seconds(run: Runner, iterations: int) -> float:
    """Wall-clock seconds of ``run(iterations)``, the GPU's queue drained before and after."""
    torch.cuda.synchronize()
    tick = time.perf_counter()
    run(iterations)
    torch.cuda.synchronize()
    return time.perf_counter() - tick


def _measure(hidden: int, batch: int, args: argparse.Namespace, clock) -> None:
    n_it = args.network_iterations
    runners: dict[str, tuple[Runner, int, int]] = {
        "single": (single_runner(hidden, batch, args), 1, n_it)
    }
    reference = None if args.no_jax else jax_runner(hidden, batch, args)
    if reference is not None:
        runners["jax"] = (reference, 1, n_it)
    for k in args.members:
        runners[f"K{k}"] = (ensemble_runner(k, hidden, batch, args), k, max(2, n_it // k))
    speeds = time_rounds(runners, args.warmup, args.rounds, clock)
    single = max(speeds["single"])
    jax_speed = max(speeds["jax"]) if "jax" in speeds else None
    for k in args.members:
        ours = max(speeds[f"K{k}"])
        cells = [
            str(hidden),
            str(batch),
            str(k),
            f"{ours:.0f} ({statistics.median(speeds[f'K{k}']):.0f})",
            f"{single:.0f} ({statistics.median(speeds['single']):.0f})",
            f"{ours / single:.2f}",
            "-" if jax_speed is None else f"{jax_speed:.0f}",
            "-" if jax_speed is None else f"{ours / jax_speed:.2f}",
        ]
        print(_row(cells), flush=True)


if __name__ == "__main__":
    main()
