"""Hostile inputs: each bad option, tensor, action or argument gives one clear error naming it.

A table of cases across the environments (every registered id), the models, rollouts and sweeps.
Each case either raises ``ValueError`` whose one-line message names the argument (and, for sizes,
the estimate), or checks the correct behaviour against an independent truth. Sizes are small and
nothing runs unbounded: huge sizes must be refused before anything is allocated.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable

import gymnasium
import numpy as np
import pytest
import torch

import noise_envs  # noqa: F401  (registers the ids)
from agents.ctrnn import CTRNN, CTRNNConfig
from agents.mlp import NoisyMLP, NoisyMLPConfig
from agents.rollout import rollout
from evaluation.sweep import sweep_noise
from noise_envs import TASKS, make_task

NAN, INF = math.nan, math.inf

SMALL_OPTIONS = {
    "NoisyFunctionApprox-v0": {"steps": 2, "response_steps": 2},
    "NoisyRegulator-v0": {"steps": 2, "settle_steps": 0},
    "NoisyMaze-v0": {"size": 3},
    "NoisyMultitask-v0": {},
    "NoisyPathIntegration-v0": {"steps": 2},
}
"""Options that make each registered task tiny, with the first step scored where it can be."""

LENGTH_OPTION = {
    "NoisyFunctionApprox-v0": "steps",
    "NoisyRegulator-v0": "steps",
    "NoisyMaze-v0": "max_steps",
    "NoisyMultitask-v0": None,
    "NoisyPathIntegration-v0": "steps",
}
"""The option that sets each task's episode length (None: the trials set it)."""

ENV_IDS = sorted(TASKS)


def test_every_registered_id_has_small_options():
    """The table covers every registered environment (a new task needs a row here)."""
    assert sorted(SMALL_OPTIONS) == ENV_IDS == sorted(LENGTH_OPTION)


@dataclasses.dataclass(frozen=True)
class Case:
    """One hostile call and the one-line error it must raise."""

    name: str
    call: Callable[[], object]
    match: str
    error: type[Exception] = ValueError


def small_task(env_id: str, **options):
    return make_task(env_id, **{**SMALL_OPTIONS[env_id], **options})


def step_with(env_id: str, action: object, **options):
    task = small_task(env_id, **options)
    state, _ = task.reset(2, generator=0)
    return task.step(state, action)


def full_action(env_id: str, value: float, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    return torch.full((2, small_task(env_id).action_size), value, dtype=dtype)


def env_cases(env_id: str) -> list[Case]:
    """The environment cases every registered id must pass."""
    cases = _option_and_action_cases(env_id)
    length = LENGTH_OPTION[env_id]
    if length is not None:
        cases += _length_cases(length, env_id)
    return cases


def _length_cases(length: str, env_id: str) -> list[Case]:
    return [
        Case(
            "length zero",
            lambda: small_task(env_id, **{length: 0}),
            rf"`{length}` must be an integer >= 1, got 0",
        ),
        Case(
            "length float",
            lambda: small_task(env_id, **{length: 2.5}),
            rf"`{length}` must be an integer >= 1, got 2\.5",
        ),
        Case(
            "length huge",
            lambda: small_task(env_id, **{length: 10**12}),
            rf"`{length}` = 1000000000000 would need about .* bytes",
        ),
    ]


def _option_and_action_cases(env_id: str) -> list[Case]:
    return [
        Case("unknown option", lambda: gymnasium.make(env_id, bogus=1), r"option 'bogus'"),
        Case(
            "obs_noise wrong type",
            lambda: small_task(env_id, obs_noise="0.1"),
            r"`obs_noise` must be a real number, got '0\.1'",
        ),
        Case(
            "obs_noise negative",
            lambda: small_task(env_id, obs_noise=-0.5),
            r"`obs_noise` must be >= 0, got -0\.5",
        ),
        Case(
            "obs_noise NaN",
            lambda: small_task(env_id, obs_noise=NAN),
            r"`obs_noise` must be finite, got nan",
        ),
        Case(
            "obs_noise inf",
            lambda: small_task(env_id, obs_noise=INF),
            r"`obs_noise` must be finite, got inf",
        ),
        Case(
            "obs_noise huge",
            lambda: small_task(env_id, obs_noise=1e300),
            r"`obs_noise` must be <= 1e\+06, got 1e\+300",
        ),
        Case(
            "action wrong shape",
            lambda: step_with(env_id, torch.zeros(2, 7)),
            r"Expected `action` of shape \[2, \d+\], got \(2, 7\)",
        ),
        Case(
            "action NaN",
            lambda: step_with(env_id, full_action(env_id, NAN)),
            r"`action` must be finite .*got NaN or infinite entries",
        ),
        Case(
            "action inf",
            lambda: step_with(env_id, full_action(env_id, -INF)),
            r"`action` must be finite .*got NaN or infinite entries",
        ),
        Case(
            "action huge finite",
            lambda: step_with(env_id, full_action(env_id, 3e38)),
            r"`action` must be finite and at most 1e\+06 in magnitude, got max \|action\| = 3e\+38",
        ),
        Case(
            "action float64 overflowing float32",
            lambda: step_with(env_id, full_action(env_id, 1e300, torch.float64)),
            r"`action` must be finite .*got NaN or infinite entries",
        ),
        Case(
            "action bool",
            lambda: step_with(env_id, full_action(env_id, 1, torch.bool)),
            r"`action` must hold real numbers, got dtype torch\.bool",
        ),
        Case(
            "action list overflowing float32",
            lambda: step_with(env_id, [[1e300] * small_task(env_id).action_size] * 2),
            r"`action` must be finite .*got NaN or infinite entries",
        ),
        Case(
            "action text",
            lambda: step_with(env_id, "left"),
            r"`action` must be a tensor or an array of numbers, got 'left'",
        ),
        Case(
            "reset batch_size zero",
            lambda: small_task(env_id).reset(0, generator=0),
            r"`batch_size` must be an integer >= 1, got 0",
        ),
        Case(
            "reset batch_size huge",
            lambda: small_task(env_id).reset(10**13, generator=0),
            r"`batch_size` = 10000000000000 would need about .* bytes",
        ),
        Case(
            "env reset options",
            lambda: gymnasium.make(env_id, **SMALL_OPTIONS[env_id]).reset(options={"level": 3}),
            r"`options` must be empty or None",
        ),
    ]


def fa_task(function: Callable[[torch.Tensor], torch.Tensor], **options):
    options = {"steps": 2, "response_steps": 2, **options}
    return make_task("NoisyFunctionApprox-v0", function=function, **options)


def _nan_near_015(x: torch.Tensor) -> torch.Tensor:
    return torch.where((x - 0.15).abs() < 0.05, NAN, x)


def _raises(x: torch.Tensor) -> torch.Tensor:
    raise ZeroDivisionError("boom")


TASK_CASES = [
    Case(
        "function returns NaN",
        lambda: fa_task(lambda x: x * NAN),
        r"`function` must return finite values, got NaN or infinite ones",
    ),
    Case(
        "function NaN for negative x (sqrt)",
        lambda: fa_task(torch.sqrt),
        r"`function` must return finite values, got NaN or infinite ones",
    ),
    Case(
        "function NaN only on some drawn x",
        lambda: fa_task(_nan_near_015).reset(256, generator=0),
        r"`function` must return finite values, got NaN or infinite ones",
    ),
    Case(
        "function drops the batch dimension",
        lambda: fa_task(lambda x: torch.zeros(3)),
        r"`function` must map x \[B, d\] to a target \[B, k\]: for x of shape \(5, 1\) it "
        r"returned shape \(3,\)",
    ),
    Case(
        "function returns a vector per row",
        lambda: fa_task(lambda x: x.sum(-1)),
        r"`function` must map x \[B, d\] to a target \[B, k\]: for x of shape \(5, 1\) it "
        r"returned shape \(5,\)",
    ),
    Case(
        "function returns numpy",
        lambda: fa_task(lambda x: np.zeros((5, 1))),
        r"`function` must return a torch\.Tensor, got ndarray",
    ),
    Case(
        "function returns integers",
        lambda: fa_task(lambda x: (x > 0).long()),
        r"`function` must return floating-point values, got torch\.int64",
    ),
    Case(
        "function raises",
        lambda: fa_task(_raises),
        r"`function` failed on x of shape \(5, 1\): ZeroDivisionError: boom",
    ),
    Case(
        "input_dim huge",
        lambda: make_task("NoisyFunctionApprox-v0", input_dim=10**10, steps=1, response_steps=1),
        r"`input_dim` = 10000000000 would need about .* bytes",
    ),
    Case(
        "setpoint_range not a pair",
        lambda: make_task("NoisyRegulator-v0", setpoint_range=5),
        r"`setpoint_range` must be \(low, high\), got 5",
    ),
    Case(
        "setpoint_range None",
        lambda: make_task("NoisyRegulator-v0", setpoint_range=None),
        r"`setpoint_range` must be \(low, high\), got None",
    ),
    Case(
        "setpoint NaN",
        lambda: make_task("NoisyRegulator-v0", setpoint=NAN),
        r"`setpoint` must be finite, got nan",
    ),
    Case(
        "speed_scale overflowing float32",
        lambda: make_task("NoisyPathIntegration-v0", speed_scale=1e300),
        r"`speed_scale` / \(`arena_size` / 2\) = .* half-sides per second .* must be <= 1e\+06",
    ),
    Case(
        "arena_size tiny",
        lambda: make_task("NoisyPathIntegration-v0", arena_size=1e-300),
        r"`speed_scale` / \(`arena_size` / 2\) = .* half-sides per second .* must be <= 1e\+06",
    ),
    Case(
        "turn_std huge",
        lambda: make_task("NoisyPathIntegration-v0", turn_std=1e300),
        r"`turn_std` \* `time_step` = .* rad per step must be <= 1e\+06",
    ),
    Case(
        "time_step huge",
        lambda: make_task("NoisyPathIntegration-v0", time_step=1e300),
        r"`turn_std` \* `time_step` = .* rad per step must be <= 1e\+06",
    ),
    Case(
        "place_cell_width huge",
        lambda: make_task("NoisyPathIntegration-v0", target="place_cells", place_cell_width=1e300),
        r"`place_cell_width` / \(`arena_size` / 2\) = .* must be <= 1e\+06",
    ),
    Case(
        "place_cell_seed too large",
        lambda: make_task("NoisyPathIntegration-v0", place_cell_seed=2**70),
        r"`place_cell_seed` must be an integer in \[0, 2\*\*63\), got 1180591620717411303424",
    ),
    Case(
        "num_place_cells huge",
        lambda: make_task(
            "NoisyPathIntegration-v0", target="place_cells", num_place_cells=10**11, steps=1
        ),
        r"`num_place_cells` = 100000000000 would need about .* bytes",
    ),
    Case(
        "reset generator float",
        lambda: make_task("NoisyRegulator-v0").reset(2, generator=1.5),
        r"`generator` must be",
    ),
    Case(
        "reset generator bool",
        lambda: make_task("NoisyRegulator-v0").reset(2, generator=True),
        r"`generator` must be",
    ),
]


def ctrnn(**options) -> CTRNN:
    return CTRNN(CTRNNConfig(**{"input_size": 2, "output_size": 1, "hidden_size": 4, **options}))


def mlp() -> NoisyMLP:
    return NoisyMLP(NoisyMLPConfig(input_size=2, output_size=1, hidden_size=4, num_layers=2))


def ctrnn_step(obs=None, state=None, sigma=0.0, noise=None):
    model = ctrnn()
    obs = torch.zeros(3, 2) if obs is None else obs
    state = model.initial_state(3) if state is None else state
    return model.step(obs, state, sigma, noise)


def ctrnn_forward(inputs=None, sigma=0.0, noise=None, h0=None):
    inputs = torch.zeros(5, 3, 2) if inputs is None else inputs
    return ctrnn()(inputs, sigma, noise, h0)


def nan_at(shape: tuple[int, ...], value: float = NAN) -> torch.Tensor:
    tensor = torch.zeros(shape)
    tensor.view(-1)[-1] = value
    return tensor


GENERATOR = torch.Generator().manual_seed(0)

MODEL_CASES = [
    Case(
        "hidden_size wrong type",
        lambda: ctrnn(hidden_size="8"),
        r"`hidden_size` must be an integer >= 1, got '8'",
    ),
    Case(
        "hidden_size huge",
        lambda: CTRNNConfig(input_size=1, output_size=1, hidden_size=10**6),
        r"`hidden_size` = 1000000 would need about .* bytes",
    ),
    Case(
        "input_size huge",
        lambda: CTRNNConfig(input_size=10**12, output_size=1),
        r"`input_size` = 1000000000000 would need about .* bytes",
    ),
    Case(
        "activation typo",
        lambda: ctrnn(activation="Relu"),
        r"`activation` must be one of .* got 'Relu'\. Did you mean 'relu'\?",
    ),
    Case("dt NaN", lambda: ctrnn(dt=NAN), r"`dt` must be finite, got nan"),
    Case(
        "recurrent_gain huge",
        lambda: ctrnn(recurrent_gain=1e300),
        r"`recurrent_gain` must be <= 1000, got 1e\+300",
    ),
    Case(
        "learn_initial_state not a bool",
        lambda: ctrnn(learn_initial_state="yes"),
        r"`learn_initial_state` must be True or False, got 'yes'",
    ),
    Case(
        "unknown config key",
        lambda: CTRNNConfig.from_dict({"input_size": 1, "output_size": 1, "hiden_size": 3}),
        r"unknown CTRNNConfig option 'hiden_size'.*Did you mean 'hidden_size'\?",
    ),
    Case(
        "mlp hidden_size huge",
        lambda: NoisyMLPConfig(input_size=1, output_size=1, hidden_size=10**6),
        r"`hidden_size` = 1000000 would need about .* bytes",
    ),
    Case(
        "step obs NaN",
        lambda: ctrnn_step(obs=nan_at((3, 2))),
        r"`obs` must be finite, got 1 NaN and 0 infinite entries",
    ),
    Case(
        "step obs inf",
        lambda: ctrnn_step(obs=nan_at((3, 2), INF)),
        r"`obs` must be finite, got 0 NaN and 1 infinite entries",
    ),
    Case(
        "step obs float64",
        lambda: ctrnn_step(obs=torch.zeros(3, 2, dtype=torch.float64)),
        r"`obs` must have the model's dtype torch\.float32, got torch\.float64",
    ),
    Case(
        "step obs numpy",
        lambda: ctrnn_step(obs=np.zeros((3, 2), dtype=np.float32)),
        r"`obs` must be a torch\.Tensor, got ndarray",
    ),
    Case(
        "step state NaN",
        lambda: ctrnn_step(state=nan_at((3, 4))),
        r"`state` must be finite, got 1 NaN and 0 infinite entries",
    ),
    Case(
        "step noise NaN",
        lambda: ctrnn_step(sigma=0.1, noise=nan_at((3, 4))),
        r"`noise` must be finite, got 1 NaN and 0 infinite entries",
    ),
    Case(
        "step noise float64",
        lambda: ctrnn_step(sigma=0.1, noise=torch.zeros(3, 4, dtype=torch.float64)),
        r"`noise` must have the model's dtype torch\.float32, got torch\.float64",
    ),
    Case("step sigma NaN", lambda: ctrnn_step(sigma=NAN), r"`sigma` must be finite, got nan"),
    Case("step sigma inf", lambda: ctrnn_step(sigma=INF), r"`sigma` must be finite, got inf"),
    Case("step sigma negative", lambda: ctrnn_step(sigma=-0.1), r"`sigma` must be >= 0, got -0\.1"),
    Case(
        "step sigma huge",
        lambda: ctrnn_step(sigma=1e38, noise=GENERATOR),
        r"`sigma` must be <= 1e\+06, got 1e\+38",
    ),
    Case(
        "step sigma row huge",
        lambda: ctrnn_step(sigma=torch.tensor([0.0, 1e38, 0.1]), noise=GENERATOR),
        r"`sigma` must be <= 1e\+06, got max 1e\+38",
    ),
    Case(
        "step sigma row NaN",
        lambda: ctrnn_step(sigma=torch.tensor([0.0, NAN, 0.1]), noise=GENERATOR),
        r"`sigma` must be finite, got \[0\.0, nan, 0\.1",
    ),
    Case(
        "step sigma text",
        lambda: ctrnn_step(sigma="0.1"),
        r"`sigma` must be a real number, got '0\.1'",
    ),
    Case(
        "forward inputs NaN",
        lambda: ctrnn_forward(inputs=nan_at((5, 3, 2))),
        r"`inputs` must be finite, got 1 NaN and 0 infinite entries",
    ),
    Case(
        "forward inputs inf",
        lambda: ctrnn_forward(inputs=nan_at((5, 3, 2), -INF)),
        r"`inputs` must be finite, got 0 NaN and 1 infinite entries",
    ),
    Case(
        "forward inputs float64",
        lambda: ctrnn_forward(inputs=torch.zeros(5, 3, 2, dtype=torch.float64)),
        r"`inputs` must have the model's dtype torch\.float32, got torch\.float64",
    ),
    Case(
        "forward noise NaN",
        lambda: ctrnn_forward(sigma=0.1, noise=nan_at((5, 3, 4))),
        r"`noise` must be finite, got 1 NaN and 0 infinite entries",
    ),
    Case(
        "forward h0 NaN",
        lambda: ctrnn_forward(h0=nan_at((3, 4))),
        r"`h0` must be finite, got 1 NaN and 0 infinite entries",
    ),
    Case(
        "forward no steps",
        lambda: ctrnn_forward(inputs=torch.zeros(0, 3, 2)),
        r"Expected `inputs` of shape \[T, B, 2\] with T >= 1, got \(0, 3, 2\)",
    ),
    Case(
        "mlp obs NaN",
        lambda: mlp()(nan_at((3, 2))),
        r"`obs` must be finite, got 1 NaN and 0 infinite entries",
    ),
    Case(
        "mlp noise inf",
        lambda: mlp()(torch.zeros(3, 2), 0.1, nan_at((3, 8), INF)),
        r"`noise` must be finite, got 0 NaN and 1 infinite entries",
    ),
    Case(
        "mlp obs float64",
        lambda: mlp()(torch.zeros(3, 2, dtype=torch.float64)),
        r"`obs` must have the model's dtype torch\.float32, got torch\.float64",
    ),
]


def regulator():
    return make_task("NoisyRegulator-v0", steps=3, settle_steps=0)


def one_input_ctrnn() -> CTRNN:
    return CTRNN(CTRNNConfig(input_size=1, output_size=1, hidden_size=4))


def broken_ctrnn() -> CTRNN:
    """A CTRNN whose read-out has diverged to NaN (what a failed training run leaves)."""
    model = one_input_ctrnn()
    with torch.no_grad():
        model.W_out.fill_(NAN)
    return model


ROLLOUT_AND_SWEEP_CASES = [
    Case(
        "rollout batch_size zero",
        lambda: rollout(one_input_ctrnn(), regulator(), 0),
        r"`batch_size` must be an integer >= 1, got 0",
    ),
    Case(
        "rollout sigma without a noise source",
        lambda: rollout(one_input_ctrnn(), regulator(), 2, sigma=0.1),
        r"a noise level sigma > 0 needs `noise`",
    ),
    Case(
        "rollout model of the wrong input size",
        lambda: rollout(ctrnn(), regulator(), 2),
        r"Expected `obs` of shape \[2, 2\], got \(2, 1\)",
    ),
    Case(
        "sweep negative level",
        lambda: sweep_noise(one_input_ctrnn(), regulator(), [-1.0, 0.5], episodes=2),
        r"`levels` must be >= 0, got \[-1\.0, 0\.5\]",
    ),
    Case(
        "sweep NaN level",
        lambda: sweep_noise(one_input_ctrnn(), regulator(), [NAN], episodes=2),
        r"`levels` must be finite, got \[nan\]",
    ),
    Case(
        "sweep no levels",
        lambda: sweep_noise(one_input_ctrnn(), regulator(), [], episodes=2),
        r"`levels` must be a non-empty 1-D sequence",
    ),
    Case(
        "sweep huge level",
        lambda: sweep_noise(one_input_ctrnn(), regulator(), [1e30], episodes=2),
        r"`levels` must be <= 1e\+06 \(the largest noise level\), got \[1e\+30\]",
    ),
    Case(
        "sweep zero episodes",
        lambda: sweep_noise(one_input_ctrnn(), regulator(), [0.1], episodes=0),
        r"`episodes` must be an integer >= 1, got 0",
    ),
    Case(
        "sweep fractional episodes",
        lambda: sweep_noise(one_input_ctrnn(), regulator(), [0.1], episodes=1.5),
        r"`episodes` must be an integer >= 1, got 1\.5",
    ),
    Case(
        "sweep metric name typo",
        lambda: sweep_noise(one_input_ctrnn(), regulator(), [0.0], episodes=2).values("mes"),
        r"`metric` must be one of \['mse'\], got 'mes'\. Did you mean 'mse'\?",
    ),
    Case(
        "sweep of a diverged model",
        lambda: sweep_noise(broken_ctrnn(), regulator(), [0.0, 0.1], episodes=2),
        r"the model's outputs are not finite: metric 'mse' is NaN or infinite at levels \[0, 0\.1\]",
    ),
]

REPORTED = {}
"""Cases failing in files this suite's author does not own: reported to their owners."""


def _param(case: Case, case_id: str):
    reason = REPORTED.get(case_id)
    marks = [pytest.mark.xfail(reason=f"reported: {reason}", strict=False)] if reason else []
    return pytest.param(case, id=case_id, marks=marks)


ALL_CASES = [
    _param(case, f"{env_id}: {case.name}") for env_id in ENV_IDS for case in env_cases(env_id)
] + [_param(case, case.name) for case in TASK_CASES + MODEL_CASES + ROLLOUT_AND_SWEEP_CASES]


@pytest.mark.parametrize("case", ALL_CASES)
def test_hostile_input_raises_one_clear_line(case: Case):
    """The call raises the expected error; its message is one line naming the argument."""
    with pytest.raises(case.error, match=case.match) as caught:
        case.call()
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_largest_allowed_action_keeps_the_reward_finite(env_id):
    """An action at the magnitude limit is accepted and its reward is finite (bounded, not inf)."""
    _, _, reward, _ = step_with(env_id, full_action(env_id, 1e6))
    assert torch.isfinite(reward).all()


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_integer_action_is_scored_as_floats(env_id):
    """An integer action gives the reward of the same action as floats."""
    task = small_task(env_id)
    state, _ = task.reset(2, generator=0)
    integers = torch.ones(2, task.action_size, dtype=torch.long)
    _, _, from_integers, _ = task.step(state, integers)
    _, _, from_floats, _ = task.step(state, integers.float())
    assert from_integers.dtype == torch.float32
    torch.testing.assert_close(from_integers, from_floats)


def test_callable_function_with_finite_values_works():
    """A well-behaved callable target gives the teacher its values (f(x) = x / 2)."""
    task = fa_task(lambda x: x / 2, response_steps=1)
    state, obs = task.reset(4, generator=0)
    target, _ = task.teacher(state)
    torch.testing.assert_close(target, obs / 2)


def test_sigma_at_the_limit_is_accepted():
    """The largest allowed noise level runs and gives a finite output (relu, 4 units)."""
    action, _ = ctrnn_step(sigma=1e6, noise=GENERATOR)
    assert torch.isfinite(action).all()


def test_validate_false_skips_the_model_checks():
    """Trusted inner loops may skip the check; the NaN then propagates, as the flag says."""
    model = ctrnn()
    action, _ = model.step(nan_at((3, 2)), model.initial_state(3), validate=False)
    assert torch.isnan(action).any()
    outputs, _ = model(nan_at((5, 3, 2)), validate=False)
    assert torch.isnan(outputs).any()
