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


def ensemble_runner(members: int, hidden: int, batch: int, args: argparse.Namespace) -> Runner:
    """Our ensemble trainer on ``members`` networks, each with its own seed."""
    task, calls = _task(), [0]
    ensemble = CTRNNEnsemble.from_seeds(_config(hidden), range(members))

    def run(iterations: int) -> None:
        calls[0] += 1
        seeds = [calls[0] * members + k for k in range(members)]
        config = _train_config(iterations, batch, args, 0)
        train_ensemble(ensemble, task, config, seeds=seeds, device=args.device, progress=False)

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
    args = parser.parse_args(argv)
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
