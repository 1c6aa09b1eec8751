"""The options of the supervised trainer, apart from it so that run folders read them without it."""

from __future__ import annotations

import dataclasses

from noise_envs._checks import check_nonnegative, check_positive, check_positive_int
from noise_envs.config import JsonConfig

__all__ = ["TrainConfig"]


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class TrainConfig(JsonConfig):
    """Options of :func:`agents.supervised.train`."""

    sigma: float = 0.0
    """Noise level of the model during training (the model's config says where noise enters)."""
    iterations: int = 1000
    """Number of gradient steps."""
    batch_size: int = 128
    """Episodes per gradient step."""
    learning_rate: float = 3e-3
    """Learning rate of Adam."""
    grad_clip: float = 1.0
    """Largest gradient norm; larger gradients are scaled down to it (0 disables clipping)."""
    seed: int = 0
    """Seeds the task's randomness, the model's noise and, in train_run, the initial weights."""
    checkpoint_every: int = 100
    """Write a checkpoint every this many iterations, and at the end."""

    def __post_init__(self) -> None:
        check_nonnegative("sigma", self.sigma)
        check_positive_int("iterations", self.iterations)
        check_positive_int("batch_size", self.batch_size)
        check_positive("learning_rate", self.learning_rate)
        check_nonnegative("grad_clip", self.grad_clip)
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ValueError(f"`seed` must be an integer >= 0, got {self.seed!r}")
        check_positive_int("checkpoint_every", self.checkpoint_every)
