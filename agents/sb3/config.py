"""Configs of the stable-baselines3 integration: policies, the models saved in runs, training.

Nothing here imports stable-baselines3, so the CLI can build its options without the ``rl`` extra.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
from gymnasium import spaces

from agents.ctrnn import CTRNNConfig
from agents.mlp import NoisyMLPConfig
from agents.noise_distribution import NoiseDistribution, training_noise
from agents.train_config import check_noise_fields, check_seed, noise_to_dict
from noise_envs._checks import (
    check_choice,
    check_finite,
    check_in_range,
    check_nonnegative,
    check_positive,
    check_positive_int,
)
from noise_envs.config import JsonConfig

__all__ = [
    "RL_ALGOS",
    "CTRNNModelConfig",
    "CTRNNPolicyConfig",
    "MLPModelConfig",
    "MLPPolicyConfig",
    "RLTrainConfig",
]

RL_ALGOS = ("ppo", "recurrent_ppo")
"""PPO with a noisy feedforward policy, RecurrentPPO with a CTRNN core."""


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class CTRNNPolicyConfig(JsonConfig):
    """Options of :class:`~agents.sb3.recurrent.CTRNNRecurrentPolicy`, given as ``policy_kwargs``."""

    hidden_size: int = 64
    """Number of recurrent units N of the actor's (and the critic's) CTRNN core."""
    activation: str = "relu"
    """Activation f: relu, softplus, tanh or sigmoid."""
    placement: str = "in"
    """Where the noise enters: "in" (inside f) or "out" (added after f)."""
    sigma: float = 0.0
    """Noise level of the cores while acting and learning (a sweep sets its own)."""
    dt: float = 10.0
    """Time step in ms."""
    tau: float = 100.0
    """Membrane time constant in ms; gamma = dt / tau (not the discount)."""
    noise_scaling: str = "per_step"
    """per_step (sigma as given, the paper's) or sqrt_2_over_gamma (Yang et al. 2019)."""
    recurrent_gain: float = 0.9
    """Recurrent weights start as N(0, gain^2 / N)."""
    recurrent_init: str = "default"
    """Initial W: default (N(0, gain^2 / N)), identity or orthogonal (times recurrent_scale)."""
    recurrent_scale: float = 0.5
    """Scale of the identity and orthogonal initialisations (Yang's 0.5 I)."""
    noisy_critic: bool = True
    """Give the critic's core the same noise level as the actor's (with its own samples)."""
    replay_noise: bool = True
    """Replay each rollout step's noise in the update (False draws fresh noise: biased PPO)."""
    seed: int = 0
    """Seed of the cores' initial weights and of their noise."""
    log_std_init: float = 0.0
    """Initial log standard deviation of the Gaussian action distribution."""

    def __post_init__(self) -> None:
        self.ctrnn_config(1)  # validates the fields the CTRNN shares
        check_nonnegative("sigma", self.sigma)
        check_seed(self.seed)
        check_finite("log_std_init", self.log_std_init)

    def ctrnn_config(self, input_size: int) -> CTRNNConfig:
        """The config of a CTRNN with these options reading ``input_size`` features."""
        return CTRNNConfig(
            input_size=input_size,
            output_size=1,  # unused: the policy's heads read the state
            hidden_size=self.hidden_size,
            activation=self.activation,
            placement=self.placement,
            dt=self.dt,
            tau=self.tau,
            noise_scaling=self.noise_scaling,
            recurrent_gain=self.recurrent_gain,
            recurrent_init=self.recurrent_init,
            recurrent_scale=self.recurrent_scale,
        )


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class MLPPolicyConfig(JsonConfig):
    """Options of :class:`~agents.sb3.feedforward.NoisyActorCriticPolicy`, given as ``policy_kwargs``."""

    hidden_size: int = 64
    """Units per hidden layer of the actor's (and the critic's) network."""
    num_layers: int = 2
    """Number of hidden layers."""
    activation: str = "relu"
    """Activation f: relu, softplus, tanh or sigmoid."""
    placement: str = "in"
    """Where the noise enters: "in" (inside f) or "out" (added after f)."""
    sigma: float = 0.0
    """Noise level of the hidden layers while acting and learning (a sweep sets its own)."""
    noisy_critic: bool = True
    """Give the critic's network the same noise level as the actor's (with its own samples)."""
    replay_noise: bool = True
    """Replay each rollout step's noise in the update (False draws fresh noise: biased PPO)."""
    seed: int = 0
    """Seed of the noise."""
    log_std_init: float = 0.0
    """Initial log standard deviation of the Gaussian action distribution."""

    def __post_init__(self) -> None:
        self.mlp_config(1, 1)  # validates the fields the noisy MLP shares
        check_nonnegative("sigma", self.sigma)
        check_seed(self.seed)
        check_finite("log_std_init", self.log_std_init)

    def mlp_config(self, input_size: int, output_size: int) -> NoisyMLPConfig:
        """The config of a noisy MLP with these options."""
        return NoisyMLPConfig(
            input_size=input_size,
            output_size=output_size,
            hidden_size=self.hidden_size,
            num_layers=self.num_layers,
            activation=self.activation,
            placement=self.placement,
        )


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class RLTrainConfig(JsonConfig):
    """Options of :func:`~agents.sb3.training.train_rl`; names shared with TrainConfig mean the same."""

    algo: str = "recurrent_ppo"
    """ppo (a noisy feedforward policy) or recurrent_ppo (a CTRNN core)."""
    sigma: float = 0.0
    """Noise level of the policy during training (the model config says where noise enters)."""
    sigma_dist: NoiseDistribution | None = None
    """Training noise drawn from a distribution instead of sigma, one level per PPO iteration
    (per='batch' only); None (the default) keeps run.json as before."""
    iterations: int = 100
    """PPO iterations: each collects num_envs * num_steps steps, then updates."""
    num_envs: int = 16
    """Environments stepped in parallel."""
    num_steps: int = 128
    """Steps per environment per iteration."""
    batch_size: int = 256
    """Steps per minibatch of the update."""
    epochs: int = 10
    """Passes over each iteration's steps."""
    learning_rate: float = 1e-3
    """Learning rate of Adam."""
    anneal_learning_rate: bool = False
    """Decay the learning rate linearly from learning_rate towards 0 over the iterations."""
    grad_clip: float = 0.5
    """Largest gradient norm; larger gradients are scaled down to it."""
    discount: float = 0.99
    """Discount factor of the return."""
    gae_lambda: float = 0.95
    """Lambda of generalised advantage estimation."""
    clip_range: float = 0.2
    """PPO's clipping of the probability ratio."""
    ent_coef: float = 0.0
    """Weight of the entropy bonus."""
    vf_coef: float = 0.5
    """Weight of the value loss."""
    seed: int = 0
    """Seeds the environments, the policy's weights and noise, and stable-baselines3."""
    checkpoint_every: int = 10
    """Write a checkpoint every this many iterations, and at the end."""

    def __post_init__(self) -> None:
        check_choice("algo", self.algo, RL_ALGOS)
        check_nonnegative("sigma", self.sigma)
        check_noise_fields(self)
        if self.sigma_dist is not None and self.sigma_dist.per != "batch":
            raise ValueError(
                f"RL training draws one noise level per PPO iteration: `sigma_dist` needs "
                f"per='batch', got per={self.sigma_dist.per!r} (a level per episode would need "
                "one per step in the rollout buffer)"
            )
        for name in ("iterations", "num_envs", "num_steps", "batch_size", "epochs"):
            check_positive_int(name, getattr(self, name))
        check_positive_int("checkpoint_every", self.checkpoint_every)
        check_positive("learning_rate", self.learning_rate)
        check_positive("grad_clip", self.grad_clip)
        check_in_range("discount", self.discount, 0.0, 1.0)
        check_in_range("gae_lambda", self.gae_lambda, 0.0, 1.0)
        check_positive("clip_range", self.clip_range)
        check_nonnegative("ent_coef", self.ent_coef)
        check_nonnegative("vf_coef", self.vf_coef)
        check_seed(self.seed)

    @property
    def noise(self) -> NoiseDistribution:
        """The training noise as a distribution (a fixed one for ``sigma``)."""
        return training_noise(self)

    def to_dict(self) -> dict[str, Any]:
        """The config as JSON values; ``sigma_dist`` is left out when None (fixed-noise runs)."""
        return noise_to_dict(JsonConfig.to_dict(self))

    def learning_rate_at(self, iteration: int) -> float:
        """The learning rate of iteration ``iteration`` (1-based)."""
        if not self.anneal_learning_rate:
            return self.learning_rate
        return self.learning_rate * (1.0 - (iteration - 1) / self.iterations)

    @property
    def total_timesteps(self) -> int:
        """Environment steps of the whole run, ``iterations * num_envs * num_steps``."""
        return self.iterations * self.num_envs * self.num_steps


class _BoxSpaces:
    """The Box spaces of a model config: every bound is a field, so JSON holds them exactly."""

    __slots__ = ()
    observation_low: tuple[float, ...]
    observation_high: tuple[float, ...]
    action_low: tuple[float, ...]
    action_high: tuple[float, ...]

    def observation_space(self) -> spaces.Box:
        """The observation space, a float32 Box."""
        return _box(self.observation_low, self.observation_high)

    def action_space(self) -> spaces.Box:
        """The action space, a float32 Box."""
        return _box(self.action_low, self.action_high)

    def _check_spaces(self) -> None:
        for name in ("observation", "action"):
            low, high = getattr(self, f"{name}_low"), getattr(self, f"{name}_high")
            if len(low) == 0 or len(low) != len(high):
                raise ValueError(
                    f"`{name}_low` and `{name}_high` must be non-empty and of equal length, "
                    f"got {len(low)} and {len(high)} entries"
                )
            for index, (a, b) in enumerate(zip(low, high, strict=True)):
                check_finite(f"{name}_low[{index}]", a)
                check_finite(f"{name}_high[{index}]", b)
                if not a < b:
                    raise ValueError(
                        f"`{name}` bounds need low < high, got entry {index}: {a}, {b}"
                    )


def _box(low: tuple[float, ...], high: tuple[float, ...]) -> spaces.Box:
    return spaces.Box(np.array(low, np.float32), np.array(high, np.float32), dtype=np.float32)


def _bounds(space: spaces.Box) -> tuple[tuple[float, ...], tuple[float, ...]]:
    if not isinstance(space, spaces.Box) or len(space.shape) != 1:
        raise ValueError(f"a saved RL model needs 1-D Box spaces, got {space}")
    return tuple(float(v) for v in space.low), tuple(float(v) for v in space.high)


def _space_fields(observation_space: spaces.Box, action_space: spaces.Box) -> dict[str, tuple]:
    observation_low, observation_high = _bounds(observation_space)
    action_low, action_high = _bounds(action_space)
    return {
        "observation_low": observation_low,
        "observation_high": observation_high,
        "action_low": action_low,
        "action_high": action_high,
    }


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class CTRNNModelConfig(_BoxSpaces, CTRNNPolicyConfig):
    """A saved RecurrentPPO CTRNN policy: its policy options and the spaces it was built for."""

    observation_low: tuple[float, ...]
    """Lower bound of each observation entry."""
    observation_high: tuple[float, ...]
    """Upper bound of each observation entry."""
    action_low: tuple[float, ...]
    """Lower bound of each action entry."""
    action_high: tuple[float, ...]
    """Upper bound of each action entry."""

    def __post_init__(self) -> None:
        CTRNNPolicyConfig.__post_init__(self)
        self._check_spaces()

    @classmethod
    def for_spaces(
        cls, policy: CTRNNPolicyConfig, observation_space: spaces.Box, action_space: spaces.Box
    ) -> CTRNNModelConfig:
        """The model config of a policy with options ``policy`` acting in these spaces."""
        return cls(**policy.to_dict(), **_space_fields(observation_space, action_space))

    def policy_config(self) -> CTRNNPolicyConfig:
        """The policy options alone (the policy's ``policy_kwargs``)."""
        names = {field.name for field in dataclasses.fields(CTRNNPolicyConfig)}
        return CTRNNPolicyConfig(**{name: getattr(self, name) for name in names})


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class MLPModelConfig(_BoxSpaces, MLPPolicyConfig):
    """A saved PPO noisy-MLP policy: its policy options and the spaces it was built for."""

    observation_low: tuple[float, ...]
    """Lower bound of each observation entry."""
    observation_high: tuple[float, ...]
    """Upper bound of each observation entry."""
    action_low: tuple[float, ...]
    """Lower bound of each action entry."""
    action_high: tuple[float, ...]
    """Upper bound of each action entry."""

    def __post_init__(self) -> None:
        MLPPolicyConfig.__post_init__(self)
        self._check_spaces()

    @classmethod
    def for_spaces(
        cls, policy: MLPPolicyConfig, observation_space: spaces.Box, action_space: spaces.Box
    ) -> MLPModelConfig:
        """The model config of a policy with options ``policy`` acting in these spaces."""
        return cls(**policy.to_dict(), **_space_fields(observation_space, action_space))

    def policy_config(self) -> MLPPolicyConfig:
        """The policy options alone (the policy's ``policy_kwargs``)."""
        names = {field.name for field in dataclasses.fields(MLPPolicyConfig)}
        return MLPPolicyConfig(**{name: getattr(self, name) for name in names})
