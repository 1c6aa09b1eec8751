"""Task configs: JSON round trips, unknown keys rejected by name, callables never written."""

import dataclasses
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from noise_envs import FunctionApproxConfig, FunctionApproxTask, RegulatorConfig, RegulatorTask

CONFIGS = [
    FunctionApproxConfig(),
    FunctionApproxConfig(
        input_dim=3, steps=7, response_steps=7, function="tanh_step", obs_noise=0.25
    ),
    RegulatorConfig(),
    RegulatorConfig(
        setpoint_range=(-0.5, 0.75), setpoint=0.3, steps=9, settle_steps=0, obs_noise=0.1
    ),
]


@pytest.mark.parametrize("config", CONFIGS, ids=repr)
def test_json_round_trip(config):
    """from_json(to_json(cfg)) == cfg, tuples included."""
    assert type(config).from_json(config.to_json()) == config


def test_to_dict_writes_tuples_as_lists():
    """JSON has no tuples: setpoint_range is written as a list and read back as a tuple."""
    config = RegulatorConfig(setpoint_range=(0.1, 0.2))
    assert json.loads(config.to_json())["setpoint_range"] == [0.1, 0.2]
    assert RegulatorConfig.from_json(config.to_json()).setpoint_range == (0.1, 0.2)


@settings(max_examples=25, deadline=None)
@given(
    low=st.floats(-1.0, 1.0),
    width=st.floats(0.0, 1.0),
    steps=st.integers(1, 500),
    obs_noise=st.floats(0.0, 10.0),
)
def test_regulator_config_round_trips_for_any_valid_values(low, width, steps, obs_noise):
    """Every valid RegulatorConfig survives the JSON round trip exactly."""
    high = min(1.0, low + width)
    config = RegulatorConfig(
        setpoint_range=(low, high), steps=steps, settle_steps=steps - 1, obs_noise=obs_noise
    )
    assert RegulatorConfig.from_json(config.to_json()) == config


def test_unknown_key_is_rejected_with_a_suggestion():
    """A misspelt option is named, the allowed ones listed and the closest suggested."""
    with pytest.raises(
        ValueError, match=r"unknown RegulatorConfig option 'obs_nosie'.*'obs_noise'\?"
    ):
        RegulatorConfig.from_json('{"obs_nosie": 0.1}')


def test_non_object_json_is_rejected():
    with pytest.raises(ValueError, match="FunctionApproxConfig expects a JSON object, got list"):
        FunctionApproxConfig.from_json("[1, 2]")


def test_callable_function_refuses_to_serialise():
    """A user callable cannot be written; the message points to the named choices."""
    config = FunctionApproxConfig(function=lambda x: x)
    with pytest.raises(ValueError, match=r"`function` is a callable .* cannot be written to JSON"):
        config.to_json()


def test_values_read_back_are_validated():
    """from_json builds through the constructor, so bad values are refused."""
    with pytest.raises(ValueError, match="`steps` must be an integer >= 1, got 0"):
        FunctionApproxConfig.from_json('{"steps": 0}')


def test_replace_validates_again():
    with pytest.raises(ValueError, match="`settle_steps` must be an integer in"):
        RegulatorConfig().replace(steps=10)
    assert RegulatorConfig().replace(obs_noise=0.2).obs_noise == 0.2


def test_configs_are_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        FunctionApproxConfig().steps = 3


def test_task_from_config_equals_task_from_options():
    """A task built from a config and one built from the same keyword options agree."""
    config = FunctionApproxConfig(steps=8, response_steps=3)
    assert FunctionApproxTask(config).config == FunctionApproxTask(steps=8, response_steps=3).config


def test_task_refuses_config_and_options_together():
    with pytest.raises(ValueError, match="either a config or keyword options"):
        RegulatorTask(RegulatorConfig(), steps=5)


def test_task_refuses_another_tasks_config():
    with pytest.raises(
        ValueError, match="`config` must be a RegulatorConfig, got FunctionApproxConfig"
    ):
        RegulatorTask(FunctionApproxConfig())
