"""Tests of agents.models: the registry names its classes and imports them only when asked."""

from __future__ import annotations

import pytest

from agents.ctrnn import CTRNN, CTRNNConfig
from agents.models import MODEL_KINDS, ModelKinds, build_model, model_kind


def test_a_kind_resolves_to_the_classes_it_names():
    """Looking a kind up imports the named classes; names() gives them without importing."""
    assert MODEL_KINDS["ctrnn"] == (CTRNNConfig, CTRNN)
    assert MODEL_KINDS.names("ctrnn") == ("agents.ctrnn:CTRNNConfig", "agents.ctrnn:CTRNN")
    for kind in MODEL_KINDS:
        config_class, module_class = MODEL_KINDS[kind]
        names = MODEL_KINDS.names(kind)
        assert [f"{c.__module__}:{c.__qualname__}" for c in (config_class, module_class)] == list(
            names
        )


def test_model_kind_names_a_built_model():
    """model_kind finds a module class by its registered name; the registry lists four kinds."""
    model = build_model("noisy_mlp", {"input_size": 2, "output_size": 1, "hidden_size": 3})
    assert model_kind(model) == "noisy_mlp"
    assert sorted(MODEL_KINDS) == [
        "ctrnn",
        "noisy_mlp",
        "ppo_noisy_mlp",
        "recurrent_ppo_ctrnn",
    ]


def test_bad_registrations_and_unknown_kinds_are_refused():
    with pytest.raises(ValueError, match=r"model kind 'x' must name two classes as 'module:Class'"):
        ModelKinds({"x": ("agents.ctrnn.CTRNNConfig", "agents.ctrnn:CTRNN")})
    with pytest.raises(ValueError, match=r"model kind 'y' must name two classes"):
        ModelKinds({"y": ("agents.ctrnn:CTRNN",)})
    with pytest.raises(ValueError, match=r"`kind` must be one of .*Did you mean 'ctrnn'"):
        MODEL_KINDS.names("ctrn")
    with pytest.raises(KeyError):
        MODEL_KINDS["ctrn"]
