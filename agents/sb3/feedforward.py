"""PPO with a noisy feedforward policy whose noise the update replays exactly.

:class:`NoisyActorCriticPolicy` is SB3's ``ActorCriticPolicy`` with a
:class:`~agents.sb3.extractor.NoisyMlpExtractor` (noisy hidden layers) in place of the
``MlpExtractor``, configured through ``policy_kwargs`` (the fields of
:class:`~agents.sb3.config.MLPPolicyConfig`). :class:`NoisyPPO` is PPO with a rollout buffer that
remembers which samples each minibatch holds. Every rollout step gets a *noise position*
(environment ``e``, step ``k``: ``e * (n_steps + 1) + k``); the policy hands the positions of the
rows it is computing to the extractor, whose noise is a function of them, so the update
regenerates the rollout's noise exactly and PPO's ratio is 1 before the first gradient step.

Example:
    >>> from agents.sb3.vec_env import make_sb3_vec_env
    >>> envs = make_sb3_vec_env("NoisyRegulator-v0", num_envs=2)
    >>> model = NoisyPPO(
    ...     NoisyActorCriticPolicy, envs, n_steps=8, batch_size=8, n_epochs=1,
    ...     policy_kwargs={"hidden_size": 4, "sigma": 0.5}, device="cpu")
    >>> model.policy.mlp_extractor.sigma
    0.5
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
from gymnasium import spaces
from stable_baselines3 import PPO
from stable_baselines3.common.buffers import RolloutBuffer
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.policies import ActorCriticPolicy
from stable_baselines3.common.type_aliases import Schedule
from stable_baselines3.common.vec_env import VecEnv

from agents.sb3.config import MLPPolicyConfig
from agents.sb3.extractor import NoisyMlpExtractor

__all__ = ["NoisyActorCriticPolicy", "NoisyPPO", "ReplayRolloutBuffer"]

_CONFIG_FIELDS = tuple(field.name for field in dataclasses.fields(MLPPolicyConfig))


class ReplayRolloutBuffer(RolloutBuffer):
    """SB3's rollout buffer that also tells the noise position of each sample it holds."""

    last_indices: np.ndarray | None = None
    """Flat indices (``env * n_steps + step``) of the samples of the last minibatch."""

    def _get_samples(self, batch_inds: np.ndarray, env: Any = None) -> Any:
        self.last_indices = batch_inds
        return super()._get_samples(batch_inds, env)

    def rollout_positions(self, rows: int) -> torch.Tensor:
        """Positions of the step being collected now, in each of the ``rows`` environments."""
        return torch.arange(rows, device=self.device) * (self.buffer_size + 1) + self.pos

    def sample_positions(self) -> torch.Tensor:
        """Positions of the samples of the last minibatch."""
        if self.last_indices is None:
            raise RuntimeError("no minibatch has been drawn from this buffer yet")
        env, step = np.divmod(self.last_indices, self.buffer_size)
        return torch.as_tensor(env * (self.buffer_size + 1) + step, device=self.device)


class NoisyActorCriticPolicy(ActorCriticPolicy):
    """PPO's actor-critic policy with noisy hidden layers (see :class:`NoisyMlpExtractor`).

    ``policy_kwargs`` take the fields of :class:`~agents.sb3.config.MLPPolicyConfig` plus any
    ``ActorCriticPolicy`` option but ``net_arch`` (the extractor's layers replace it).
    """

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Space,
        lr_schedule: Schedule,
        use_sde: bool = False,
        **kwargs: Any,
    ) -> None:
        if "net_arch" in kwargs:
            raise ValueError(
                "`net_arch` is replaced by the noisy layers' hidden_size and num_layers"
            )
        self.config = MLPPolicyConfig(**{k: kwargs.pop(k) for k in _CONFIG_FIELDS if k in kwargs})
        self.replay_buffer: ReplayRolloutBuffer | None = None
        super().__init__(
            observation_space,
            action_space,
            lr_schedule,
            use_sde=use_sde,
            log_std_init=self.config.log_std_init,
            **kwargs,
        )

    def _build_mlp_extractor(self) -> None:
        self.mlp_extractor = NoisyMlpExtractor(self.features_dim, self.config)

    def _get_constructor_parameters(self) -> dict[str, Any]:
        data = super()._get_constructor_parameters()
        for name in ("net_arch", "log_std_init"):
            data.pop(name, None)
        return {**data, **self.config.to_dict()}

    def set_noise_rollout(self, index: int) -> None:
        """Number the rollout that is collected next (and learned from): part of the noise key."""
        self.mlp_extractor.rollout = index

    def forward(self, obs: torch.Tensor, deterministic: bool = False) -> Any:
        """PPO's rollout step, with the noise of the step being collected."""
        with self._positions(lambda buffer: buffer.rollout_positions(obs.shape[0])):
            return super().forward(obs, deterministic)

    def evaluate_actions(self, obs: torch.Tensor, actions: torch.Tensor) -> Any:
        """PPO's update, with the noise the rollout used for these samples."""
        with self._positions(lambda buffer: buffer.sample_positions()):
            return super().evaluate_actions(obs, actions)

    def predict_values(self, obs: torch.Tensor) -> torch.Tensor:
        """Values for bootstrapping, with the noise of the step being collected."""
        with self._positions(lambda buffer: buffer.rollout_positions(obs.shape[0])):
            return super().predict_values(obs)

    @contextlib.contextmanager
    def _positions(self, positions_of: Any) -> Iterator[None]:
        """Give the extractor the noise positions while NoisyPPO drives this policy."""
        buffer = self.replay_buffer
        self.mlp_extractor.positions = None if buffer is None else positions_of(buffer)
        try:
            yield
        finally:
            self.mlp_extractor.positions = None


class NoisyPPO(PPO):
    """PPO whose updates replay the noise of the rollout they learn from.

    Takes a :class:`NoisyActorCriticPolicy` and every ``PPO`` argument but
    ``rollout_buffer_class`` (it uses :class:`ReplayRolloutBuffer`).

    Raises:
        ValueError: if the policy is not a NoisyActorCriticPolicy or the observations are a Dict.
    """

    def __init__(self, policy: Any, env: Any, **kwargs: Any) -> None:
        if kwargs.get("rollout_buffer_class") not in (None, ReplayRolloutBuffer):
            raise ValueError("NoisyPPO uses its own ReplayRolloutBuffer as rollout_buffer_class")
        kwargs["rollout_buffer_class"] = ReplayRolloutBuffer
        super().__init__(policy, env, **kwargs)

    def _setup_model(self) -> None:
        super()._setup_model()
        if not isinstance(self.policy, NoisyActorCriticPolicy):
            raise ValueError(
                f"NoisyPPO needs a NoisyActorCriticPolicy, got {type(self.policy).__name__}"
            )
        self.noise_rollouts = getattr(self, "noise_rollouts", 0)
        self.policy.replay_buffer = self.rollout_buffer

    def collect_rollouts(
        self,
        env: VecEnv,
        callback: BaseCallback,
        rollout_buffer: RolloutBuffer,
        n_rollout_steps: int,
    ) -> bool:
        """Number the rollout, then collect it as PPO does."""
        self.policy.set_noise_rollout(self.noise_rollouts)
        self.noise_rollouts += 1
        return super().collect_rollouts(env, callback, rollout_buffer, n_rollout_steps)
