"""Tests of the Gaussian expectations through activations."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from evaluation.mechanism.gaussian import (
    gaussian_activation_mean,
    gaussian_activation_slope,
    gaussian_activation_variance,
    gaussian_relu_mean,
    gaussian_relu_variance,
    gaussian_softplus_mean,
)

ACTIVATIONS = {
    "relu": lambda x: np.maximum(x, 0.0),
    "softplus": lambda x: np.logaddexp(0.0, x),
    "tanh": np.tanh,
    "sigmoid": lambda x: 1.0 / (1.0 + np.exp(-x)),
}
POINTS = [(-1.5, 0.3), (0.0, 1.0), (0.2, 0.5), (1.0, 2.0), (-0.4, 0.05)]


def integrate(f, a, s):
    """E[f(a + s xi)] by the trapezoid rule on a fine grid: an independent reference."""
    xi = np.linspace(-12.0, 12.0, 240_001)
    density = np.exp(-0.5 * xi**2) / math.sqrt(2.0 * math.pi)
    return np.trapezoid(f(a + s * xi) * density, xi)


@pytest.mark.parametrize("activation", list(ACTIVATIONS))
@pytest.mark.parametrize(("a", "s"), POINTS)
def test_mean_and_variance_match_numerical_integration(activation, a, s):
    """Closed forms (relu) and quadrature (others) equal a fine trapezoid integral."""
    f = ACTIVATIONS[activation]
    mean = integrate(f, a, s)
    variance = integrate(lambda x: f(x) ** 2, a, s) - mean**2
    assert float(gaussian_activation_mean(activation, a, s)) == pytest.approx(mean, abs=1e-8)
    assert float(gaussian_activation_variance(activation, a, s)) == pytest.approx(
        variance, abs=1e-8
    )


def test_relu_values_at_the_kink():
    """At a = 0: E = s / sqrt(2 pi) = 0.399 s and Var = s^2 (1/2 - 1/(2 pi)) = 0.341 s^2."""
    s = torch.tensor([0.5, 1.0, 2.0])
    assert torch.allclose(gaussian_relu_mean(0.0, s), s.double() / math.sqrt(2 * math.pi))
    expected = s.double() ** 2 * (0.5 - 1 / (2 * math.pi))
    assert torch.allclose(gaussian_relu_variance(0.0, s), expected)


@pytest.mark.parametrize("activation", list(ACTIVATIONS))
def test_slope_is_the_derivative_of_the_mean(activation):
    """Stein: E[f'(a + s xi)] = d/da E[f(a + s xi)] (central difference)."""
    a, s, h = torch.tensor([-0.7, 0.0, 0.9], dtype=torch.float64), 0.6, 1e-5
    difference = (
        gaussian_activation_mean(activation, a + h, s)
        - gaussian_activation_mean(activation, a - h, s)
    ) / (2 * h)
    assert torch.allclose(gaussian_activation_slope(activation, a, s), difference, atol=1e-8)


@pytest.mark.parametrize("activation", ["relu", "softplus"])
def test_zero_noise_reduces_to_the_activation(activation):
    """With s = 0 the expectation is f(a) and the variance 0."""
    a = torch.tensor([-1.0, 0.3, 2.0], dtype=torch.float64)
    f = torch.relu if activation == "relu" else torch.nn.functional.softplus
    assert torch.allclose(gaussian_activation_mean(activation, a, 0.0), f(a))
    assert torch.allclose(gaussian_activation_variance(activation, a, 0.0), torch.zeros(3).double())


def test_relu_slope_is_the_probability_of_being_on():
    """For relu, E[f'] = P(a + s xi > 0) = Phi(a / s); a step at s = 0."""
    assert float(gaussian_activation_slope("relu", 0.0, 1.0)) == pytest.approx(0.5)
    assert float(gaussian_activation_slope("relu", 1.0, 1.0)) == pytest.approx(0.8413447, abs=1e-6)
    assert gaussian_activation_slope("relu", torch.tensor([-1.0, 1.0]), 0.0).tolist() == [0.0, 1.0]


def test_jensen_shift_is_positive_for_convex_activations():
    """relu and softplus are convex, so noise raises their mean: E[f(a + s xi)] > f(a)."""
    a = torch.linspace(-2, 2, 9)
    assert (gaussian_relu_mean(a, 0.5) > torch.relu(a).double()).all()
    assert (gaussian_softplus_mean(a, 0.5) > torch.nn.functional.softplus(a).double()).all()


def test_broadcasts_over_a_and_s():
    """a [3, 1] and s [4] give [3, 4]."""
    result = gaussian_activation_mean("softplus", torch.zeros(3, 1), torch.linspace(0, 1, 4))
    assert result.shape == (3, 4)
    assert torch.allclose(result[0], result[2])


def test_unknown_activation_is_rejected():
    with pytest.raises(ValueError, match=r"`activation` must be one of .*Did you mean 'relu'"):
        gaussian_activation_mean("rellu", 0.0, 1.0)
