"""Tests of agents.sb3.core: the CTRNN called like nn.LSTM, with its noise position in c."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from agents.ctrnn import CTRNN
from agents.sb3.config import CTRNNPolicyConfig
from agents.sb3.core import CTRNNCore
from agents.sb3.keyed_noise import keyed_normal

FEATURES, HIDDEN, COLUMNS, STEPS = 3, 5, 4, 6


def assert_close(actual, expected):
    """torch.testing.assert_close's float32 tolerances, without its slow first call."""
    np.testing.assert_allclose(
        actual.detach().numpy(), expected.detach().numpy(), rtol=1.3e-6, atol=1e-5
    )


def make_core(sigma=0.5, **options):
    config = CTRNNPolicyConfig(hidden_size=HIDDEN, sigma=sigma, dt=20.0, seed=3, **options)
    core = CTRNNCore(FEATURES, config, stream=0)
    with torch.no_grad():  # a nonzero bias, so that it is exercised too
        core.b.copy_(torch.linspace(-0.5, 0.5, HIDDEN))
    return core


def reference_ctrnn(core):
    """A supervised CTRNN holding the core's weights (its read-out is unused here)."""
    model = CTRNN(core.config.ctrnn_config(FEATURES))
    with torch.no_grad():
        for name in ("W", "U", "b"):
            getattr(model, name).copy_(getattr(core, name))
    return model


def inputs(seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(STEPS, COLUMNS, FEATURES, generator=g)
    h = torch.randn(1, COLUMNS, HIDDEN, generator=g)
    c = torch.zeros(1, COLUMNS, HIDDEN)
    c[0, :, 0] = torch.tensor([0.0, 7.0, 100.0, -3.0])
    return x, h, c


@pytest.mark.parametrize("placement", ["in", "out"])
def test_forward_is_the_ctrnn_with_keyed_noise(placement):
    """Step t of column n is CTRNN.hidden_step with xi = keyed_normal((seed, stream, rollout,
    c[0, n, 0] + t), H) at the core's sigma: the LSTM signature wraps the supervised maths."""
    core = make_core(placement=placement)
    core.rollout = 9
    model = reference_ctrnn(core)
    x, h, c = inputs()
    y, (h_last, c_last) = core(x, (h, c))
    hidden = h[0]
    for t in range(STEPS):
        xi = keyed_normal((3, 0, 9, c[0, :, 0].long() + t), HIDDEN)
        hidden = model.hidden_step(x[t], hidden, 0.5, xi)
        assert_close(y[t], hidden)
    assert_close(h_last[0], hidden)
    assert c_last[0, :, 0].tolist() == [6.0, 13.0, 106.0, 3.0]
    assert torch.equal(c_last[..., 1:], c[..., 1:])


def test_rerunning_from_a_stored_state_replays_the_noise():
    """Running steps 0..5, or 0..2 then 3..5 from the stored state, gives the same outputs."""
    core = make_core()
    x, h, c = inputs()
    whole, _ = core(x, (h, c))
    first, state = core(x[:3], (h, c))
    second, _ = core(x[3:], state)
    assert torch.equal(torch.cat((first, second)), whole)


def test_fresh_noise_is_not_replayed():
    """With replay_noise=False the same call from the same state gives other outputs."""
    core = make_core(replay_noise=False)
    x, h, c = inputs()
    assert not torch.equal(core(x, (h, c))[0], core(x, (h, c))[0])


def test_noise_key_parts():
    """The rollout index and the stream are part of the key; sigma 0 makes the core exact."""
    x, h, c = inputs()
    core = make_core()
    base = core(x, (h, c))[0]
    core.rollout = 1
    assert not torch.allclose(core(x, (h, c))[0], base)
    critic = CTRNNCore(FEATURES, core.config, stream=1)
    critic.load_state_dict(core.state_dict())
    assert not torch.allclose(critic(x, (h, c))[0], base)
    quiet = make_core(sigma=0.0)
    want = reference_ctrnn(quiet)(x, sigma=0.0, h0=h[0])[1]
    assert_close(quiet(x, (h, c))[0], want)


def test_episode_starts_reset_h_but_not_the_position():
    """A start at step t restarts h from 0 before it; the noise position keeps counting, so the
    steps from t on equal a fresh run from h = 0 at position c + t."""
    core = make_core()
    x, h, c = inputs()
    starts = torch.zeros(STEPS, COLUMNS)
    starts[2, 1] = 1.0
    y, _ = core(x, (h, c), starts)
    fresh_c = c.clone()
    fresh_c[0, :, 0] += 2
    fresh, _ = core(x[2:], (torch.zeros_like(h), fresh_c))
    assert_close(y[2:, 1], fresh[:, 1])
    unchanged, _ = core(x, (h, c))
    assert_close(y[:, 0], unchanged[:, 0])
    assert not torch.allclose(y[2:, 1], unchanged[2:, 1])


@pytest.mark.parametrize("scaling", ["per_step", "sqrt_2_over_gamma"])
def test_step_takes_sigma_and_samples_as_arguments(scaling):
    """step() is the Policy path: the given xi at the given per-row sigma, scaled by the config's
    convention (sqrt(2 / gamma) = sqrt(10) at dt 20, tau 100), as CTRNN.hidden_step does."""
    core = make_core(noise_scaling=scaling)
    model = reference_ctrnn(core)
    x, h, _ = inputs()
    xi = torch.randn(COLUMNS, HIDDEN, generator=torch.Generator().manual_seed(1))
    sigma = torch.tensor([0.0, 0.1, 0.2, 0.3])
    got = core.step(x[0], h[0], sigma, xi)
    assert_close(got, model.hidden_step(x[0], h[0], sigma, xi))
    gain = math.sqrt(10.0) if scaling == "sqrt_2_over_gamma" else 1.0
    assert core.noise_gain == pytest.approx(gain)


def test_initial_weights_are_a_ctrnns():
    """The core starts from the weights a CTRNN of the same config draws, seeded by (seed, stream):
    the same for the same pair, different for another stream."""
    config = CTRNNPolicyConfig(hidden_size=200, seed=1)
    a, b = CTRNNCore(2, config, stream=0), CTRNNCore(2, config, stream=0)
    other = CTRNNCore(2, config, stream=1)
    assert torch.equal(a.W, b.W)
    assert not torch.equal(a.W, other.W)
    assert a.W.std().item() == pytest.approx(0.9 / math.sqrt(200), rel=0.05)
    assert torch.equal(a.b, torch.zeros(200))
    assert (a.input_size, a.hidden_size, a.num_layers) == (2, 200, 1)


def test_gradients_flow_through_the_sequence():
    """The core is trainable: a loss on y has gradients for W, U and b."""
    core = make_core()
    x, h, c = inputs()
    core(x, (h, c))[0].square().sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in (core.W, core.U, core.b))


def test_bad_shapes():
    core = make_core()
    x, h, c = inputs()
    with pytest.raises(ValueError, match=r"Expected `x` of shape \[\*, \*, 3\]"):
        core(x[..., :2], (h, c))
    with pytest.raises(ValueError, match=r"Expected `h` of shape \[1, 4, 5\]"):
        core(x, (h[:, :2], c))
    with pytest.raises(ValueError, match=r"Expected `features` of shape \[4, 3\]"):
        core.step(x[0, :, :2], h[0])
    with pytest.raises(ValueError, match="sigma"):
        CTRNNCore(FEATURES, core.config, stream=0, sigma=-1.0)


def test_recurrent_init_options_reach_the_core():
    """identity: W = scale I exactly; orthogonal: W W^T = scale^2 I; bad values name the option."""
    identity = CTRNNCore(3, CTRNNPolicyConfig(hidden_size=5, recurrent_init="identity"), stream=0)
    assert torch.equal(identity.W.detach(), 0.5 * torch.eye(5))
    config = CTRNNPolicyConfig(hidden_size=6, recurrent_init="orthogonal", recurrent_scale=0.8)
    W = CTRNNCore(3, config, stream=0).W.detach()
    assert torch.allclose(W @ W.T, 0.64 * torch.eye(6), atol=1e-5)
    assert CTRNNPolicyConfig.from_dict(config.to_dict()) == config
    with pytest.raises(ValueError, match=r"`recurrent_init` must be one of .*got 'eye'"):
        CTRNNPolicyConfig(recurrent_init="eye")
    with pytest.raises(ValueError, match=r"`recurrent_scale` must be > 0, got 0\.0"):
        CTRNNPolicyConfig(recurrent_scale=0.0)
