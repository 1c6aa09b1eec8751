r"""Fixed points of the noise-free CTRNN map under constant input, and their stability.

The noise-free map is :math:`F(h) = (1 - \gamma) h + \gamma f(W h + U u + b)`; its fixed points
solve :math:`f(W h + U u + b) = h` (``gamma`` cancels). The solver minimises the residual from many
initial states at once by Levenberg-Marquardt steps, with the exact Jacobian
:math:`\operatorname{diag}(f'(W h + c)) W - I` (``f'`` by autograd through the elementwise
activation; ``torch.func.jacrev`` gives the same but imports ``torch._dynamo`` on first use, which
takes seconds), merges the solutions that coincide, and classifies each by the eigenvalues of
the Jacobian of ``F``: stable when all ``|lambda| < 1``. :class:`NoiseFreeRNN` exposes the same
map behind :class:`torch.nn.RNN`'s interface, so external fixed-point finders can be run on it
and compared.
"""

from __future__ import annotations

import dataclasses

import torch
from torch import nn

from agents.ctrnn import CTRNN, READOUTS
from noise_envs._checks import check_positive, check_positive_int, check_shape

__all__ = ["FixedPoint", "NoiseFreeRNN", "find_fixed_points", "sample_states"]


@dataclasses.dataclass(frozen=True, eq=False)
class FixedPoint:
    """One fixed point of the noise-free map (float64 tensors)."""

    state: torch.Tensor
    """The hidden state ``h*`` ``[N]``."""
    output: torch.Tensor
    """The read-out ``g(W_out h* + b_out)`` ``[O]`` (``g`` the model's ``readout``)."""
    eigenvalues: torch.Tensor
    """Eigenvalues of the map's Jacobian at ``h*`` ``[N]`` (complex), by decreasing modulus."""
    stable: bool
    """Whether every eigenvalue has modulus < 1 (an attractor of the discrete map)."""
    residual: float
    """The largest ``|f(W h* + U u + b) - h*|``."""

    @property
    def spectral_radius(self) -> float:
        """The largest eigenvalue modulus."""
        return float(self.eigenvalues.abs().max())

    def __repr__(self) -> str:
        kind = "stable" if self.stable else "unstable"
        state = ", ".join(f"{v:.4g}" for v in self.state[:4].tolist())
        more = ", ..." if self.state.numel() > 4 else ""
        return f"FixedPoint([{state}{more}], {kind}, radius={self.spectral_radius:.4g})"


class _Map:
    """The model's noise-free map at one constant input, in float64."""

    def __init__(self, model: CTRNN, inputs: torch.Tensor) -> None:
        self.W, U, b, self.W_out, self.b_out = (
            p.detach().to(device=inputs.device, dtype=torch.float64)
            for p in (model.W, model.U, model.b, model.W_out, model.b_out)
        )
        self.drive = U @ inputs.to(torch.float64) + b
        self.activation = model.activation
        self.readout = READOUTS[model.config.readout]
        self.gamma = model.config.gamma

    def residual(self, h: torch.Tensor) -> torch.Tensor:
        """``f(W h + c) - h`` for states ``[S, N]``."""
        return self.activation(h @ self.W.T + self.drive) - h

    def slope(self, h: torch.Tensor) -> torch.Tensor:
        """``f'(W h + c)`` ``[S, N]``, by autograd through the elementwise activation."""
        with torch.enable_grad():
            pre = (h @ self.W.T + self.drive).detach().requires_grad_(True)
            (slope,) = torch.autograd.grad(self.activation(pre).sum(), pre)
        return slope

    def residual_jacobian(self, h: torch.Tensor) -> torch.Tensor:
        """``d residual / dh = diag(f') W - I`` ``[S, N, N]``."""
        eye = torch.eye(h.shape[-1], dtype=h.dtype, device=h.device)
        return self.slope(h).unsqueeze(-1) * self.W - eye

    def map_jacobian(self, h: torch.Tensor) -> torch.Tensor:
        """Jacobian of ``F``: ``(1 - gamma) I + gamma diag(f') W`` ``[S, N, N]``."""
        eye = torch.eye(h.shape[-1], dtype=h.dtype, device=h.device)
        return (1.0 - self.gamma) * eye + self.gamma * self.slope(h).unsqueeze(-1) * self.W


@torch.no_grad()
def find_fixed_points(
    model: CTRNN,
    inputs: torch.Tensor,
    *,
    initial_states: torch.Tensor | None = None,
    num_initial: int = 64,
    initial_scale: float = 1.0,
    seed: int = 0,
    iterations: int = 200,
    tolerance: float = 1e-9,
    distinct: float = 1e-5,
) -> tuple[FixedPoint, ...]:
    """All fixed points of the noise-free map that the solver reaches from the initial states.

    Args:
        model: a CTRNN.
        inputs: one constant input ``[I]``.
        initial_states: where the solves start, ``[S, N]`` (default: ``num_initial`` states drawn
            from ``N(0, initial_scale^2)``; :func:`sample_states` gives states the network
            visits, which find the relevant fixed points faster).
        num_initial: number of random initial states when ``initial_states`` is None.
        initial_scale: their standard deviation.
        seed: seed of the random initial states.
        iterations: Levenberg-Marquardt steps per start.
        tolerance: a start has converged when its largest residual is below this.
        distinct: solutions closer than ``distinct * (1 + |h|)`` (max norm) are one fixed point.

    Returns:
        The distinct fixed points, stable ones first, each group by increasing ``|h|``; empty
        if no start converged.
    """
    check_shape("inputs", inputs, (model.config.input_size,))
    check_positive_int("iterations", iterations)
    check_positive("tolerance", tolerance)
    check_positive("distinct", distinct)
    if initial_states is None:
        check_positive_int("num_initial", num_initial)
        check_positive("initial_scale", initial_scale)
        generator = torch.Generator().manual_seed(seed)
        shape = (num_initial, model.config.hidden_size)
        initial_states = initial_scale * torch.randn(shape, generator=generator)
    check_shape("initial_states", initial_states, (None, model.config.hidden_size))
    system = _Map(model, inputs)
    states = initial_states.to(device=inputs.device, dtype=torch.float64)
    states = _levenberg_marquardt(system, states, iterations, tolerance)
    residuals = system.residual(states).abs().amax(-1)
    solutions = _distinct(states[residuals < tolerance], distinct)
    if not solutions:
        return ()
    points = _classify(system, torch.stack(solutions))
    return tuple(sorted(points, key=lambda p: (not p.stable, float(p.state.norm()))))


def _levenberg_marquardt(
    system: _Map, states: torch.Tensor, iterations: int, tolerance: float
) -> torch.Tensor:
    """Minimise ``|f(W h + c) - h|^2`` from every state at once, with per-start damping."""
    damping = torch.full(states.shape[:1], 1e-3, dtype=states.dtype, device=states.device)
    eye = torch.eye(states.shape[1], dtype=states.dtype, device=states.device)
    residual = system.residual(states)
    for _ in range(iterations):
        cost = (residual**2).sum(-1)
        if float(residual.abs().amax()) < tolerance:
            break
        J = system.residual_jacobian(states)
        normal = J.mT @ J + damping[:, None, None] * eye
        delta = torch.linalg.solve(normal, -(J.mT @ residual.unsqueeze(-1))).squeeze(-1)
        trial = states + delta
        trial_residual = system.residual(trial)
        better = (trial_residual**2).sum(-1) < cost
        states = torch.where(better[:, None], trial, states)
        residual = torch.where(better[:, None], trial_residual, residual)
        damping = torch.where(better, damping / 3.0, damping * 3.0).clamp(1e-12, 1e12)
    return states


def _distinct(states: torch.Tensor, distinct: float) -> list[torch.Tensor]:
    """One representative of each group of states that lie within ``distinct`` of each other."""
    found: list[torch.Tensor] = []
    for h in states:
        scale = distinct * (1.0 + float(h.abs().max()))
        if all(float((h - other).abs().max()) > scale for other in found):
            found.append(h)
    return found


def _classify(system: _Map, states: torch.Tensor) -> list[FixedPoint]:
    eigenvalues = torch.linalg.eigvals(system.map_jacobian(states))
    order = eigenvalues.abs().argsort(dim=-1, descending=True)
    eigenvalues = eigenvalues.gather(-1, order)
    residuals = system.residual(states).abs().amax(-1)
    outputs = system.readout(states @ system.W_out.T + system.b_out)
    return [
        FixedPoint(
            state=h,
            output=y,
            eigenvalues=lam,
            stable=bool(lam.abs().max() < 1.0),
            residual=float(r),
        )
        for h, y, lam, r in zip(states, outputs, eigenvalues, residuals, strict=True)
    ]


@torch.no_grad()
def sample_states(
    model: CTRNN,
    inputs: torch.Tensor,
    sigma: float,
    *,
    num_states: int = 64,
    steps: int = 200,
    seed: int = 0,
) -> torch.Tensor:
    """States ``[num_states, N]`` visited under noise ``sigma`` at one constant input ``[I]``.

    Trajectories start at the model's initial state and wander for ``steps`` steps; good starting
    points for :func:`find_fixed_points`, since they lie where the network operates.
    """
    check_shape("inputs", inputs, (model.config.input_size,))
    check_positive_int("num_states", num_states)
    check_positive_int("steps", steps)
    generator = torch.Generator().manual_seed(seed)
    u = inputs.expand(num_states, -1)
    h = model.initial_state(num_states, inputs.device)
    stop = torch.randint(steps // 2, steps + 1, (num_states,), generator=generator)
    kept = h.clone()
    for t in range(1, steps + 1):
        h = model.hidden_step(u, h, sigma, generator)
        kept = torch.where((stop == t)[:, None].to(h.device), h, kept)
    return kept


class NoiseFreeRNN(nn.Module):
    """The CTRNN's noise-free hidden dynamics behind :class:`torch.nn.RNN`'s interface.

    ``forward(x [T, B, I], h0 [1, B, N]) -> (states [T, B, N], h_n [1, B, N])`` like a one-layer
    ``nn.RNN`` with ``batch_first=False`` (unbatched ``x [T, I]``, ``h0 [1, N]`` work too), so
    tools written for ``nn.RNN`` (e.g. fixed-point finders) run on the CTRNN unchanged.

    Example:
        >>> from agents import CTRNN, CTRNNConfig
        >>> rnn = NoiseFreeRNN(CTRNN(CTRNNConfig(input_size=2, output_size=1, hidden_size=3)))
        >>> states, last = rnn(torch.zeros(5, 4, 2), torch.zeros(1, 4, 3))
        >>> tuple(states.shape), tuple(last.shape)
        ((5, 4, 3), (1, 4, 3))
    """

    batch_first = False
    num_layers = 1
    bidirectional = False

    def __init__(self, model: CTRNN) -> None:
        super().__init__()
        self.model = model
        self.input_size = model.config.input_size
        self.hidden_size = model.config.hidden_size

    def __repr__(self) -> str:
        return f"NoiseFreeRNN({self.model!r})"

    def forward(
        self, x: torch.Tensor, h0: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Run the noise-free map: inputs ``[T, B, I]`` -> states ``[T, B, N]`` and ``[1, B, N]``."""
        if x.dim() == 2:
            h0 = None if h0 is None else h0.unsqueeze(1)
            states, last = self.forward(x.unsqueeze(1), h0)
            return states.squeeze(1), last.squeeze(1)
        check_shape("x", x, (None, None, self.input_size))
        if h0 is not None:
            h0 = check_shape("h0", h0, (1, x.shape[1], self.hidden_size))[0]
        _, states = self.model(x, sigma=0.0, h0=h0)
        return states, states[-1:]
