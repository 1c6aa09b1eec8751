"""Explicit sources of randomness for batched simulators and noisy models.

Everything random in this project is drawn from a :class:`RandomSource`, never from torch's global
generator, so the same seed gives the same numbers and a noise sweep can share random numbers
across its noise levels.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import torch

from noise_envs._checks import check_positive_int

__all__ = ["RandomSource", "as_random_source"]


class RandomSource:
    """Draws batched samples of shape ``[B, ...]`` from explicit ``torch.Generator`` objects.

    Three modes:

    * one generator for the whole batch (the fast path);
    * one generator per row (``rows``): row ``i`` sees exactly the numbers a batch-1 simulator
      seeded like it would see, which is how the vector env matches single envs;
    * ``repeats = R``: only ``B / R`` rows are drawn and the block is tiled ``R`` times, so row
      ``r * (B / R) + e`` equals row ``e`` (common random numbers across the ``R`` blocks).

    Samples are drawn on the generator's device and moved to ``device``, so a CPU generator gives
    the same numbers whatever device the simulation runs on. ``generator=None`` makes a new CPU
    generator with an unpredictable seed; torch's global generators are never read or reseeded.

    Example:
        >>> source = RandomSource.from_seed(0, repeats=2)
        >>> x = source.normal(4, 3)
        >>> bool((x[:2] == x[2:]).all())
        True
    """

    def __init__(
        self,
        generator: torch.Generator | Sequence[torch.Generator] | None = None,
        *,
        repeats: int = 1,
        device: torch.device | str = "cpu",
    ) -> None:
        check_positive_int("repeats", repeats)
        if generator is None:
            generator = torch.Generator()
            generator.seed()  # fresh entropy for this generator only, not torch.seed()
        self.rows: tuple[torch.Generator, ...] | None = None
        self.generator: torch.Generator | None = None
        if isinstance(generator, torch.Generator):
            self.generator = generator
        else:
            rows = tuple(generator) if isinstance(generator, Iterable) else (generator,)
            if not all(isinstance(g, torch.Generator) for g in rows):
                raise ValueError(
                    "`generator` must be a torch.Generator or a sequence of them, "
                    f"got {_describe(generator)}"
                )
            self.rows = rows
            if repeats != 1:
                raise ValueError("`repeats` must be 1 when one generator is given per row")
        self.repeats = repeats
        self.device = torch.device(device)

    @classmethod
    def from_seed(
        cls, seed: int, *, repeats: int = 1, device: torch.device | str = "cpu"
    ) -> RandomSource:
        """A source with a fresh CPU generator seeded with ``seed``."""
        return cls(torch.Generator().manual_seed(int(seed)), repeats=repeats, device=device)

    def __repr__(self) -> str:
        mode = f"rows={len(self.rows)}" if self.rows is not None else f"repeats={self.repeats}"
        return f"RandomSource({mode}, device={self.device})"

    def normal(
        self, batch_size: int, *shape: int, dtype: torch.dtype = torch.float32
    ) -> torch.Tensor:
        """Standard normal samples of shape ``[batch_size, *shape]``."""
        return self._draw(torch.randn, batch_size, shape, dtype)

    def normal_steps(
        self, steps: int, batch_size: int, *shape: int, dtype: torch.dtype = torch.float32
    ) -> torch.Tensor:
        """``[steps, batch_size, *shape]``: the samples of ``steps`` successive :meth:`normal` calls.

        With one generator each step's block is drawn in place into the result (the same calls
        as :meth:`normal`, without stacking), so the generator ends where the calls leave it.
        """
        check_positive_int("steps", steps)
        generator = self.generator
        if generator is None or self.repeats != 1:
            return torch.stack([self.normal(batch_size, *shape, dtype=dtype) for _ in range(steps)])
        samples = torch.empty((steps, batch_size, *shape), dtype=dtype, device=generator.device)
        for block in samples:
            block.normal_(generator=generator)
        return samples.to(self.device)

    def uniform(
        self,
        batch_size: int,
        *shape: int,
        low: float | torch.Tensor = 0.0,
        high: float | torch.Tensor = 1.0,
        dtype: torch.dtype = torch.float32,
    ) -> torch.Tensor:
        """Uniform samples in ``[low, high)`` of shape ``[batch_size, *shape]``."""
        unit = self._draw(torch.rand, batch_size, shape, dtype)
        return low + (high - low) * unit

    def integers(self, batch_size: int, *shape: int, low: int, high: int) -> torch.Tensor:
        """Integer samples in ``[low, high)`` of shape ``[batch_size, *shape]`` (int64)."""
        unit = self._draw(torch.rand, batch_size, shape, torch.float64)
        return (low + torch.floor(unit * (high - low))).long().clamp_(low, high - 1)

    def subset(self, rows: Sequence[int]) -> RandomSource:
        """The source for a subset of rows (per-row mode), e.g. to reset some rows of a batch."""
        if self.rows is None:
            return self
        return RandomSource([self.rows[i] for i in rows], device=self.device)

    def _draw(self, sampler, batch_size: int, shape: tuple[int, ...], dtype: torch.dtype):
        if self.rows is not None:
            if len(self.rows) != batch_size:
                raise ValueError(
                    f"this RandomSource has one generator per row for {len(self.rows)} rows, "
                    f"but {batch_size} rows were requested"
                )
            samples = [sampler(shape, generator=g, dtype=dtype, device=g.device) for g in self.rows]
            return torch.stack(samples).to(self.device)
        if batch_size % self.repeats:
            raise ValueError(
                f"`batch_size` ({batch_size}) must be a multiple of `repeats` ({self.repeats})"
            )
        block = sampler(
            (batch_size // self.repeats, *shape),
            generator=self.generator,
            dtype=dtype,
            device=self.generator.device,
        ).to(self.device)
        return block.repeat(self.repeats, *([1] * len(shape))) if self.repeats > 1 else block


def as_random_source(
    generator: torch.Generator | Sequence[torch.Generator] | RandomSource | int | None,
    device: torch.device | str = "cpu",
) -> RandomSource:
    """Turn a seed, a generator, a list of per-row generators or a source into a RandomSource.

    Raises:
        ValueError: for anything else (a float, a bool, a string...), naming ``generator``.
    """
    if isinstance(generator, RandomSource):
        return generator
    if isinstance(generator, (int, np.integer)) and not isinstance(generator, (bool, np.bool_)):
        return RandomSource.from_seed(int(generator), device=device)
    if generator is not None and (
        isinstance(generator, str) or not isinstance(generator, (torch.Generator, Iterable))
    ):
        raise ValueError(
            "`generator` must be an integer seed, a torch.Generator, a sequence of them (one "
            f"per row), a RandomSource or None, got {_describe(generator)}"
        )
    return RandomSource(generator, device=device)


def _describe(value: object) -> str:
    """``value``'s repr and type, shortened, for error messages."""
    shown = repr(value)
    if len(shown) > 60:
        shown = shown[:57] + "..."
    return f"{shown} ({type(value).__name__})"
