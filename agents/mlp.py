r"""The noisy feedforward network: hidden layers with noise inside or outside the activation.

The paper's feedforward case, and the hidden layers of the noisy PPO policy
(:mod:`agents.sb3.feedforward`). Each hidden layer ``l`` computes

.. math::
    \text{in:}\quad x_l = f(W_l x_{l-1} + b_l + \sigma \xi_l) \qquad
    \text{out:}\quad x_l = f(W_l x_{l-1} + b_l) + \sigma \xi_l

and the output is the linear read-out ``y = W_out x_L + b_out``, with ``xi ~ N(0, I)`` fresh each
call.
"""

from __future__ import annotations

import dataclasses
import itertools
import math

import torch
from torch import nn

from agents.noise import (
    ACTIVATIONS,
    PLACEMENTS,
    NoiseLike,
    check_model_input,
    noisy_activation,
    scaled_noise,
)
from noise_envs._checks import check_choice, check_positive_int, check_shape
from noise_envs._memory import check_memory
from noise_envs.config import JsonConfig

__all__ = ["NoisyLayers", "NoisyMLP", "NoisyMLPConfig"]


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class NoisyMLPConfig(JsonConfig):
    """Options of :class:`NoisyMLP`."""

    input_size: int
    """Length of the input (observation) vector."""
    output_size: int
    """Length of the linear read-out (action) vector."""
    hidden_size: int = 64
    """Units per hidden layer."""
    num_layers: int = 2
    """Number of hidden layers (each one noisy)."""
    activation: str = "relu"
    """Activation f: relu, softplus, tanh or sigmoid."""
    placement: str = "in"
    """Where the noise enters: "in" (inside f) or "out" (added after f)."""

    def __post_init__(self) -> None:
        check_positive_int("input_size", self.input_size)
        check_positive_int("output_size", self.output_size)
        check_positive_int("hidden_size", self.hidden_size)
        check_positive_int("num_layers", self.num_layers)
        check_choice("activation", self.activation, ACTIVATIONS)
        check_choice("placement", self.placement, PLACEMENTS)
        # float32 weight, gradient and Adam's two moments: 16 bytes per parameter
        size = self.hidden_size
        check_memory("hidden_size", size, 16 * size * (size + 3))
        check_memory("num_layers", self.num_layers, 16 * self.num_layers * size * (size + 1))
        check_memory("input_size", self.input_size, 16 * size * self.input_size)
        check_memory("output_size", self.output_size, 16 * size * self.output_size)

    @property
    def noise_size(self) -> int:
        """Noise samples per row and call: one per hidden unit, ``num_layers * hidden_size``."""
        return self.num_layers * self.hidden_size


class NoisyLayers(nn.Module):
    """The hidden layers of a noisy MLP, from input ``[B, I]`` to the last hidden layer ``[B, H]``.

    Weights start as ``N(0, 2 / fan_in)`` (He), biases at zero, all drawn from ``generator``.
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int,
        *,
        activation: str = "relu",
        placement: str = "in",
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        g = generator if generator is not None else torch.Generator().manual_seed(0)
        sizes = [input_size] + [hidden_size] * num_layers
        self.weights = nn.ParameterList(
            nn.Parameter(torch.randn(n_out, n_in, generator=g) * math.sqrt(2.0 / n_in))
            for n_in, n_out in itertools.pairwise(sizes)
        )
        self.biases = nn.ParameterList(nn.Parameter(torch.zeros(hidden_size)) for _ in sizes[1:])
        self.activation = ACTIVATIONS[check_choice("activation", activation, ACTIVATIONS)]
        self.placement = check_choice("placement", placement, PLACEMENTS)
        self.hidden_size = hidden_size

    @property
    def noise_size(self) -> int:
        """Noise samples per row: one per hidden unit of every layer."""
        return len(self.weights) * self.hidden_size

    def forward(self, x: torch.Tensor, noise: torch.Tensor | None = None) -> torch.Tensor:
        """The last hidden layer ``[B, H]``; ``noise`` is the scaled ``sigma * xi``, ``[B, L * H]``."""
        layers = len(self.weights)
        chunks = [None] * layers if noise is None else noise.split(self.hidden_size, dim=-1)
        for weight, bias, chunk in zip(self.weights, self.biases, chunks, strict=True):
            x = noisy_activation(
                torch.addmm(bias, x, weight.T), self.activation, self.placement, chunk
            )
        return x


class NoisyMLP(nn.Module):
    """A feedforward network with noisy hidden layers and a linear read-out.

    Implements the :class:`~agents.policy.Policy` protocol with an empty state (``[B, 0]``), so the
    supervised trainer, the rollout and the noise sweep take it like a CTRNN. ``sigma`` (a float
    or ``[B]``) is an argument of every call; the samples ``xi`` come from ``noise``.

    Example:
        >>> model = NoisyMLP(NoisyMLPConfig(input_size=1, output_size=1, hidden_size=8))
        >>> state = model.initial_state(3)
        >>> noise = torch.Generator().manual_seed(0)
        >>> action, state = model.step(torch.zeros(3, 1), state, sigma=0.5, noise=noise)
        >>> tuple(action.shape), tuple(state.shape)
        ((3, 1), (3, 0))
    """

    def __init__(self, config: NoisyMLPConfig, generator: torch.Generator | None = None) -> None:
        super().__init__()
        self.config = config
        g = generator if generator is not None else torch.Generator().manual_seed(0)
        self.hidden = NoisyLayers(
            config.input_size,
            config.hidden_size,
            config.num_layers,
            activation=config.activation,
            placement=config.placement,
            generator=g,
        )
        size = config.hidden_size
        self.W_out = nn.Parameter(
            torch.randn(config.output_size, size, generator=g) / math.sqrt(size)
        )
        self.b_out = nn.Parameter(torch.zeros(config.output_size))

    def __repr__(self) -> str:
        c = self.config
        return (
            f"NoisyMLP(in={c.input_size}, hidden={c.num_layers}x{c.hidden_size}, "
            f"out={c.output_size}, {c.activation}, noise {c.placement})"
        )

    def initial_state(self, batch_size: int, device: torch.device | str = "cpu") -> torch.Tensor:
        """The empty state ``[B, 0]``: a feedforward network remembers nothing."""
        check_positive_int("batch_size", batch_size)
        return torch.empty(batch_size, 0, device=device)

    def forward(
        self,
        obs: torch.Tensor,
        sigma: float | torch.Tensor = 0.0,
        noise: NoiseLike = None,
        *,
        validate: bool = True,
    ) -> torch.Tensor:
        """The output ``[B, O]`` for inputs ``[B, I]`` at noise level ``sigma``.

        Args:
            obs: input ``[B, I]``.
            sigma: noise level, a float or ``[B]``.
            noise: source of ``xi`` (generator or RandomSource), or ``xi`` itself
                ``[B, num_layers * hidden_size]``.
            validate: check that ``obs`` and given noise samples are finite (NaN or infinite
                entries raise ValueError); false skips it, for trusted inner loops.
        """
        check_model_input("obs", obs, self.W_out.dtype, finite=validate)
        check_shape("obs", obs, (None, self.config.input_size))
        scaled = scaled_noise(
            sigma, noise, (obs.shape[0], self.config.noise_size), obs.device, validate=validate
        )
        hidden = self.hidden(obs, scaled)
        return torch.addmm(self.b_out, hidden, self.W_out.T)

    def step(
        self,
        obs: torch.Tensor,
        state: torch.Tensor,
        sigma: float | torch.Tensor = 0.0,
        noise: NoiseLike = None,
        *,
        validate: bool = True,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """One step of the :class:`~agents.policy.Policy` protocol: ``(action [B, O], state)``."""
        return self(obs, sigma, noise, validate=validate), state
