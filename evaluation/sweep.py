"""The noise sweep: evaluate a policy across test noise levels with common random numbers.

All levels x all episodes run as one batched closed-loop rollout (row ``l * E + e`` is level ``l``,
episode ``e``). The task's randomness and the policy's noise are drawn once per episode and tiled
across the level blocks, so episode ``e`` sees the same trial, the same observation noise and the
same noise samples ``xi`` at every level: differences between levels are then differences of the
noise level alone, which is what makes the paired statistics in :mod:`evaluation.stats` sharp.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable, Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from agents.ensemble import CTRNNEnsemble
from agents.policy import Policy
from agents.rollout import rollout
from evaluation.sweep_result import (
    SweepResult,
    check_levels,
    check_seed,
)
from noise_envs._checks import check_positive_int
from noise_envs.core import Task
from noise_envs.random import RandomSource

__all__ = ["check_finite_metrics", "sweep_noise"]


def sweep_noise(
    policy: Policy,
    task: Task,
    levels: Sequence[float] | np.ndarray | torch.Tensor,
    *,
    episodes: int = 256,
    seed: int = 0,
    device: torch.device | str = "cpu",
    max_rows: int = 65536,
    progress: bool = False,
) -> SweepResult:
    """Evaluate ``policy`` on ``task`` at every test noise level, with common random numbers.

    All ``L`` levels x ``episodes`` run as one rollout with per-row sigma
    ``levels.repeat_interleave(E)``; the task's randomness and the policy's noise come from
    sources tiled over the ``L`` level blocks, so episode ``e`` gets the same random numbers at
    every level. Runs under ``torch.no_grad()``.

    When ``L * episodes > max_rows`` the episodes are split into chunks, each holding every level
    (so common random numbers hold within each chunk), run one after another. Chunk ``c`` draws
    its randomness from generators seeded by ``numpy.random.SeedSequence((seed, c))``: the result
    depends on ``seed`` and on the chunking, and a different ``max_rows`` gives other (equally
    valid) episodes, not a different distribution. A deterministic policy on a deterministic task
    gives identical results for any chunking.

    Args:
        policy: anything speaking the :class:`~agents.policy.Policy` protocol.
        task: the batched simulator.
        levels: test noise levels ``[L]``, finite and >= 0; sorted ascending if they are not.
        episodes: episodes per level E.
        seed: seed of every random number of the sweep.
        device: where to run the rollout; the results are numpy arrays on the CPU.
        max_rows: the most rows (levels x episodes) per rollout.
        progress: show a progress bar over the chunks.

    Returns:
        The per-episode metrics ``[L, E]`` of every metric the task reports.

    Raises:
        ValueError: for bad arguments (an ensemble: use
            :func:`~evaluation.ensemble_sweep.sweep_ensemble`), and when a metric is NaN or
            infinite at some level (the model's outputs are not finite), naming the metric and
            those levels.

    Example:
        >>> from agents import CTRNN, CTRNNConfig
        >>> from noise_envs import make_task
        >>> task = make_task("NoisyFunctionApprox-v0", steps=5, response_steps=2)
        >>> model = CTRNN(CTRNNConfig(input_size=1, output_size=1, hidden_size=4))
        >>> result = sweep_noise(model, task, [0.0, 0.5], episodes=3)
        >>> result.values("mse").shape
        (2, 3)
    """
    if isinstance(policy, CTRNNEnsemble):
        raise ValueError(
            f"`policy` is a CTRNNEnsemble of {policy.num_members} members, whose episodes "
            "sweep_noise would pool into one result: sweep it with "
            "evaluation.sweep_ensemble (one SweepResult per member, in one rollout)"
        )
    levels = check_levels(levels)
    check_positive_int("episodes", episodes)
    check_positive_int("max_rows", max_rows)
    seed = check_seed(seed)
    chunks = _chunk_sizes(levels.size, episodes, max_rows)
    sigma = torch.as_tensor(levels, dtype=torch.float32, device=device)
    metrics = _run_chunks(
        chunks,
        lambda chunk, size: _run_chunk(
            policy, task, sigma, size, _chunk_seeds(seed, chunk), device
        ),
        desc="noise sweep",
        progress=progress,
        axis=1,
    )
    directions = _directions(task, metrics)
    metrics = {name: values for name, values in metrics.items() if name in directions}
    check_finite_metrics(metrics, levels)
    return SweepResult(
        task_id=task.id,
        levels=levels,
        metrics=metrics,
        metric_directions=directions,
        primary_metric=task.primary_metric,
        seed=seed,
    )


def _run_chunk(
    policy: Policy,
    task: Task,
    sigma: torch.Tensor,
    episodes: int,
    seeds: tuple[int, int],
    device: torch.device | str,
) -> dict[str, np.ndarray]:
    """One rollout of every level x ``episodes``; returns ``{name: [L, episodes]}``."""
    num_levels = sigma.shape[0]
    env_rng, noise = (
        RandomSource(torch.Generator().manual_seed(s), repeats=num_levels, device=device)
        for s in seeds
    )
    result = rollout(
        policy,
        task,
        num_levels * episodes,
        sigma=sigma.repeat_interleave(episodes),
        env_rng=env_rng,
        noise=noise,
        device=device,
    )
    return {
        name: value.detach().to("cpu", torch.float64).numpy().reshape(num_levels, episodes)
        for name, value in result.metrics.items()
    }


def check_finite_metrics(metrics: dict[str, np.ndarray], levels: np.ndarray) -> None:
    """Refuse a sweep whose metrics ``{name: [L, E]}`` hold NaN or infinite values.

    A diverged model (NaN weights) or activity that overflows at high noise gives NaN metrics,
    whose means would silently make the first level the best one.

    Raises:
        ValueError: naming the first such metric and the levels where it is not finite.
    """
    for name, values in metrics.items():
        bad = ~np.isfinite(values).all(axis=1)
        if bad.any():
            shown = ", ".join(f"{level:g}" for level in levels[bad][:8])
            more = f" ({int(bad.sum())} of {levels.size} levels)" if bad.sum() > 8 else ""
            raise ValueError(
                f"the model's outputs are not finite: metric {name!r} is NaN or infinite at "
                f"levels [{shown}]{more}; check the model's weights for NaN/inf (a diverged "
                "training) or sweep lower noise levels"
            )


def _directions(task: Task, names: Iterable[str]) -> dict[str, bool]:
    """Whether higher is better for each reported metric; undeclared ones are dropped."""
    declared = {metric.name: metric.higher_is_better for metric in task.metrics}
    undeclared = [name for name in names if name not in declared]
    if undeclared:
        warnings.warn(
            f"{task.id} reports metrics {undeclared} that it does not declare in `metrics` "
            "(so their direction is unknown); they are left out of the sweep",
            UserWarning,
            stacklevel=3,
        )
    return {name: declared[name] for name in names if name in declared}


def _chunk_sizes(num_levels: int, episodes: int, max_rows: int) -> list[int]:
    """Episodes per chunk: as many as fit ``max_rows`` rows with every level, at least one."""
    per_chunk = max_rows // num_levels
    if per_chunk == 0:
        warnings.warn(
            f"{num_levels} levels exceed `max_rows` ({max_rows}); running one episode per level "
            f"per chunk ({num_levels} rows); raise `max_rows` to at least {num_levels}",
            UserWarning,
            stacklevel=3,
        )
        per_chunk = 1
    full, rest = divmod(episodes, per_chunk)
    return [per_chunk] * full + ([rest] if rest else [])


def _run_chunks(
    chunks: list[int],
    run_chunk: Callable[[int, int], dict[str, np.ndarray]],
    *,
    desc: str,
    progress: bool,
    axis: int,
) -> dict[str, np.ndarray]:
    """``run_chunk(chunk, size)`` for every chunk, without gradients, joined along ``axis``."""
    parts: list[dict[str, np.ndarray]] = []
    with torch.no_grad():
        for chunk, size in enumerate(tqdm(chunks, desc=desc, disable=None if progress else True)):
            parts.append(run_chunk(chunk, size))
    return {name: np.concatenate([part[name] for part in parts], axis=axis) for name in parts[0]}


def _chunk_seeds(seed: int, chunk: int) -> tuple[int, int]:
    """Seeds of the task's and the policy's generators for chunk ``chunk``."""
    env_seed, noise_seed = np.random.SeedSequence((seed, chunk)).generate_state(2, np.uint64)
    return int(env_seed), int(noise_seed)
