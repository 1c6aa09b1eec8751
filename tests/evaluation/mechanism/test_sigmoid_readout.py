"""The mechanism analysis of CTRNNs with Yang et al.'s sigmoid read-out ``y = sigmoid(W_out h + b_out)``."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from agents import CTRNN, CTRNNConfig
from evaluation.mechanism.fixed_points import find_fixed_points
from evaluation.mechanism.mean_field import mean_field_statistics, output_statistics
from evaluation.mechanism.stationary import stationary_statistics


def uncoupled_sigmoid(c, w_out, b_out, *, readout="sigmoid"):
    """Units without recurrence, drive ``c``, one output ``readout(w_out . h + b_out)``."""
    n = len(c)
    config = CTRNNConfig(input_size=1, output_size=1, hidden_size=n, dt=20.0, readout=readout)
    model = CTRNN(config)
    with torch.no_grad():
        model.W.zero_()
        model.U.zero_()
        model.b.copy_(torch.tensor(c))
        model.W_out.copy_(torch.tensor([w_out]))
        model.b_out.fill_(b_out)
    return model


def test_output_statistics_against_monte_carlo():
    """E[sigmoid(z)] for Gaussian z is exact; the covariance is D Cov(z) D to first order."""
    mean = torch.tensor([[1.5, -0.4]], dtype=torch.float64)
    covariance = torch.tensor([[[0.7, 0.2], [0.2, 0.3]]], dtype=torch.float64)
    out_mean, out_cov = output_statistics("sigmoid", mean, covariance)
    rng = np.random.default_rng(0)
    z = rng.multivariate_normal(mean[0].numpy(), covariance[0].numpy(), size=400_000)
    y = 1.0 / (1.0 + np.exp(-z))
    sem = y.std(0) / np.sqrt(len(y))
    assert np.all(np.abs(out_mean[0].numpy() - y.mean(0)) < 4 * sem)
    assert float(out_mean[0, 0]) < 1 / (1 + np.exp(-1.5)) - 0.02  # Jensen: concave above 0
    np.testing.assert_allclose(out_cov[0].numpy(), np.cov(y.T), rtol=0.15)


def test_output_statistics_linear_is_the_identity_and_names_are_checked():
    mean, covariance = torch.randn(2, 3).double(), torch.eye(3).double().expand(2, 3, 3)
    out_mean, out_cov = output_statistics("linear", mean, covariance)
    assert out_mean is mean and out_cov is covariance
    with pytest.raises(ValueError, match=r"`readout` must be one of \['linear', 'sigmoid'\]"):
        output_statistics("softmax", mean, covariance)


def test_fixed_point_output_goes_through_the_sigmoid():
    """Uncoupled relu units: h* = relu(c); the output is sigmoid(w_out . h* + b_out)."""
    model = uncoupled_sigmoid([0.5, -0.3, 1.2], [1.0, 2.0, -0.5], 0.25)
    (point,) = find_fixed_points(model, torch.zeros(1))
    expected = 1.0 / (1.0 + np.exp(-(0.5 - 0.5 * 1.2 + 0.25)))
    assert float(point.output[0]) == pytest.approx(expected, abs=1e-7)


def test_stationary_output_is_the_mean_of_the_sigmoid_not_the_sigmoid_of_the_mean():
    """Simulated output statistics are the model's own outputs averaged over time and replicas.

    Checked against a separate long run of the model (its own read-out, other noise), and set
    against the read-out of the mean state, which Jensen's inequality makes larger here.
    """
    torch.manual_seed(0)
    model = uncoupled_sigmoid([0.5], [4.0], -1.0)
    sigma = 1.0
    stats = stationary_statistics(
        model, torch.zeros(1, 1), [sigma], steps=1000, burn_in=100, replicas=32, seed=1
    )
    generator = torch.Generator().manual_seed(7)
    with torch.no_grad():
        outputs, _ = model(torch.zeros(1100, 256, 1), sigma=sigma, noise=generator)
    direct = outputs[100:].double()
    assert float(stats.output_mean[0, 0, 0]) == pytest.approx(float(direct.mean()), abs=0.006)
    assert float(stats.output_covariance[0, 0, 0, 0]) == pytest.approx(
        float(direct.var()), rel=0.05
    )
    of_mean = torch.sigmoid(4.0 * stats.state_mean[0, 0, 0] - 1.0)
    assert float(of_mean - stats.output_mean[0, 0, 0]) > 0.015
    predicted = mean_field_statistics(model, torch.zeros(1, 1), sigma)
    assert float(predicted.output_mean[0, 0]) == pytest.approx(
        float(stats.output_mean[0, 0, 0]), abs=0.01
    )


def test_linear_readout_statistics_are_unchanged():
    """The linear read-out keeps the affine map of the state statistics."""
    model = uncoupled_sigmoid([0.5, 0.2], [1.0, -2.0], 0.3, readout="linear")
    stats = stationary_statistics(model, torch.zeros(1, 1), [0.5], steps=50, burn_in=10)
    w_out = torch.tensor([[1.0, -2.0]], dtype=torch.float64)
    assert torch.allclose(stats.output_mean[0], stats.state_mean[0] @ w_out.T + 0.3)
    assert torch.allclose(stats.output_covariance[0], w_out @ stats.state_covariance[0] @ w_out.T)
