"""Activations, noise placement and the noise samples a noisy model consumes."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch.nn import functional as F

from noise_envs._checks import check_finite_tensor, check_sigma
from noise_envs.random import RandomSource, as_random_source

__all__ = [
    "ACTIVATIONS",
    "NOISE_SCALINGS",
    "PLACEMENTS",
    "NoiseLike",
    "check_model_input",
    "draw_noise",
    "draw_noise_steps",
    "noisy_activation",
    "scaled_noise",
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


def check_model_input(
    name: str, tensor: object, dtype: torch.dtype, *, finite: bool = True
) -> torch.Tensor:
    """``tensor`` if it is a tensor of the model's ``dtype``, finite when ``finite``, else ValueError."""
    if not isinstance(tensor, torch.Tensor):
        raise ValueError(f"`{name}` must be a torch.Tensor, got {type(tensor).__name__}")
    if tensor.dtype != dtype:
        raise ValueError(f"`{name}` must have the model's dtype {dtype}, got {tensor.dtype}")
    return check_finite_tensor(name, tensor) if finite else tensor


def draw_noise(
    noise: NoiseLike, shape: tuple[int, ...], device: torch.device, *, validate: bool = True
) -> torch.Tensor:
    """Standard normal samples of ``shape`` (``[B, ...]``) from ``noise``, or ``noise`` itself.

    A tensor is checked against ``shape``, float32 and (unless ``validate`` is false) finiteness,
    and returned; a generator or :class:`~noise_envs.random.RandomSource` is drawn from (and
    advances, so successive calls give fresh samples).
    """
    if isinstance(noise, torch.Tensor):
        return _checked_samples(noise, shape, device, validate)
    return _source(noise, device).normal(*shape)


def draw_noise_steps(
    noise: NoiseLike,
    steps: int,
    shape: tuple[int, ...],
    device: torch.device,
    *,
    validate: bool = True,
) -> torch.Tensor:
    """``[steps, *shape]`` samples: what ``steps`` successive :func:`draw_noise` calls give.

    A tensor is checked as :func:`draw_noise` checks it, against ``[steps, *shape]``; a source
    is drawn from with :meth:`~noise_envs.random.RandomSource.normal_steps`, block by block.
    """
    if isinstance(noise, torch.Tensor):
        return _checked_samples(noise, (steps, *shape), device, validate)
    return _source(noise, device).normal_steps(steps, *shape)


def scaled_noise(
    sigma: float | torch.Tensor,
    noise: NoiseLike,
    shape: tuple[int, int],
    device: torch.device,
    *,
    gain: float = 1.0,
    steps: int | None = None,
    validate: bool = True,
) -> torch.Tensor | None:
    """``gain * sigma * xi`` of ``shape`` ``[B, D]`` (``[steps, B, D]`` with ``steps``), or None.

    None means no noise is due: sigma 0 and no samples given. ``sigma`` is a float or ``[B]``; ``xi`` comes from ``noise`` as :func:`draw_noise` (or, with
    ``steps``, :func:`draw_noise_steps`) gives it. Samples passed in are always used, so their shape
    is checked even at sigma 0 (and, unless ``validate`` is false, for NaN and infinite
    entries); samples drawn here are fresh and scaled in place.
    """
    if isinstance(sigma, torch.Tensor) and sigma.dim() > 0:
        scale = sigma_column(sigma, shape[0], device)
        if noise is None and not bool(scale.any()):
            return None  # a [B] sigma of zeros is noise-free and needs no source
        if gain != 1.0:
            scale = scale * gain
    else:
        scale = float(check_sigma(float(sigma) if isinstance(sigma, torch.Tensor) else sigma))
        scale *= gain
        if scale == 0 and not isinstance(noise, torch.Tensor):
            return None
    if steps is None:
        xi = draw_noise(noise, shape, device, validate=validate)
    else:
        xi = draw_noise_steps(noise, steps, shape, device, validate=validate)
    return scale * xi if isinstance(noise, torch.Tensor) else xi.mul_(scale)


def _checked_samples(
    noise: torch.Tensor, shape: tuple[int, ...], device: torch.device, validate: bool
) -> torch.Tensor:
    if tuple(noise.shape) != tuple(shape):
        raise ValueError(f"Expected `noise` of shape {list(shape)}, got {tuple(noise.shape)}")
    if noise.dtype != torch.float32:
        raise ValueError(f"`noise` must have the model's dtype torch.float32, got {noise.dtype}")
    if validate:
        check_finite_tensor("noise", noise)
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
