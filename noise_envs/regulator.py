"""NoisyRegulator-v0: the single-neuron regulator, settle the output to a cued setpoint."""

from __future__ import annotations

import dataclasses

import torch

from noise_envs._checks import (
    check_in_range,
    check_noise_level,
    check_nonnegative,
    check_positive_int,
)
from noise_envs._memory import check_memory
from noise_envs.config import JsonConfig
from noise_envs.cued import CuedResponseTask
from noise_envs.random import RandomSource

__all__ = ["RegulatorConfig", "RegulatorTask"]


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class RegulatorConfig(JsonConfig):
    """Options of :class:`RegulatorTask`."""

    setpoint_range: tuple[float, float] = (0.2, 1.0)
    """Setpoints r are drawn uniformly from this range (within [-1, 1])."""
    setpoint: float | None = None
    """A fixed setpoint for every episode instead of a random one."""
    steps: int = 60
    """Steps per episode."""
    settle_steps: int = 30
    """Steps allowed to settle before the output is scored."""
    obs_noise: float = 0.0
    """Standard deviation of Gaussian noise added to every observation."""

    def __post_init__(self) -> None:
        if not isinstance(self.setpoint_range, (tuple, list)) or len(self.setpoint_range) != 2:
            raise ValueError(f"`setpoint_range` must be (low, high), got {self.setpoint_range!r}")
        low, high = self.setpoint_range
        check_in_range("setpoint_range[0]", low, -1.0, 1.0)
        check_in_range("setpoint_range[1]", high, -1.0, 1.0)
        if low > high:
            raise ValueError(f"`setpoint_range` must have low <= high, got {self.setpoint_range!r}")
        if self.setpoint is not None:
            check_in_range("setpoint", self.setpoint, -1.0, 1.0)
        check_positive_int("steps", self.steps)
        check_nonnegative("settle_steps", self.settle_steps)
        if not isinstance(self.settle_steps, int) or self.settle_steps >= self.steps:
            raise ValueError(
                f"`settle_steps` must be an integer in [0, steps) = [0, {self.steps}), "
                f"got {self.settle_steps!r}"
            )
        check_noise_level("obs_noise", self.obs_noise)
        check_memory("steps", self.steps, 3 * self.steps * 4)  # one row's episode, float32


class RegulatorTask(CuedResponseTask):
    """The single-neuron regulator: drive the output to the cued setpoint and hold it there.

    ## Description
    Each episode draws a setpoint ``r`` (or uses the fixed ``setpoint``) and shows it as a
    constant input; after ``settle_steps`` steps the output must equal ``r``. The natural model
    is a 1-unit CTRNN, whose stationary mean under noise has a closed form (see
    :mod:`evaluation.mechanism.mean_field`); any size works.

    ## Observation Space
    ``Box(-b, b, (1,))``: r plus observation noise, clipped at ``b = 1 + 5 * obs_noise``.

    ## Action Space
    ``Box(-1, 1, (1,))``: the output, scored, not clipped.

    ## Rewards
    Minus the squared error after the settle period, 0 before.

    ## Episode End
    Terminates after ``steps`` steps.

    ## Teacher signal
    ``target = r`` with mask 1 from step ``settle_steps`` on.

    ## Metrics
    ``mse`` (primary, lower is better): mean squared error after settling.

    ## Arguments
    See :class:`RegulatorConfig`: ``setpoint_range``, ``setpoint``, ``steps``,
    ``settle_steps``, ``obs_noise``.

    ## Version History
    * v0: initial version.
    """

    id = "NoisyRegulator-v0"
    config_class = RegulatorConfig
    cue_size = 1
    response_size = 1

    @property
    def response_start(self) -> int:
        """``settle_steps``."""
        return self.config.settle_steps

    def draw_cue(self, batch_size: int, rng: RandomSource) -> torch.Tensor:
        """r uniform in ``setpoint_range``, or the fixed setpoint."""
        low, high = self.setpoint_range
        return rng.uniform(batch_size, 1, low=low, high=high)

    @property
    def setpoint_range(self) -> tuple[float, float]:
        """The range setpoints are drawn from (a point when ``setpoint`` is fixed)."""
        if self.config.setpoint is not None:
            return (self.config.setpoint, self.config.setpoint)
        return tuple(self.config.setpoint_range)

    def target_of(self, cue: torch.Tensor) -> torch.Tensor:
        """The setpoint itself."""
        return cue
