"""What a recalibrated run records: from which run, to which noise, and how.

A recalibrated run (written by :func:`evaluation.recalibrate.recalibrate`) is a run folder whose
trainer is ``recalibrate`` and whose ``train`` section is a :class:`RecalibrationConfig`. It lives
here, beside :class:`~agents.train_config.TrainConfig`, so that :func:`agents.runs.load_run` reads
it without importing :mod:`evaluation`.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from agents.noise_distribution import NoiseDistribution, training_noise
from agents.train_config import check_seed
from noise_envs._checks import check_choice, check_nonnegative, check_positive_int
from noise_envs.config import JsonConfig

__all__ = ["RECALIBRATION_METHODS", "RecalibrationConfig"]

RECALIBRATION_METHODS = ("readout", "bias_shift+readout")
"""readout: refit the linear read-out by least squares at the new noise; bias_shift+readout: first
move the unit biases by the mean-field shift, then refit the read-out."""


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class RecalibrationConfig(JsonConfig):
    """Options and provenance of a recalibration (see :mod:`evaluation.recalibrate`)."""

    to_sigma: float = 0.0
    """The noise level the network is recalibrated for (its new reference noise)."""
    method: str = "readout"
    """readout (least-squares read-out) or bias_shift+readout (mean-field bias shift first)."""
    episodes: int = 512
    """Episodes of the run's task whose states at to_sigma the read-out is fitted on."""
    seed: int = 0
    """Seed of those episodes' task randomness and network noise."""
    ridge: float = 1e-8
    """Ridge penalty on the read-out weights (not the bias), relative to the mean squared error."""
    source: str = ""
    """The recalibrated run folder's path, as resolved when recalibrating."""
    source_trainer: str = "supervised"
    """The source run's trainer."""
    source_train: dict[str, Any] = dataclasses.field(default_factory=dict)
    """The source run's training config, as in its run.json."""

    def __post_init__(self) -> None:
        check_nonnegative("to_sigma", self.to_sigma)
        check_choice("method", self.method, RECALIBRATION_METHODS)
        check_positive_int("episodes", self.episodes)
        check_seed(self.seed)
        check_nonnegative("ridge", self.ridge)
        if not isinstance(self.source, str):
            raise ValueError(f"`source` must be a path string, got {self.source!r}")
        if not isinstance(self.source_train, dict):
            raise ValueError(f"`source_train` must be a dict, got {self.source_train!r}")

    @property
    def bias_shift(self) -> bool:
        """Whether the unit biases were moved by the mean-field shift."""
        return self.method == "bias_shift+readout"

    @property
    def iterations(self) -> int:
        """One step: the run lifecycle's progress checks see a one-iteration run."""
        return 1

    @property
    def checkpoint_every(self) -> int:
        """See :attr:`iterations`."""
        return 1

    @property
    def sigma(self) -> float:
        """The run's reference noise: ``to_sigma``, the level its read-out was fitted at."""
        return self.to_sigma

    @property
    def sigma_dist(self) -> None:
        """None: a recalibrated run has one reference noise level."""
        return None

    @property
    def noise(self) -> NoiseDistribution:
        """The reference noise as a (fixed) distribution, as ``TrainConfig.noise`` gives it."""
        return training_noise(self)
