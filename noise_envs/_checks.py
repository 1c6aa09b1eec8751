"""Argument checkers shared by every layer.

Each raises a ValueError that names the argument, the value and what is allowed.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Iterable, Sequence

import torch

__all__ = [
    "MAX_NOISE",
    "check_at_most",
    "check_choice",
    "check_finite",
    "check_finite_tensor",
    "check_in_range",
    "check_noise_level",
    "check_nonnegative",
    "check_positive",
    "check_positive_int",
    "check_shape",
    "check_sigma",
]

MAX_NOISE = 1e6
"""The largest noise standard deviation accepted (``sigma``, ``obs_noise``): larger ones overflow
float32 losses (their squares pass 3.4e38) and mean nothing in [-1, 1]-scaled tasks."""


def check_positive(name: str, value: float) -> float:
    """Return ``value`` if it is a finite number > 0, else raise ValueError."""
    check_finite(name, value)
    if value <= 0:
        raise ValueError(f"`{name}` must be > 0, got {value!r}")
    return value


def check_nonnegative(name: str, value: float) -> float:
    """Return ``value`` if it is a finite number >= 0, else raise ValueError."""
    check_finite(name, value)
    if value < 0:
        raise ValueError(f"`{name}` must be >= 0, got {value!r}")
    return value


def check_positive_int(name: str, value: int) -> int:
    """Return ``value`` if it is an integer >= 1, else raise ValueError."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"`{name}` must be an integer >= 1, got {value!r}")
    if value < 1:
        raise ValueError(f"`{name}` must be an integer >= 1, got {value!r}")
    return value


def check_finite(name: str, value: float) -> float:
    """Return ``value`` if it is a finite real number, else raise ValueError."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"`{name}` must be a real number, got {value!r}")
    if not math.isfinite(value):
        raise ValueError(f"`{name}` must be finite, got {value!r}")
    return value


def check_at_most(name: str, value: float, high: float) -> float:
    """Return ``value`` if it is finite and ``<= high``, else raise ValueError."""
    check_finite(name, value)
    if value > high:
        raise ValueError(f"`{name}` must be <= {high:g}, got {value:g}")
    return value


def check_noise_level(name: str, value: float) -> float:
    """Return ``value`` if it is a noise standard deviation in ``[0, MAX_NOISE]``, else raise."""
    check_nonnegative(name, value)
    return check_at_most(name, value, MAX_NOISE)


def check_finite_tensor(name: str, tensor: torch.Tensor) -> torch.Tensor:
    """Return ``tensor`` if it holds no NaN or infinite entry, else raise ValueError counting them.

    Cheap enough for every step: a float32 or wider tensor is checked by one sum (any NaN or
    infinite entry makes it non-finite), and only a failing tensor is looked at entry by entry.
    A sum can also overflow on finite entries near float32's limit; the error then says so.
    """
    if not tensor.is_floating_point():
        return tensor
    values = tensor.detach()
    if values.element_size() < 4:
        finite = bool(torch.isfinite(values).all())
    else:
        finite = math.isfinite(values.sum().item())
    if not finite:
        _raise_non_finite(name, values)
    return tensor


def _raise_non_finite(name: str, values: torch.Tensor) -> None:
    nan = int(torch.isnan(values).sum())
    infinite = int(torch.isinf(values).sum())
    if nan or infinite:
        raise ValueError(f"`{name}` must be finite, got {nan} NaN and {infinite} infinite entries")
    largest = float(values.abs().max())
    raise ValueError(
        f"`{name}` must be finite, got entries so large (max {largest:g}) they overflow"
    )


def check_in_range(name: str, value: float, low: float, high: float) -> float:
    """Return ``value`` if ``low <= value <= high``, else raise ValueError."""
    check_finite(name, value)
    if not low <= value <= high:
        raise ValueError(f"`{name}` must be in [{low}, {high}], got {value!r}")
    return value


def check_choice(name: str, value: str, choices: Iterable[str]) -> str:
    """Return ``value`` if it is one of ``choices``; otherwise list them and suggest the closest."""
    choices = list(choices)
    if value in choices:
        return value
    message = f"`{name}` must be one of {choices}, got {value!r}"
    close = difflib.get_close_matches(str(value), choices, n=1)
    if close:
        message += f". Did you mean {close[0]!r}?"
    raise ValueError(message)


def check_shape(name: str, tensor: torch.Tensor, shape: Sequence[int | None]) -> torch.Tensor:
    """Check ``tensor.shape`` against ``shape`` (``None`` matches any size) and return the tensor."""
    if tensor.dim() != len(shape) or any(
        want is not None and got != want for got, want in zip(tensor.shape, shape, strict=False)
    ):
        wanted = "[" + ", ".join("*" if s is None else str(s) for s in shape) + "]"
        raise ValueError(f"Expected `{name}` of shape {wanted}, got {tuple(tensor.shape)}")
    return tensor


def check_sigma(sigma: float | torch.Tensor, batch_size: int | None = None) -> float | torch.Tensor:
    """Validate a noise level: a float in ``[0, MAX_NOISE]``, or a tensor ``[B]`` of such values."""
    if isinstance(sigma, torch.Tensor):
        if sigma.dim() == 0:
            return check_sigma(float(sigma), batch_size)
        if sigma.dim() != 1 or (batch_size is not None and sigma.shape[0] != batch_size):
            raise ValueError(
                f"`sigma` must be a float or a tensor of shape [{batch_size or 'B'}], "
                f"got shape {tuple(sigma.shape)}"
            )
        if not bool(((sigma >= 0) & (sigma <= MAX_NOISE)).all()):  # NaN fails both comparisons
            _raise_bad_sigma_row(sigma)
        return sigma
    return check_noise_level("sigma", sigma)


def _raise_bad_sigma_row(sigma: torch.Tensor) -> None:
    if not torch.isfinite(sigma).all():
        raise ValueError(f"`sigma` must be finite, got {sigma.tolist()}")
    if (sigma < 0).any():
        raise ValueError(f"`sigma` must be >= 0, got min {sigma.min().item()}")
    raise ValueError(f"`sigma` must be <= {MAX_NOISE:g}, got max {sigma.max().item():g}")
