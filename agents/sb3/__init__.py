"""stable-baselines3 integration (the ``rl`` extra): CTRNN cores, noisy policies, replayed noise.

* :class:`CTRNNRecurrentPolicy` + :class:`NoisyRecurrentPPO`: RecurrentPPO with a CTRNN core
  (:class:`CTRNNCore`, called like ``nn.LSTM``) for the actor and the critic.
* :class:`NoisyActorCriticPolicy` + :class:`NoisyPPO`: PPO with noisy hidden layers
  (:class:`NoisyMlpExtractor`).
* Both updates replay exactly the noise each rollout step used: the noise is a pure function of
  a key (:func:`keyed_normal`), so PPO's probability ratio is 1 before any gradient step.
* :class:`SB3Policy`: a trained policy as a :class:`~agents.policy.Policy`, for the batched noise
  sweep (the slow path through SB3's own vector envs is :mod:`evaluation.sb3_sweep`).
* :func:`train_rl` / :func:`train_rl_run`: training into the run folders of :mod:`agents.runs`
  (``noisepref train --algo ppo|recurrent_ppo``).

Importing this package does not import stable-baselines3; the names that need it are loaded on
first use.
"""

from __future__ import annotations

import importlib
from typing import Any

from agents.sb3.config import (
    RL_ALGOS,
    CTRNNModelConfig,
    CTRNNPolicyConfig,
    MLPModelConfig,
    MLPPolicyConfig,
    RLTrainConfig,
)
from agents.sb3.core import CTRNNCore
from agents.sb3.extractor import NoisyMlpExtractor
from agents.sb3.keyed_noise import keyed_normal
from agents.sb3.model import CTRNNPolicyModel, NoisyMLPPolicyModel, SB3Policy, policy_model

_NEEDS_SB3 = {
    "CTRNNRecurrentPolicy": "agents.sb3.recurrent",
    "NoisyRecurrentPPO": "agents.sb3.recurrent",
    "NoisyActorCriticPolicy": "agents.sb3.feedforward",
    "NoisyPPO": "agents.sb3.feedforward",
    "ReplayRolloutBuffer": "agents.sb3.feedforward",
    "SB3VecEnv": "agents.sb3.vec_env",
    "make_sb3_vec_env": "agents.sb3.vec_env",
    "RLTrainResult": "agents.sb3.training",
    "train_rl": "agents.sb3.training",
    "train_rl_run": "agents.sb3.training",
}
"""Names whose modules import stable-baselines3, by module."""

__all__ = [
    "RL_ALGOS",
    "CTRNNCore",
    "CTRNNModelConfig",
    "CTRNNPolicyConfig",
    "CTRNNPolicyModel",
    "CTRNNRecurrentPolicy",
    "MLPModelConfig",
    "MLPPolicyConfig",
    "NoisyActorCriticPolicy",
    "NoisyMLPPolicyModel",
    "NoisyMlpExtractor",
    "NoisyPPO",
    "NoisyRecurrentPPO",
    "RLTrainConfig",
    "RLTrainResult",
    "ReplayRolloutBuffer",
    "SB3Policy",
    "SB3VecEnv",
    "keyed_normal",
    "make_sb3_vec_env",
    "policy_model",
    "train_rl",
    "train_rl_run",
]


def __getattr__(name: str) -> Any:
    module = _NEEDS_SB3.get(name)
    if module is None:
        raise AttributeError(f"module 'agents.sb3' has no attribute {name!r}")
    try:
        return getattr(importlib.import_module(module), name)
    except ImportError as error:
        raise ImportError(
            f"agents.sb3.{name} needs stable-baselines3 and sb3-contrib: "
            "pip install 'noise-preference[rl]'"
        ) from error


def __dir__() -> list[str]:
    return sorted(__all__)
