"""Random numbers for K members at once: each member's rows drawn from its own source.

Rows are grouped by member (rows ``k * B .. (k + 1) * B - 1`` are member ``k``), as everywhere in
:mod:`agents.ensemble`.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import torch

from noise_envs._checks import check_positive_int
from noise_envs.random import RandomSource, as_random_source

__all__ = ["BlockRandomSource", "draw_blocks", "member_draws_due", "member_sigma"]


class BlockRandomSource(RandomSource):
    """A random source whose rows come in K equal blocks, block ``k`` drawn from ``sources[k]``.

    Every draw of ``K * B`` rows draws ``B`` rows from each member's source in turn, so each
    source sees exactly the calls a task or model of batch ``B`` makes on it alone: K members
    get the random streams they would get if run one at a time.

    Example:
        >>> a, b = RandomSource.from_seed(1), RandomSource.from_seed(2)
        >>> x = BlockRandomSource([a, b]).normal(4, 3)
        >>> bool((x[2:] == RandomSource.from_seed(2).normal(2, 3)).all())
        True
    """

    def __init__(
        self,
        sources: Sequence[RandomSource | torch.Generator | int],
        device: torch.device | str = "cpu",
        *,
        draw_at_zero: Sequence[bool] | None = None,
    ) -> None:
        blocks = tuple(as_random_source(source, device) for source in sources)
        if not blocks:
            raise ValueError("`sources` must hold at least one source, got none")
        if draw_at_zero is not None and len(draw_at_zero) != len(blocks):
            raise ValueError(
                f"`draw_at_zero` must have one entry per source ({len(blocks)}), "
                f"got {len(draw_at_zero)}"
            )
        super().__init__(torch.Generator(), device=device)
        self.generator = None  # no single stream: see `blocks`
        self.blocks = blocks
        self.draw_at_zero = tuple(bool(flag) for flag in (draw_at_zero or [False] * len(blocks)))
        """Per block, whether a model's noise is drawn from it even where the block's noise
        levels are all 0. A lone CTRNN draws whenever its sigma is a per-row tensor (levels
        drawn from a distribution) and skips the draw at a fixed sigma of 0; a trainer that
        mirrors lone runs sets this for the members whose levels are drawn."""

    def __repr__(self) -> str:
        return f"BlockRandomSource({len(self.blocks)} blocks, device={self.device})"

    def normal_steps(
        self, steps: int, batch_size: int, *shape: int, dtype: torch.dtype = torch.float32
    ) -> torch.Tensor:
        """``[steps, batch_size, *shape]``, each block from its own source's ``normal_steps``."""
        block = self._block_size(batch_size)
        parts = [s.normal_steps(steps, block, *shape, dtype=dtype) for s in self.blocks]
        return torch.cat([part.to(self.device) for part in parts], dim=1)

    def subset(self, rows: Sequence[int]) -> RandomSource:
        """Not available: a block source draws whole blocks only."""
        raise ValueError(
            "a BlockRandomSource draws whole member blocks; it cannot serve a subset of rows"
        )

    def _draw(self, sampler, batch_size: int, shape: tuple[int, ...], dtype: torch.dtype):
        block = self._block_size(batch_size)
        parts = [source._draw(sampler, block, shape, dtype) for source in self.blocks]
        return torch.cat([part.to(self.device) for part in parts])

    def _block_size(self, batch_size: int) -> int:
        if batch_size % len(self.blocks):
            raise ValueError(
                f"`batch_size` ({batch_size}) must be a multiple of the number of blocks "
                f"({len(self.blocks)}): rows are grouped by member"
            )
        return batch_size // len(self.blocks)


def member_sigma(
    sigmas: Sequence[float] | torch.Tensor, rows_per_member: int, device: torch.device | str = "cpu"
) -> torch.Tensor:
    """Per-row sigma ``[K * B]`` for per-member levels ``[K]``: member ``k``'s level on its rows."""
    check_positive_int("rows_per_member", rows_per_member)
    levels = torch.as_tensor(sigmas, dtype=torch.float32, device=device).reshape(-1)
    return levels.repeat_interleave(rows_per_member)


def member_draws_due(scale: torch.Tensor, draw_at_zero: Sequence[bool]) -> list[bool]:
    """Per member, whether its noise is drawn: a row's scale ``[K, B, 1]`` is not 0, or it always is.

    See :attr:`BlockRandomSource.draw_at_zero`. Reads ``scale`` on the host.
    """
    nonzero = scale.reshape(len(draw_at_zero), -1).ne(0).any(1).tolist()
    return [bool(a) or bool(b) for a, b in zip(nonzero, draw_at_zero, strict=True)]


def draw_blocks(
    blocks: Sequence[RandomSource],
    steps: int,
    per_member: int,
    size: int,
    out: torch.Tensor | None = None,
    due: Sequence[bool] | None = None,
) -> torch.Tensor:
    """``[T, K, B, N]``: member ``k``'s slice is ``blocks[k].normal_steps(T, B, N)``.

    The result is a time-major view of a member-major ``[K, T, B, N]`` buffer, so that each
    member's samples are contiguous. A block with one CPU generator fills its slice with one
    ``normal_`` call where that draws the very numbers of ``normal_steps``' step-by-step calls
    (see :func:`_one_call_draws_steps`), else step by step in place; any other block is drawn
    and copied in. ``out``, a result of an earlier call of the same shape, is filled instead of
    a new one (reusing memory saves the page faults of a fresh multi-megabyte block). A member
    whose ``due`` entry is False gets zeros and its source is not drawn from, as a lone model
    whose noise is not due draws nothing.
    """
    shape = (steps, len(blocks), per_member, size)
    reuse = (
        out is not None
        and out.shape == shape
        and out.dtype == torch.float32
        and out.device.type == "cpu"
        and out.transpose(0, 1).is_contiguous()
    )
    xi = out if reuse else torch.empty(len(blocks), steps, per_member, size).transpose(0, 1)
    by_member = xi.transpose(0, 1)
    for k, block in enumerate(blocks):
        if due is not None and not due[k]:
            by_member[k].zero_()
            continue
        generator = block.generator
        if generator is not None and block.repeats == 1 and generator.device.type == "cpu":
            if _one_call_draws_steps(per_member * size):
                by_member[k].normal_(generator=generator)
            else:
                for t in range(steps):
                    by_member[k, t].normal_(generator=generator)
        else:
            by_member[k] = block.normal_steps(steps, per_member, size)
    return xi


@functools.cache
def _one_call_draws_steps(numel: int) -> bool:
    """Whether one ``normal_`` call on ``2 * numel`` floats gives two calls' ``numel`` each.

    PyTorch's CPU sampler draws blocks of 16, so it does for a multiple of 16 (and at least
    16); checked here on a seeded generator rather than assumed.
    """
    steps = [torch.Generator().manual_seed(12345), torch.Generator().manual_seed(12345)]
    one_by_one = torch.empty(2, numel)
    for row in one_by_one:
        row.normal_(generator=steps[0])
    at_once = torch.empty(2, numel).normal_(generator=steps[1])
    after = [torch.rand(4, generator=generator) for generator in steps]
    return torch.equal(one_by_one, at_once) and torch.equal(*after)
