"""Tests of the fixed-point solver and the nn.RNN-style noise-free wrapper."""

from __future__ import annotations

import itertools

import pytest
import torch

from agents import CTRNN, CTRNNConfig
from evaluation.mechanism.fixed_points import NoiseFreeRNN, find_fixed_points, sample_states


def make_model(W, b, *, activation="relu", dt=10.0, hidden=None):
    W = torch.as_tensor(W, dtype=torch.float32)
    config = CTRNNConfig(
        input_size=1, output_size=1, hidden_size=W.shape[0], activation=activation, dt=dt
    )
    model = CTRNN(config)
    with torch.no_grad():
        model.W.copy_(W)
        model.U.fill_(1.0)
        model.b.copy_(torch.as_tensor(b, dtype=torch.float32))
    return model


def tanh_root(w):
    """The positive root of h = tanh(w h), by bisection: an independent computation."""
    low, high = 1e-6, 1.0
    for _ in range(100):
        mid = 0.5 * (low + high)
        low, high = (mid, high) if torch.tanh(torch.tensor(w * mid)).item() > mid else (low, mid)
    return 0.5 * (low + high)


def as_set(points, digits=4):
    return {(tuple(round(v, digits) + 0.0 for v in p.state.tolist()), p.stable) for p in points}


def test_bistable_tanh_units_have_nine_fixed_points():
    """Two uncoupled tanh units with self-excitation 2: each has 0 (unstable) and +-h* (stable).

    Their product has 9 fixed points; only the 4 with both units at +-h* are stable.
    """
    model = make_model(2.0 * torch.eye(2), [0.0, 0.0], activation="tanh")
    root = round(tanh_root(2.0), 4)
    points = find_fixed_points(model, torch.zeros(1), num_initial=64)
    expected = {
        ((x, y), x != 0 and y != 0) for x, y in itertools.product([-root, 0.0, root], repeat=2)
    }
    assert as_set(points) == expected
    assert all(p.residual < 1e-9 for p in points)


def test_relu_units_with_threshold():
    """relu(2h - 1) = h has h = 0 (stable: the unit is off) and h = 1 (unstable: gain 2)."""
    model = make_model(2.0 * torch.eye(2), [-1.0, -1.0])
    points = find_fixed_points(model, torch.zeros(1), num_initial=64)
    expected = {((0.0, 0.0), True), ((1.0, 0.0), False), ((0.0, 1.0), False), ((1.0, 1.0), False)}
    assert as_set(points) == expected
    assert points[0].stable


def test_mutually_excited_relu_pair():
    """h1 = relu(2 h2 - 1), h2 = relu(2 h1 - 1): only (0, 0) (stable) and (1, 1) (unstable)."""
    model = make_model([[0.0, 2.0], [2.0, 0.0]], [-1.0, -1.0])
    points = find_fixed_points(model, torch.zeros(1), num_initial=64)
    assert as_set(points) == {((0.0, 0.0), True), ((1.0, 1.0), False)}
    gamma = model.config.gamma
    unstable = points[1]
    # The map's Jacobian at (1, 1) is (1 - gamma) I + gamma W, eigenvalues 1 - gamma +- 2 gamma.
    expected = sorted([1 + gamma, 1 - 3 * gamma], reverse=True)
    assert unstable.eigenvalues.real.tolist() == pytest.approx(expected)
    assert unstable.spectral_radius == pytest.approx(1 + gamma)


def test_eigenvalues_match_autograd_jacobian():
    """The eigenvalues equal those of the autograd Jacobian of the model's own step."""
    generator = torch.Generator().manual_seed(3)
    model = CTRNN(
        CTRNNConfig(input_size=1, output_size=2, hidden_size=5, activation="softplus"),
        generator=generator,
    )
    u = torch.tensor([0.4])
    points = find_fixed_points(model, u, num_initial=16)
    assert points
    for point in points:
        h = point.state.float()
        jacobian = torch.autograd.functional.jacobian(
            lambda x: model.hidden_step(u[None], x[None])[0], h
        )
        reference = torch.linalg.eigvals(jacobian.double())
        assert sorted(reference.abs().tolist()) == pytest.approx(
            sorted(point.eigenvalues.abs().tolist()), abs=1e-5
        )
        assert torch.allclose(point.output.float(), model.readout(h), atol=1e-5)


def test_simulation_converges_to_a_stable_fixed_point():
    """Iterating the noise-free map from near (h*, h*) ends at the solver's stable point."""
    model = make_model(2.0 * torch.eye(2), [0.0, 0.0], activation="tanh")
    stable = next(p for p in find_fixed_points(model, torch.zeros(1)) if p.stable)
    rnn = NoiseFreeRNN(model)
    start = (stable.state + 0.2).float().view(1, 1, 2)
    _, last = rnn(torch.zeros(400, 1, 1), start)
    assert torch.allclose(last[0, 0].double(), stable.state, atol=1e-5)


def test_wrapper_matches_the_ctrnn():
    """NoiseFreeRNN equals the CTRNN's forward at sigma 0, batched and unbatched."""
    model = CTRNN(CTRNNConfig(input_size=2, output_size=1, hidden_size=4))
    x = torch.randn(6, 3, 2, generator=torch.Generator().manual_seed(0))
    h0 = torch.rand(1, 3, 4, generator=torch.Generator().manual_seed(1))
    _, expected = model(x, sigma=0.0, h0=h0[0])
    rnn = NoiseFreeRNN(model)
    states, last = rnn(x, h0)
    assert torch.equal(states, expected)
    assert torch.equal(last, expected[-1:])
    single, single_last = rnn(x[:, 1], h0[:, 1])
    assert torch.allclose(single, expected[:, 1])
    assert single_last.shape == (1, 4)
    assert (rnn.hidden_size, rnn.input_size, rnn.num_layers, rnn.batch_first) == (4, 2, 1, False)


def test_wrapper_rejects_bad_shapes():
    rnn = NoiseFreeRNN(CTRNN(CTRNNConfig(input_size=2, output_size=1, hidden_size=4)))
    with pytest.raises(ValueError, match=r"Expected `x` of shape \[\*, \*, 2\], got \(5, 3, 1\)"):
        rnn(torch.zeros(5, 3, 1))
    with pytest.raises(ValueError, match=r"Expected `h0` of shape \[1, 3, 4\]"):
        rnn(torch.zeros(5, 3, 2), torch.zeros(3, 4))


def test_sample_states_are_visited_states():
    """States sampled under noise are finite, distinct and non-negative for relu."""
    model = make_model([[0.5, 0.0], [0.0, 0.5]], [0.2, 0.1])
    states = sample_states(model, torch.zeros(1), 0.3, num_states=10, steps=50)
    assert states.shape == (10, 2)
    assert (states >= 0).all()
    assert torch.unique(states, dim=0).shape[0] == 10


def test_validation():
    model = make_model([[0.5]], [0.0])
    with pytest.raises(ValueError, match=r"Expected `inputs` of shape \[1\], got \(1, 1\)"):
        find_fixed_points(model, torch.zeros(1, 1))
    with pytest.raises(ValueError, match="`num_initial` must be an integer >= 1"):
        find_fixed_points(model, torch.zeros(1), num_initial=0)
    with pytest.raises(ValueError, match=r"Expected `initial_states` of shape \[\*, 1\]"):
        find_fixed_points(model, torch.zeros(1), initial_states=torch.zeros(3, 2))
