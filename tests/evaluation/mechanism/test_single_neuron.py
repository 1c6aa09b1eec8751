"""Tests of the single-neuron closed forms and the predicted best test noise."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from agents import CTRNN, CTRNNConfig
from evaluation.mechanism.gaussian import gaussian_relu_mean, gaussian_relu_variance
from evaluation.mechanism.single_neuron import predict_single_neuron, single_neuron_stationary
from evaluation.sweep import sweep_noise
from noise_envs import make_task


def neuron(w, b, w_out, b_out, *, dt=20.0):
    model = CTRNN(CTRNNConfig(input_size=1, output_size=1, hidden_size=1, dt=dt))
    with torch.no_grad():
        model.W.fill_(w)
        model.U.fill_(1.0)
        model.b.fill_(b)
        model.W_out.fill_(w_out)
        model.b_out.fill_(b_out)
    return model


@pytest.mark.parametrize("gamma", [0.05, 0.5, 1.0])
def test_uncoupled_unit_is_exact(gamma):
    """w = 0: mean E[relu(c + s xi)] and variance gamma / (2 - gamma) Var, for any gamma."""
    c, s = torch.tensor([-0.5, 0.0, 0.7]), torch.tensor([0.3, 1.0, 0.2])
    mean, variance = single_neuron_stationary(0.0, c, s, gamma)
    assert torch.allclose(mean, gaussian_relu_mean(c, s))
    assert torch.allclose(variance, gamma / (2 - gamma) * gaussian_relu_variance(c, s))


def test_noise_out_in_the_linear_region():
    """Noise after f on an active unit with self-coupling w: the mean is the fixed point
    c / (1 - w) and the variance that of an AR(1) with coefficient a = 1 - gamma + gamma w."""
    w, c, s, gamma = 0.5, 1.0, 0.3, 0.2
    mean, variance = single_neuron_stationary(w, c, s, gamma, placement="out")
    a = 1 - gamma + gamma * w
    assert float(mean) == pytest.approx(c / (1 - w), rel=1e-9)
    assert float(variance) == pytest.approx(gamma**2 * s**2 / (1 - a**2), rel=1e-9)


def test_self_coupled_unit_solves_the_mean_field_equation():
    """w > 0: h = E[relu(w h + c + s_eff xi)] with s_eff^2 = s^2 + w^2 Var[h], and the
    self-excitation amplifies the shift beyond the uncoupled E[relu(c + s xi)]."""
    w, c, s = 0.5, 0.0, 0.4
    mean, variance = single_neuron_stationary(w, c, s, 0.1)
    s_eff = torch.sqrt(s**2 + w**2 * variance)
    assert float(mean) == pytest.approx(float(gaussian_relu_mean(w * mean + c, s_eff)), abs=1e-10)
    assert float(mean) > float(gaussian_relu_mean(c, s))


def test_unstable_unit_raises():
    with pytest.raises(RuntimeError, match="unstable"):
        single_neuron_stationary(3.0, 1.0, 0.5, 0.5)


def test_predicted_best_noise_matches_the_simulated_sweep():
    """A unit at the kink whose read-out was fitted to the noise-0.5 mean: the closed form's
    error curve and best test noise match a simulated sweep of the regulator."""
    setpoints = torch.linspace(0.2, 1.0, 33, dtype=torch.float64)
    design = torch.stack([gaussian_relu_mean(setpoints - 0.8, 0.5), torch.ones(33)], 1)
    w_out, b_out = torch.linalg.lstsq(design, setpoints[:, None]).solution[:, 0].tolist()
    model = neuron(0.0, -0.8, w_out, b_out)
    levels = np.linspace(0.0, 1.0, 11)
    r = setpoints[:, None].float()
    prediction = predict_single_neuron(model, r, r, levels)
    sweep = sweep_noise(model, make_task("NoisyRegulator-v0"), levels, episodes=512)
    measured = sweep.summary().mean
    assert prediction.best_level == pytest.approx(sweep.best_level(), abs=0.1)
    assert 0.3 <= prediction.best_level <= 0.5
    assert np.allclose(prediction.mse, measured, rtol=0.1)
    assert prediction.output_mean.shape == (11, 33)


def test_prediction_needs_one_unit():
    model = CTRNN(CTRNNConfig(input_size=1, output_size=1, hidden_size=2))
    with pytest.raises(ValueError, match="hidden_size 1 and output_size 1, got hidden_size=2"):
        predict_single_neuron(model, torch.zeros(3, 1), torch.zeros(3, 1), [0.0])


def test_validation():
    with pytest.raises(ValueError, match=r"`gamma` must be in"):
        single_neuron_stationary(0.0, 0.0, 0.1, 1.5)
    with pytest.raises(ValueError, match="`placement` must be one of"):
        single_neuron_stationary(0.0, 0.0, 0.1, 0.5, placement="inside")
    model = neuron(0.0, 0.0, 1.0, 0.0)
    with pytest.raises(ValueError, match=r"Expected `targets` of shape \[3, 1\]"):
        predict_single_neuron(model, torch.zeros(3, 1), torch.zeros(2, 1), [0.0])
