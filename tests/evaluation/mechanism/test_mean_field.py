"""Tests of the mean-field stationary statistics and the Lyapunov solver."""

from __future__ import annotations

import math

import pytest
import torch

from agents import CTRNN, CTRNNConfig
from evaluation.mechanism.gaussian import gaussian_relu_mean, gaussian_relu_variance
from evaluation.mechanism.mean_field import (
    mean_field_state,
    mean_field_statistics,
    solve_discrete_lyapunov,
)
from evaluation.mechanism.single_neuron import single_neuron_stationary


def make_model(W, U, b, *, placement="in", activation="relu", dt=20.0, W_out=None):
    W = torch.as_tensor(W, dtype=torch.float32)
    n, i = W.shape[0], torch.as_tensor(U).shape[1]
    config = CTRNNConfig(
        input_size=i,
        output_size=1,
        hidden_size=n,
        activation=activation,
        placement=placement,
        dt=dt,
    )
    model = CTRNN(config)
    with torch.no_grad():
        model.W.copy_(W)
        model.U.copy_(torch.as_tensor(U, dtype=torch.float32))
        model.b.copy_(torch.as_tensor(b, dtype=torch.float32))
        model.W_out.copy_(torch.ones(1, n) if W_out is None else torch.as_tensor(W_out))
        model.b_out.zero_()
    return model


def test_lyapunov_solution_equals_the_series():
    """Sigma = sum_k A^k Q A^kT, summed term by term, for a random stable A."""
    generator = torch.Generator().manual_seed(0)
    A = 0.3 * torch.randn(2, 4, 4, generator=generator, dtype=torch.float64)
    B = torch.randn(2, 4, 4, generator=generator, dtype=torch.float64)
    Q = B @ B.mT
    series, term = torch.zeros_like(Q), Q.clone()
    for _ in range(400):
        series += term
        term = A @ term @ A.mT
    solution = solve_discrete_lyapunov(A, Q)
    assert torch.allclose(solution, series, atol=1e-10)
    assert torch.allclose(solution, A @ solution @ A.mT + Q, atol=1e-10)


def test_lyapunov_rejects_unstable_dynamics():
    with pytest.raises(RuntimeError, match=r"spectral radius 1\.1"):
        solve_discrete_lyapunov(torch.eye(2, dtype=torch.float64) * 1.1, torch.eye(2).double())


@pytest.mark.parametrize("linear_response", [False, True])
def test_uncoupled_units_have_the_closed_form(linear_response):
    """W = 0: mean E[relu(c + s xi)], variance gamma/(2 - gamma) Var[relu(c + s xi)], exactly."""
    c = torch.tensor([-0.3, 0.0, 0.4])
    model = make_model(torch.zeros(3, 3), torch.zeros(3, 1), c)
    gamma, s = model.config.gamma, 0.7
    stats = mean_field_statistics(model, torch.zeros(2, 1), s, linear_response=linear_response)
    assert torch.allclose(stats.state_mean, gaussian_relu_mean(c, s).expand(2, 3), atol=1e-9)
    variance = gamma / (2 - gamma) * gaussian_relu_variance(c, s)
    assert torch.allclose(
        torch.diagonal(stats.state_covariance, dim1=-2, dim2=-1), variance.expand(2, 3)
    )
    assert torch.allclose(stats.pre_mean, c.double().expand(2, 3))
    assert torch.allclose(stats.pre_std, torch.full((2, 3), s, dtype=torch.float64))
    assert torch.allclose(stats.output_mean, gaussian_relu_mean(c, s).sum().expand(2, 1), atol=1e-9)


def test_noise_out_plain_mean_is_the_deterministic_fixed_point():
    """Noise after f has zero mean: the plain mean-field state is that of sigma = 0."""
    model = make_model([[0.5, -0.2], [0.1, 0.3]], [[1.0], [-1.0]], [0.1, 0.0], placement="out")
    inputs = torch.tensor([[0.5], [-0.5]])
    noisy = mean_field_state(model, inputs, 0.8)
    assert torch.allclose(noisy, mean_field_state(model, inputs, 0.0))
    h = torch.zeros(2, 2)
    for _ in range(500):
        _, h = model.step(inputs, h)
    assert torch.allclose(noisy.float(), h, atol=1e-5)


def test_noise_out_linear_region_covariance():
    """One active linear unit with noise out: Var = gamma / (2 - gamma) s^2 (an AR(1) process)."""
    model = make_model([[0.0]], [[0.0]], [3.0], placement="out")
    gamma = model.config.gamma
    stats = mean_field_statistics(model, torch.zeros(1, 1), 0.2)
    assert float(stats.state_mean) == pytest.approx(3.0)
    assert float(stats.state_covariance) == pytest.approx(gamma / (2 - gamma) * 0.04)


@pytest.mark.parametrize("linear_response", [False, True])
def test_single_unit_agrees_with_the_scalar_solver(linear_response):
    """The N-unit solver on one self-coupled unit equals the scalar single-neuron solver."""
    model = make_model([[0.6]], [[1.0]], [0.0])
    inputs = torch.tensor([[-0.2], [0.0], [0.3]])
    stats = mean_field_statistics(model, inputs, 0.5, linear_response=linear_response)
    mean, variance = single_neuron_stationary(0.6, inputs[:, 0], 0.5, model.config.gamma)
    if linear_response:
        assert torch.allclose(stats.state_mean[:, 0], mean, atol=1e-8)
        assert torch.allclose(stats.state_covariance[:, 0, 0], variance, atol=1e-8)
    else:
        plain = gaussian_relu_mean(0.6 * stats.state_mean[:, 0] + inputs[:, 0], 0.5)
        assert torch.allclose(stats.state_mean[:, 0], plain, atol=1e-8)


def test_linear_response_widens_the_noise_seen_by_f():
    """A self-excited unit's own fluctuations add to its pre-activation noise: larger mean."""
    model = make_model([[0.6]], [[1.0]], [0.0], dt=50.0)
    inputs = torch.zeros(1, 1)
    plain = mean_field_statistics(model, inputs, 0.5, linear_response=False)
    corrected = mean_field_statistics(model, inputs, 0.5, linear_response=True)
    assert float(corrected.state_mean) > float(plain.state_mean)
    expected_std = math.sqrt(0.25 + 0.36 * float(corrected.state_covariance))
    assert float(corrected.pre_std) == pytest.approx(expected_std)


def test_unstable_network_raises():
    """A relu unit with self-excitation 2 and positive drive runs away: no stationary mean."""
    model = make_model([[2.0]], [[0.0]], [1.0])
    with pytest.raises(RuntimeError, match="did not converge"):
        mean_field_state(model, torch.zeros(1, 1), 0.1, iterations=200)


def test_validation():
    model = make_model([[0.0]], [[0.0]], [0.0])
    with pytest.raises(ValueError, match=r"`sigma` must be >= 0, got -0\.1"):
        mean_field_state(model, torch.zeros(1, 1), -0.1)
    with pytest.raises(ValueError, match=r"Expected `inputs` of shape \[\*, 1\], got \(2, 3\)"):
        mean_field_state(model, torch.zeros(2, 3), 0.1)
    with pytest.raises(ValueError, match="`iterations` must be an integer >= 1"):
        mean_field_state(model, torch.zeros(1, 1), 0.1, iterations=0)


def test_plain_mean_field_error_grows_with_gamma():
    """The state's own fluctuations, which plain mean field ignores, grow with gamma: the gap
    between the corrected and the plain prediction grows with it (and is < 1% at gamma 0.05)."""
    gaps = []
    for dt in (5.0, 20.0, 50.0, 100.0):
        model = make_model([[0.5]], [[1.0]], [0.0], dt=dt)
        plain = mean_field_state(model, torch.zeros(1, 1), 1.0)
        corrected = mean_field_statistics(model, torch.zeros(1, 1), 1.0).state_mean
        gaps.append(float((corrected - plain) / corrected))
    assert gaps == sorted(gaps)
    assert 0 < gaps[0] < 0.01
    assert gaps[-1] > 0.04


def test_initial_state_selects_the_attractor():
    """A bistable tanh unit (h = tanh(2 h)): starting above or below 0 picks +h* or -h*."""
    model = make_model([[2.0]], [[0.0]], [0.0], activation="tanh")
    h0 = torch.tensor([[0.5], [-0.5]])
    mean = mean_field_statistics(model, torch.zeros(2, 1), 0.0, h0=h0).state_mean[:, 0]
    assert mean[0] == pytest.approx(0.957504, abs=1e-6)
    assert mean[1] == pytest.approx(-0.957504, abs=1e-6)
    with pytest.raises(ValueError, match=r"Expected `h0` of shape \[2, 1\]"):
        mean_field_statistics(model, torch.zeros(2, 1), 0.0, h0=torch.zeros(1, 1))
