"""NoisyFunctionApprox-v0: hold a function of a constant input at the output."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable

import torch

from noise_envs._checks import check_choice, check_nonnegative, check_positive_int
from noise_envs.config import JsonConfig
from noise_envs.cued import CuedResponseTask
from noise_envs.random import RandomSource

__all__ = ["FUNCTIONS", "FunctionApproxConfig", "FunctionApproxTask"]

FUNCTIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "sin": lambda x: torch.sin(math.pi * x),
    "quadratic": lambda x: x**2,
    "abs": torch.abs,
    "tanh_step": lambda x: torch.tanh(5.0 * x),
}
"""The named target functions, applied elementwise to ``x`` in ``[-1, 1]``; all map into [-1, 1]."""


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class FunctionApproxConfig(JsonConfig):
    """Options of :class:`FunctionApproxTask`."""

    input_dim: int = 1
    """Dimension d of the input x, drawn uniformly in [-1, 1]^d."""
    steps: int = 50
    """Steps per episode (1 makes it a feedforward task)."""
    response_steps: int = 20
    """The output is scored over the last this many steps."""
    function: str | Callable[[torch.Tensor], torch.Tensor] = "sin"
    """Target f(x): one of sin (sin(pi x)), quadratic, abs, tanh_step, or a callable [B, d] -> [B, k]."""
    obs_noise: float = 0.0
    """Standard deviation of Gaussian noise added to every observation."""

    def __post_init__(self) -> None:
        check_positive_int("input_dim", self.input_dim)
        check_positive_int("steps", self.steps)
        check_positive_int("response_steps", self.response_steps)
        if self.response_steps > self.steps:
            raise ValueError(
                f"`response_steps` must be <= `steps` ({self.steps}), got {self.response_steps}"
            )
        if not callable(self.function):
            check_choice("function", self.function, FUNCTIONS)
        check_nonnegative("obs_noise", self.obs_noise)


class FunctionApproxTask(CuedResponseTask):
    """Function approximation: show x, output f(x).

    ## Description
    Each episode draws ``x ~ U([-1, 1]^d)`` and shows it as a constant input for ``steps`` steps;
    over the last ``response_steps`` steps the output must equal ``f(x)``. With ``steps = 1`` it
    is a feedforward regression task.

    ## Observation Space
    ``Box(-b, b, (d,))``: x plus observation noise, clipped at ``b = 1 + 5 * obs_noise``.

    ## Action Space
    ``Box(-1, 1, (k,))``: the network's output (``k = d`` for the named functions). Actions are
    scored, not clipped.

    ## Rewards
    Minus the squared error on scored steps, 0 before.

    ## Episode End
    Terminates after ``steps`` steps.

    ## Teacher signal
    ``target = f(x)`` with mask 1 over the response window, 0 before.

    ## Metrics
    ``mse`` (primary, lower is better): mean squared error over the response window.

    ## Arguments
    See :class:`FunctionApproxConfig`: ``input_dim``, ``steps``, ``response_steps``,
    ``function``, ``obs_noise``.

    ## Version History
    * v0: initial version.

    Example:
        >>> task = FunctionApproxTask(steps=5, response_steps=2)
        >>> state, obs = task.reset(3, generator=0)
        >>> tuple(obs.shape)
        (3, 1)
    """

    id = "NoisyFunctionApprox-v0"
    config_class = FunctionApproxConfig

    @property
    def cue_size(self) -> int:
        """d."""
        return self.config.input_dim

    @property
    def response_size(self) -> int:
        """k, found by evaluating f once."""
        return int(self.target_of(torch.zeros(1, self.cue_size)).shape[-1])

    @property
    def response_start(self) -> int:
        """``steps - response_steps``."""
        return self.config.steps - self.config.response_steps

    def draw_cue(self, batch_size: int, rng: RandomSource) -> torch.Tensor:
        """x uniform in [-1, 1]^d."""
        return rng.uniform(batch_size, self.cue_size, low=-1.0, high=1.0)

    def target_of(self, cue: torch.Tensor) -> torch.Tensor:
        """f(x)."""
        function = self.config.function
        f = function if callable(function) else FUNCTIONS[function]
        return f(cue)
