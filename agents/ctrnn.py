"""The continuous-time RNN with noise inside or outside its activation."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable

import torch
from torch import nn
from torch.nn import functional as F

from agents.noise import (
    ACTIVATIONS,
    NOISE_SCALINGS,
    PLACEMENTS,
    NoiseLike,
    check_model_input,
    noisy_activation,
    scaled_noise,
)
from noise_envs._checks import (
    check_at_most,
    check_choice,
    check_finite_tensor,
    check_positive,
    check_positive_int,
    check_shape,
)
from noise_envs._memory import check_memory
from noise_envs.config import JsonConfig
from noise_envs.random import as_random_source

__all__ = [
    "CTRNN",
    "READOUTS",
    "RECURRENT_INITS",
    "CTRNNConfig",
    "check_sequence_inputs",
    "ctrnn_step",
    "initial_recurrent",
]


def _linear(z: torch.Tensor) -> torch.Tensor:
    return z


READOUTS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "linear": _linear,
    "sigmoid": torch.sigmoid,
}
"""Read-out functions g in ``y = g(W_out h + b_out)``; sigmoid is Yang et al. (2019)'s."""

RECURRENT_INITS = ("default", "identity", "orthogonal")
"""Initialisations of W: N(0, gain^2 / N), scale * I, or scale * a random orthogonal matrix."""


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class CTRNNConfig(JsonConfig):
    """Options of :class:`CTRNN`."""

    input_size: int
    """Length of the input (observation) vector."""
    output_size: int
    """Length of the linear read-out (action) vector."""
    hidden_size: int = 64
    """Number of recurrent units N."""
    activation: str = "relu"
    """Activation f: relu, softplus, tanh or sigmoid."""
    placement: str = "in"
    """Where the noise enters: "in" (inside f) or "out" (added after f)."""
    dt: float = 10.0
    """Time step in ms."""
    tau: float = 100.0
    """Membrane time constant in ms; gamma = dt / tau."""
    noise_scaling: str = "per_step"
    """per_step (sigma as given, the paper's) or sqrt_2_over_gamma (Yang et al. 2019)."""
    recurrent_gain: float = 0.9
    """Recurrent weights start as N(0, gain^2 / N)."""
    learn_initial_state: bool = False
    """Learn the initial hidden state instead of starting at zero."""
    readout: str = "linear"
    """Read-out g in y = g(W_out h + b_out): linear, or sigmoid (Yang et al. 2019)."""
    recurrent_init: str = "default"
    """Initial W: default (N(0, gain^2 / N)), identity or orthogonal (times recurrent_scale)."""
    recurrent_scale: float = 0.5
    """Scale of the identity and orthogonal initialisations (Yang's 0.5 I for softplus and relu)."""

    def __post_init__(self) -> None:
        check_positive_int("input_size", self.input_size)
        check_positive_int("output_size", self.output_size)
        check_positive_int("hidden_size", self.hidden_size)
        check_choice("activation", self.activation, ACTIVATIONS)
        check_choice("placement", self.placement, PLACEMENTS)
        check_choice("noise_scaling", self.noise_scaling, NOISE_SCALINGS)
        check_positive("dt", self.dt)
        check_positive("tau", self.tau)
        if self.dt > self.tau:
            raise ValueError(
                f"`dt` must be <= `tau` (gamma <= 1), got dt={self.dt}, tau={self.tau}"
            )
        check_positive("recurrent_gain", self.recurrent_gain)
        check_at_most("recurrent_gain", self.recurrent_gain, MAX_GAIN)
        if not isinstance(self.learn_initial_state, bool):
            raise ValueError(
                f"`learn_initial_state` must be True or False, got {self.learn_initial_state!r}"
            )
        _check_model_size(self)
        check_choice("readout", self.readout, READOUTS)
        check_choice("recurrent_init", self.recurrent_init, RECURRENT_INITS)
        check_positive("recurrent_scale", self.recurrent_scale)

    @classmethod
    def yang2019(cls, input_size: int, output_size: int, **changes) -> CTRNNConfig:
        """Yang et al. (2019)'s reference network (their ``train_all``), ``changes`` applied.

        256 softplus units, dt 20 ms, tau 100 ms, recurrent noise scaled by sqrt(2 / gamma),
        a sigmoid read-out and W starting at 0.5 I.
        """
        reference = {
            "hidden_size": 256,
            "activation": "softplus",
            "dt": 20.0,
            "tau": 100.0,
            "noise_scaling": "sqrt_2_over_gamma",
            "readout": "sigmoid",
            "recurrent_init": "identity",
            "recurrent_scale": 0.5,
        }
        return cls(input_size=input_size, output_size=output_size, **(reference | changes))

    @property
    def gamma(self) -> float:
        """The update rate ``dt / tau`` (not a discount factor)."""
        return self.dt / self.tau

    @property
    def noise_gain(self) -> float:
        """Factor applied to sigma: 1, or ``sqrt(2 / gamma)`` for Yang et al.'s scaling."""
        return 1.0 if self.noise_scaling == "per_step" else math.sqrt(2.0 / self.gamma)


MAX_GAIN = 1e3
"""Largest ``recurrent_gain``: beyond it the initial weights overflow float32 or saturate f."""
_TRAINING_BYTES_PER_PARAMETER = 16
"""float32 weight, gradient and Adam's two moments."""


def _check_model_size(config: CTRNNConfig) -> None:
    """Refuse sizes whose weights cannot be trained in memory, naming the size at fault."""
    n, per = config.hidden_size, _TRAINING_BYTES_PER_PARAMETER
    check_memory("hidden_size", n, per * n * (n + 3))
    check_memory("input_size", config.input_size, per * n * config.input_size)
    check_memory("output_size", config.output_size, per * n * config.output_size)


def ctrnn_step(
    h: torch.Tensor,
    u: torch.Tensor,
    W: torch.Tensor,
    U: torch.Tensor,
    b: torch.Tensor,
    *,
    activation: Callable[[torch.Tensor], torch.Tensor],
    placement: str,
    gamma: float,
    noise: torch.Tensor | None = None,
) -> torch.Tensor:
    r"""One Euler step of the CTRNN.

    .. math::
        \text{in:}\quad h \leftarrow (1-\gamma) h + \gamma f(W h + U u + b + \sigma\xi)

        \text{out:}\quad h \leftarrow (1-\gamma) h + \gamma (f(W h + U u + b) + \sigma\xi)

    Args:
        h: hidden state ``[B, N]``.
        u: input ``[B, I]``.
        W: recurrent weights ``[N, N]``.
        U: input weights ``[N, I]``.
        b: bias ``[N]``.
        activation: f.
        placement: "in" or "out".
        gamma: ``dt / tau``.
        noise: the scaled noise ``sigma * xi``, ``[B, N]``, or None for none.

    References:
        Eckstein & Srinivasan, "Paradoxical noise preference in RNNs", TMLR 2026.
    """
    pre = _preactivation(h, u, W, U, b)
    return torch.lerp(h, noisy_activation(pre, activation, placement, noise), gamma)


def check_sequence_inputs(
    inputs: object, dtype: torch.dtype, size: int, *, rows: str = "B", finite: bool = True
) -> None:
    """ValueError unless ``inputs`` is a ``[T, rows, size]`` tensor of ``dtype``, T >= 1 (finite)."""
    check_model_input("inputs", inputs, dtype, finite=finite)
    if inputs.dim() != 3 or inputs.shape[-1] != size or inputs.shape[0] == 0:
        raise ValueError(
            f"Expected `inputs` of shape [T, {rows}, {size}] with T >= 1, got {tuple(inputs.shape)}"
        )


def initial_recurrent(config: CTRNNConfig, generator: torch.Generator) -> torch.Tensor:
    """The initial recurrent weights ``[N, N]`` that ``config.recurrent_init`` asks for.

    ``identity`` is ``scale * I`` and ``orthogonal`` ``scale * Q``, Q Haar-distributed (QR of a
    Gaussian matrix with R's diagonal made positive): Yang et al. (2019)'s ``diag`` and
    ``randortho``. Draws from ``generator`` only for ``orthogonal``.
    """
    n = config.hidden_size
    if config.recurrent_init == "identity":
        return config.recurrent_scale * torch.eye(n)
    q, r = torch.linalg.qr(torch.randn(n, n, generator=generator))
    return config.recurrent_scale * q * torch.sign(torch.diagonal(r))


def _preactivation(
    h: torch.Tensor, u: torch.Tensor, W: torch.Tensor, U: torch.Tensor, b: torch.Tensor
) -> torch.Tensor:
    """``W h + U u + b``, ``[B, N]``."""
    # F.linear on 2-D inputs is addmm(bias, x, weight.t()), fused in C++: fewer calls per step.
    return F.linear(u, U, F.linear(h, W, b))


class CTRNN(nn.Module):
    """A discrete-time CTRNN with the read-out ``y = g(W_out h + b_out)``, g linear by default.

    ``sigma`` (a float, or ``[B]`` for one level per row) is an argument of every call, scaled by
    ``config.noise_gain``; the standard normal samples ``xi`` come from ``noise``. Implements the
    :class:`~agents.policy.Policy` protocol.

    Example:
        >>> model = CTRNN(CTRNNConfig(input_size=1, output_size=1, hidden_size=8))
        >>> y, h = model(torch.zeros(5, 2, 1), sigma=0.1, noise=0)
        >>> tuple(y.shape), tuple(h.shape)
        ((5, 2, 1), (5, 2, 8))
    """

    def __init__(self, config: CTRNNConfig, generator: torch.Generator | None = None) -> None:
        super().__init__()
        self.config = config
        n, i, o = config.hidden_size, config.input_size, config.output_size
        g = generator if generator is not None else torch.Generator().manual_seed(0)
        self.W = nn.Parameter(torch.randn(n, n, generator=g) * config.recurrent_gain / math.sqrt(n))
        self.U = nn.Parameter(torch.randn(n, i, generator=g) / math.sqrt(i))
        self.b = nn.Parameter(torch.zeros(n))
        self.W_out = nn.Parameter(torch.randn(o, n, generator=g) / math.sqrt(n))
        self.b_out = nn.Parameter(torch.zeros(o))
        self.h0 = nn.Parameter(torch.zeros(n), requires_grad=config.learn_initial_state)
        if config.recurrent_init != "default":  # after the default draws: U and W_out as default
            with torch.no_grad():
                self.W.copy_(initial_recurrent(config, g))
        self.activation = ACTIVATIONS[config.activation]

    def __repr__(self) -> str:
        c = self.config
        return (
            f"CTRNN(in={c.input_size}, hidden={c.hidden_size}, out={c.output_size}, "
            f"{c.activation}, noise {c.placement}, gamma={c.gamma:g}, {c.noise_scaling})"
        )

    def initial_state(self, batch_size: int, device: torch.device | str = "cpu") -> torch.Tensor:
        """The hidden state ``[B, N]`` at the start of an episode."""
        check_positive_int("batch_size", batch_size)
        return self.h0.to(device).expand(batch_size, -1)

    def readout(self, h: torch.Tensor) -> torch.Tensor:
        """The output ``y = g(W_out h + b_out)`` for states ``[..., N]``."""
        z = F.linear(h, self.W_out, self.b_out) if h.dim() == 2 else h @ self.W_out.T + self.b_out
        return READOUTS[self.config.readout](z)

    def step(
        self,
        obs: torch.Tensor,
        state: torch.Tensor,
        sigma: float | torch.Tensor = 0.0,
        noise: NoiseLike = None,
        *,
        validate: bool = True,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """One step: returns the output ``[B, O]`` and the new hidden state ``[B, N]``.

        Args:
            obs: input ``[B, I]``.
            state: hidden state ``[B, N]``.
            sigma: noise level, a float or ``[B]``.
            noise: source of ``xi`` (generator, RandomSource or seed), or ``xi`` itself ``[B, N]``.
            validate: check that ``obs``, ``state`` and given noise samples are finite (NaN or
                infinite entries raise ValueError); false skips it, for trusted inner loops.
        """
        h = self.hidden_step(obs, state, sigma, noise, validate=validate)
        return self.readout(h), h

    def hidden_step(
        self,
        obs: torch.Tensor,
        state: torch.Tensor,
        sigma: float | torch.Tensor = 0.0,
        noise: NoiseLike = None,
        *,
        validate: bool = True,
    ) -> torch.Tensor:
        """The new hidden state ``[B, N]`` after one step (see :meth:`step`)."""
        batch, n = state.shape[0], self.config.hidden_size
        if not isinstance(obs, torch.Tensor) or obs.dtype != self.W.dtype:
            check_model_input("obs", obs, self.W.dtype)
        if obs.shape != (batch, self.config.input_size):
            check_shape("obs", obs, (batch, self.config.input_size))
        if state.shape != (batch, n):
            check_shape("state", state, (batch, n))
        scaled = scaled_noise(
            sigma, noise, (batch, n), obs.device, gain=self.config.noise_gain, validate=validate
        )
        pre = _preactivation(state, obs, self.W, self.U, self.b)
        # One sum checks obs and state at once: a NaN or inf in either makes W h + U u + b
        # non-finite. Only then are they looked at; a model whose own weights are not finite
        # (a diverged run) is left to propagate NaN to the trainer's and the sweep's checks.
        if validate and not math.isfinite(pre.detach().sum().item()):
            self._check_step_inputs(obs, state)
        rate = noisy_activation(pre, self.activation, self.config.placement, scaled)
        return torch.lerp(state, rate, self.config.gamma)

    def _check_step_inputs(self, obs: torch.Tensor, state: torch.Tensor) -> None:
        """ValueError naming ``obs`` or ``state`` if one is not finite while the weights are."""
        if all(bool(torch.isfinite(p).all()) for p in (self.W, self.U, self.b)):
            check_finite_tensor("obs", obs)
            check_finite_tensor("state", state)

    def forward(
        self,
        inputs: torch.Tensor,
        sigma: float | torch.Tensor = 0.0,
        noise: NoiseLike | int = None,
        h0: torch.Tensor | None = None,
        *,
        validate: bool = True,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Run a sequence: inputs ``[T, B, I]`` -> outputs ``[T, B, O]`` and states ``[T, B, N]``.

        The same trajectory as :meth:`step` called ``T`` times with the same noise (up to float
        rounding), computed faster: the input drive ``U u + b`` and the noise of every step are
        made at once, so the loop over time holds only the recurrent product, ``f`` and the
        update. ``noise`` may be a seed, a generator or a source (drawn from as :meth:`step`
        would, step by step), or all samples ``xi`` as ``[T, B, N]``. ``validate`` checks that
        ``inputs``, ``h0`` and given samples are finite (about 0.5% of the call's time); false
        skips it, for trusted inner loops.
        """
        self._check_inputs(inputs, validate)
        steps, batch = inputs.shape[:2]
        h = self.initial_state(batch, inputs.device) if h0 is None else h0
        check_shape("h0", h, (batch, self.config.hidden_size))
        if validate and h0 is not None:
            check_finite_tensor("h0", h0)
        if isinstance(noise, int) and not isinstance(noise, bool):
            noise = as_random_source(noise, inputs.device)
        scaled = scaled_noise(
            sigma,
            noise,
            (batch, self.config.hidden_size),
            inputs.device,
            gain=self.config.noise_gain,
            steps=steps,
            validate=validate,
        )
        drive = F.linear(inputs, self.U, self.b)
        inside = self.config.placement == "in"
        if scaled is not None and inside:
            drive = drive + scaled
        recurrent, gamma, f = self.W.t(), self.config.gamma, self.activation
        # unbind, not drive[t]: one backward node for all steps instead of one zero-filled
        # [T, B, N] gradient per step.
        drives = drive.unbind(0)
        outside = scaled.unbind(0) if scaled is not None and not inside else None
        states = []
        for t in range(steps):
            rate = f(torch.addmm(drives[t], h, recurrent))
            if outside is not None:
                rate = rate + outside[t]
            h = torch.lerp(h, rate, gamma)
            states.append(h)
        hidden = torch.stack(states)
        return self.readout(hidden), hidden

    def _check_inputs(self, inputs: torch.Tensor, validate: bool) -> None:
        """Refuse inputs that are not a finite ``[T, B, I]`` tensor of the model's dtype, T >= 1."""
        check_sequence_inputs(inputs, self.W.dtype, self.config.input_size, finite=validate)

    def unroll(
        self, inputs: torch.Tensor, sigma: float | torch.Tensor = 0.0, noise: NoiseLike = None
    ) -> torch.Tensor:
        """Outputs ``[T, B, O]`` for inputs ``[T, B, I]`` from the initial state (see :meth:`forward`).

        The :class:`~agents.policy.SequencePolicy` method the trainer uses on open-loop tasks.
        """
        return self.forward(inputs, sigma, noise)[0]
