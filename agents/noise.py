"""Activations, noise placement and the noise samples a noisy model consumes."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch.nn import functional as F

from noise_envs._checks import check_sigma
from noise_envs.random import RandomSource, as_random_source

__all__ = [
    "ACTIVATIONS",
    "NOISE_SCALINGS",
    "PLACEMENTS",
    "NoiseLike",
    "draw_noise",
    "draw_noise_steps",
    "noisy_activation",
    "sigma_column",
]

ACTIVATIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "relu": torch.relu,
    "softplus": F.softplus,
    "tanh": torch.tanh,
    "sigmoid": torch.sigmoid,
}
"""Activation functions by name."""

PLACEMENTS = ("in", "out")
"""Noise inside the activation, ``f(x + sigma xi)``, or outside it, ``f(x) + sigma xi``."""

NOISE_SCALINGS = ("per_step", "sqrt_2_over_gamma")
"""Per-step sigma (the paper's convention) or Yang et al. (2019)'s ``sqrt(2 / gamma) * sigma``."""

NoiseLike = RandomSource | torch.Generator | torch.Tensor | None
"""Where noise samples come from: a source or generator to draw from, or the samples themselves."""


def sigma_column(
    sigma: float | torch.Tensor, batch_size: int, device: torch.device
) -> torch.Tensor:
    """Validate ``sigma`` (a float or ``[B]``) and return it as a ``[B, 1]`` tensor."""
    sigma = check_sigma(sigma, batch_size)
    if isinstance(sigma, torch.Tensor):
        return sigma.to(device=device, dtype=torch.float32)[:, None]
    return torch.full((batch_size, 1), float(sigma), device=device)


def draw_noise(noise: NoiseLike, shape: tuple[int, ...], device: torch.device) -> torch.Tensor:
    """Standard normal samples of ``shape`` (``[B, ...]``) from ``noise``, or ``noise`` itself.

    A tensor is checked against ``shape`` and returned; a generator or
    :class:`~noise_envs.random.RandomSource` is drawn from (and advances, so successive calls
    give fresh samples).
    """
    if isinstance(noise, torch.Tensor):
        return _checked_samples(noise, shape, device)
    return _source(noise, device).normal(*shape)


def draw_noise_steps(
    noise: NoiseLike, steps: int, shape: tuple[int, ...], device: torch.device
) -> torch.Tensor:
    """``[steps, *shape]`` samples: what ``steps`` successive :func:`draw_noise` calls give.

    A tensor is checked against ``[steps, *shape]`` and returned; a source is drawn from with
    :meth:`~noise_envs.random.RandomSource.normal_steps`, block by block into one tensor.
    """
    if isinstance(noise, torch.Tensor):
        return _checked_samples(noise, (steps, *shape), device)
    return _source(noise, device).normal_steps(steps, *shape)


def _checked_samples(
    noise: torch.Tensor, shape: tuple[int, ...], device: torch.device
) -> torch.Tensor:
    if tuple(noise.shape) != tuple(shape):
        raise ValueError(f"Expected `noise` of shape {list(shape)}, got {tuple(noise.shape)}")
    return noise.to(device)


def _source(noise: NoiseLike, device: torch.device) -> RandomSource:
    if noise is None:
        raise ValueError(
            "a noise level sigma > 0 needs `noise`: a torch.Generator, a RandomSource or a tensor "
            "of standard normal samples (noise is never drawn from the global generator)"
        )
    if not isinstance(noise, (RandomSource, torch.Generator)):
        raise ValueError(
            "`noise` must be a torch.Generator, a RandomSource or a tensor, "
            f"got {type(noise).__name__}"
        )
    return as_random_source(noise, device)


def noisy_activation(
    pre: torch.Tensor,
    activation: Callable[[torch.Tensor], torch.Tensor],
    placement: str,
    noise: torch.Tensor | None,
) -> torch.Tensor:
    """``f(pre + noise)`` for placement "in", ``f(pre) + noise`` for "out"; ``noise`` is scaled."""
    if noise is None:
        return activation(pre)
    if placement == "in":
        return activation(pre + noise)
    return activation(pre) + noise
