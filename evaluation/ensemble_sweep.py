"""The noise sweep of an ensemble: K members x L levels x E episodes in one rollout.

Row ``k * L * E + l * E + e`` is member ``k``, level ``l``, episode ``e``. Within a member the
random numbers are common across levels, as in :func:`evaluation.sweep.sweep_noise`; across
members they are common too when every member is swept with one seed (the same episodes and noise
for every member, so members compare pairwise), or each member's own with one seed per member.
Either way member ``k``'s result is what ``sweep_noise(ensemble.member(k), ..., seed=its seed)``
gives, up to float rounding.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from agents.ensemble import BlockRandomSource, CTRNNEnsemble
from agents.rollout import rollout
from evaluation.sweep import (
    _chunk_seeds,
    _chunk_sizes,
    _directions,
    _run_chunks,
    check_finite_metrics,
)
from evaluation.sweep_result import SweepResult, check_levels, check_seed
from noise_envs._checks import check_positive_int
from noise_envs.core import Task
from noise_envs.random import RandomSource

__all__ = ["sweep_ensemble"]


def sweep_ensemble(
    ensemble: CTRNNEnsemble,
    task: Task,
    levels: Sequence[float] | np.ndarray | torch.Tensor,
    *,
    episodes: int = 256,
    seed: int | Sequence[int] = 0,
    device: torch.device | str = "cpu",
    max_rows: int = 65536,
    progress: bool = False,
) -> list[SweepResult]:
    """Sweep every member of ``ensemble`` on ``task`` at every test noise level in one rollout.

    Args:
        ensemble: the K members.
        task: the batched simulator.
        levels: test noise levels ``[L]``, finite and >= 0; sorted ascending if they are not.
        episodes: episodes per member and level E.
        seed: one seed for every member (common random numbers across members: every member
            meets the same episodes and noise samples), or one seed per member.
        device: where to run the rollout; the results are numpy arrays on the CPU.
        max_rows: the most rows (levels x episodes) per member and rollout; chunks are cut as
            :func:`~evaluation.sweep.sweep_noise` cuts them, so its results are reproduced.
        progress: show a progress bar over the chunks.

    Returns:
        One :class:`~evaluation.sweep_result.SweepResult` per member, in member order.

    Raises:
        ValueError: if a member's metrics are NaN or infinite (a diverged member), naming the
            member, the metric and the levels.

    Example:
        >>> from agents import CTRNNConfig
        >>> from noise_envs import make_task
        >>> task = make_task("NoisyFunctionApprox-v0", steps=5, response_steps=2)
        >>> config = CTRNNConfig(input_size=1, output_size=1, hidden_size=4)
        >>> ensemble = CTRNNEnsemble.from_seeds(config, [0, 1], ["in", "out"])
        >>> results = sweep_ensemble(ensemble, task, [0.0, 0.5], episodes=3)
        >>> [result.values("mse").shape for result in results]
        [(2, 3), (2, 3)]
    """
    if not isinstance(ensemble, CTRNNEnsemble):
        raise ValueError(f"`ensemble` must be a CTRNNEnsemble, got {type(ensemble).__name__}")
    levels = check_levels(levels)
    check_positive_int("episodes", episodes)
    check_positive_int("max_rows", max_rows)
    seeds = _member_seeds(seed, ensemble.num_members)
    chunk_seeds = seeds if seeds is not None else check_seed(seed)
    chunks = _chunk_sizes(levels.size, episodes, max_rows)
    sigma = torch.as_tensor(levels, dtype=torch.float32, device=device)
    metrics = _run_chunks(
        chunks,
        lambda chunk, size: _run_chunk(ensemble, task, sigma, size, chunk_seeds, chunk, device),
        desc="ensemble sweep",
        progress=progress,
        axis=2,
    )
    directions = _directions(task, metrics)
    for k in range(ensemble.num_members):
        try:
            check_finite_metrics({name: metrics[name][k] for name in directions}, levels)
        except ValueError as error:
            raise ValueError(f"member {k}: {error}") from None
    return [
        SweepResult(
            task_id=task.id,
            levels=levels,
            metrics={name: metrics[name][k] for name in directions},
            metric_directions=directions,
            primary_metric=task.primary_metric,
            seed=seeds[k] if seeds is not None else check_seed(seed),
        )
        for k in range(ensemble.num_members)
    ]


def _member_seeds(seed: int | Sequence[int], members: int) -> list[int] | None:
    """None for one shared seed, else the per-member seeds, checked."""
    if isinstance(seed, Sequence) and not isinstance(seed, str):
        seeds = [check_seed(s) for s in seed]
        if len(seeds) != members:
            raise ValueError(
                f"`seed` must be one seed or one per member ({members}), got {len(seeds)} seeds"
            )
        return seeds
    check_seed(seed)
    return None


def _run_chunk(
    ensemble: CTRNNEnsemble,
    task: Task,
    sigma: torch.Tensor,
    episodes: int,
    seeds: list[int] | int,
    chunk: int,
    device: torch.device | str,
) -> dict[str, np.ndarray]:
    """One rollout of every member x level x ``episodes``; returns ``{name: [K, L, episodes]}``."""
    members, num_levels = ensemble.num_members, sigma.shape[0]
    env_rng, noise = _sources(seeds, chunk, members, num_levels, device)
    result = rollout(
        ensemble,
        task,
        members * num_levels * episodes,
        sigma=sigma.repeat_interleave(episodes).repeat(members),
        env_rng=env_rng,
        noise=noise,
        device=device,
    )
    return {
        name: value.detach().to("cpu", torch.float64).numpy().reshape(members, num_levels, -1)
        for name, value in result.metrics.items()
    }


def _sources(
    seeds: list[int] | int,
    chunk: int,
    members: int,
    num_levels: int,
    device: torch.device | str,
) -> tuple[RandomSource, RandomSource]:
    """The task's and the policy's sources of a chunk, seeded as ``sweep_noise`` seeds them."""
    if not isinstance(seeds, list):  # one seed: one block tiled over every member and level
        return tuple(
            RandomSource(
                torch.Generator().manual_seed(s), repeats=members * num_levels, device=device
            )
            for s in _chunk_seeds(seeds, chunk)
        )
    per_member = [_chunk_seeds(s, chunk) for s in seeds]
    return tuple(
        BlockRandomSource(
            [
                RandomSource(
                    torch.Generator().manual_seed(pair[i]), repeats=num_levels, device=device
                )
                for pair in per_member
            ],
            device,
        )
        for i in (0, 1)
    )
