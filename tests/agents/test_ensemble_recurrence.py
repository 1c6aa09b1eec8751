"""ctrnn_sequence: one autograd node whose values and gradients are the CTRNN's, step by step."""

from __future__ import annotations

import pytest
import torch

from agents.noise import ACTIVATIONS
from agents.recurrence import ctrnn_sequence

K, T, B, N, INPUTS, OUTPUTS, GAMMA = 3, 4, 2, 5, 2, 3, 0.3


def _case(seed: int = 0, num_inputs: int = INPUTS, num_outputs: int = OUTPUTS):
    generator = torch.Generator().manual_seed(seed)

    def randn(*shape):
        return torch.randn(*shape, generator=generator, dtype=torch.float64).requires_grad_()

    inputs, h0 = randn(T, K, B, num_inputs), randn(K, B, N)
    weights = (
        randn(K, N, N),
        randn(K, N, num_inputs),
        randn(K, N),
        randn(K, num_outputs, N),
        randn(K, num_outputs),
    )
    noise = torch.randn(T, K, B, N, generator=generator, dtype=torch.float64)
    scale = torch.rand(K, B, 1, generator=generator, dtype=torch.float64)
    return inputs, h0, weights, noise, scale


def _by_hand(inputs, h0, weights, noise, scale, inside, activation):
    """The update written out step by step, member by member, with plain autograd."""
    W, U, b, W_out, b_out = weights
    outputs, states = [], []
    for k in range(K):
        h, ys, hs = h0[k], [], []
        for t in range(T):
            xi = scale[k] * noise[t, k]
            z = h @ W[k].T + inputs[t, k] @ U[k].T + b[k]
            a = ACTIVATIONS[activation](z + xi) if inside[k] else ACTIVATIONS[activation](z) + xi
            h = (1 - GAMMA) * h + GAMMA * a
            hs.append(h)
            ys.append(h @ W_out[k].T + b_out[k])
        outputs.append(torch.stack(ys))
        states.append(torch.stack(hs))
    return torch.stack(outputs, dim=1), torch.stack(states, dim=1)  # [T, K, B, ...]


@pytest.mark.parametrize("sizes", [(INPUTS, OUTPUTS), (1, 1)])  # 1: outer products
@pytest.mark.parametrize("activation", ["relu", "tanh", "sigmoid", "softplus"])
@pytest.mark.parametrize("inside", [[True] * K, [True, False, True], [False] * K])
def test_values_and_gradients_equal_the_update_written_out(activation, inside, sizes):
    inputs, h0, weights, noise, scale = _case(0, *sizes)
    mask = torch.tensor(inside)
    outputs, states = ctrnn_sequence(
        inputs,
        weights,
        h0,
        gamma=GAMMA,
        activation=activation,
        noise=noise,
        scale=scale,
        inside=mask,
    )
    expected_outputs, expected_states = _by_hand(
        inputs, h0, weights, noise, scale, inside, activation
    )
    torch.testing.assert_close(outputs, expected_outputs)
    torch.testing.assert_close(states, expected_states)
    # a loss that reads both outputs and states, so both backward paths are exercised
    leaves = (inputs, h0, *weights)
    loss = (
        outputs.square().sum() + states.sin().sum(),
        expected_outputs.square().sum() + expected_states.sin().sum(),
    )
    mine = torch.autograd.grad(loss[0], leaves)
    theirs = torch.autograd.grad(loss[1], leaves)
    for got, want in zip(mine, theirs, strict=True):
        torch.testing.assert_close(got, want)


@pytest.mark.parametrize("sizes", [(INPUTS, OUTPUTS), (1, 1)])
def test_gradcheck_with_only_the_outputs_used(sizes):
    inputs, h0, weights, noise, scale = _case(1, *sizes)

    def outputs_only(inputs, h0, *weights):
        return ctrnn_sequence(
            inputs, weights, h0, gamma=GAMMA, activation="tanh", noise=noise, scale=scale
        )[0]

    assert torch.autograd.gradcheck(outputs_only, (inputs, h0, *weights))


def test_an_unknown_activation_is_refused():
    inputs, h0, weights, _, _ = _case()
    with pytest.raises(ValueError, match=r"`activation` must be one of.*Did you mean 'relu'"):
        ctrnn_sequence(inputs, weights, h0, gamma=GAMMA, activation="reLu")
