"""Stationary statistics of a noisy CTRNN under constant input, measured by long simulations.

All noise levels, replicas and inputs run as one batch (row ``(l * R + r) * B + b`` is level
``l``, replica ``r``, input ``b``) with one sigma per row. The noise samples are common across
levels (replica ``r`` sees the same ``xi`` at every level), so differences between levels are
differences of the noise level alone. Standard errors are batch means over the independent
replicas: each replica's time average is one sample. The output statistics are those of the
model's outputs ``g(W_out h + b_out)`` (for a sigmoid read-out, averaged step by step, not the
read-out of the mean state).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import numpy as np
import torch

from agents.ctrnn import CTRNN, READOUTS
from evaluation.sweep_result import check_levels
from noise_envs._checks import check_nonnegative, check_positive_int, check_shape
from noise_envs.random import RandomSource

__all__ = ["StationaryStatistics", "simulate_stationary_mean", "stationary_statistics"]

_BLOCK = 100
"""Steps whose states are held at once while the second moments are accumulated."""


@dataclasses.dataclass(frozen=True, eq=False)
class StationaryStatistics:
    """Measured stationary statistics at each noise level (float64 tensors, L levels, B inputs)."""

    levels: np.ndarray
    """The noise levels ``[L]``, ascending."""
    state_mean: torch.Tensor
    """Mean hidden state ``[L, B, N]``, over time and replicas."""
    state_sem: torch.Tensor
    """Standard error of ``state_mean`` ``[L, B, N]`` (batch means over replicas)."""
    state_covariance: torch.Tensor
    """Covariance of the hidden state ``[L, B, N, N]`` (over time and replicas)."""
    pre_mean: torch.Tensor
    """Mean of the argument of ``f``, ``W h + U u + b``, ``[L, B, N]``."""
    pre_std: torch.Tensor
    """Standard deviation of the argument of ``f`` (state fluctuations plus noise "in") ``[L, B, N]``."""
    output_mean: torch.Tensor
    """Mean output ``[L, B, O]``."""
    output_sem: torch.Tensor
    """Standard error of ``output_mean`` ``[L, B, O]``."""
    output_covariance: torch.Tensor
    """Covariance of the output ``[L, B, O, O]``."""
    steps: int
    """Steps averaged per replica, after burn-in."""
    replicas: int
    """Independent noise replicas per level and input."""

    def level_index(self, sigma: float) -> int:
        """Index of the level closest to ``sigma``."""
        return int(np.argmin(np.abs(self.levels - sigma)))


@torch.no_grad()
def stationary_statistics(
    model: CTRNN,
    inputs: torch.Tensor,
    levels: Sequence[float] | np.ndarray | torch.Tensor,
    *,
    steps: int = 2000,
    burn_in: int = 500,
    replicas: int = 16,
    seed: int = 0,
    h0: torch.Tensor | None = None,
) -> StationaryStatistics:
    """Simulate ``model`` under constant ``inputs`` at every noise level and measure its statistics.

    Memory holds ``L * R * B * N`` states for a block of steps and ``L * B * N^2`` second moments.

    Args:
        model: a CTRNN.
        inputs: constant inputs ``[B, I]``.
        levels: noise levels ``[L]``, finite and >= 0 (sorted ascending).
        steps: steps averaged after burn-in.
        burn_in: steps discarded first, from ``h0``.
        replicas: independent noise replicas per level and input (>= 2 for standard errors).
        seed: seed of the noise.
        h0: initial states ``[B, N]`` (default: the model's initial state).

    Returns:
        The statistics at each level.
    """
    levels = check_levels(levels)
    check_positive_int("steps", steps)
    check_nonnegative("burn_in", burn_in)
    check_positive_int("replicas", replicas)
    check_shape("inputs", inputs, (None, model.config.input_size))
    num_levels, batch, n = levels.size, inputs.shape[0], model.config.hidden_size
    blocks = num_levels * replicas
    u = inputs.repeat(blocks, 1)
    sigma = torch.as_tensor(levels, dtype=torch.float32, device=inputs.device)
    sigma = sigma.repeat_interleave(replicas * batch)
    noise = RandomSource(torch.Generator().manual_seed(seed), repeats=num_levels, device=u.device)
    if h0 is None:
        h = model.initial_state(u.shape[0], inputs.device)
    else:
        h = check_shape("h0", h0, (batch, n)).repeat(blocks, 1)
    for _ in range(int(burn_in)):
        h = model.hidden_step(u, h, sigma, noise)
    total = torch.zeros(num_levels, replicas, batch, n, dtype=torch.float64, device=u.device)
    second = torch.zeros(num_levels, batch, n, n, dtype=torch.float64, device=u.device)
    outputs = _OutputMoments(model, num_levels, replicas, batch, u.device)
    done = 0
    while done < steps:
        block = []
        for _ in range(min(_BLOCK, steps - done)):
            h = model.hidden_step(u, h, sigma, noise)
            block.append(h)
        states = torch.stack(block).to(torch.float64).view(-1, num_levels, replicas, batch, n)
        total += states.sum(0)
        second += torch.einsum("tlrbi,tlrbj->lbij", states, states)
        outputs.add(states)
        done += len(block)
    stats = _statistics(model, inputs, levels, total / steps, second / (steps * replicas), steps)
    return outputs.replace(stats, steps)


class _OutputMoments:
    """Running sums of a nonlinear read-out's outputs ``[L, R, B, O]`` and second moments."""

    def __init__(
        self, model: CTRNN, levels: int, replicas: int, batch: int, device: torch.device
    ) -> None:
        self.readout = None if model.config.readout == "linear" else READOUTS[model.config.readout]
        self.W_out, self.b_out = (
            p.detach().to(device=device, dtype=torch.float64) for p in (model.W_out, model.b_out)
        )
        size = self.W_out.shape[0]
        self.total = torch.zeros(levels, replicas, batch, size, dtype=torch.float64, device=device)
        self.second = torch.zeros(levels, batch, size, size, dtype=torch.float64, device=device)

    def add(self, states: torch.Tensor) -> None:
        """Add the outputs of states ``[T, L, R, B, N]`` (nothing for a linear read-out)."""
        if self.readout is not None:
            y = self.readout(states @ self.W_out.T + self.b_out)
            self.total += y.sum(0)
            self.second += torch.einsum("tlrbi,tlrbj->lbij", y, y)

    def replace(self, stats: StationaryStatistics, steps: int) -> StationaryStatistics:
        """``stats`` with the measured output statistics (unchanged for a linear read-out)."""
        if self.readout is None:
            return stats
        replica_means = self.total / steps
        mean = replica_means.mean(1)
        covariance = self.second / (steps * replica_means.shape[1])
        covariance = covariance - mean.unsqueeze(-1) * mean.unsqueeze(-2)
        return dataclasses.replace(
            stats,
            output_mean=mean,
            output_sem=_sem(replica_means),
            output_covariance=0.5 * (covariance + covariance.mT),
        )


def _statistics(
    model: CTRNN,
    inputs: torch.Tensor,
    levels: np.ndarray,
    replica_means: torch.Tensor,
    second: torch.Tensor,
    steps: int,
) -> StationaryStatistics:
    """Means, standard errors and covariances from per-replica means ``[L, R, B, N]``."""
    W, U, b, W_out, b_out = (
        p.detach().to(device=inputs.device, dtype=torch.float64)
        for p in (model.W, model.U, model.b, model.W_out, model.b_out)
    )
    replicas = replica_means.shape[1]
    mean = replica_means.mean(1)
    covariance = second - mean.unsqueeze(-1) * mean.unsqueeze(-2)
    covariance = 0.5 * (covariance + covariance.mT)
    replica_outputs = replica_means @ W_out.T + b_out
    s = torch.as_tensor(levels, dtype=torch.float64, device=inputs.device) * model.config.noise_gain
    s_in = s if model.config.placement == "in" else torch.zeros_like(s)
    state_noise = torch.einsum("ij,lbjk,ik->lbi", W, covariance, W).clamp_min(0.0)
    return StationaryStatistics(
        levels=levels,
        state_mean=mean,
        state_sem=_sem(replica_means),
        state_covariance=covariance,
        pre_mean=mean @ W.T + (inputs.to(torch.float64) @ U.T + b),
        pre_std=torch.sqrt(state_noise + s_in[:, None, None] ** 2),
        output_mean=replica_outputs.mean(1),
        output_sem=_sem(replica_outputs),
        output_covariance=W_out @ covariance @ W_out.T,
        steps=steps,
        replicas=replicas,
    )


def _sem(samples: torch.Tensor) -> torch.Tensor:
    """Standard error over dimension 1 (NaN with a single sample)."""
    count = samples.shape[1]
    if count < 2:
        return torch.full_like(samples[:, 0], math.nan)
    return samples.std(1, correction=1) / math.sqrt(count)


def simulate_stationary_mean(
    model: CTRNN,
    inputs: torch.Tensor,
    sigma: float,
    *,
    steps: int = 2000,
    burn_in: int = 500,
    replicas: int = 64,
    seed: int = 0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Time- and replica-averaged hidden state ``[B, N]`` and output ``[B, O]`` at one noise level.

    A shortcut for :func:`stationary_statistics` with one level.
    """
    check_nonnegative("sigma", sigma)
    stats = stationary_statistics(
        model, inputs, [sigma], steps=steps, burn_in=burn_in, replicas=replicas, seed=seed
    )
    return stats.state_mean[0], stats.output_mean[0]
