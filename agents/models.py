"""The registry of model kinds, so that a saved run can rebuild its model from JSON."""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping
from typing import Any

import torch
from torch import nn

from noise_envs._checks import check_choice
from noise_envs.config import JsonConfig

__all__ = ["MODEL_KINDS", "ModelKinds", "build_model", "model_kind"]


def _is_class_name(name: object) -> bool:
    """Whether ``name`` has the form ``"module:Class"``."""
    if not isinstance(name, str):
        return False
    module, colon, attribute = name.partition(":")
    return bool(module and colon and attribute)


def _resolve(name: str) -> type:
    """The class that ``"module:Class"`` names, importing its module."""
    module, _, attribute = name.partition(":")
    return getattr(importlib.import_module(module), attribute)


class ModelKinds(Mapping[str, tuple[type[JsonConfig], type[nn.Module]]]):
    """Model kinds by name: ``kinds[kind]`` is ``(config class, module class)``.

    Each class is registered by name, ``"module:Class"``, and imported when its kind is first
    looked up, so importing the registry imports no model (in particular not :mod:`agents.sb3`).

    Example:
        >>> kinds = ModelKinds({"ctrnn": ("agents.ctrnn:CTRNNConfig", "agents.ctrnn:CTRNN")})
        >>> kinds["ctrnn"][1].__name__, kinds.names("ctrnn")[1]
        ('CTRNN', 'agents.ctrnn:CTRNN')
    """

    def __init__(self, names: Mapping[str, tuple[str, str]]) -> None:
        for kind, pair in names.items():
            if not isinstance(pair, tuple) or len(pair) != 2 or not all(map(_is_class_name, pair)):
                raise ValueError(
                    f"model kind {kind!r} must name two classes as 'module:Class', got {pair!r}"
                )
        self._names = dict(names)

    def __getitem__(self, kind: str) -> tuple[type[JsonConfig], type[nn.Module]]:
        config_name, module_name = self._names[kind]
        return _resolve(config_name), _resolve(module_name)

    def __iter__(self) -> Iterator[str]:
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)

    def __repr__(self) -> str:
        return f"ModelKinds({list(self._names)})"

    def names(self, kind: str) -> tuple[str, str]:
        """The ``"module:Class"`` names of ``kind``'s config and module classes, unimported."""
        return self._names[check_choice("kind", kind, self._names)]


MODEL_KINDS = ModelKinds(
    {
        "ctrnn": ("agents.ctrnn:CTRNNConfig", "agents.ctrnn:CTRNN"),
        "noisy_mlp": ("agents.mlp:NoisyMLPConfig", "agents.mlp:NoisyMLP"),
        # stable-baselines3 policies; building one needs the `rl` extra, importing these does not.
        "recurrent_ppo_ctrnn": (
            "agents.sb3.config:CTRNNModelConfig",
            "agents.sb3.model:CTRNNPolicyModel",
        ),
        "ppo_noisy_mlp": (
            "agents.sb3.config:MLPModelConfig",
            "agents.sb3.model:NoisyMLPPolicyModel",
        ),
    }
)
"""Each model kind's config class and module class; a module is built as ``Module(config, generator)``."""


def build_model(
    kind: str,
    config: JsonConfig | dict[str, Any],
    generator: torch.Generator | None = None,
) -> nn.Module:
    """Build a model of ``kind`` from its config or the config's dict (as read from JSON).

    Args:
        kind: one of :data:`MODEL_KINDS`.
        config: the kind's config, or a dict that its ``from_dict`` accepts.
        generator: the random source of the initial weights (the model's default if None).

    Raises:
        ValueError: for an unknown kind, or a config of another kind or with bad values.

    Example:
        >>> model = build_model("ctrnn", {"input_size": 1, "output_size": 1, "hidden_size": 4})
        >>> model_kind(model), model.config.hidden_size
        ('ctrnn', 4)
    """
    check_choice("kind", kind, MODEL_KINDS)
    config_class, module_class = MODEL_KINDS[kind]
    if isinstance(config, dict):
        config = config_class.from_dict(config)
    if not isinstance(config, config_class):
        raise ValueError(
            f"a {kind!r} model needs a {config_class.__name__}, got {type(config).__name__}"
        )
    return module_class(config, generator=generator)


def model_kind(model: nn.Module) -> str:
    """The :data:`MODEL_KINDS` name of ``model``'s class; ValueError if it is not registered."""
    name = f"{type(model).__module__}:{type(model).__qualname__}"
    for kind in MODEL_KINDS:
        if MODEL_KINDS.names(kind)[1] == name:
            return kind
    registered = [MODEL_KINDS.names(kind)[1].partition(":")[2] for kind in MODEL_KINDS]
    raise ValueError(
        f"{type(model).__name__} is not a registered model kind; registered: {registered} "
        "(add it to agents.models.MODEL_KINDS to save it in a run)"
    )
