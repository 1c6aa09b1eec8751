"""Argument checkers shared by every layer.

Each raises a ValueError that names the argument, the value and what is allowed.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Iterable, Sequence

import torch

__all__ = [
    "check_choice",
    "check_finite",
    "check_in_range",
    "check_nonnegative",
    "check_positive",
    "check_positive_int",
    "check_shape",
    "check_sigma",
]


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
    """Validate a noise level: a finite float >= 0, or a tensor of shape ``[B]`` of such values."""
    if isinstance(sigma, torch.Tensor):
        if sigma.dim() == 0:
            return check_sigma(float(sigma), batch_size)
        if sigma.dim() != 1 or (batch_size is not None and sigma.shape[0] != batch_size):
            raise ValueError(
                f"`sigma` must be a float or a tensor of shape [{batch_size or 'B'}], "
                f"got shape {tuple(sigma.shape)}"
            )
        if not torch.isfinite(sigma).all():
            raise ValueError(f"`sigma` must be finite, got {sigma.tolist()}")
        if (sigma < 0).any():
            raise ValueError(f"`sigma` must be >= 0, got min {sigma.min().item()}")
        return sigma
    return check_nonnegative("sigma", sigma)
