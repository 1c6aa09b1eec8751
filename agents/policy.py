"""The one protocol every acting model speaks, so every trainer and the sweep take any of them."""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import torch

from agents.noise import NoiseLike

__all__ = ["Policy"]


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
