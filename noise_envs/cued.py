"""Open-loop tasks whose episode shows one constant cue and asks for a fixed response to it."""

from __future__ import annotations

import dataclasses
from abc import abstractmethod

import numpy as np
import torch
from gymnasium import spaces

from noise_envs.core import Metric, OpenLoopEpisode, Task, TaskState
from noise_envs.random import RandomSource

__all__ = ["CuedResponseState", "CuedResponseTask"]


@dataclasses.dataclass(frozen=True)
class CuedResponseState(TaskState):
    """Adds the episode's cue ``[B, O]`` and its target response ``[B, A]``."""

    cue: torch.Tensor
    target: torch.Tensor


class CuedResponseTask(Task[CuedResponseState, object]):
    """Shared mechanism of the function-approximation and regulator tasks.

    Each episode draws a cue, shows it unchanged for ``steps`` steps (plus observation noise), and
    asks the output to equal a target that depends on the cue from step ``response_start`` on.
    Subclasses say how the cue is drawn and what the target is.
    """

    metrics = (
        Metric(
            "mse", higher_is_better=False, description="mean squared error in the response window"
        ),
    )
    primary_metric = "mse"
    open_loop = True

    def __init__(self, config=None, **options) -> None:
        super().__init__(config, **options)
        bound = 1.0 + 5.0 * self.obs_noise
        self.observation_space = spaces.Box(-bound, bound, shape=(self.cue_size,), dtype=np.float32)
        self.action_space = spaces.Box(-1.0, 1.0, shape=(self.response_size,), dtype=np.float32)
        self.horizon = self.config.steps

    @property
    @abstractmethod
    def cue_size(self) -> int:
        """Length of the cue vector."""

    @property
    @abstractmethod
    def response_size(self) -> int:
        """Length of the target response."""

    @property
    @abstractmethod
    def response_start(self) -> int:
        """First step (0-based) whose output is scored."""

    @abstractmethod
    def draw_cue(self, batch_size: int, rng: RandomSource) -> torch.Tensor:
        """Cues ``[B, cue_size]`` for new episodes."""

    @abstractmethod
    def target_of(self, cue: torch.Tensor) -> torch.Tensor:
        """The target response ``[B, response_size]`` to each cue."""

    def teacher(self, state: CuedResponseState) -> tuple[torch.Tensor, torch.Tensor]:
        """The cue's target, weighted 1 from ``response_start`` on and 0 before."""
        target = state.target
        scored = (state.t >= self.response_start).unsqueeze(-1).to(target.dtype)
        return target, scored if scored.shape == target.shape else scored.expand_as(target)

    def open_loop_episode(
        self,
        batch_size: int,
        generator: torch.Generator | RandomSource | int | None = None,
        device: torch.device | str = "cpu",
    ) -> OpenLoopEpisode:
        """The episodes at once: the same cues, observation noise, targets and masks as stepping."""
        state, first = self.reset(batch_size, generator, device)
        steps = self.horizon
        observations = self._observation_sequence(state, first, state.cue.expand(steps, -1, -1))
        scored = torch.arange(steps, device=first.device) >= self.response_start
        masks = scored.to(state.target.dtype).view(steps, 1, 1).expand(-1, *state.target.shape)
        return OpenLoopEpisode(observations, state.target.expand(steps, -1, -1), masks)

    def _row_bytes(self) -> int:
        """float32 bytes of a row's episode (cue, target, mask per step), as a trainer makes it."""
        return 4 * self.horizon * (self.cue_size + 2 * self.action_size)

    def _initial(
        self, batch_size: int, rng: RandomSource, device: torch.device
    ) -> CuedResponseState:
        cue = self.draw_cue(batch_size, rng).to(device)
        return CuedResponseState(
            **self._base_state(batch_size, rng, device), cue=cue, target=self.target_of(cue)
        )

    def _transition(self, state: CuedResponseState, action: torch.Tensor) -> CuedResponseState:
        return dataclasses.replace(state, t=state.t + 1)

    def _observe(self, state: CuedResponseState) -> torch.Tensor:
        return state.cue

    def _terminal(self, state: CuedResponseState) -> torch.Tensor:
        return state.t >= self.config.steps
