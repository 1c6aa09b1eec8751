"""The one protocol every acting model speaks, so every trainer and the sweep take any of them."""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import torch

from agents.noise import NoiseLike

__all__ = ["Policy", "SequencePolicy"]


@runtime_checkable
class Policy(Protocol):
    """Something that acts step by step under an explicit noise level.

    ``sigma`` is a float or a ``[B]`` tensor (one level per row) and is never tied to
    ``train()`` / ``eval()``. Noise comes from ``noise`` (a generator, a random source or the
    samples themselves), never from global random state.
    """

    def initial_state(self, batch_size: int, device: torch.device | str = "cpu") -> Any:
        """The recurrent state at the start of ``batch_size`` episodes."""
        ...

    def step(
        self,
        obs: torch.Tensor,
        state: Any,
        sigma: float | torch.Tensor = 0.0,
        noise: NoiseLike = None,
    ) -> tuple[torch.Tensor, Any]:
        """Act on observations ``[B, O]``: returns actions ``[B, A]`` and the next state."""
        ...


@runtime_checkable
class SequencePolicy(Policy, Protocol):
    """A policy that can also act on a whole input sequence at once.

    Open-loop tasks show their inputs whatever the policy does, so a policy that runs a sequence
    faster than step by step (the CTRNN does) gives the trainer that speed.
    """

    def unroll(
        self,
        inputs: torch.Tensor,
        sigma: float | torch.Tensor = 0.0,
        noise: NoiseLike = None,
    ) -> torch.Tensor:
        """Actions ``[T, B, A]`` for inputs ``[T, B, O]``, starting from the initial state.

        The actions :meth:`step` gives when called on each input in turn with the same
        ``sigma`` and ``noise`` (noise drawn in the same order), up to float rounding.
        """
        ...
