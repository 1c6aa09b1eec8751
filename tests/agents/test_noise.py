"""Tests of agents.noise: activations, noise placement, noise samples and sigma validation."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from agents.noise import (
    ACTIVATIONS,
    NOISE_SCALINGS,
    PLACEMENTS,
    draw_noise,
    noisy_activation,
    sigma_column,
)
from noise_envs._checks import MAX_NOISE
from noise_envs.random import RandomSource

CPU = torch.device("cpu")

NUMPY_ACTIVATIONS = {
    "relu": lambda x: np.maximum(x, 0.0),
    "softplus": lambda x: np.log1p(np.exp(x)),
    "tanh": np.tanh,
    "sigmoid": lambda x: 1.0 / (1.0 + np.exp(-x)),
}


def test_named_choices():
    """The four activations, the two placements and the two scalings of DESIGN.md are offered."""
    assert set(ACTIVATIONS) == {"relu", "softplus", "tanh", "sigmoid"}
    assert set(PLACEMENTS) == {"in", "out"}
    assert set(NOISE_SCALINGS) == {"per_step", "sqrt_2_over_gamma"}


@pytest.mark.parametrize("name", sorted(NUMPY_ACTIVATIONS))
def test_activation_matches_numpy(name):
    """Each named activation equals its textbook formula on a grid."""
    x = torch.linspace(-6.0, 6.0, 121, dtype=torch.float64)
    np.testing.assert_allclose(
        ACTIVATIONS[name](x).numpy(), NUMPY_ACTIVATIONS[name](x.numpy()), rtol=1e-12, atol=1e-12
    )


@pytest.mark.parametrize("name", sorted(NUMPY_ACTIVATIONS))
def test_noisy_activation_in_and_out(name):
    """Placement "in" gives f(pre + noise), "out" gives f(pre) + noise, None gives f(pre)."""
    g = torch.Generator().manual_seed(0)
    pre = torch.randn(5, 4, generator=g, dtype=torch.float64)
    noise = 0.7 * torch.randn(5, 4, generator=g, dtype=torch.float64)
    f = NUMPY_ACTIVATIONS[name]
    act = ACTIVATIONS[name]
    inside = noisy_activation(pre, act, "in", noise).numpy()
    outside = noisy_activation(pre, act, "out", noise).numpy()
    np.testing.assert_allclose(inside, f(pre.numpy() + noise.numpy()), rtol=1e-12)
    np.testing.assert_allclose(outside, f(pre.numpy()) + noise.numpy(), rtol=1e-12)
    for placement in PLACEMENTS:
        np.testing.assert_allclose(
            noisy_activation(pre, act, placement, None).numpy(), f(pre.numpy()), rtol=1e-12
        )


@settings(max_examples=50, deadline=None)
@given(
    pre=st.floats(min_value=-5.0, max_value=5.0),
    noise=st.floats(min_value=-5.0, max_value=5.0),
)
def test_relu_noise_in_stays_nonnegative_noise_out_does_not_clip(pre, noise):
    """Inside relu the noise is clipped at zero; outside it passes through unchanged."""
    p, n = torch.tensor([pre]), torch.tensor([noise])
    inside = noisy_activation(p, torch.relu, "in", n).item()
    outside = noisy_activation(p, torch.relu, "out", n).item()
    assert inside >= 0.0
    assert outside == pytest.approx(max(pre, 0.0) + noise, abs=1e-6)


def test_draw_noise_returns_a_given_tensor_unchanged():
    """A tensor of samples of the right shape is used as is."""
    xi = torch.randn(3, 4, generator=torch.Generator().manual_seed(0))
    assert torch.equal(draw_noise(xi, (3, 4), CPU), xi)


@pytest.mark.parametrize("shape", [(3, 5), (4, 4), (3, 4, 1), (12,)])
def test_draw_noise_rejects_a_tensor_of_the_wrong_shape(shape):
    """A sample tensor whose shape differs from the request is named with both shapes."""
    with pytest.raises(ValueError, match=r"Expected `noise` of shape \[3, 4\], got"):
        draw_noise(torch.zeros(shape), (3, 4), CPU)


def test_draw_noise_without_a_source_says_how_to_pass_one():
    """No source: the error lists the accepted kinds and refuses the global generator."""
    with pytest.raises(ValueError, match=r"torch\.Generator, a RandomSource or a tensor") as info:
        draw_noise(None, (2, 3), CPU)
    assert "global generator" in str(info.value)


@pytest.mark.parametrize("bad", [3, 0.5, np.zeros((2, 3)), "seed"])
def test_draw_noise_rejects_other_types(bad):
    """Anything but a generator, a RandomSource or a tensor is refused by type name."""
    with pytest.raises(ValueError, match=rf"`noise` must be .*got {type(bad).__name__}"):
        draw_noise(bad, (2, 3), CPU)


def test_draw_noise_from_generator_is_reproducible_and_fresh():
    """Same seed, same samples; successive draws from one generator differ."""
    first = draw_noise(torch.Generator().manual_seed(4), (8, 3), CPU)
    again = draw_noise(torch.Generator().manual_seed(4), (8, 3), CPU)
    assert torch.equal(first, again)
    g = torch.Generator().manual_seed(4)
    a, b = draw_noise(g, (8, 3), CPU), draw_noise(g, (8, 3), CPU)
    assert torch.equal(a, first)
    assert not torch.allclose(a, b)
    assert not torch.allclose(first, draw_noise(torch.Generator().manual_seed(5), (8, 3), CPU))


def test_draw_noise_is_standard_normal():
    """Samples have mean 0, variance 1 and a normal tail share (about 4.55 % beyond 2)."""
    xi = draw_noise(RandomSource.from_seed(0), (20000, 5), CPU)
    assert xi.shape == (20000, 5)
    assert xi.mean().item() == pytest.approx(0.0, abs=0.01)
    assert xi.var().item() == pytest.approx(1.0, abs=0.02)
    assert (xi.abs() > 2).float().mean().item() == pytest.approx(0.0455, abs=0.003)


def test_draw_noise_from_tiled_source_repeats_blocks():
    """A RandomSource with repeats = R gives common random numbers across the R row blocks."""
    xi = draw_noise(RandomSource.from_seed(1, repeats=3), (6, 4), CPU)
    assert torch.equal(xi[0:2], xi[2:4])
    assert torch.equal(xi[0:2], xi[4:6])
    assert not torch.equal(xi[0], xi[1])


def test_sigma_column_from_float_and_tensor():
    """A float fills a [B, 1] column; a [B] tensor becomes that column."""
    column = sigma_column(0.3, 4, CPU)
    assert column.shape == (4, 1)
    assert torch.allclose(column, torch.full((4, 1), 0.3))
    levels = torch.tensor([0.0, 0.1, 0.2], dtype=torch.float64)
    column = sigma_column(levels, 3, CPU)
    assert column.shape == (3, 1)
    assert torch.allclose(column[:, 0], levels.float())


@pytest.mark.parametrize(
    ("sigma", "match"),
    [
        (-1.0, r"`sigma` must be >= 0, got -1\.0"),
        (float("nan"), r"`sigma` must be finite"),
        (float("-inf"), r"`sigma` must be finite"),
        (torch.tensor([0.1, -0.1, 0.0]), r"`sigma` must be >= 0"),
        (torch.tensor([0.1, float("nan"), 0.0]), r"`sigma` must be finite"),
        (torch.zeros(4), r"`sigma` must be a float or a tensor of shape \[3\], got shape \(4,\)"),
        (torch.zeros(3, 1), r"`sigma` must be a float or a tensor of shape \[3\], got shape"),
    ],
)
def test_sigma_column_rejects_bad_levels(sigma, match):
    """Negative, non-finite or mis-shaped noise levels are named in the error."""
    with pytest.raises(ValueError, match=match):
        sigma_column(sigma, 3, CPU)


@settings(max_examples=60, deadline=None)
@given(
    st.floats(max_value=1e30)
    | st.sampled_from([float("nan"), float("inf"), float("-inf"), MAX_NOISE, 1.0000001e6])
)
def test_sigma_column_accepts_exactly_the_finite_nonnegative_floats(sigma):
    """A float level is accepted if and only if it is finite and in [0, MAX_NOISE]."""
    if np.isfinite(sigma) and 0 <= sigma <= MAX_NOISE:
        assert torch.equal(sigma_column(sigma, 2, CPU), torch.full((2, 1), float(sigma)))
    else:
        with pytest.raises(ValueError, match=r"`sigma` must be"):
            sigma_column(sigma, 2, CPU)
