"""Tests of agents.mlp: the noisy feedforward network against a numpy re-derivation, and its use."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from agents import TrainConfig, build_model, model_kind, rollout, train
from agents.mlp import NoisyLayers, NoisyMLP, NoisyMLPConfig
from agents.policy import Policy
from evaluation.sweep import sweep_noise
from noise_envs import RandomSource, make_task

NUMPY_ACTIVATIONS = {
    "relu": lambda x: np.maximum(x, 0.0),
    "softplus": lambda x: np.log1p(np.exp(x)),
    "tanh": np.tanh,
    "sigmoid": lambda x: 1.0 / (1.0 + np.exp(-x)),
}
BATCH, INPUTS, HIDDEN, LAYERS, OUTPUTS = 4, 3, 5, 2, 2


def assert_close(actual, expected):
    """torch.testing.assert_close's float32 tolerances, without its slow first call."""
    np.testing.assert_allclose(
        actual.detach().numpy(), expected.detach().numpy(), rtol=1.3e-6, atol=1e-5
    )


def make_model(activation="relu", placement="in", seed=0):
    config = NoisyMLPConfig(
        input_size=INPUTS,
        output_size=OUTPUTS,
        hidden_size=HIDDEN,
        num_layers=LAYERS,
        activation=activation,
        placement=placement,
    )
    model = NoisyMLP(config, generator=torch.Generator().manual_seed(seed))
    g = torch.Generator().manual_seed(seed + 100)
    with torch.no_grad():  # nonzero biases, so that they are exercised too
        for bias in model.hidden.biases:
            bias.copy_(0.5 * torch.randn(HIDDEN, generator=g))
        model.b_out.copy_(0.5 * torch.randn(OUTPUTS, generator=g))
    return model


def reference_forward(model, x, sigma, xi, activation, placement):
    """The noisy MLP written out in float64 numpy; sigma is [B] or a float, xi [B, L * H]."""
    f = NUMPY_ACTIVATIONS[activation]
    h = x.double().numpy()
    sigma = np.reshape(np.asarray(sigma, dtype=np.float64), (-1, 1))
    noise = np.split(sigma * xi.double().numpy(), LAYERS, axis=1)
    for weight, bias, chunk in zip(model.hidden.weights, model.hidden.biases, noise, strict=True):
        pre = h @ weight.detach().double().numpy().T + bias.detach().double().numpy()
        h = f(pre + chunk) if placement == "in" else f(pre) + chunk
    return h @ model.W_out.detach().double().numpy().T + model.b_out.detach().double().numpy()


def inputs(seed=7):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(BATCH, INPUTS, generator=g), torch.randn(BATCH, LAYERS * HIDDEN, generator=g)


@pytest.mark.parametrize("activation", sorted(NUMPY_ACTIVATIONS))
@pytest.mark.parametrize("placement", ["in", "out"])
def test_forward_equals_hand_written_network(activation, placement):
    """Each hidden layer is f(Wx + b + s xi) ("in") or f(Wx + b) + s xi ("out"); linear read-out."""
    model = make_model(activation, placement)
    x, xi = inputs()
    got = model(x, sigma=0.3, noise=xi)
    want = reference_forward(model, x, 0.3, xi, activation, placement)
    np.testing.assert_allclose(got.detach().double().numpy(), want, rtol=1e-5, atol=1e-6)


def test_per_row_sigma_equals_separate_calls():
    """A [B] sigma gives row b what a float sigma[b] gives it, with the same xi."""
    model = make_model("softplus")
    x, xi = inputs()
    sigma = torch.tensor([0.0, 0.2, 0.5, 1.0])
    batched = model(x, sigma, xi)
    for row in range(BATCH):
        single = model(x[row : row + 1], float(sigma[row]), xi[row : row + 1])
        assert_close(batched[row : row + 1], single)


def test_zero_sigma_needs_no_noise_and_is_deterministic():
    """At sigma 0 no noise source is needed and the output equals the noise-free network's."""
    model = make_model()
    x, _ = inputs()
    want = reference_forward(model, x, 0.0, torch.zeros(BATCH, LAYERS * HIDDEN), "relu", "in")
    np.testing.assert_allclose(model(x).detach().double().numpy(), want, rtol=1e-5, atol=1e-6)


def test_generator_noise_is_standard_normal_and_advances():
    """Drawing from a generator gives N(0, 1) samples (noise-out std is sigma); calls differ."""
    config = NoisyMLPConfig(
        input_size=1, output_size=2, hidden_size=2, num_layers=1, placement="out"
    )
    model = NoisyMLP(config)
    with torch.no_grad():
        model.W_out.copy_(torch.eye(2))  # read out the hidden units themselves
    x = torch.zeros(4096, 1)
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        first, second, clean = model(x, 0.5, g), model(x, 0.5, g), model(x)
    assert not torch.equal(first, second)
    np.testing.assert_allclose((first - clean).std(0).numpy(), 0.5, rtol=0.05)


def test_policy_protocol_with_empty_state():
    """NoisyMLP is a Policy whose state is an empty [B, 0] tensor, passed through unchanged."""
    model = make_model()
    assert isinstance(model, Policy)
    state = model.initial_state(BATCH)
    x, xi = inputs()
    action, new_state = model.step(x, state, 0.2, xi)
    assert new_state.shape == (BATCH, 0)
    assert_close(action, model(x, 0.2, xi))


def test_rollout_and_sweep_run_unchanged():
    """The closed-loop rollout (recording states) and the noise sweep take a NoisyMLP."""
    task = make_task("NoisyRegulator-v0", steps=6, settle_steps=2)
    model = NoisyMLP(NoisyMLPConfig(input_size=1, output_size=1, hidden_size=8))
    result = rollout(model, task, 3, sigma=0.1, noise=RandomSource.from_seed(0), record=True)
    assert result.policy_states.shape == (6, 3, 0)
    sweep = sweep_noise(model, task, [0.0, 0.5], episodes=4)
    assert sweep.values("mse").shape == (2, 4)


def test_supervised_training_reduces_the_loss():
    """The supervised trainer fits the regulator with a NoisyMLP (its output is the setpoint)."""
    task = make_task("NoisyRegulator-v0", steps=4, settle_steps=0)
    model = NoisyMLP(NoisyMLPConfig(input_size=1, output_size=1, hidden_size=16))
    config = TrainConfig(sigma=0.1, iterations=40, batch_size=16, learning_rate=2e-2, seed=0)
    result = train(model, task, config, progress=False)
    assert result.history[-1]["loss"] < 0.2 * result.history[0]["loss"]


def test_registered_model_kind_round_trips():
    """build_model("noisy_mlp", dict) rebuilds the config, and model_kind names it."""
    config = NoisyMLPConfig(input_size=2, output_size=1, hidden_size=3, num_layers=1)
    model = build_model("noisy_mlp", config.to_dict())
    assert model.config == config
    assert model_kind(model) == "noisy_mlp"
    assert NoisyMLPConfig.from_json(config.to_json()) == config


def test_same_generator_gives_same_weights():
    """Initial weights come only from the generator (He-scaled normals, zero biases)."""
    a, b = make_model(seed=3), make_model(seed=3)
    for (name, x), (_, y) in zip(a.state_dict().items(), b.state_dict().items(), strict=True):
        assert torch.equal(x, y), name
    layers = NoisyLayers(1000, 400, 1, generator=torch.Generator().manual_seed(0))
    assert layers.weights[0].std().item() == pytest.approx((2 / 1000) ** 0.5, rel=0.02)


@pytest.mark.parametrize(
    ("field", "value", "match"),
    [
        ("input_size", 0, "input_size"),
        ("hidden_size", 1.5, "hidden_size"),
        ("num_layers", 0, "num_layers"),
        ("activation", "relux", "Did you mean 'relu'"),
        ("placement", "inside", "placement"),
    ],
)
def test_config_validation(field, value, match):
    base = {"input_size": 1, "output_size": 1}
    with pytest.raises(ValueError, match=match):
        NoisyMLPConfig(**{**base, field: value})


def test_bad_call_arguments():
    model = make_model()
    x, xi = inputs()
    with pytest.raises(ValueError, match=r"Expected `obs` of shape \[\*, 3\]"):
        model(torch.zeros(BATCH, 2))
    with pytest.raises(ValueError, match="Expected `noise` of shape"):
        model(x, 0.1, xi[:, :3])
    with pytest.raises(ValueError, match="sigma"):
        model(x, -0.1, xi)
    with pytest.raises(ValueError, match="needs `noise`"):
        model(x, 0.1)
