"""The training noise as a distribution: a fixed level, or levels drawn per episode or per batch.

Training at one fixed noise level makes a noise-in network best at that level (noise preference);
training across a distribution of levels that includes zero removes the preference. A
:class:`NoiseDistribution` says how the level is drawn:

* ``fixed``: always ``levels[0]``;
* ``uniform``: uniform on ``[low, high]`` (``levels = (low, high)``);
* ``log_uniform``: ``exp`` of a uniform on ``[log low, log high]``, ``low > 0``;
* ``discrete``: one of ``levels`` with probabilities proportional to ``weights`` (equal if None);

``per="row"`` draws one level per batch row (per episode), ``per="batch"`` one level for the whole
batch. Draws come from the generator the caller passes (the trainer's seeded noise generator),
never from torch's global one.

What "the training noise" of a distribution means elsewhere (see :meth:`NoiseDistribution.mean`
and :attr:`NoiseDistribution.high`): the *mean* level is its reference level (the train sigma
column of preference tables, the marker of plots, the noise an analysis centres on), and the
*upper* level sets the range of default sweeps (0 to twice it). For a fixed level both are the
level itself, so fixed-noise runs behave as before. The demo (``noisepref demo``) compares fixed
levels only; ``noisepref reproduce remedies`` compares a fixed level with a distribution.

Example:
    >>> dist = NoiseDistribution.parse("uniform:0,1")
    >>> dist, dist.mean, dist.high
    (NoiseDistribution('uniform:0,1', per='row'), 0.5, 1.0)
    >>> tuple(dist.sample(3, torch.Generator().manual_seed(0)).shape)
    (3,)
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import torch

from noise_envs._checks import MAX_NOISE, check_choice, check_finite, check_positive_int
from noise_envs.config import JsonConfig

__all__ = [
    "NOISE_KINDS",
    "NOISE_PER",
    "NoiseDistribution",
    "as_noise_distribution",
    "training_noise",
]

NOISE_KINDS = ("fixed", "uniform", "log_uniform", "discrete")
"""How a training noise level is drawn."""
NOISE_PER = ("row", "batch")
"""One level per batch row (episode), or one for the whole batch."""
SPEC_EXAMPLES = "0.5, fixed:0.5, uniform:0,1, log_uniform:0.05,1 or discrete:0,0.5,1@1,2,1"
"""What :meth:`NoiseDistribution.parse` accepts, for error messages."""


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class NoiseDistribution(JsonConfig):
    """How the training noise level is drawn (see the module docstring)."""

    kind: str = "fixed"
    """fixed, uniform, log_uniform or discrete."""
    levels: tuple[float, ...] = (0.0,)
    """fixed: (level,); uniform and log_uniform: (low, high); discrete: the levels."""
    weights: tuple[float, ...] | None = None
    """discrete only: a weight >= 0 per level, summing to > 0 (None: equal weights)."""
    per: str = "row"
    """row: one level per batch row (episode); batch: one level for the whole batch."""

    def __post_init__(self) -> None:
        check_choice("kind", self.kind, NOISE_KINDS)
        check_choice("per", self.per, NOISE_PER)
        levels = tuple(self.levels) if isinstance(self.levels, (list, tuple)) else self.levels
        if not isinstance(levels, tuple) or not levels:
            raise ValueError(f"`levels` must be a non-empty sequence of numbers, got {levels!r}")
        object.__setattr__(self, "levels", tuple(float(check_finite("levels", x)) for x in levels))
        for level in self.levels:
            if not 0 <= level <= MAX_NOISE:
                raise ValueError(
                    f"noise levels must be in [0, {MAX_NOISE:g}], got {level!r} in `levels` "
                    f"{list(self.levels)}"
                )
        needed = {"fixed": 1, "uniform": 2, "log_uniform": 2}.get(self.kind)
        if needed is not None and len(self.levels) != needed:
            shape = "(level,)" if needed == 1 else "(low, high)"
            raise ValueError(
                f"a {self.kind} noise distribution needs `levels` = {shape}, got {list(self.levels)}"
            )
        if self.kind in ("uniform", "log_uniform") and self.levels[0] > self.levels[1]:
            raise ValueError(
                f"a {self.kind} noise distribution needs low <= high, got low {self.levels[0]!r} "
                f"> high {self.levels[1]!r}"
            )
        if self.kind == "log_uniform" and self.levels[0] <= 0:
            raise ValueError(
                f"a log_uniform noise distribution needs low > 0, got low {self.levels[0]!r} "
                "(use uniform to include 0)"
            )
        self._check_weights()

    def _check_weights(self) -> None:
        if self.weights is None:
            return
        if self.kind != "discrete":
            raise ValueError(f"`weights` apply to discrete distributions only, not {self.kind}")
        weights = tuple(float(check_finite("weights", w)) for w in self.weights)
        object.__setattr__(self, "weights", weights)
        if len(weights) != len(self.levels):
            raise ValueError(
                f"`weights` must have one entry per level ({len(self.levels)}), got {len(weights)}"
            )
        if any(w < 0 for w in weights) or not sum(weights) > 0:
            raise ValueError(
                f"`weights` must be >= 0 and sum to a positive number, got {list(weights)}"
            )

    # construction

    @classmethod
    def fixed(cls, level: float) -> NoiseDistribution:
        """Always ``level``."""
        return cls(kind="fixed", levels=(level,))

    @classmethod
    def uniform(cls, low: float, high: float, *, per: str = "row") -> NoiseDistribution:
        """Uniform on ``[low, high]``."""
        return cls(kind="uniform", levels=(low, high), per=per)

    @classmethod
    def log_uniform(cls, low: float, high: float, *, per: str = "row") -> NoiseDistribution:
        """Log-uniform on ``[low, high]``, ``low > 0``."""
        return cls(kind="log_uniform", levels=(low, high), per=per)

    @classmethod
    def discrete(
        cls,
        levels: tuple[float, ...] | list[float],
        weights: tuple[float, ...] | list[float] | None = None,
        *,
        per: str = "row",
    ) -> NoiseDistribution:
        """One of ``levels``, with probabilities proportional to ``weights`` (equal if None)."""
        return cls(
            kind="discrete",
            levels=tuple(levels),
            weights=None if weights is None else tuple(weights),
            per=per,
        )

    @classmethod
    def parse(cls, spec: str, *, per: str = "row") -> NoiseDistribution:
        """A distribution from its command-line form.

        ``0.5`` or ``fixed:0.5``; ``uniform:LOW,HIGH``; ``log_uniform:LOW,HIGH``;
        ``discrete:L1,L2,...`` with optional weights ``@W1,W2,...``.

        Raises:
            ValueError: naming the spec and the forms allowed, or the bad value.
        """
        if not isinstance(spec, str) or not spec.strip():
            raise ValueError(f"a noise distribution must be one of {SPEC_EXAMPLES}, got {spec!r}")
        kind, colon, rest = spec.strip().partition(":")
        if not colon:
            kind, rest = "fixed", spec.strip()
        check_choice("noise distribution kind", kind, NOISE_KINDS)
        numbers, at, weights = rest.partition("@")
        if at and kind != "discrete":
            raise ValueError(f"weights (`@...`) apply to discrete distributions only: {spec!r}")
        return cls(
            kind=kind,
            levels=_numbers(numbers, spec),
            weights=_numbers(weights, spec) if at else None,
            per=per,
        )

    # what it means

    @property
    def spec(self) -> str:
        """The command-line form, as :meth:`parse` reads it."""
        text = f"{self.kind}:{','.join(f'{x:g}' for x in self.levels)}"
        if self.weights is not None:
            text += "@" + ",".join(f"{w:g}" for w in self.weights)
        return text

    @property
    def low(self) -> float:
        """The smallest level drawn."""
        return min(self._support())

    @property
    def high(self) -> float:
        """The largest level drawn: default sweeps run from 0 to twice it."""
        return max(self._support())

    @property
    def mean(self) -> float:
        """The mean level: the reference "training noise" of tables, plots and analyses."""
        if self.kind == "fixed":
            return self.levels[0]
        low, high = self.levels[0], self.levels[-1]
        if self.kind == "uniform":
            return 0.5 * (low + high)
        if self.kind == "log_uniform":
            return low if high == low else (high - low) / math.log(high / low)
        weights = self.weights or (1.0,) * len(self.levels)
        return sum(w * x for w, x in zip(weights, self.levels, strict=True)) / sum(weights)

    @property
    def is_fixed(self) -> bool:
        """Whether every draw is the same level."""
        return self.low == self.high

    def _support(self) -> tuple[float, ...]:
        if self.kind != "discrete" or self.weights is None:
            return self.levels
        kept = tuple(x for x, w in zip(self.levels, self.weights, strict=True) if w > 0)
        return kept

    def __repr__(self) -> str:
        return f"NoiseDistribution({self.spec!r}, per={self.per!r})"

    def describe(self) -> str:
        """A short human-readable form, e.g. ``uniform:0,1 per row``."""
        return self.spec if self.kind == "fixed" else f"{self.spec} per {self.per}"

    # drawing

    def sample(
        self,
        batch_size: int,
        generator: torch.Generator,
        device: torch.device | str | None = None,
        dtype: torch.dtype = torch.float32,
    ) -> torch.Tensor:
        """Noise levels ``[batch_size]``: one per row, or one repeated (``per="batch"``).

        Args:
            batch_size: rows B.
            generator: the source of the draws (never torch's global generator); draws are
                made on its device.
            device: where the result goes (default: the generator's device).
            dtype: the result's dtype.
        """
        check_positive_int("batch_size", batch_size)
        if not isinstance(generator, torch.Generator):
            raise ValueError(f"`generator` must be a torch.Generator, got {generator!r}")
        rows = batch_size if self.per == "row" else 1
        drawn = self._draw(rows, generator).to(dtype)
        if rows != batch_size:
            drawn = drawn.expand(batch_size)
        return drawn.to(generator.device if device is None else device)

    def _draw(self, rows: int, generator: torch.Generator) -> torch.Tensor:
        where = generator.device
        if self.kind == "fixed":
            return torch.full((rows,), self.levels[0], dtype=torch.float64, device=where)
        if self.kind == "discrete":
            weights = torch.tensor(self.weights or [1.0] * len(self.levels), dtype=torch.float64)
            index = torch.multinomial(
                weights.to(where), rows, replacement=True, generator=generator
            )
            return torch.tensor(self.levels, dtype=torch.float64, device=where)[index]
        u = torch.rand(rows, dtype=torch.float64, generator=generator, device=where)
        low, high = self.levels
        if self.kind == "uniform":
            return low + (high - low) * u
        return torch.exp(math.log(low) + (math.log(high) - math.log(low)) * u)


def _numbers(text: str, spec: str) -> tuple[float, ...]:
    try:
        values = tuple(float(item) for item in text.split(","))
    except ValueError:
        raise ValueError(
            f"a noise distribution must be one of {SPEC_EXAMPLES}, got {spec!r}"
        ) from None
    return values


def as_noise_distribution(value: Any, name: str = "sigma_dist") -> NoiseDistribution | None:
    """``value`` as a distribution: None, a NoiseDistribution, its dict, or its spec string.

    Raises:
        ValueError: naming ``name`` and what was given.
    """
    if value is None or isinstance(value, NoiseDistribution):
        return value
    if isinstance(value, dict):
        return NoiseDistribution.from_dict(value)
    if isinstance(value, str):
        return NoiseDistribution.parse(value)
    raise ValueError(
        f"`{name}` must be a NoiseDistribution, its dict or a spec such as {SPEC_EXAMPLES}, "
        f"got {value!r}"
    )


def training_noise(config: Any) -> NoiseDistribution:
    """The training noise of a trainer's config: its ``sigma_dist``, else its fixed ``sigma``.

    Works for every trainer's config (TrainConfig, RLTrainConfig, a recalibration's, or any
    object with ``sigma`` and optionally ``sigma_dist``).
    """
    dist = as_noise_distribution(getattr(config, "sigma_dist", None))
    return dist if dist is not None else NoiseDistribution.fixed(float(config.sigma))
