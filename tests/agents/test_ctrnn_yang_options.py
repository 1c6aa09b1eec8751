"""The CTRNN options Yang et al. (2019)'s network needs: sigmoid read-out, identity / orthogonal W."""

from __future__ import annotations

import math

import pytest
import torch

from agents.ctrnn import CTRNN, CTRNNConfig
from agents.ensemble import CTRNNEnsemble
from agents.runs import load_run
from agents.supervised import TrainConfig, train_run


def config(**options) -> CTRNNConfig:
    return CTRNNConfig(input_size=2, output_size=1, hidden_size=2, **options)


def set_weights(model: CTRNN, W, U, b, W_out, b_out) -> None:
    with torch.no_grad():
        for name, value in zip(
            ("W", "U", "b", "W_out", "b_out"), (W, U, b, W_out, b_out), strict=True
        ):
            getattr(model, name).copy_(torch.tensor(value))


def test_defaults_are_todays_behaviour():
    """Linear read-out and W ~ N(0, 0.9^2 / N) from the generator's first draw, as before."""
    c = CTRNNConfig(input_size=3, output_size=2, hidden_size=5)
    assert (c.readout, c.recurrent_init, c.recurrent_scale) == ("linear", "default", 0.5)
    model = CTRNN(c, torch.Generator().manual_seed(7))
    expected = torch.randn(5, 5, generator=torch.Generator().manual_seed(7)) * 0.9 / math.sqrt(5)
    torch.testing.assert_close(model.W.detach(), expected)


def test_sigmoid_readout_by_hand():
    """One step from h = 0, relu, gamma = 0.2: h1 = 0.2 relu(U u + b); y = 1 / (1 + e^-(W_out h1 + b_out))."""
    model = CTRNN(config(readout="sigmoid", dt=20.0, tau=100.0))
    set_weights(
        model, [[0.5, 0.0], [0.0, 0.5]], [[1.0, 2.0], [-1.0, 0.5]], [0.1, 0.2], [[1.0, -2.0]], [0.5]
    )
    y, h = model.step(torch.tensor([[0.3, 0.4]]), model.initial_state(1))
    # U u + b = (0.3 + 0.8 + 0.1, -0.3 + 0.2 + 0.2) = (1.2, 0.1); h1 = 0.2 * (1.2, 0.1)
    torch.testing.assert_close(h, torch.tensor([[0.24, 0.02]]))
    z = 0.24 - 2 * 0.02 + 0.5
    assert y.item() == pytest.approx(1 / (1 + math.exp(-z)), rel=1e-6)
    linear = CTRNN(config(dt=20.0, tau=100.0))
    set_weights(
        linear,
        [[0.5, 0.0], [0.0, 0.5]],
        [[1.0, 2.0], [-1.0, 0.5]],
        [0.1, 0.2],
        [[1.0, -2.0]],
        [0.5],
    )
    assert linear.step(torch.tensor([[0.3, 0.4]]), linear.initial_state(1))[
        0
    ].item() == pytest.approx(z)


def test_sigmoid_readout_in_the_sequence_path_and_the_ensemble():
    """forward (the trainer's path), step and the ensemble all apply the sigmoid."""
    c = CTRNNConfig(input_size=3, output_size=4, hidden_size=6, readout="sigmoid")
    model = CTRNN(c, torch.Generator().manual_seed(1))
    inputs = torch.randn(5, 2, 3, generator=torch.Generator().manual_seed(2))
    y, hidden = model(inputs)
    torch.testing.assert_close(y, torch.sigmoid(hidden @ model.W_out.T + model.b_out))
    ensemble = CTRNNEnsemble.from_members([model, model])
    y_ensemble, _ = ensemble(inputs.repeat(1, 2, 1))
    torch.testing.assert_close(y_ensemble[:, :2], y)


def test_identity_init_is_scale_times_identity_and_one_step_by_hand():
    """Yang's reference: W = 0.5 I; softplus: h1 = (1 - g) h0 + g softplus(0.5 h0 + U u + b)."""
    model = CTRNN(
        config(recurrent_init="identity", activation="softplus", learn_initial_state=True),
        torch.Generator().manual_seed(3),
    )
    torch.testing.assert_close(model.W.detach(), 0.5 * torch.eye(2))
    h0 = torch.tensor([[0.4, -0.2]])
    u = torch.tensor([[1.0, 0.0]])
    _, h1 = model.step(u, h0)
    gamma = model.config.gamma
    drive = 0.5 * h0 + u @ model.U.detach().T + model.b.detach()
    torch.testing.assert_close(h1, (1 - gamma) * h0 + gamma * torch.log1p(torch.exp(drive)))
    assert (
        CTRNN(config(recurrent_init="identity", recurrent_scale=1.0)).W.detach().equal(torch.eye(2))
    )


def test_orthogonal_init_is_scaled_orthogonal_and_seeded():
    c = CTRNNConfig(input_size=1, output_size=1, hidden_size=16, recurrent_init="orthogonal")
    W = CTRNN(c, torch.Generator().manual_seed(0)).W.detach()
    torch.testing.assert_close(W @ W.T, 0.25 * torch.eye(16), atol=1e-5, rtol=0)
    again = CTRNN(c, torch.Generator().manual_seed(0)).W.detach()
    other = CTRNN(c, torch.Generator().manual_seed(1)).W.detach()
    assert torch.equal(W, again) and not torch.equal(W, other)


def test_inits_share_the_input_and_output_weights():
    """The identity and orthogonal W are drawn after U and W_out, which stay the default's."""
    g = lambda: torch.Generator().manual_seed(5)  # noqa: E731
    default = CTRNN(config(), g())
    for init in ("identity", "orthogonal"):
        model = CTRNN(config(recurrent_init=init), g())
        assert torch.equal(model.U, default.U) and torch.equal(model.W_out, default.W_out)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (
            {"readout": "softmax"},
            r"`readout` must be one of \['linear', 'sigmoid'\], got 'softmax'",
        ),
        ({"readout": "sigmod"}, r"Did you mean 'sigmoid'\?"),
        (
            {"recurrent_init": "diag"},
            r"`recurrent_init` must be one of \['default', 'identity', 'orthogonal'\]",
        ),
        ({"recurrent_scale": 0.0}, r"`recurrent_scale` must be > 0, got 0.0"),
        ({"recurrent_scale": -1.0}, r"`recurrent_scale` must be > 0"),
    ],
)
def test_bad_options(options, message):
    with pytest.raises(ValueError, match=message):
        config(**options)


def test_json_and_run_folder_round_trip(tmp_path):
    """The options survive to_json / from_json and a run folder: the loaded model is the same."""
    c = CTRNNConfig(
        input_size=1,
        output_size=1,
        hidden_size=4,
        activation="softplus",
        readout="sigmoid",
        recurrent_init="orthogonal",
        recurrent_scale=0.7,
    )
    assert CTRNNConfig.from_json(c.to_json()) == c
    run = train_run(
        tmp_path / "run",
        "NoisyRegulator-v0",
        c,
        TrainConfig(iterations=2, batch_size=4),
        task_kwargs={"steps": 5, "settle_steps": 2},
        progress=False,
    )
    loaded = load_run(tmp_path / "run")
    assert loaded.model.config == c == run.model.config
    x = torch.rand(6, 3, 1, generator=torch.Generator().manual_seed(0))
    y = loaded.model(x)[0]
    assert torch.equal(y, run.model(x)[0]) and bool(((y > 0) & (y < 1)).all())


def test_yang2019_is_their_reference_network_with_changes_applied():
    """train_all's network: 256 softplus units, dt 20 ms, tau 100 ms, sqrt(2 / gamma) noise,
    sigmoid read-out, W = 0.5 I (gamma 0.2: the noise gain is sqrt(10))."""
    reference = CTRNNConfig.yang2019(85, 33)
    assert (reference.input_size, reference.output_size, reference.hidden_size) == (85, 33, 256)
    assert (reference.activation, reference.readout, reference.recurrent_init) == (
        "softplus",
        "sigmoid",
        "identity",
    )
    assert (reference.dt, reference.tau, reference.recurrent_scale) == (20.0, 100.0, 0.5)
    assert reference.noise_gain == pytest.approx(10**0.5)
    changed = CTRNNConfig.yang2019(85, 33, hidden_size=64, placement="out")
    assert (changed.hidden_size, changed.placement, changed.activation) == (64, "out", "softplus")
