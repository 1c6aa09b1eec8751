"""The registry of model kinds, so that a saved run can rebuild its model from JSON."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from agents.ctrnn import CTRNN, CTRNNConfig
from agents.mlp import NoisyMLP, NoisyMLPConfig
from agents.sb3.config import CTRNNModelConfig, MLPModelConfig
from agents.sb3.model import CTRNNPolicyModel, NoisyMLPPolicyModel
from noise_envs._checks import check_choice
from noise_envs.config import JsonConfig

__all__ = ["MODEL_KINDS", "build_model", "model_kind"]

MODEL_KINDS: dict[str, tuple[type[JsonConfig], type[nn.Module]]] = {
    "ctrnn": (CTRNNConfig, CTRNN),
    "noisy_mlp": (NoisyMLPConfig, NoisyMLP),
    # stable-baselines3 policies; building one needs the `rl` extra, importing these does not.
    "recurrent_ppo_ctrnn": (CTRNNModelConfig, CTRNNPolicyModel),
    "ppo_noisy_mlp": (MLPModelConfig, NoisyMLPPolicyModel),
}
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
    for kind, (_, module_class) in MODEL_KINDS.items():
        if type(model) is module_class:
            return kind
    raise ValueError(
        f"{type(model).__name__} is not a registered model kind; registered: "
        f"{[module_class.__name__ for _, module_class in MODEL_KINDS.values()]} "
        "(add it to agents.models.MODEL_KINDS to save it in a run)"
    )
