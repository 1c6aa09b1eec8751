"""Tests of the simulated stationary statistics."""

from __future__ import annotations

import pytest
import torch

from agents import CTRNN, CTRNNConfig
from evaluation.mechanism.gaussian import gaussian_relu_mean, gaussian_relu_variance
from evaluation.mechanism.stationary import simulate_stationary_mean, stationary_statistics


def uncoupled(c, *, placement="in", dt=50.0):
    """Units without recurrence, drive c (a closed form exists for every gamma)."""
    n = len(c)
    model = CTRNN(
        CTRNNConfig(input_size=1, output_size=1, hidden_size=n, placement=placement, dt=dt)
    )
    with torch.no_grad():
        model.W.zero_()
        model.U.zero_()
        model.b.copy_(torch.tensor(c))
        model.W_out.fill_(1.0)
        model.b_out.fill_(0.5)
    return model


def test_zero_noise_is_the_deterministic_trajectory_end():
    """At sigma = 0 every replica is the noise-free state: zero covariance and standard error."""
    model = CTRNN(CTRNNConfig(input_size=1, output_size=1, hidden_size=4, dt=20.0))
    inputs = torch.tensor([[0.3], [-0.8]])
    stats = stationary_statistics(model, inputs, [0.0], steps=20, burn_in=200, replicas=3)
    h = torch.zeros(2, 4)
    for _ in range(220):
        _, h = model.step(inputs, h)
    assert torch.allclose(stats.state_mean[0].float(), h, atol=1e-5)
    assert torch.allclose(stats.state_sem[0], torch.zeros(2, 4).double(), atol=1e-6)
    assert float(stats.state_covariance.abs().max()) < 1e-10
    assert torch.allclose(stats.output_mean[0].float(), model.readout(h), atol=1e-5)


def test_uncoupled_units_match_the_closed_form():
    """W = 0: E[h] = E[relu(c + s xi)] and Var[h] = gamma / (2 - gamma) Var[relu(c + s xi)]."""
    c = torch.tensor([-0.2, 0.0, 0.5])
    model = uncoupled(c.tolist())
    gamma, s = model.config.gamma, 0.6
    stats = stationary_statistics(model, torch.zeros(1, 1), [s], steps=400, burn_in=50, replicas=64)
    mean = gaussian_relu_mean(c, s)
    sem = stats.state_sem[0, 0]
    assert ((stats.state_mean[0, 0] - mean).abs() < 4 * sem).all()
    variance = gamma / (2 - gamma) * gaussian_relu_variance(c, s)
    measured = torch.diagonal(stats.state_covariance[0, 0])
    assert torch.allclose(measured, variance, rtol=0.08)
    assert float(stats.state_covariance[0, 0, 0, 2].abs()) < 0.1 * float(variance[2])
    assert torch.allclose(stats.pre_std[0, 0], torch.full((3,), s, dtype=torch.float64))
    assert float(stats.output_mean[0, 0]) == pytest.approx(float(mean.sum()) + 0.5, abs=0.02)


def test_noise_out_pre_activation_spread_is_only_the_state_part():
    """Noise after f does not widen f's argument: with W = 0 the argument is constant."""
    model = uncoupled([0.3, 0.1], placement="out")
    stats = stationary_statistics(model, torch.zeros(1, 1), [0.5], steps=50, burn_in=10, replicas=4)
    assert torch.allclose(stats.pre_std, torch.zeros_like(stats.pre_std))
    assert float(stats.state_covariance[0, 0, 0, 0]) > 0


def test_levels_are_independent_of_the_other_levels():
    """Per-row sigma with common noise: a level's statistics are those of a run of it alone."""
    model = CTRNN(CTRNNConfig(input_size=1, output_size=1, hidden_size=3, dt=20.0))
    inputs = torch.tensor([[0.5], [-0.5]])
    together = stationary_statistics(model, inputs, [0.0, 0.4], steps=30, burn_in=5, replicas=2)
    alone = stationary_statistics(model, inputs, [0.4], steps=30, burn_in=5, replicas=2)
    assert torch.allclose(together.state_mean[1], alone.state_mean[0], atol=1e-6)
    assert torch.allclose(together.state_covariance[1], alone.state_covariance[0], atol=1e-6)
    assert together.level_index(0.38) == 1


def test_simulate_stationary_mean_is_the_one_level_statistics():
    model = CTRNN(CTRNNConfig(input_size=1, output_size=1, hidden_size=3))
    inputs = torch.tensor([[0.2]])
    h, y = simulate_stationary_mean(model, inputs, 0.3, steps=20, burn_in=5, replicas=2)
    stats = stationary_statistics(model, inputs, [0.3], steps=20, burn_in=5, replicas=2)
    assert torch.equal(h, stats.state_mean[0])
    assert torch.equal(y, stats.output_mean[0])


def test_one_replica_has_no_standard_error():
    model = uncoupled([0.0])
    stats = stationary_statistics(model, torch.zeros(1, 1), [0.5], steps=5, burn_in=0, replicas=1)
    assert torch.isnan(stats.state_sem).all()


def test_validation():
    model = uncoupled([0.0])
    with pytest.raises(ValueError, match="`levels` must be >= 0"):
        stationary_statistics(model, torch.zeros(1, 1), [-0.1])
    with pytest.raises(ValueError, match="`replicas` must be an integer >= 1, got 0"):
        stationary_statistics(model, torch.zeros(1, 1), [0.1], replicas=0)
    with pytest.raises(ValueError, match=r"Expected `h0` of shape \[1, 1\]"):
        stationary_statistics(model, torch.zeros(1, 1), [0.1], h0=torch.zeros(2, 1))
    with pytest.raises(ValueError, match=r"Expected `inputs` of shape \[\*, 1\]"):
        stationary_statistics(model, torch.zeros(1), [0.1])
