"""Tests of agents.ctrnn: the CTRNN step against a numpy re-derivation, noise, validation, config."""

from __future__ import annotations

import dataclasses
import functools
import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from agents.ctrnn import CTRNN, CTRNNConfig, ctrnn_step
from noise_envs.random import RandomSource

ACTIVATION_NAMES = ("relu", "softplus", "tanh", "sigmoid")
PLACEMENT_NAMES = ("in", "out")

NUMPY_ACTIVATIONS = {
    "relu": lambda x: np.maximum(x, 0.0),
    "softplus": lambda x: np.log1p(np.exp(x)),
    "tanh": np.tanh,
    "sigmoid": lambda x: 1.0 / (1.0 + np.exp(-x)),
}

BATCH, INPUTS, HIDDEN, OUTPUTS = 4, 3, 6, 2


def as_numpy(tensor: torch.Tensor) -> np.ndarray:
    return tensor.detach().double().numpy()


def assert_same(actual: torch.Tensor, expected: torch.Tensor) -> None:
    np.testing.assert_array_equal(as_numpy(actual), as_numpy(expected))


def assert_near(actual: torch.Tensor, expected: torch.Tensor) -> None:
    np.testing.assert_allclose(as_numpy(actual), as_numpy(expected), rtol=1e-5, atol=1e-6)


def make_model(
    activation: str = "relu",
    placement: str = "in",
    *,
    noise_scaling: str = "per_step",
    dt: float = 10.0,
    tau: float = 100.0,
    seed: int = 0,
) -> CTRNN:
    """A small CTRNN whose biases are nonzero, so that b and b_out are exercised too."""
    config = CTRNNConfig(
        input_size=INPUTS,
        output_size=OUTPUTS,
        hidden_size=HIDDEN,
        activation=activation,
        placement=placement,
        noise_scaling=noise_scaling,
        dt=dt,
        tau=tau,
    )
    model = CTRNN(config, generator=torch.Generator().manual_seed(seed))
    g = torch.Generator().manual_seed(seed + 1000)
    with torch.no_grad():
        model.b.copy_(0.5 * torch.randn(HIDDEN, generator=g))
        model.b_out.copy_(0.5 * torch.randn(OUTPUTS, generator=g))
    return model


def numpy_params(model: CTRNN) -> dict[str, np.ndarray]:
    return {
        name: getattr(model, name).detach().double().numpy()
        for name in ("W", "U", "b", "W_out", "b_out")
    }


def reference_step(
    model: CTRNN,
    h: torch.Tensor,
    u: torch.Tensor,
    sigma: float | np.ndarray,
    xi: torch.Tensor | None,
    *,
    activation: str,
    placement: str,
    gamma: float,
) -> tuple[np.ndarray, np.ndarray]:
    """The CTRNN update and read-out written out in float64 numpy; sigma is already scaled."""
    p = numpy_params(model)
    f = NUMPY_ACTIVATIONS[activation]
    h = h.double().numpy()
    u = u.double().numpy()
    pre = h @ p["W"].T + u @ p["U"].T + p["b"]
    noise = 0.0 if xi is None else np.reshape(sigma, (-1, 1)) * xi.double().numpy()
    if placement == "in":
        new_h = (1 - gamma) * h + gamma * f(pre + noise)
    else:
        new_h = (1 - gamma) * h + gamma * (f(pre) + noise)
    return new_h, new_h @ p["W_out"].T + p["b_out"]


def random_inputs(seed: int = 7, batch: int = BATCH):
    g = torch.Generator().manual_seed(seed)
    u = torch.randn(batch, INPUTS, generator=g)
    h = torch.randn(batch, HIDDEN, generator=g)
    xi = torch.randn(batch, HIDDEN, generator=g)
    return u, h, xi


def assert_matches_reference(actual: torch.Tensor, expected: np.ndarray) -> None:
    np.testing.assert_allclose(actual.detach().double().numpy(), expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("activation", ACTIVATION_NAMES)
@pytest.mark.parametrize("placement", PLACEMENT_NAMES)
def test_step_equals_hand_written_update(activation, placement):
    """step() equals (1-g) h + g f(Wh+Uu+b+s xi) ("in") or (1-g) h + g (f(.) + s xi) ("out")."""
    model = make_model(activation, placement)
    u, h, xi = random_inputs()
    y, new_h = model.step(u, h, sigma=0.3, noise=xi)
    want_h, want_y = reference_step(
        model, h, u, 0.3, xi, activation=activation, placement=placement, gamma=0.1
    )
    assert_matches_reference(new_h, want_h)
    assert_matches_reference(y, want_y)


@pytest.mark.parametrize("activation", ACTIVATION_NAMES)
def test_placements_differ_under_noise_and_agree_without(activation):
    """With the same xi, "in" and "out" differ for sigma > 0 but coincide at sigma = 0."""
    u, h, xi = random_inputs()
    inside = make_model(activation, "in")
    outside = make_model(activation, "out")
    noisy_in, noisy_out = inside.step(u, h, 0.5, xi)[1], outside.step(u, h, 0.5, xi)[1]
    assert not torch.allclose(noisy_in, noisy_out)
    assert_near(inside.step(u, h, 0.0)[1], outside.step(u, h, 0.0)[1])


@pytest.mark.parametrize("placement", PLACEMENT_NAMES)
def test_sqrt_2_over_gamma_scaling_multiplies_sigma(placement):
    """With noise_scaling="sqrt_2_over_gamma" the effective level is sqrt(2 / gamma) * sigma."""
    model = make_model("softplus", placement, noise_scaling="sqrt_2_over_gamma", dt=20.0)
    u, h, xi = random_inputs()
    _, new_h = model.step(u, h, sigma=0.1, noise=xi)
    effective = math.sqrt(2.0 / 0.2) * 0.1
    want_h, _ = reference_step(
        model, h, u, effective, xi, activation="softplus", placement=placement, gamma=0.2
    )
    assert_matches_reference(new_h, want_h)
    per_step = make_model("softplus", placement, dt=20.0)
    assert_near(per_step.step(u, h, effective, xi)[1], new_h)


def test_noise_gain_property():
    """config.noise_gain is 1 per step and sqrt(2 tau / dt) for Yang et al.'s scaling."""
    assert CTRNNConfig(input_size=1, output_size=1).noise_gain == 1.0
    yang = CTRNNConfig(
        input_size=1, output_size=1, dt=20.0, tau=100.0, noise_scaling="sqrt_2_over_gamma"
    )
    assert yang.noise_gain == pytest.approx(math.sqrt(10.0))


def test_ctrnn_step_function_equals_hand_written_update():
    """The free function ctrnn_step takes the scaled noise sigma * xi and applies the same update."""
    model = make_model("tanh", "in")
    u, h, xi = random_inputs()
    got = ctrnn_step(
        h,
        u,
        model.W,
        model.U,
        model.b,
        activation=torch.tanh,
        placement="in",
        gamma=0.1,
        noise=0.2 * xi,
    )
    want_h, _ = reference_step(model, h, u, 0.2, xi, activation="tanh", placement="in", gamma=0.1)
    assert_matches_reference(got, want_h)


def test_readout_equals_affine_map():
    """readout(h) is W_out h + b_out for any leading shape."""
    model = make_model()
    h = torch.randn(5, BATCH, HIDDEN, generator=torch.Generator().manual_seed(3))
    p = numpy_params(model)
    assert_matches_reference(model.readout(h), h.double().numpy() @ p["W_out"].T + p["b_out"])


@pytest.mark.parametrize("placement", PLACEMENT_NAMES)
def test_forward_with_noise_tensor_equals_repeated_step(placement):
    """forward over T steps with xi [T, B, N] equals T calls of step, starting from h0."""
    model = make_model("softplus", placement)
    g = torch.Generator().manual_seed(11)
    steps = 7
    inputs = torch.randn(steps, BATCH, INPUTS, generator=g)
    xi = torch.randn(steps, BATCH, HIDDEN, generator=g)
    h0 = torch.randn(BATCH, HIDDEN, generator=g)
    outputs, states = model(inputs, sigma=0.4, noise=xi, h0=h0)
    assert outputs.shape == (steps, BATCH, OUTPUTS)
    assert states.shape == (steps, BATCH, HIDDEN)
    h = h0.double().numpy()
    for t in range(steps):
        y, new_h = model.step(inputs[t], torch.from_numpy(h).float(), 0.4, xi[t])
        want_h, want_y = reference_step(
            model,
            torch.from_numpy(h),
            inputs[t],
            0.4,
            xi[t],
            activation="softplus",
            placement=placement,
            gamma=0.1,
        )
        assert_matches_reference(states[t], want_h)
        assert_matches_reference(outputs[t], want_y)
        assert_near(states[t], new_h)
        assert_near(outputs[t], y)
        h = want_h


def test_forward_with_generator_equals_repeated_step_with_same_generator():
    """A seeded generator gives the same trajectory through forward as through step by step."""
    model = make_model("relu", "in")
    inputs = torch.randn(6, BATCH, INPUTS, generator=torch.Generator().manual_seed(5))
    outputs, states = model(inputs, sigma=0.3, noise=torch.Generator().manual_seed(42))
    g = torch.Generator().manual_seed(42)
    h = model.initial_state(BATCH)
    for t in range(inputs.shape[0]):
        y, h = model.step(inputs[t], h, 0.3, g)
        assert_near(states[t], h)
        assert_near(outputs[t], y)


def test_initial_state_is_zero_and_forward_starts_from_it():
    """Without h0, forward starts at the zero state: its first state is one step from zeros."""
    model = make_model("tanh", "out")
    assert torch.equal(model.initial_state(3), torch.zeros(3, HIDDEN))
    u, _, xi = random_inputs()
    _, states = model(u[None], sigma=0.2, noise=xi[None])
    want_h, _ = reference_step(
        model, torch.zeros(BATCH, HIDDEN), u, 0.2, xi, activation="tanh", placement="out", gamma=0.1
    )
    assert_matches_reference(states[0], want_h)


@pytest.mark.parametrize("placement", PLACEMENT_NAMES)
def test_per_row_sigma_gives_each_row_its_own_level(placement):
    """A [B] sigma equals, row by row, the scalar-sigma step with that row's sigma and the same xi."""
    model = make_model("relu", placement)
    u, h, xi = random_inputs()
    sigma = torch.tensor([0.0, 0.1, 0.5, 2.0])
    _, new_h = model.step(u, h, sigma, xi)
    for row, level in enumerate(sigma.tolist()):
        assert_near(new_h[row], model.step(u, h, level, xi)[1][row])
    assert_near(new_h[0], model.step(u, h, 0.0)[1][0])
    want_h, _ = reference_step(
        model, h, u, sigma.numpy(), xi, activation="relu", placement=placement, gamma=0.1
    )
    assert_matches_reference(new_h, want_h)


def test_per_row_sigma_with_generator_matches_scalar_rows():
    """Per-row sigma drawing from a generator uses the same xi as a scalar sigma from that state."""
    model = make_model("softplus", "in")
    u, h, _ = random_inputs()
    sigma = torch.tensor([0.0, 0.2, 0.2, 0.7])
    _, mixed = model.step(u, h, sigma, torch.Generator().manual_seed(9))
    for row, level in enumerate(sigma.tolist()):
        _, single = model.step(u, h, level, torch.Generator().manual_seed(9))
        assert_near(mixed[row], single[row])


@pytest.mark.parametrize("placement", PLACEMENT_NAMES)
@pytest.mark.parametrize("noise_scaling", ["per_step", "sqrt_2_over_gamma"])
def test_generator_noise_is_standard_normal_times_effective_sigma(placement, noise_scaling):
    """Drawn noise, recovered from a step in relu's linear region, is N(0, s_eff^2)."""
    model = make_model("relu", placement, noise_scaling=noise_scaling, dt=20.0)
    with torch.no_grad():
        model.b.fill_(100.0)  # relu is the identity near 100, so "in" and "out" both add noise
    u = torch.zeros(4096, INPUTS)
    h = torch.zeros(4096, HIDDEN)
    _, clean = model.step(u, h, 0.0)
    _, noisy = model.step(u, h, 0.25, torch.Generator().manual_seed(0))
    recovered = ((noisy - clean) / 0.2).flatten()  # gamma = 0.2
    gain = 1.0 if noise_scaling == "per_step" else math.sqrt(10.0)
    assert recovered.mean().item() == pytest.approx(0.0, abs=0.01 * gain)
    assert recovered.std().item() == pytest.approx(0.25 * gain, rel=0.02)


def test_same_seed_same_output_different_seed_different_output():
    """Identical generators or RandomSources reproduce a run exactly; other seeds do not."""
    model = make_model("relu", "in")
    inputs = torch.randn(5, BATCH, INPUTS, generator=torch.Generator().manual_seed(1))

    def run(noise):
        return model(inputs, sigma=0.3, noise=noise)[0]

    assert_same(run(torch.Generator().manual_seed(3)), run(torch.Generator().manual_seed(3)))
    assert_same(run(RandomSource.from_seed(3)), run(RandomSource.from_seed(3)))
    assert_same(run(3), run(torch.Generator().manual_seed(3)))
    assert not torch.allclose(run(3), run(4))


def test_successive_steps_draw_fresh_noise():
    """Two steps from the same state with one generator see different samples."""
    model = make_model("tanh", "in")
    u, h, _ = random_inputs()
    g = torch.Generator().manual_seed(0)
    first, second = model.step(u, h, 0.5, g)[1], model.step(u, h, 0.5, g)[1]
    assert not torch.allclose(first, second)


def test_zero_sigma_is_deterministic_and_needs_no_noise_source():
    """sigma = 0 needs no source, and equals the noise-free update whatever source is passed."""
    model = make_model("softplus", "in")
    u, h, _ = random_inputs()
    clean = model.step(u, h, 0.0)[1]
    assert_same(model.step(u, h, 0.0)[1], clean)
    assert_same(model.step(u, h)[1], clean)
    assert_same(model.step(u, h, 0.0, torch.Generator().manual_seed(1))[1], clean)
    want_h, _ = reference_step(
        model, h, u, 0.0, None, activation="softplus", placement="in", gamma=0.1
    )
    assert_matches_reference(clean, want_h)


def test_zero_sigma_tensor_needs_no_noise_source():
    """A [B] sigma of zeros is noise-free too, so it needs no noise source either."""
    model = make_model("relu", "in")
    u, h, _ = random_inputs()
    _, new_h = model.step(u, h, torch.zeros(BATCH))
    assert_near(new_h, model.step(u, h, 0.0)[1])


@pytest.mark.parametrize("sigma", [0.1, torch.full((BATCH,), 0.1)])
def test_positive_sigma_without_noise_source_says_how_to_pass_one(sigma):
    """sigma > 0 with no source raises and names the accepted kinds of `noise`."""
    model = make_model()
    u, h, _ = random_inputs()
    with pytest.raises(ValueError, match=r"needs `noise`: a torch\.Generator, a RandomSource"):
        model.step(u, h, sigma)


def test_noise_does_not_depend_on_train_or_eval_mode():
    """The same generator state gives the same noisy output in train() and eval()."""
    model = make_model("relu", "in")
    inputs = torch.randn(4, BATCH, INPUTS, generator=torch.Generator().manual_seed(2))
    train_out = model.train()(inputs, sigma=0.5, noise=torch.Generator().manual_seed(8))[0]
    eval_out = model.eval()(inputs, sigma=0.5, noise=torch.Generator().manual_seed(8))[0]
    clean = model(inputs, sigma=0.0)[0]
    assert_same(train_out, eval_out)
    assert not torch.allclose(eval_out, clean)


@pytest.mark.parametrize(
    ("sigma", "match"),
    [
        (-0.1, r"`sigma` must be >= 0, got -0\.1"),
        (float("nan"), r"`sigma` must be finite, got nan"),
        (float("inf"), r"`sigma` must be finite, got inf"),
        (True, r"`sigma` must be a real number"),
        (torch.tensor([0.1, -0.2, 0.3, 0.0]), r"`sigma` must be >= 0"),
        (torch.tensor([0.1, float("nan"), 0.3, 0.0]), r"`sigma` must be finite"),
        (torch.tensor([0.1, float("inf"), 0.3, 0.0]), r"`sigma` must be finite"),
        (
            torch.full((BATCH + 1,), 0.1),
            rf"`sigma` must be a float or a tensor of shape \[{BATCH}\]",
        ),
        (torch.full((BATCH, 1), 0.1), r"`sigma` must be a float or a tensor of shape .*got shape"),
        (torch.tensor(-1.0), r"`sigma` must be >= 0"),
    ],
)
def test_bad_sigma_raises(sigma, match):
    """Negative, NaN, infinite or mis-shaped sigma is rejected, as a float or as a tensor."""
    model = make_model()
    u, h, xi = random_inputs()
    with pytest.raises(ValueError, match=match):
        model.step(u, h, sigma, xi)
    with pytest.raises(ValueError, match=match):
        model.step(u, h, sigma, torch.Generator().manual_seed(0))


def test_bad_shapes_raise():
    """Wrong observation size, state shape, noise shape or input rank are named in the error."""
    model = make_model()
    u, h, _ = random_inputs()
    with pytest.raises(ValueError, match=rf"Expected `obs` of shape \[{BATCH}, {INPUTS}\], got"):
        model.step(torch.zeros(BATCH, INPUTS + 1), h, 0.0)
    with pytest.raises(ValueError, match=rf"Expected `state` of shape \[{BATCH}, {HIDDEN}\], got"):
        model.step(u, torch.zeros(BATCH, HIDDEN + 1), 0.0)
    with pytest.raises(ValueError, match=r"Expected `noise` of shape"):
        model.step(u, h, 0.1, torch.zeros(BATCH, HIDDEN + 1))
    with pytest.raises(ValueError, match=r"Expected `noise` of shape"):
        model.step(u, h, 0.0, torch.zeros(BATCH + 1, HIDDEN))
    with pytest.raises(ValueError, match=rf"Expected `inputs` of shape \[T, B, {INPUTS}\]"):
        model(u, sigma=0.0)
    with pytest.raises(ValueError, match=rf"Expected `inputs` of shape \[T, B, {INPUTS}\]"):
        model(torch.zeros(5, BATCH, INPUTS + 1), sigma=0.0)
    with pytest.raises(ValueError, match=rf"Expected `h0` of shape \[{BATCH}, {HIDDEN}\]"):
        model(torch.zeros(5, BATCH, INPUTS), h0=torch.zeros(BATCH, HIDDEN + 1))
    with pytest.raises(ValueError, match=r"Expected `noise` of shape \[5, 4, 6\]"):
        model(torch.zeros(5, BATCH, INPUTS), sigma=0.1, noise=torch.zeros(5, BATCH, HIDDEN + 1))
    with pytest.raises(ValueError, match=r"`batch_size` must be an integer >= 1, got 0"):
        model.initial_state(0)


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"hidden_size": 0}, r"`hidden_size` must be an integer >= 1, got 0"),
        ({"hidden_size": -3}, r"`hidden_size` must be an integer >= 1, got -3"),
        ({"hidden_size": 2.5}, r"`hidden_size` must be an integer >= 1, got 2\.5"),
        ({"input_size": 0}, r"`input_size` must be an integer >= 1, got 0"),
        ({"output_size": -1}, r"`output_size` must be an integer >= 1, got -1"),
        ({"dt": 0.0}, r"`dt` must be > 0, got 0\.0"),
        ({"dt": -5.0}, r"`dt` must be > 0, got -5\.0"),
        ({"tau": 0.0, "dt": 1.0}, r"`tau` must be > 0, got 0\.0"),
        ({"dt": float("nan")}, r"`dt` must be finite"),
        (
            {"dt": 200.0, "tau": 100.0},
            r"`dt` must be <= `tau` \(gamma <= 1\), got dt=200\.0, tau=100\.0",
        ),
        ({"recurrent_gain": -0.5}, r"`recurrent_gain` must be > 0, got -0\.5"),
    ],
)
def test_bad_config_numbers_raise(options, match):
    """Non-positive sizes, dt, tau and dt > tau raise, naming the option and the value."""
    with pytest.raises(ValueError, match=match):
        CTRNNConfig(**{"input_size": 2, "output_size": 1, **options})


@pytest.mark.parametrize(
    ("option", "value", "choices", "suggestion"),
    [
        ("activation", "tahn", ACTIVATION_NAMES, "tanh"),
        ("activation", "relu6", ACTIVATION_NAMES, "relu"),
        ("activation", "soft_plus", ACTIVATION_NAMES, "softplus"),
        ("placement", "ot", PLACEMENT_NAMES, "out"),
        ("placement", "everywhere", PLACEMENT_NAMES, None),
        ("noise_scaling", "per-step", ("per_step", "sqrt_2_over_gamma"), "per_step"),
        ("noise_scaling", "yang", ("per_step", "sqrt_2_over_gamma"), None),
    ],
)
def test_unknown_choice_lists_choices_and_suggests_closest(option, value, choices, suggestion):
    """An unknown activation, placement or noise scaling lists the choices and the closest one."""
    with pytest.raises(ValueError, match=rf"`{option}` must be one of .*got '{value}'") as info:
        CTRNNConfig(input_size=1, output_size=1, **{option: value})
    message = str(info.value)
    for choice in choices:
        assert repr(choice) in message
    if suggestion is None:
        assert "Did you mean" not in message
    else:
        assert f"Did you mean {suggestion!r}?" in message


SIGMA_MODEL = make_model("tanh", "in")
SIGMA_U, SIGMA_H, SIGMA_XI = random_inputs()


@settings(max_examples=60, deadline=None)
@given(st.floats(max_value=-1e-12, allow_nan=False, allow_infinity=False))
def test_any_negative_sigma_raises(sigma):
    """Every negative finite sigma is rejected."""
    with pytest.raises(ValueError, match=r"`sigma` must be >= 0"):
        SIGMA_MODEL.step(SIGMA_U, SIGMA_H, sigma, SIGMA_XI)


@settings(max_examples=60, deadline=None)
@given(st.floats(min_value=0.0, max_value=1e6, allow_nan=False))
def test_any_nonnegative_sigma_passes(sigma):
    """Every non-negative finite sigma is accepted and gives finite states in (-1, 1) for tanh."""
    _, new_h = SIGMA_MODEL.step(SIGMA_U, SIGMA_H.tanh(), sigma, SIGMA_XI)
    assert torch.isfinite(new_h).all()
    assert (new_h.abs() <= 1.0).all()


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.floats(min_value=-10.0, max_value=10.0, allow_nan=False),
        min_size=BATCH,
        max_size=BATCH,
    )
)
def test_per_row_sigma_validation_property(levels):
    """A [B] sigma passes exactly when all its entries are >= 0."""
    sigma = torch.tensor(levels)
    if (sigma < 0).any():
        with pytest.raises(ValueError, match=r"`sigma` must be >= 0"):
            SIGMA_MODEL.step(SIGMA_U, SIGMA_H, sigma, SIGMA_XI)
    else:
        _, new_h = SIGMA_MODEL.step(SIGMA_U, SIGMA_H, sigma, SIGMA_XI)
        assert torch.isfinite(new_h).all()


@pytest.mark.parametrize(
    "config",
    [
        CTRNNConfig(input_size=1, output_size=1),
        CTRNNConfig(
            input_size=85,
            output_size=33,
            hidden_size=256,
            activation="softplus",
            placement="out",
            dt=20.0,
            tau=100.0,
            noise_scaling="sqrt_2_over_gamma",
            recurrent_gain=1.5,
            learn_initial_state=True,
        ),
        CTRNNConfig(input_size=3, output_size=2, activation="sigmoid", dt=0.1, tau=0.1),
    ],
)
def test_config_json_round_trip(config):
    """from_json(to_json(cfg)) == cfg, and the JSON stores dt and tau but not gamma."""
    assert CTRNNConfig.from_json(config.to_json()) == config
    assert "gamma" not in config.to_dict()
    assert {"dt", "tau", "noise_scaling", "placement"} <= set(config.to_dict())


@settings(max_examples=60, deadline=None)
@given(
    tau=st.floats(min_value=1e-3, max_value=1e4),
    fraction=st.floats(min_value=1e-4, max_value=1.0),
)
def test_gamma_is_dt_over_tau_and_round_trips(tau, fraction):
    """Any 0 < dt <= tau is accepted, gamma = dt / tau, and the config survives JSON."""
    dt = min(tau * fraction, tau)
    config = CTRNNConfig(input_size=1, output_size=1, dt=dt, tau=tau)
    assert config.gamma == pytest.approx(dt / tau)
    assert 0.0 < config.gamma <= 1.0
    assert CTRNNConfig.from_json(config.to_json()) == config


def test_gamma_is_read_only_and_not_an_option():
    """gamma is a derived property: it cannot be set, passed or loaded, and follows dt and tau."""
    config = CTRNNConfig(input_size=1, output_size=1, dt=10.0, tau=50.0)
    assert isinstance(CTRNNConfig.gamma, property)
    assert CTRNNConfig.gamma.fset is None
    # Python 3.11's slotted frozen dataclasses raise TypeError here, later versions AttributeError.
    with pytest.raises((AttributeError, TypeError)):
        config.gamma = 0.5
    assert config.gamma == pytest.approx(0.2)
    assert config.replace(dt=25.0).gamma == pytest.approx(0.5)
    with pytest.raises(TypeError):
        CTRNNConfig(input_size=1, output_size=1, gamma=0.1)
    with pytest.raises(ValueError, match=r"unknown CTRNNConfig option 'gamma'"):
        CTRNNConfig.from_dict({"input_size": 1, "output_size": 1, "gamma": 0.1})


def test_config_fields_cannot_be_mutated():
    """The config is frozen: a model's options cannot drift after construction."""
    config = CTRNNConfig(input_size=1, output_size=1)
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.dt = 1.0


def test_repr_shows_sizes_and_noise_options():
    """The repr names the sizes, activation, placement and noise scaling."""
    text = repr(make_model("softplus", "out", noise_scaling="sqrt_2_over_gamma"))
    for part in (f"in={INPUTS}", f"hidden={HIDDEN}", f"out={OUTPUTS}", "softplus", "out"):
        assert part in text
    assert "sqrt_2_over_gamma" in text


def expected_relu(a: float, s: float) -> float:
    """E[relu(a + s xi)] = a Phi(a / s) + s phi(a / s) for xi ~ N(0, 1)."""
    z = a / s
    cdf = 0.5 * (1.0 + math.erf(z / math.sqrt(2.0)))
    pdf = math.exp(-0.5 * z * z) / math.sqrt(2.0 * math.pi)
    return a * cdf + s * pdf


@functools.cache
def stationary_mean(placement: str, a: float, s: float) -> float:
    """Time- and batch-averaged h of a 1-unit relu CTRNN with W = U = 0, b = a, gamma = 0.05."""
    config = CTRNNConfig(
        input_size=1, output_size=1, hidden_size=1, placement=placement, dt=5.0, tau=100.0
    )
    model = CTRNN(config)
    with torch.no_grad():
        model.W.zero_()
        model.U.zero_()
        model.b.fill_(a)
        _, states = model(torch.zeros(600, 512, 1), sigma=s, noise=torch.Generator().manual_seed(0))
    return states[200:].mean().item()


@pytest.mark.parametrize(("a", "s"), [(0.0, 0.5), (0.2, 0.5), (-0.2, 0.5), (0.3, 0.2)])
def test_noise_in_stationary_mean_matches_gaussian_expectation(a, s):
    """Noise inside relu shifts the stationary mean to E[relu(a + s xi)] (closed form)."""
    assert expected_relu(0.0, 0.5) == pytest.approx(0.19947, abs=1e-5)
    assert stationary_mean("in", a, s) == pytest.approx(expected_relu(a, s), rel=0.02)


@pytest.mark.parametrize(("a", "want"), [(0.2, 0.2), (0.5, 0.5)])
def test_noise_out_stationary_mean_is_unbiased(a, want):
    """Noise outside relu leaves the stationary mean at relu(a)."""
    assert stationary_mean("out", a, 0.5) == pytest.approx(want, rel=0.02)


@pytest.mark.parametrize("a", [0.0, -0.2])
def test_noise_out_stationary_mean_at_or_below_the_kink_is_zero(a):
    """With relu(a) = 0, noise outside gives a stationary mean of 0 (noise inside does not)."""
    assert stationary_mean("out", a, 0.5) == pytest.approx(0.0, abs=0.005)
    assert stationary_mean("in", a, 0.5) > 0.05


@settings(max_examples=40, deadline=None)
@given(
    row=st.integers(0, BATCH - 1),
    column=st.integers(0, INPUTS - 1),
    bad=st.sampled_from([math.nan, math.inf, -math.inf]),
    activation=st.sampled_from(ACTIVATION_NAMES),
)
def test_any_non_finite_observation_entry_is_refused(row, column, bad, activation):
    """Property: one NaN or infinite entry anywhere in obs raises, whatever f (tanh saturates inf)."""
    model = make_model(activation)
    obs = torch.zeros(BATCH, INPUTS)
    obs[row, column] = bad
    with pytest.raises(ValueError, match=r"`obs` must be finite, got [01] NaN and [01] infinite"):
        model.step(obs, model.initial_state(BATCH))
    inputs = torch.zeros(3, BATCH, INPUTS)
    inputs[1, row, column] = bad
    with pytest.raises(
        ValueError, match=r"`inputs` must be finite, got [01] NaN and [01] infinite"
    ):
        model(inputs)


def test_validation_leaves_the_trajectory_unchanged():
    """validate=True and validate=False give bit-identical outputs on finite inputs (same noise)."""
    model = make_model("softplus", "out")
    inputs = torch.randn(6, BATCH, INPUTS, generator=torch.Generator().manual_seed(1))
    checked = model(inputs, 0.3, noise=5)
    unchecked = model(inputs, 0.3, noise=5, validate=False)
    for a, b in zip(checked, unchecked, strict=True):
        assert_same(a, b)


def test_a_diverged_model_propagates_nan_instead_of_blaming_its_inputs():
    """NaN weights are the trainer's and the sweep's to catch: step does not call obs bad."""
    model = make_model()
    with torch.no_grad():
        model.W.fill_(math.nan)
    action, state = model.step(torch.zeros(BATCH, INPUTS), model.initial_state(BATCH))
    assert torch.isnan(action).all()
    assert torch.isnan(state).all()
