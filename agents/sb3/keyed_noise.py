"""Counter-based Gaussian noise: standard normal samples that are a pure function of a key.

A stateful generator hands out fresh numbers on every call, so a PPO update that re-runs a rollout
step cannot see the noise that step used. Here the samples of a step are instead computed from an
integer key, e.g. ``(seed, stream, rollout, position)``: the rollout and the update compute the
same key, hence the same ``xi``, and nothing has to be stored (the idea of counter-based
generators such as Philox, Salmon et al. 2011, with a simpler integer hash).

The hash is C. Wellons' two-round 32-bit mixer (``hash-prospector``, constants ``0x21f0aaad`` and
``0x735a2d97``), folding the key into a 32-bit state: two keys share their samples only if their
states collide, about once among 65,000 keys squared (harmless for training noise). Both
multipliers are below 2**31 and every value below 2**32, so the int64 products never overflow and
Python ints and tensors give the same numbers on every device. Leading int words are folded in
Python, so only the tensor words cost tensor operations.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from noise_envs._checks import check_positive_int

__all__ = ["keyed_normal"]

_MASK = 0xFFFFFFFF
_START = 0x243F6A88
"""Starting state of the hash (digits of pi)."""
_INDEX_SALT = 0x9E3779B9
"""Added to the sample index before it is mixed (the golden-ratio constant)."""

Word = int | torch.Tensor


def _mix(x: Word) -> Word:
    """Wellons' 32-bit integer hash of ``x`` (an int or int64 tensor with values in ``[0, 2**32)``)."""
    x = x ^ (x >> 16)
    x = (x * 0x21F0AAAD) & _MASK
    x = x ^ (x >> 15)
    x = (x * 0x735A2D97) & _MASK
    return x ^ (x >> 15)


def _absorb(state: Word, word: Word) -> Word:
    """Fold a 64-bit word into the 32-bit state, low half first."""
    state = _mix(state ^ (word & _MASK))
    return _mix(state ^ ((word >> 32) & _MASK))


def _key_state(key: Sequence[Word], device: torch.device) -> torch.Tensor:
    """The 32-bit hash state of every key in the batch, an int64 tensor of the broadcast shape."""
    state: Word = _START
    for word in key:
        if isinstance(word, torch.Tensor):
            if word.is_floating_point() or word.is_complex() or word.dtype == torch.bool:
                raise ValueError(f"`key` words must be ints or integer tensors, got {word.dtype}")
            word = word.to(device=device, dtype=torch.int64)
        elif isinstance(word, bool) or not isinstance(word, int):
            raise ValueError(f"`key` words must be ints or integer tensors, got {word!r}")
        state = _absorb(state, word)
    return torch.as_tensor(state, dtype=torch.int64, device=device)


def keyed_normal(
    key: Sequence[int | torch.Tensor],
    size: int,
    *,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    r"""Standard normal samples ``[*K, size]`` determined by ``key``.

    Each key word is an int or an integer tensor; the words broadcast against each other to the
    batch shape ``K``. Entry ``[..., j]`` depends only on the key at that batch position and on
    ``j``: the same key gives the same samples in any batch layout, and sizes share their
    prefixes. Pairs of uniforms with 24
    random bits each go through the Box-Muller transform
    ``(z_1, z_2) = sqrt(-2 ln u_1) (cos 2 pi u_2, sin 2 pi u_2)``, so ``|z|`` stays below 5.9.

    Args:
        key: the key words, ints or integer tensors (negative values are allowed).
        size: samples per key (the last dimension).
        device: where to compute; by default that of the first tensor word, else the CPU.
        dtype: floating dtype of the result.

    Example:
        >>> a = keyed_normal((0, 1, torch.tensor([5, 6])), 3)
        >>> b = keyed_normal((0, 1, torch.tensor([6])), 3)
        >>> a.shape, bool(torch.equal(a[1:], b))
        (torch.Size([2, 3]), True)
    """
    check_positive_int("size", size)
    if device is None:
        tensors = [word for word in key if isinstance(word, torch.Tensor)]
        device = tensors[0].device if tensors else torch.device("cpu")
    state = _key_state(key, torch.device(device))
    pairs = (size + 1) // 2
    index = torch.arange(2 * pairs, device=state.device, dtype=torch.int64)
    bits = _mix(state[..., None] ^ _mix((index + _INDEX_SALT) & _MASK))
    work = dtype if dtype == torch.float64 else torch.float32
    uniform = (bits >> 8).to(work) * 2.0**-24 + 2.0**-25  # in (0, 1): 24 random bits
    radius = torch.sqrt(-2.0 * torch.log(uniform[..., 0::2]))
    angle = (2.0 * math.pi) * uniform[..., 1::2]
    # Sample 2p is pair p's cosine, 2p + 1 its sine: sample j never depends on `size`.
    normal = torch.stack((radius * torch.cos(angle), radius * torch.sin(angle)), dim=-1)
    return normal.flatten(-2)[..., :size].to(dtype)
