"""The options of the supervised trainer, apart from it so that run folders read them without it."""

from __future__ import annotations

import dataclasses
from typing import Any

from agents.noise_distribution import NoiseDistribution, as_noise_distribution, training_noise
from noise_envs._checks import check_nonnegative, check_positive, check_positive_int
from noise_envs.config import JsonConfig

__all__ = ["TrainConfig", "check_noise_fields", "check_seed", "noise_to_dict"]


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class TrainConfig(JsonConfig):
    """Options of :func:`agents.supervised.train`."""

    sigma: float = 0.0
    """Noise level of the model during training (the model's config says where noise enters)."""
    sigma_dist: NoiseDistribution | None = None
    """Training noise drawn from a distribution instead of the fixed sigma (see
    agents.noise_distribution); a dict or spec string such as 'uniform:0,1' is converted. A
    fixed distribution is stored as sigma; None (the default) keeps run.json as before."""
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
        check_noise_fields(self)
        check_positive_int("iterations", self.iterations)
        check_positive_int("batch_size", self.batch_size)
        check_positive("learning_rate", self.learning_rate)
        check_nonnegative("grad_clip", self.grad_clip)
        check_seed(self.seed)
        check_positive_int("checkpoint_every", self.checkpoint_every)

    @property
    def noise(self) -> NoiseDistribution:
        """The training noise as a distribution (a fixed one for ``sigma``)."""
        return training_noise(self)

    def to_dict(self) -> dict[str, Any]:
        """The config as JSON values; ``sigma_dist`` is left out when None (fixed-noise runs)."""
        return noise_to_dict(JsonConfig.to_dict(self))


def check_seed(seed: int) -> None:
    """ValueError unless ``seed`` is an integer >= 0 (not a bool)."""
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"`seed` must be an integer >= 0, got {seed!r}")


def check_noise_fields(config: Any) -> None:
    """Check ``config.sigma`` against ``config.sigma_dist`` and convert or fold the latter.

    A dict or spec string becomes a NoiseDistribution, and a fixed distribution becomes
    ``sigma`` (so a fixed-noise run is stored one way only). Giving both a non-zero ``sigma``
    and a distribution is refused.
    """
    dist = as_noise_distribution(config.sigma_dist)
    if dist is not None and config.sigma != 0:
        raise ValueError(
            f"give either `sigma` ({config.sigma!r}) or `sigma_dist` ({dist.spec}), not both"
        )
    if dist is not None and dist.kind == "fixed":
        object.__setattr__(config, "sigma", dist.levels[0])
        dist = None
    object.__setattr__(config, "sigma_dist", dist)


def noise_to_dict(values: dict[str, Any]) -> dict[str, Any]:
    """``values`` (a config's dict) with ``sigma_dist`` as JSON, or without it when None."""
    dist = values.pop("sigma_dist", None)
    if dist is not None:
        values["sigma_dist"] = dist.to_dict()
    return values
