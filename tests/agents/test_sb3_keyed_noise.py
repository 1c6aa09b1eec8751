"""Tests of agents.sb3.keyed_noise: samples that are a pure function of their key."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import stats

from agents.sb3.keyed_noise import _mix, keyed_normal


def test_same_key_same_samples_in_any_layout():
    """A key's samples do not depend on which other keys share the batch, or on its shape."""
    positions = torch.arange(12).reshape(3, 4)
    grid = keyed_normal((5, 1, 2, positions), 6)
    flat = keyed_normal((5, 1, 2, positions.flatten()), 6)
    single = keyed_normal((5, 1, 2, torch.tensor([7])), 6)
    assert grid.shape == (3, 4, 6)
    assert torch.equal(grid.reshape(12, 6), flat)
    assert torch.equal(flat[7:8], single)


def test_int_and_tensor_words_agree():
    """A word given as an int or as a tensor gives the same samples (negative and > 2**32 too)."""
    for word in (0, 3, -5, 2**40 + 17):
        as_int = keyed_normal((1, word, torch.tensor([4])), 3)
        as_tensor = keyed_normal((1, torch.tensor([word]), torch.tensor([4])), 3)
        assert torch.equal(as_int, as_tensor)


def test_every_word_changes_the_samples():
    """Changing any word of the key, or the size's index, gives other samples."""
    base = keyed_normal((0, 1, 2, torch.tensor([3])), 4)
    for key in ((1, 1, 2, 3), (0, 2, 2, 3), (0, 1, 3, 3), (0, 1, 2, 4), (0, 1, 2, -3)):
        other = keyed_normal((*key[:3], torch.tensor([key[3]])), 4)
        assert not torch.allclose(base, other)
    # the low and the high 32 bits of a word both count
    assert not torch.equal(keyed_normal((2**32,), 2), keyed_normal((0,), 2))


def test_prefix_of_a_larger_size():
    """Sample j depends on the key and j only: size k gives the first k samples of any size n."""
    big = keyed_normal((9, torch.arange(5)), 8)
    assert torch.equal(keyed_normal((9, torch.arange(5)), 4), big[:, :4])
    assert torch.equal(keyed_normal((9, torch.arange(5)), 3), big[:, :3])


def test_samples_are_standard_normal_and_uncorrelated():
    """Over 50,000 keys: mean 0, std 1, Kolmogorov-Smirnov consistent with N(0, 1), and no
    correlation between units or between neighbouring positions."""
    z = keyed_normal((0, 1, 7, torch.arange(50_000)), 3).double()
    assert abs(z.mean().item()) < 0.015
    assert z.std().item() == pytest.approx(1.0, abs=0.01)
    assert stats.kstest(z.flatten().numpy(), "norm").pvalue > 1e-3
    pairs = [(z[:, 0], z[:, 1]), (z[:, 0], z[:, 2]), (z[:-1, 0], z[1:, 0])]
    for a, b in pairs:
        assert abs(np.corrcoef(a.numpy(), b.numpy())[0, 1]) < 0.03
    other_stream = keyed_normal((0, 2, 7, torch.arange(50_000)), 1).double()[:, 0]
    assert abs(np.corrcoef(z[:, 0].numpy(), other_stream.numpy())[0, 1]) < 0.03


def test_tails_are_bounded():
    """24-bit uniforms bound |z| by sqrt(-2 ln 2**-25) = 5.89: finite, never NaN."""
    z = keyed_normal((3, torch.arange(50_000)), 2)
    assert torch.isfinite(z).all()
    assert z.abs().max().item() < 5.9


def test_mix_is_wellons_hash_on_known_values():
    """The mixer is the published 32-bit hash: x ^= x >> 16; x *= 0x21f0aaad; x ^= x >> 15;
    x *= 0x735a2d97; x ^= x >> 15, computed here by hand with Python's unbounded ints."""

    def reference(x):
        x ^= x >> 16
        x = (x * 0x21F0AAAD) % 2**32
        x ^= x >> 15
        x = (x * 0x735A2D97) % 2**32
        return x ^ (x >> 15)

    values = [0, 1, 12345, 2**31, 2**32 - 1]
    got = _mix(torch.tensor(values, dtype=torch.int64)).tolist()
    assert got == [reference(v) for v in values]


def test_dtype_and_device():
    """float64 results are computed in float64 and agree with float32 to float32 precision."""
    key = (1, torch.arange(10))
    z64 = keyed_normal(key, 5, dtype=torch.float64)
    assert z64.dtype == torch.float64
    np.testing.assert_allclose(keyed_normal(key, 5).numpy(), z64.numpy(), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    ("key", "size", "match"),
    [
        ((1, torch.tensor([0.5])), 2, "integer tensors, got torch.float32"),
        ((1, 2.0), 2, "ints or integer tensors, got 2.0"),
        ((True,), 2, "got True"),
        ((1,), 0, "size"),
    ],
)
def test_bad_arguments(key, size, match):
    with pytest.raises(ValueError, match=match):
        keyed_normal(key, size)
