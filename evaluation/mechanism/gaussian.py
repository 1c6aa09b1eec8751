"""Exact expectations of activations under Gaussian noise: ``E[f(a + s xi)]`` and relatives.

These are the building blocks of the mean-field account of noise preference: a unit whose
pre-activation mean ``a`` sits near the kink of relu or softplus has ``E[f(a + s xi)] > f(a)``
(Jensen), so noise inside the activation shifts its mean, and it passes less of the noise's
variance on than a unit in the linear region does. For ``xi ~ N(0, 1)``, relu has closed forms;
the other activations, which are analytic, use the trapezoid rule on ``xi`` in [-10, 10] with
step 0.05: for analytic integrands it converges exponentially (Gauss-Hermite with 64 nodes does
not, for tanh at ``s = 2``: its poles at ``xi = i pi / (2 s)`` come too close). Everything is
computed in float64 and broadcasts over ``a`` and ``s``.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch

from agents.noise import ACTIVATIONS
from noise_envs._checks import check_choice

__all__ = [
    "gaussian_activation_mean",
    "gaussian_activation_slope",
    "gaussian_activation_variance",
    "gaussian_relu_mean",
    "gaussian_relu_variance",
    "gaussian_softplus_mean",
]

_STEP = 0.05
_NODES = np.arange(-200, 201) * _STEP
_WEIGHTS = _STEP * np.exp(-0.5 * _NODES**2) / math.sqrt(2.0 * math.pi)

_DERIVATIVES: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "relu": lambda x: (x > 0).to(x.dtype),
    "softplus": torch.sigmoid,
    "tanh": lambda x: 1.0 - torch.tanh(x) ** 2,
    "sigmoid": lambda x: torch.sigmoid(x) * (1.0 - torch.sigmoid(x)),
}


def _as_float64(a: torch.Tensor | float, s: torch.Tensor | float) -> tuple[torch.Tensor, ...]:
    a = torch.as_tensor(a, dtype=torch.float64)
    s = torch.as_tensor(s, dtype=torch.float64, device=a.device)
    return a, s


def _normal_pdf(z: torch.Tensor) -> torch.Tensor:
    return torch.exp(-0.5 * z**2) / math.sqrt(2.0 * math.pi)


def _normal_cdf(z: torch.Tensor) -> torch.Tensor:
    return 0.5 * (1.0 + torch.erf(z / math.sqrt(2.0)))


def _standardised(
    a: torch.Tensor, s: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``s`` with zeros replaced by 1, and the normal CDF and PDF at ``z = a / s``.

    Callers select the s = 0 branch themselves; the 1 only keeps the division finite.
    """
    safe = torch.where(s > 0, s, torch.ones_like(s))
    z = a / safe
    return safe, _normal_cdf(z), _normal_pdf(z)


def gaussian_relu_mean(a: torch.Tensor | float, s: torch.Tensor | float) -> torch.Tensor:
    r"""``E[relu(a + s xi)] = a Phi(a/s) + s phi(a/s)`` for ``xi ~ N(0, 1)``; ``relu(a)`` at s = 0.

    Example:
        >>> round(float(gaussian_relu_mean(0.0, 1.0)), 4)
        0.3989
    """
    a, s = _as_float64(a, s)
    safe, cdf, pdf = _standardised(a, s)
    return torch.where(s > 0, a * cdf + safe * pdf, torch.relu(a))


def gaussian_relu_variance(a: torch.Tensor | float, s: torch.Tensor | float) -> torch.Tensor:
    r"""``Var[relu(a + s xi)] = (a^2 + s^2) Phi(a/s) + a s phi(a/s) - E^2``; 0.341 s^2 at a = 0.

    Example:
        >>> round(float(gaussian_relu_variance(0.0, 1.0)), 4)
        0.3408
    """
    a, s = _as_float64(a, s)
    safe, cdf, pdf = _standardised(a, s)
    second = (a**2 + safe**2) * cdf + a * safe * pdf
    variance = second - (a * cdf + safe * pdf) ** 2
    return torch.where(s > 0, variance.clamp_min(0.0), torch.zeros_like(variance))


def gaussian_softplus_mean(a: torch.Tensor | float, s: torch.Tensor | float) -> torch.Tensor:
    """``E[softplus(a + s xi)]`` by quadrature."""
    return _quadrature(torch.nn.functional.softplus, a, s)


def gaussian_activation_mean(
    activation: str, a: torch.Tensor | float, s: torch.Tensor | float
) -> torch.Tensor:
    """``E[f(a + s xi)]`` for a named activation: closed form for relu, quadrature otherwise.

    Args:
        activation: relu, softplus, tanh or sigmoid.
        a: pre-activation means, any shape.
        s: noise standard deviations, broadcastable with ``a``.

    Returns:
        The expectations, float64, of the broadcast shape.
    """
    check_choice("activation", activation, ACTIVATIONS)
    if activation == "relu":
        return gaussian_relu_mean(a, s)
    return _quadrature(ACTIVATIONS[activation], a, s)


def gaussian_activation_variance(
    activation: str, a: torch.Tensor | float, s: torch.Tensor | float
) -> torch.Tensor:
    """``Var[f(a + s xi)]``: how much of the noise a unit passes on (closed form for relu)."""
    check_choice("activation", activation, ACTIVATIONS)
    if activation == "relu":
        return gaussian_relu_variance(a, s)
    f = ACTIVATIONS[activation]
    second = _quadrature(lambda x: f(x) ** 2, a, s)
    return (second - _quadrature(f, a, s) ** 2).clamp_min(0.0)


def gaussian_activation_slope(
    activation: str, a: torch.Tensor | float, s: torch.Tensor | float
) -> torch.Tensor:
    r"""``E[f'(a + s xi)] = d/da E[f(a + s xi)]`` (Stein): the unit's gain averaged over the noise.

    For relu it is ``Phi(a / s)``, the probability that the unit is active.

    Example:
        >>> round(float(gaussian_activation_slope("relu", 0.0, 1.0)), 3)
        0.5
    """
    check_choice("activation", activation, ACTIVATIONS)
    if activation == "relu":
        a, s = _as_float64(a, s)
        _, cdf, _ = _standardised(a, s)
        return torch.where(s > 0, cdf, (a > 0).to(a.dtype))
    return _quadrature(_DERIVATIVES[activation], a, s)


def _quadrature(
    f: Callable[[torch.Tensor], torch.Tensor], a: torch.Tensor | float, s: torch.Tensor | float
) -> torch.Tensor:
    a, s = _as_float64(a, s)
    nodes = torch.as_tensor(_NODES, dtype=torch.float64, device=a.device)
    weights = torch.as_tensor(_WEIGHTS, dtype=torch.float64, device=a.device)
    values = f(a.unsqueeze(-1) + s.unsqueeze(-1) * nodes)
    return (values * weights).sum(-1)
