"""Why noise-in networks prefer noise: Gaussian expectations and noise-shifted stationary means.

For ``xi ~ N(0, 1)`` and small ``gamma``, the noise-in CTRNN's stationary mean approximately solves
the mean-field equation ``h = E_xi[f(W h + U u + b + s xi)]`` (``s`` the effective noise level).
At ``s = 0`` it is the deterministic fixed point; the difference is the noise-induced shift that
removing the noise at test time turns into an output bias.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from agents.ctrnn import CTRNN
from noise_envs._checks import check_choice, check_nonnegative, check_positive_int

__all__ = [
    "gaussian_activation_mean",
    "gaussian_relu_mean",
    "gaussian_relu_variance",
    "gaussian_softplus_mean",
    "mean_field_state",
    "simulate_stationary_mean",
]

_HERMITE_NODES, _HERMITE_WEIGHTS = np.polynomial.hermite_e.hermegauss(64)
_HERMITE_WEIGHTS = _HERMITE_WEIGHTS / math.sqrt(2.0 * math.pi)


def _normal_pdf(z: torch.Tensor) -> torch.Tensor:
    return torch.exp(-0.5 * z**2) / math.sqrt(2.0 * math.pi)


def _normal_cdf(z: torch.Tensor) -> torch.Tensor:
    return 0.5 * (1.0 + torch.erf(z / math.sqrt(2.0)))


def gaussian_relu_mean(a: torch.Tensor | float, s: torch.Tensor | float) -> torch.Tensor:
    r"""``E[relu(a + s xi)] = a Phi(a/s) + s phi(a/s)`` for ``xi ~ N(0, 1)``; ``relu(a)`` at s = 0.

    Example:
        >>> round(float(gaussian_relu_mean(0.0, 1.0)), 4)
        0.3989
    """
    a, s = torch.as_tensor(a, dtype=torch.float64), torch.as_tensor(s, dtype=torch.float64)
    safe = torch.where(s > 0, s, torch.ones_like(s))
    z = a / safe
    noisy = a * _normal_cdf(z) + safe * _normal_pdf(z)
    return torch.where(s > 0, noisy, torch.relu(a))


def gaussian_relu_variance(a: torch.Tensor | float, s: torch.Tensor | float) -> torch.Tensor:
    r"""``Var[relu(a + s xi)] = (a^2 + s^2) Phi(a/s) + a s phi(a/s) - E^2``; 0.341 s^2 at a = 0."""
    a, s = torch.as_tensor(a, dtype=torch.float64), torch.as_tensor(s, dtype=torch.float64)
    safe = torch.where(s > 0, s, torch.ones_like(s))
    z = a / safe
    second = (a**2 + safe**2) * _normal_cdf(z) + a * safe * _normal_pdf(z)
    variance = second - gaussian_relu_mean(a, safe) ** 2
    return torch.where(s > 0, variance.clamp_min(0.0), torch.zeros_like(variance))


def gaussian_softplus_mean(a: torch.Tensor | float, s: torch.Tensor | float) -> torch.Tensor:
    """``E[softplus(a + s xi)]`` by 64-point Gauss-Hermite quadrature (exact to ~1e-10 here)."""
    return _quadrature(torch.nn.functional.softplus, a, s)


def gaussian_activation_mean(
    activation: str, a: torch.Tensor | float, s: torch.Tensor | float
) -> torch.Tensor:
    """``E[f(a + s xi)]`` for a named activation: closed form for relu, quadrature otherwise."""
    from agents.noise import ACTIVATIONS

    check_choice("activation", activation, ACTIVATIONS)
    if activation == "relu":
        return gaussian_relu_mean(a, s)
    return _quadrature(ACTIVATIONS[activation], a, s)


def _quadrature(f, a: torch.Tensor | float, s: torch.Tensor | float) -> torch.Tensor:
    a, s = torch.as_tensor(a, dtype=torch.float64), torch.as_tensor(s, dtype=torch.float64)
    nodes = torch.as_tensor(_HERMITE_NODES, dtype=torch.float64)
    weights = torch.as_tensor(_HERMITE_WEIGHTS, dtype=torch.float64)
    values = f(a.unsqueeze(-1) + s.unsqueeze(-1) * nodes)
    return (values * weights).sum(-1)


@torch.no_grad()
def mean_field_state(
    model: CTRNN,
    inputs: torch.Tensor,
    sigma: float,
    *,
    iterations: int = 5000,
    tolerance: float = 1e-10,
    damping: float = 0.5,
) -> torch.Tensor:
    """Solve the mean-field stationary state ``h = E[f(W h + U u + b + s xi)]`` by damped iteration.

    For noise "out" the noise has zero mean after ``f`` and the solution is the deterministic fixed
    point. ``s`` is ``sigma`` times the model's noise gain.

    Args:
        model: a CTRNN.
        inputs: constant inputs ``[B, I]``.
        sigma: the noise level.
        iterations: maximum number of iterations.
        tolerance: stop when the largest change is below this.
        damping: step size of the damped iteration ``h <- (1 - d) h + d E[f(...)]``.

    Returns:
        The stationary mean state ``[B, N]`` (float64).

    Raises:
        RuntimeError: if the iteration does not converge (e.g. an unstable network).
    """
    check_nonnegative("sigma", sigma)
    check_positive_int("iterations", iterations)
    config = model.config
    s = sigma * config.noise_gain if config.placement == "in" else 0.0
    W, U, b = (p.detach().double() for p in (model.W, model.U, model.b))
    drive = inputs.double() @ U.T + b
    h = model.initial_state(inputs.shape[0]).detach().double().clone()
    for _ in range(iterations):
        target = gaussian_activation_mean(config.activation, h @ W.T + drive, s)
        step = damping * (target - h)
        h = h + step
        if float(step.abs().max()) < tolerance:
            return h
    raise RuntimeError(
        f"mean-field iteration did not converge in {iterations} iterations "
        f"(last change {float(step.abs().max()):.3g}); the network may have no stable fixed point"
    )


@torch.no_grad()
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
    """Time- and replica-averaged hidden state and output under noise ``sigma``.

    Args:
        model: a CTRNN.
        inputs: constant inputs ``[B, I]``.
        sigma: the noise level.
        steps: steps averaged after burn-in.
        burn_in: steps discarded first.
        replicas: independent noise replicas per input row.
        seed: seed of the noise.

    Returns:
        ``(mean state [B, N], mean output [B, O])``.
    """
    check_positive_int("steps", steps)
    check_positive_int("replicas", replicas)
    batch = inputs.shape[0]
    u = inputs.repeat(replicas, 1)
    noise = torch.Generator(device=inputs.device).manual_seed(seed)
    h = model.initial_state(u.shape[0], inputs.device)
    total = torch.zeros_like(h, dtype=torch.float64)
    for t in range(burn_in + steps):
        h = model.hidden_step(u, h, sigma, noise)
        if t >= burn_in:
            total += h
    mean_h = (total / steps).view(replicas, batch, -1).mean(0)
    return mean_h, model.readout(mean_h.to(h.dtype))
