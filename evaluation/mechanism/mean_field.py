r"""Mean-field theory of the noisy CTRNN's stationary state: why noise-in networks prefer noise.

For small ``gamma`` the noise-in CTRNN's stationary mean approximately solves the mean-field
equation

.. math::
    h = E_\xi[f(W h + U u + b + s \xi)],

``s`` the effective noise level (``sigma`` times the model's noise gain). At ``s = 0`` it is the
deterministic fixed point; the difference is the noise-induced shift, which removing the noise at
test time turns into an output bias. For noise "out" the noise has zero mean after ``f`` and the
mean-field solution is the deterministic fixed point.

The state itself fluctuates (its variance is of order ``gamma s^2``), and those fluctuations also
pass through ``f``. The *linear-response correction* accounts for them: the state covariance
``Sigma`` solves the discrete Lyapunov equation of the linearised dynamics,

.. math::
    \Sigma = A \Sigma A^\top + \gamma^2 \operatorname{diag}(q), \qquad
    A = (1 - \gamma) I + \gamma \operatorname{diag}(g) W,

with ``g = E[f']`` the noise-averaged gains and ``q`` the variance of the fresh noise after ``f``,
and the pre-activation noise seen by ``f`` grows to ``s_i^2 + (W \Sigma W^T)_{ii}``. Both are solved
together. It removes most of the mean-field error that grows with ``gamma`` and predicts the small
shift of noise-out networks. The single-neuron closed forms are in
:mod:`evaluation.mechanism.single_neuron`.

A sigmoid read-out ``y = sigmoid(z)``, ``z = W_out h + b_out`` (Yang et al.'s) is taken through
the same Gaussian approximation: ``E[y_i] = E[sigmoid(z_i)]`` with ``z`` Gaussian (exact given
the Gaussian state), and the output covariance linearised with the noise-averaged slopes,
``Cov(y) = D Cov(z) D``, ``D = diag(E[sigmoid'(z)])``.
"""

from __future__ import annotations

import dataclasses
import math

import torch

from agents.ctrnn import CTRNN, READOUTS
from evaluation.mechanism.gaussian import (
    gaussian_activation_mean,
    gaussian_activation_slope,
    gaussian_activation_variance,
)
from noise_envs._checks import (
    check_choice,
    check_nonnegative,
    check_positive,
    check_positive_int,
    check_shape,
)

__all__ = [
    "MeanFieldStatistics",
    "mean_field_state",
    "mean_field_statistics",
    "output_statistics",
    "solve_discrete_lyapunov",
]


_RUNAWAY = 1e8
"""States beyond this size mean that the iteration runs away (an unstable network)."""
_NEWTON_SWITCH = 1e-6
"""The damped iteration hands over to Newton's method once its steps are this small."""
_NEWTON_STEPS = 30
"""Most Newton steps."""
_OUTER_ITERATIONS = 200
"""Most rounds of the linear-response correction (each solves one Lyapunov equation)."""


@dataclasses.dataclass(frozen=True, eq=False)
class MeanFieldStatistics:
    """The predicted stationary distribution of a CTRNN at one noise level (float64 tensors)."""

    sigma: float
    """The noise level (before the model's noise gain)."""
    state_mean: torch.Tensor
    """Mean hidden state ``[B, N]``."""
    state_covariance: torch.Tensor
    """Covariance of the hidden state ``[B, N, N]`` (linearised dynamics)."""
    pre_mean: torch.Tensor
    """Mean of the argument of ``f``, ``W h + U u + b``, ``[B, N]``."""
    pre_std: torch.Tensor
    """Standard deviation of the argument of ``f`` (state fluctuations plus noise "in"), ``[B, N]``."""
    output_mean: torch.Tensor
    """Mean output ``E[g(W_out h + b_out)]``, ``[B, O]`` (``g`` the model's ``readout``)."""
    output_covariance: torch.Tensor
    """Covariance of the output ``[B, O, O]``."""
    linear_response: bool
    """Whether the state's fluctuations were fed back into the pre-activation noise."""


def output_statistics(
    readout: str, mean: torch.Tensor, covariance: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean ``[..., O]`` and covariance ``[..., O, O]`` of ``g(z)`` for Gaussian ``z``.

    Linear: ``z``'s own. Sigmoid: ``E[sigmoid(z_i)]`` by quadrature over ``z_i``'s marginal, and
    the covariance ``D Cov(z) D`` with ``D = diag(E[sigmoid'(z_i)])`` (Stein's lemma gives
    ``Cov(g(z_i), z_j)`` exactly; the rest is first order in the fluctuations).

    Args:
        readout: the model's read-out, ``linear`` or ``sigmoid``.
        mean: the mean of ``z``.
        covariance: the covariance of ``z``.
    """
    check_choice("readout", readout, READOUTS)
    if readout == "linear":
        return mean, covariance
    std = torch.diagonal(covariance, dim1=-2, dim2=-1).clamp_min(0.0).sqrt()
    slope = gaussian_activation_slope(readout, mean, std)
    scaled = slope.unsqueeze(-1) * covariance * slope.unsqueeze(-2)
    return gaussian_activation_mean(readout, mean, std), scaled


def solve_discrete_lyapunov(
    A: torch.Tensor, Q: torch.Tensor, *, max_doublings: int = 64
) -> torch.Tensor:
    r"""Solve ``Sigma = A Sigma A^T + Q`` by Smith's doubling, batched over leading dimensions.

    ``Sigma = sum_k A^k Q (A^T)^k``; each doubling squares ``A``, so ``d`` doublings sum ``2^d``
    terms.

    Args:
        A: ``[..., N, N]`` with spectral radius < 1.
        Q: ``[..., N, N]`` symmetric.
        max_doublings: at most this many doublings.

    Returns:
        ``Sigma`` ``[..., N, N]``.

    Raises:
        RuntimeError: if ``A`` has spectral radius >= 1 (no stationary covariance).
    """
    sigma, power = Q.clone(), A.clone()
    for _ in range(max_doublings):
        sigma = sigma + power @ sigma @ power.mT
        power = power @ power
        size = float(power.abs().max()) if power.numel() else 0.0
        if size < 1e-15:
            break
        if not math.isfinite(size) or size > 1e15:
            max_doublings = 0
            break
    else:
        max_doublings = 0
    if max_doublings == 0:
        radius = float(torch.linalg.eigvals(A).abs().max())
        raise RuntimeError(
            f"the linearised dynamics have spectral radius {radius:.4g}, not clearly < 1: the "
            "state has no stationary covariance (the network is unstable around this mean)"
        )
    return 0.5 * (sigma + sigma.mT)


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

    Without the linear-response correction; see :func:`mean_field_statistics` for it.

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
    system, h = _setup(model, inputs, sigma, None, iterations, damping)
    return system.iterate(h, torch.zeros_like(h), iterations, tolerance, damping)


@torch.no_grad()
def mean_field_statistics(
    model: CTRNN,
    inputs: torch.Tensor,
    sigma: float,
    *,
    linear_response: bool = True,
    h0: torch.Tensor | None = None,
    iterations: int = 5000,
    tolerance: float = 1e-10,
    damping: float = 0.5,
) -> MeanFieldStatistics:
    """Predict the stationary mean and covariance of the state and output under noise ``sigma``.

    Args:
        model: a CTRNN.
        inputs: constant inputs ``[B, I]``.
        sigma: the noise level.
        linear_response: feed the state's fluctuations back into the noise seen by ``f``
            (see the module docstring); False gives the plain mean-field equation.
        h0: where the iteration starts, ``[B, N]`` (default: the model's initial state), which
            selects the attractor in a multistable network.
        iterations: maximum number of iterations.
        tolerance: stop when the largest change of the mean is below this.
        damping: step size of the damped iteration ``h <- (1 - d) h + d E[f(...)]``.

    Returns:
        The predicted statistics.

    Raises:
        RuntimeError: if the iteration does not converge or the linearised dynamics are unstable.
    """
    system, h = _setup(model, inputs, sigma, h0, iterations, damping)
    state_noise = torch.zeros_like(h)
    h = system.iterate(h, state_noise, iterations, tolerance, damping)
    if linear_response:
        h, state_noise = system.self_consistent(h, iterations, tolerance, damping)
    covariance = system.covariance(h, state_noise)
    return system.statistics(h, covariance, linear_response)


def _setup(
    model: CTRNN,
    inputs: torch.Tensor,
    sigma: float,
    h0: torch.Tensor | None,
    iterations: int,
    damping: float,
) -> tuple[_System, torch.Tensor]:
    """Validate the arguments; the system and the starting state ``[B, N]`` (float64)."""
    check_nonnegative("sigma", sigma)
    check_positive_int("iterations", iterations)
    check_positive("damping", damping)
    check_shape("inputs", inputs, (None, model.config.input_size))
    h = model.initial_state(inputs.shape[0]) if h0 is None else h0
    h = check_shape("h0", h, (inputs.shape[0], model.config.hidden_size))
    return _System(model, inputs, sigma), h.detach().to(torch.float64).clone()


class _System:
    """The model's parameters in float64 and the maps of the mean-field iteration."""

    def __init__(self, model: CTRNN, inputs: torch.Tensor, sigma: float) -> None:
        config = model.config
        self.sigma = sigma
        self.activation = config.activation
        self.readout = config.readout
        self.gamma = config.gamma
        s = sigma * config.noise_gain
        self.s_in = s if config.placement == "in" else 0.0
        self.s_out = s if config.placement == "out" else 0.0
        self.W, U, b, self.W_out, self.b_out = (
            p.detach().to(device=inputs.device, dtype=torch.float64)
            for p in (model.W, model.U, model.b, model.W_out, model.b_out)
        )
        self.drive = inputs.to(torch.float64) @ U.T + b

    def pre(self, h: torch.Tensor) -> torch.Tensor:
        return h @ self.W.T + self.drive

    def noise_std(self, state_noise: torch.Tensor) -> torch.Tensor:
        """Std of the argument of f: fresh noise "in" plus the state's fluctuations ``[B, N]``."""
        return torch.sqrt(self.s_in**2 + state_noise)

    def state_noise(self, covariance: torch.Tensor) -> torch.Tensor:
        """The variance ``(W Sigma W^T)_ii`` the state's fluctuations add to each pre-activation."""
        return torch.einsum("ij,bjk,ik->bi", self.W, covariance, self.W).clamp_min(0.0)

    def iterate(
        self,
        h: torch.Tensor,
        state_noise: torch.Tensor,
        iterations: int,
        tolerance: float,
        damping: float,
    ) -> torch.Tensor:
        """Solve for the mean at a fixed state-noise variance: damped iteration, then Newton.

        The damped iteration follows the network's own mean dynamics into the attractor that
        ``h`` lies in; Newton's method then polishes the solution (quadratically, where the
        damped iteration is slow along the network's slow modes).
        """
        change, polish = math.inf, True
        for _ in range(iterations):
            target = gaussian_activation_mean(
                self.activation, self.pre(h), self.noise_std(state_noise)
            )
            step = damping * (target - h)
            h = h + step
            change = float(step.abs().max())
            if change < tolerance:
                return h
            if polish and change < _NEWTON_SWITCH:
                try:
                    return self.newton(h, state_noise, tolerance)
                except RuntimeError:  # e.g. relu's activation pattern cycles: keep iterating
                    polish = False
            if not math.isfinite(change) or float(h.abs().max()) > _RUNAWAY:
                break
        raise RuntimeError(
            f"mean-field iteration did not converge in {iterations} iterations (last change "
            f"{change:.3g}); the network may have no stable fixed point"
        )

    def newton(self, h: torch.Tensor, state_noise: torch.Tensor, tolerance: float) -> torch.Tensor:
        """Newton's method on ``E[f(W h + c + noise)] - h = 0``; Stein gives its Jacobian."""
        std = self.noise_std(state_noise)
        eye = torch.eye(h.shape[-1], dtype=h.dtype, device=h.device)
        for _ in range(_NEWTON_STEPS):
            pre = self.pre(h)
            residual = gaussian_activation_mean(self.activation, pre, std) - h
            if float(residual.abs().max()) < tolerance:
                return h
            gain = gaussian_activation_slope(self.activation, pre, std)
            jacobian = gain.unsqueeze(-1) * self.W - eye
            h = h - torch.linalg.solve(jacobian, residual.unsqueeze(-1)).squeeze(-1)
        raise RuntimeError(
            f"mean-field Newton polish did not converge in {_NEWTON_STEPS} steps (last residual "
            f"{float(residual.abs().max()):.3g})"
        )

    def self_consistent(
        self, h: torch.Tensor, iterations: int, tolerance: float, damping: float
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Alternate the state covariance and the mean until the state-noise variance settles."""
        state_noise = torch.zeros_like(h)
        for _ in range(_OUTER_ITERATIONS):
            new_noise = self.state_noise(self.covariance(h, state_noise))
            change = float((new_noise - state_noise).abs().max())
            state_noise = new_noise
            try:  # the mean moves little between rounds: Newton from the last one
                h = self.newton(h, state_noise, tolerance)
            except RuntimeError:
                h = self.iterate(h, state_noise, iterations, tolerance, damping)
            if change < tolerance:
                return h, state_noise
        raise RuntimeError(
            f"the linear-response correction did not settle in {_OUTER_ITERATIONS} rounds "
            f"(last change {change:.3g})"
        )

    def covariance(self, h: torch.Tensor, state_noise: torch.Tensor) -> torch.Tensor:
        """The stationary state covariance of the dynamics linearised at the mean ``h``."""
        pre, std = self.pre(h), self.noise_std(state_noise)
        gain = gaussian_activation_slope(self.activation, pre, std)
        total = gaussian_activation_variance(self.activation, pre, std)
        # Fresh noise after f: what f passes on, less the part that follows the state linearly.
        fresh = (total - gain**2 * state_noise).clamp_min(0.0) + self.s_out**2
        eye = torch.eye(h.shape[-1], dtype=h.dtype, device=h.device)
        A = (1.0 - self.gamma) * eye + self.gamma * gain.unsqueeze(-1) * self.W
        return solve_discrete_lyapunov(A, torch.diag_embed(self.gamma**2 * fresh))

    def statistics(
        self,
        h: torch.Tensor,
        covariance: torch.Tensor,
        linear_response: bool,
    ) -> MeanFieldStatistics:
        output_mean, output_covariance = output_statistics(
            self.readout, h @ self.W_out.T + self.b_out, self.W_out @ covariance @ self.W_out.T
        )
        return MeanFieldStatistics(
            sigma=self.sigma,
            state_mean=h,
            state_covariance=covariance,
            pre_mean=self.pre(h),
            pre_std=self.noise_std(self.state_noise(covariance)),
            output_mean=output_mean,
            output_covariance=output_covariance,
            linear_response=linear_response,
        )
