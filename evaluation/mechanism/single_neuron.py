r"""The single-neuron regulator in closed form: stationary mean, variance and best test noise.

One unit, :math:`h \leftarrow (1 - \gamma) h + \gamma f(w h + c + s \xi)` with ``c = U u + b``
and read-out ``y = w_out h + b_out``. Without self-coupling (``w = 0``) the state is a linear
filter of i.i.d. samples of ``f(c + s xi)``, so for every ``gamma``

.. math::
    E[h] = E[f(c + s\xi)], \qquad \operatorname{Var}[h] = \frac{\gamma}{2 - \gamma}
    \operatorname{Var}[f(c + s\xi)]

exactly (closed forms for relu in :mod:`evaluation.mechanism.gaussian`). With ``w != 0`` the mean solves the
scalar mean-field equation :math:`h = E[f(w h + c + s_\text{eff}\xi)]`, where the linear-response
correction widens the noise to :math:`s_\text{eff}^2 = s^2 + w^2 \operatorname{Var}[h]` and the
variance is that of the linearised AR(1) process, :math:`\gamma^2 q / (1 - a^2)` with
:math:`a = 1 - \gamma + \gamma w E[f']`; it is exact as ``gamma -> 0`` and its error grows with
``gamma``. The predicted mean squared error of a target ``r`` is
:math:`(E[y] - r)^2 + w_\text{out}^2 \operatorname{Var}[h]`, and its minimum over ``s`` is the
predicted best test noise.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np
import torch

from agents.ctrnn import CTRNN
from agents.noise import PLACEMENTS
from evaluation.mechanism.gaussian import (
    gaussian_activation_mean,
    gaussian_activation_slope,
    gaussian_activation_variance,
)
from evaluation.sweep_result import check_levels
from noise_envs._checks import check_choice, check_in_range, check_shape

__all__ = [
    "SingleNeuronPrediction",
    "predict_single_neuron",
    "single_neuron_stationary",
]


@torch.no_grad()
def single_neuron_stationary(
    w: float,
    c: torch.Tensor | float,
    s: torch.Tensor | float,
    gamma: float,
    *,
    activation: str = "relu",
    placement: str = "in",
    iterations: int = 2000,
    tolerance: float = 1e-12,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Stationary mean and variance of one noisy unit, elementwise over ``c`` and ``s``.

    Args:
        w: self-coupling.
        c: constant drive ``U u + b``, any shape.
        s: effective noise level (sigma times the noise gain), broadcastable with ``c``.
        gamma: ``dt / tau`` in (0, 1].
        activation: relu, softplus, tanh or sigmoid.
        placement: noise "in" (inside f) or "out" (added after f).
        iterations: most iterations of the scalar mean-field equation (``w != 0``).
        tolerance: stop when mean and variance change by less than this.

    Returns:
        ``(mean, variance)`` of the state, float64 tensors of the broadcast shape.

    Raises:
        RuntimeError: if the iteration does not converge (an unstable unit, ``w E[f'] >= 1``).
    """
    check_in_range("gamma", gamma, 1e-12, 1.0)
    check_choice("placement", placement, PLACEMENTS)
    c, s = torch.broadcast_tensors(
        torch.as_tensor(c, dtype=torch.float64), torch.as_tensor(s, dtype=torch.float64)
    )
    s_in = s if placement == "in" else torch.zeros_like(s)
    s_out = s if placement == "out" else torch.zeros_like(s)
    mean = gaussian_activation_mean(activation, c, s_in)
    variance = torch.zeros_like(mean)
    for _ in range(iterations):
        new_mean, new_variance = _update(w, c, s_in, s_out, gamma, activation, mean, variance)
        change = max(
            float((new_mean - mean).abs().max()), float((new_variance - variance).abs().max())
        )
        mean, variance = new_mean, new_variance
        if change < tolerance:
            return mean, variance
    raise RuntimeError(
        f"the single-neuron mean-field iteration did not converge in {iterations} iterations "
        f"(last change {change:.3g}); is the unit unstable (w E[f'] >= 1)?"
    )


def _update(
    w: float,
    c: torch.Tensor,
    s_in: torch.Tensor,
    s_out: torch.Tensor,
    gamma: float,
    activation: str,
    mean: torch.Tensor,
    variance: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One step of the joint mean / variance iteration (half-damped in the mean)."""
    pre = w * mean + c
    state_noise = w**2 * variance
    std = torch.sqrt(s_in**2 + state_noise)
    gain = gaussian_activation_slope(activation, pre, std)
    total = gaussian_activation_variance(activation, pre, std)
    fresh = (total - gain**2 * state_noise).clamp_min(0.0) + s_out**2
    a = 1.0 - gamma + gamma * w * gain
    if bool((a.abs() >= 1.0).any()):
        raise RuntimeError(
            "the single-neuron dynamics are unstable (|1 - gamma + gamma w E[f']| >= 1)"
        )
    new_variance = gamma**2 * fresh / (1.0 - a**2)
    new_mean = 0.5 * (mean + gaussian_activation_mean(activation, pre, std))
    return new_mean, new_variance


@dataclasses.dataclass(frozen=True, eq=False)
class SingleNeuronPrediction:
    """The closed-form account of a one-unit CTRNN across test noise levels."""

    levels: np.ndarray
    """Test noise levels ``[L]``."""
    output_mean: np.ndarray
    """Predicted mean output ``[L, B]``."""
    output_variance: np.ndarray
    """Predicted output variance ``[L, B]``."""
    mse: np.ndarray
    """Predicted mean squared error against the targets, averaged over inputs, ``[L]``."""

    @property
    def best_level(self) -> float:
        """The level of least predicted error: the predicted best test noise."""
        return float(self.levels[int(np.argmin(self.mse))])


def predict_single_neuron(
    model: CTRNN,
    inputs: torch.Tensor,
    targets: torch.Tensor,
    levels: Sequence[float] | np.ndarray | torch.Tensor,
) -> SingleNeuronPrediction:
    """Predict a one-unit CTRNN's stationary output and error at each test noise level.

    Args:
        model: a CTRNN with ``hidden_size == 1`` and ``output_size == 1``.
        inputs: constant inputs ``[B, I]`` (for the regulator, the setpoints).
        targets: the output wanted for each input ``[B, 1]`` (for the regulator, the setpoints).
        levels: test noise levels ``[L]``.

    Returns:
        The predicted means, variances and errors.
    """
    config = model.config
    if config.hidden_size != 1 or config.output_size != 1:
        raise ValueError(
            "`model` must have hidden_size 1 and output_size 1, got "
            f"hidden_size={config.hidden_size}, output_size={config.output_size}"
        )
    check_shape("inputs", inputs, (None, config.input_size))
    check_shape("targets", targets, (inputs.shape[0], 1))
    levels = check_levels(levels)
    w, w_out, b_out = (float(p.detach()) for p in (model.W, model.W_out, model.b_out))
    c = (inputs.detach().double() @ model.U.detach().double().T + model.b.detach().double())[:, 0]
    s = torch.as_tensor(levels, dtype=torch.float64)[:, None] * config.noise_gain
    mean, variance = single_neuron_stationary(
        w, c, s, config.gamma, activation=config.activation, placement=config.placement
    )
    output_mean = w_out * mean + b_out
    output_variance = w_out**2 * variance
    error = (output_mean - targets.detach().double()[:, 0]) ** 2 + output_variance
    return SingleNeuronPrediction(
        levels=levels,
        output_mean=output_mean.numpy(),
        output_variance=output_variance.numpy(),
        mse=error.mean(-1).numpy(),
    )
