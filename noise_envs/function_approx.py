"""NoisyFunctionApprox-v0: hold a function of a constant input at the output."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable

import torch

from noise_envs._checks import (
    check_choice,
    check_noise_level,
    check_positive_int,
)
from noise_envs._memory import check_memory
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

_PROBE_ROWS = 5
"""A callable target is first called on this many inputs, evenly spaced from -1 to 1."""


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
        check_noise_level("obs_noise", self.obs_noise)
        # float32 inputs: the probe of a callable target, then one row's episode (x, target, mask).
        check_memory("input_dim", self.input_dim, 2 * _PROBE_ROWS * self.input_dim * 4)
        check_memory("steps", self.steps, 3 * self.steps * self.input_dim * 4)


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
        """k, found by evaluating f once on inputs from -1 to 1 (which checks a callable f)."""
        probe = torch.linspace(-1.0, 1.0, _PROBE_ROWS).unsqueeze(-1)
        return int(self.target_of(probe.expand(-1, self.cue_size).clone()).shape[-1])

    @property
    def response_start(self) -> int:
        """``steps - response_steps``."""
        return self.config.steps - self.config.response_steps

    def draw_cue(self, batch_size: int, rng: RandomSource) -> torch.Tensor:
        """x uniform in [-1, 1]^d."""
        return rng.uniform(batch_size, self.cue_size, low=-1.0, high=1.0)

    def target_of(self, cue: torch.Tensor) -> torch.Tensor:
        """f(x); a callable f's output is checked: a finite float tensor ``[B, k]``."""
        function = self.config.function
        if not callable(function):
            return FUNCTIONS[function](cue)
        return _checked_target(function, cue)


def _checked_target(
    function: Callable[[torch.Tensor], torch.Tensor], cue: torch.Tensor
) -> torch.Tensor:
    """``function(cue)`` as float32 ``[B, k]``; ValueError naming `function` if it is not one."""
    try:
        target = function(cue)
    except Exception as error:
        message = str(error).splitlines()[0] if str(error) else ""
        raise ValueError(
            f"`function` failed on x of shape {tuple(cue.shape)}: {type(error).__name__}: {message}"
        ) from error
    if not isinstance(target, torch.Tensor):
        raise ValueError(f"`function` must return a torch.Tensor, got {type(target).__name__}")
    if target.dim() != 2 or target.shape[0] != cue.shape[0]:
        raise ValueError(
            f"`function` must map x [B, d] to a target [B, k]: for x of shape "
            f"{tuple(cue.shape)} it returned shape {tuple(target.shape)}"
        )
    if not target.is_floating_point():
        raise ValueError(f"`function` must return floating-point values, got {target.dtype}")
    if not bool(torch.isfinite(target).all()):
        raise ValueError("`function` must return finite values, got NaN or infinite ones")
    return target.to(torch.float32)
