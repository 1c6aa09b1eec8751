"""The noise-induced shift of the stationary mean, and the output bias it causes at test time.

A noise-in network trained at noise ``sigma`` learns to be right *on average under that noise*:
its mean output ``ybar_sigma`` matches the target. Its noise-free output ``y_0`` sits where the
network would be without the shift, so testing at zero noise adds the bias ``ybar_sigma - y_0``.
:func:`noise_shift` measures the shift of the stationary mean under constant inputs and sets it
against the mean-field prediction; :func:`output_bias` measures the bias on a task's scored
window across test noise levels, for the decomposition
``E[(y - target)^2] = E[(ybar - target)^2] + E[Var(y)]``.

The mse of :func:`output_bias` is the task's teacher error measured as the sweep measures it: per
episode over its own scored steps, then averaged over episodes (the sweep's ``mse`` on the cued
tasks, ``oracle_mse`` on the maze). On a closed-loop task (the maze) the replicas of an episode
walk their own paths and meet their own targets, so the error has no split into a shared target's
bias and variance: only the mse is measured there, and the decomposition is NaN.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Sequence

import numpy as np
import torch

from agents.ctrnn import CTRNN
from agents.policy import Policy
from agents.rollout import rollout
from evaluation.mechanism.mean_field import MeanFieldStatistics, mean_field_statistics
from evaluation.mechanism.stationary import StationaryStatistics, stationary_statistics
from evaluation.sweep_result import check_levels
from noise_envs._checks import check_positive_int
from noise_envs.core import Task
from noise_envs.random import RandomSource

__all__ = ["NoiseShift", "OutputBias", "noise_shift", "output_bias"]


@dataclasses.dataclass(frozen=True, eq=False)
class NoiseShift:
    """Simulated and predicted stationary means across noise levels (float64 tensors)."""

    simulated: StationaryStatistics
    """The measured statistics, ``[L, B, ...]``."""
    predicted: tuple[MeanFieldStatistics | None, ...]
    """Mean-field predictions with the linear-response correction, one per level (None: failed)."""
    plain: tuple[MeanFieldStatistics | None, ...]
    """Plain mean-field predictions ``h = E[f(W h + U u + b + s xi)]``, one per level."""

    @property
    def levels(self) -> np.ndarray:
        """The noise levels ``[L]``."""
        return self.simulated.levels

    @property
    def predicted_output_mean(self) -> torch.Tensor:
        """Predicted mean output ``[L, B, O]`` (NaN where the prediction failed)."""
        return _stack(self.predicted, "output_mean", self.simulated.output_mean)

    @property
    def plain_output_mean(self) -> torch.Tensor:
        """Plain mean-field mean output ``[L, B, O]``."""
        return _stack(self.plain, "output_mean", self.simulated.output_mean)

    @property
    def predicted_state_mean(self) -> torch.Tensor:
        """Predicted mean state ``[L, B, N]``."""
        return _stack(self.predicted, "state_mean", self.simulated.state_mean)

    def output_shift(self) -> torch.Tensor:
        """Measured shift of the mean output from the lowest level, ``[L, B, O]``."""
        mean = self.simulated.output_mean
        return mean - mean[:1]


def _stack(
    stats: tuple[MeanFieldStatistics | None, ...], name: str, like: torch.Tensor
) -> torch.Tensor:
    nan = torch.full_like(like[0], float("nan"))
    return torch.stack([nan if s is None else getattr(s, name) for s in stats])


def noise_shift(
    model: CTRNN,
    inputs: torch.Tensor,
    levels: Sequence[float] | np.ndarray | torch.Tensor,
    *,
    steps: int = 2000,
    burn_in: int = 500,
    replicas: int = 16,
    seed: int = 0,
) -> NoiseShift:
    """Measure the stationary mean at each level by simulation and predict it by mean field.

    Args:
        model: a CTRNN.
        inputs: constant inputs ``[B, I]``.
        levels: noise levels ``[L]`` (include 0 to measure shifts from the noise-free state).
        steps: simulation steps averaged per replica.
        burn_in: simulation steps discarded first.
        replicas: independent noise replicas per level and input.
        seed: seed of the noise.

    Returns:
        The simulation and both predictions; a prediction that fails to converge is None, with a
        warning.
    """
    simulated = stationary_statistics(
        model, inputs, levels, steps=steps, burn_in=burn_in, replicas=replicas, seed=seed
    )
    predicted = tuple(_predict(model, inputs, s, True) for s in simulated.levels)
    plain = tuple(_predict(model, inputs, s, False) for s in simulated.levels)
    return NoiseShift(simulated=simulated, predicted=predicted, plain=plain)


def _predict(
    model: CTRNN, inputs: torch.Tensor, sigma: float, linear_response: bool
) -> MeanFieldStatistics | None:
    try:
        return mean_field_statistics(model, inputs, float(sigma), linear_response=linear_response)
    except RuntimeError as error:
        warnings.warn(f"no mean-field prediction at sigma={sigma:g}: {error}", stacklevel=3)
        return None


@dataclasses.dataclass(frozen=True, eq=False)
class OutputBias:
    """Output bias and error decomposition on a task's scored window, per test noise level.

    Every expectation is per episode over its scored steps and outputs (weighted by the teacher
    mask), then over episodes, as the sweep averages the task's per-episode teacher error;
    ``ybar`` is the mean over noise replicas of the same episode, with the finite-replica bias of
    its square removed, so ``mse == mean_error + variance`` holds exactly on an open-loop task.
    On a closed-loop task (``closed_loop``) the replicas follow different paths with different
    targets: ``mse`` is measured, and ``bias``, ``mean_error`` and ``variance`` are NaN.
    """

    levels: np.ndarray
    """Test noise levels ``[L]``; the first is 0."""
    bias: np.ndarray
    """``E[(ybar_sigma - y_0)^2]``: the squared shift of the mean output from the noise-free one."""
    mean_error: np.ndarray
    """``E[(ybar_sigma - target)^2]``: the error of the mean output."""
    variance: np.ndarray
    """``E[Var_sigma(y)]``: the output variance across replicas."""
    mse: np.ndarray
    """``E[(y - target)^2]`` at each level ``[L]``: the sweep's per-episode teacher error."""
    closed_loop: bool
    """Whether the task is closed loop, where only ``mse`` is defined."""
    replicas: int
    """Noise replicas per episode and level."""
    episodes: int
    """Episodes (trials) per level."""

    @property
    def error_zero(self) -> float:
        """``E[(y_0 - target)^2]``: the error at zero noise."""
        return float(self.mse[0])

    def level_index(self, sigma: float) -> int:
        """Index of the level closest to ``sigma``."""
        return int(np.argmin(np.abs(self.levels - sigma)))


@torch.no_grad()
def output_bias(
    policy: Policy,
    task: Task,
    levels: Sequence[float] | np.ndarray | torch.Tensor,
    *,
    episodes: int = 64,
    replicas: int = 32,
    seed: int = 0,
    device: torch.device | str = "cpu",
) -> OutputBias:
    """Measure the output bias that removing (or changing) the noise causes, at each test level.

    All levels x replicas x episodes run as one rollout (row ``(l * R + r) * E + e``): every
    replica and level of episode ``e`` sees the same trial, and replica ``r`` sees the same noise
    samples at every level (common random numbers). Level 0 is added if missing.

    Args:
        policy: the network (any :class:`~agents.policy.Policy`).
        task: the task; its teacher signal gives targets and scored steps.
        levels: test noise levels ``[L]``.
        episodes: trials per level E.
        replicas: noise replicas per trial R (>= 2).
        seed: seed of the trials and the noise.
        device: where to run.

    Returns:
        The bias and the error decomposition per level.
    """
    levels = check_levels(np.union1d([0.0], check_levels(levels)))
    check_positive_int("episodes", episodes)
    if check_positive_int("replicas", replicas) < 2:
        raise ValueError(f"`replicas` must be >= 2, got {replicas}")
    num_levels = levels.size
    rows = num_levels * replicas * episodes
    sigma = torch.as_tensor(levels, dtype=torch.float32, device=device)
    sigma = sigma.repeat_interleave(replicas * episodes)
    generator = torch.Generator().manual_seed(seed)
    trials = RandomSource(generator, repeats=num_levels * replicas, device=device)
    noise = RandomSource(torch.Generator().manual_seed(seed + 1), repeats=num_levels, device=device)
    outputs, targets, masks = _record(policy, task, rows, sigma, trials, noise, device)
    shape = (-1, num_levels, replicas, episodes, outputs.shape[-1])
    outputs, targets, masks = (x.view(shape) for x in (outputs, targets, masks))
    if not task.open_loop:
        nan = np.full(num_levels, np.nan)
        return OutputBias(
            levels=levels,
            bias=nan,
            mean_error=nan.copy(),
            variance=nan.copy(),
            mse=_episode_mse(outputs, targets, masks),
            closed_loop=True,
            replicas=replicas,
            episodes=episodes,
        )
    return _decompose(levels, outputs, targets, masks, episodes)


def _record(
    policy: Policy,
    task: Task,
    rows: int,
    sigma: torch.Tensor,
    trials: RandomSource,
    noise: RandomSource,
    device: torch.device | str,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Outputs, teacher targets and masks of every step, ``[T, rows, A]`` each (float64)."""
    run = rollout(
        policy, task, rows, sigma=sigma, env_rng=trials, noise=noise, device=device, record=True
    )
    return tuple(x.to(torch.float64).cpu() for x in (run.actions, run.targets, run.masks))


def _episode_mse(outputs: torch.Tensor, targets: torch.Tensor, masks: torch.Tensor) -> np.ndarray:
    """Mean over rows of each row's own teacher error, as the task scores it ``[L]``.

    ``[T, L, R, E, A]`` inputs; a row's error is its mask-weighted squared error over its scored
    steps and outputs (:attr:`~noise_envs.core.TaskState.teacher_mse`).
    """
    per_row = (masks * (outputs - targets) ** 2).sum((0, 4)) / masks.sum((0, 4)).clamp_min(1e-12)
    return per_row.mean((1, 2)).numpy()


def _decompose(
    levels: np.ndarray,
    outputs: torch.Tensor,
    targets: torch.Tensor,
    masks: torch.Tensor,
    episodes: int,
) -> OutputBias:
    """The decomposition from ``[T, L, R, E, A]`` outputs, targets and masks of an open-loop task."""
    replicas = outputs.shape[2]
    weight = masks[:, :, 0]  # [T, L, E, A]; open loop: every replica of a trial has its mask
    total = weight.sum((0, 3)).clamp_min(1e-12)  # [L, E]

    def average(x: torch.Tensor) -> np.ndarray:
        return ((weight * x).sum((0, 3)) / total).mean(-1).numpy()

    mean = outputs.mean(2)
    variance = outputs.var(2, correction=1)
    finite = variance / replicas  # E[(ybar - m)^2] for the true mean m
    zero = outputs[:, 0].mean(1, keepdim=True)  # level 0 is noise-free: y_0 equals every replica
    mean_error = average((mean - targets[:, :, 0]) ** 2 - finite)
    variance = average(variance)
    return OutputBias(
        levels=levels,
        bias=average((mean - zero) ** 2 - finite),
        mean_error=mean_error,
        variance=variance,
        mse=mean_error + variance,
        closed_loop=False,
        replicas=replicas,
        episodes=episodes,
    )
