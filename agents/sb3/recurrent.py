"""RecurrentPPO with CTRNN cores whose noise the update replays exactly.

:class:`CTRNNRecurrentPolicy` is sb3-contrib's ``RecurrentActorCriticPolicy`` with a
:class:`~agents.sb3.core.CTRNNCore` in place of each LSTM, configured through ``policy_kwargs``
(the fields of :class:`~agents.sb3.config.CTRNNPolicyConfig`). :class:`NoisyRecurrentPPO` is
``RecurrentPPO`` that, before each rollout, numbers the rollout and sets every environment's noise
position: environment ``e`` starts at ``e * (num_steps + 1)``, so each step of a rollout (and the
value bootstrap after its last step) has its own position. The update re-runs each stored
sequence from its stored state, whose ``c`` holds the position, and so regenerates the rollout's
noise exactly: PPO's probability ratio is 1 before the first gradient step, as it must be.

With fresh noise instead (``replay_noise=False``) the ratio differs from 1 even before any
gradient step, which biases the clipped objective.

Example:
    >>> from agents.sb3.vec_env import make_sb3_vec_env
    >>> envs = make_sb3_vec_env("NoisyRegulator-v0", num_envs=2)
    >>> model = NoisyRecurrentPPO(
    ...     CTRNNRecurrentPolicy, envs, n_steps=8, batch_size=8, n_epochs=1,
    ...     policy_kwargs={"hidden_size": 4, "sigma": 0.5}, device="cpu")
    >>> model.policy.lstm_actor
    CTRNNCore(in=1, hidden=4, relu, noise in, sigma=0.5, stream=0)
"""

from __future__ import annotations

import dataclasses
import warnings
from typing import Any

import numpy as np
import torch
from gymnasium import spaces
from sb3_contrib import RecurrentPPO
from sb3_contrib.common.recurrent.policies import RecurrentActorCriticPolicy
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.type_aliases import Schedule
from stable_baselines3.common.vec_env import VecEnv

from agents.sb3.config import CTRNNPolicyConfig
from agents.sb3.core import CTRNNCore

__all__ = ["CTRNNRecurrentPolicy", "NoisyRecurrentPPO"]

_CONFIG_FIELDS = tuple(field.name for field in dataclasses.fields(CTRNNPolicyConfig))
_LSTM_OPTIONS = (
    "lstm_hidden_size",
    "n_lstm_layers",
    "shared_lstm",
    "enable_critic_lstm",
    "lstm_kwargs",
)
_EXACT_POSITIONS = 2**24
"""float32 holds every integer position below this exactly."""
_PREDICT_STRIDE = 2**16
"""Column ``n`` of a fresh ``predict`` starts at position ``-(n + 1) * 2**16``."""


class CTRNNRecurrentPolicy(RecurrentActorCriticPolicy):
    """RecurrentPPO's policy with CTRNN cores for the actor and the critic.

    ``policy_kwargs`` take the fields of :class:`~agents.sb3.config.CTRNNPolicyConfig` (hidden
    size, activation, placement, sigma, dt, tau, ...) plus any ``ActorCriticPolicy`` option;
    ``net_arch`` defaults to ``[]``, so the action mean and the value are linear read-outs of the
    CTRNN state, as in the paper. Use it with :class:`NoisyRecurrentPPO`.
    """

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Space,
        lr_schedule: Schedule,
        use_sde: bool = False,
        **kwargs: Any,
    ) -> None:
        for name in _LSTM_OPTIONS:
            if name in kwargs:
                raise ValueError(
                    f"`{name}` is an LSTM option; a CTRNNRecurrentPolicy is configured by "
                    f"{list(_CONFIG_FIELDS)}"
                )
        config = CTRNNPolicyConfig(**{k: kwargs.pop(k) for k in _CONFIG_FIELDS if k in kwargs})
        kwargs.setdefault("net_arch", [])
        super().__init__(
            observation_space,
            action_space,
            lr_schedule,
            use_sde=use_sde,
            lstm_hidden_size=config.hidden_size,
            log_std_init=config.log_std_init,
            **kwargs,
        )
        self.config = config
        self.lstm_actor = CTRNNCore(self.features_dim, config, stream=0)
        critic_sigma = config.sigma if config.noisy_critic else 0.0
        self.lstm_critic = CTRNNCore(self.features_dim, config, stream=1, sigma=critic_sigma)
        self.driven = False
        """Whether :class:`NoisyRecurrentPPO` numbers the rollouts (set by it)."""
        self.optimizer = self.optimizer_class(
            self.parameters(), lr=lr_schedule(1), **self.optimizer_kwargs
        )

    def _get_constructor_parameters(self) -> dict[str, Any]:
        data = super()._get_constructor_parameters()
        for name in (*_LSTM_OPTIONS, "log_std_init"):
            data.pop(name, None)
        return {**data, **self.config.to_dict()}

    @property
    def cores(self) -> tuple[CTRNNCore, CTRNNCore]:
        """The actor's and the critic's CTRNN cores."""
        return self.lstm_actor, self.lstm_critic

    def set_noise_rollout(self, index: int) -> None:
        """Number the rollout that is collected next (and learned from): part of the noise key."""
        for core in self.cores:
            core.rollout = index

    @staticmethod
    def _process_sequence(
        features: torch.Tensor,
        lstm_states: tuple[torch.Tensor, torch.Tensor],
        episode_starts: torch.Tensor,
        lstm: CTRNNCore,
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        # sb3-contrib's version zeroes h and c at episode starts; c is our noise position and
        # must run on, so the core resets only h (flattened [N * L, F] <-> [L, N, F] as there).
        num_sequences = lstm_states[0].shape[1]
        sequence = features.reshape((num_sequences, -1, lstm.input_size)).swapaxes(0, 1)
        starts = episode_starts.reshape((num_sequences, -1)).swapaxes(0, 1)
        output, states = lstm(sequence, lstm_states, starts)
        return torch.flatten(output.transpose(0, 1), start_dim=0, end_dim=1), states

    def forward(
        self,
        obs: torch.Tensor,
        lstm_states: Any,
        episode_starts: torch.Tensor,
        deterministic: bool = False,
    ) -> Any:
        """RecurrentPPO's forward pass (rollouts); warns once if no NoisyRecurrentPPO drives it."""
        if not self.driven and self.lstm_actor.sigma > 0:
            warnings.warn(
                "CTRNNRecurrentPolicy is collecting a rollout without NoisyRecurrentPPO: every "
                "environment and rollout replays the same noise; train it with NoisyRecurrentPPO",
                UserWarning,
                stacklevel=2,
            )
            self.driven = True  # warn once
        return super().forward(obs, lstm_states, episode_starts, deterministic)

    def predict(
        self,
        observation: np.ndarray | dict[str, np.ndarray],
        state: tuple[np.ndarray, ...] | None = None,
        episode_start: np.ndarray | None = None,
        deterministic: bool = False,
    ) -> tuple[np.ndarray, tuple[np.ndarray, ...] | None]:
        """SB3's ``predict``; a fresh state gives each column its own noise positions.

        With ``state=None`` column ``n`` starts at position ``-(n + 1) * 2**16`` (negative, so
        never a training position), instead of every column starting at 0 with the same noise.
        """
        if state is None:
            state = self.initial_predict_state(_num_observations(self, observation))
        return super().predict(observation, state, episode_start, deterministic)

    def initial_predict_state(self, num_envs: int) -> tuple[np.ndarray, np.ndarray]:
        """The ``(h, c)`` arrays ``[1, num_envs, H]`` that :meth:`predict` starts from."""
        hidden = np.zeros((1, num_envs, self.config.hidden_size), dtype=np.float32)
        positions = hidden.copy()
        positions[0, :, 0] = -(np.arange(num_envs) + 1.0) * _PREDICT_STRIDE
        return hidden, positions


def _num_observations(
    policy: RecurrentActorCriticPolicy, observation: np.ndarray | dict[str, np.ndarray]
) -> int:
    """How many environments a ``predict`` observation holds."""
    _, vectorized = policy.obs_to_tensor(observation)
    first = next(iter(observation.values())) if isinstance(observation, dict) else observation
    return int(np.shape(first)[0]) if vectorized else 1


class NoisyRecurrentPPO(RecurrentPPO):
    """RecurrentPPO whose updates replay the noise of the rollout they learn from.

    Takes a :class:`CTRNNRecurrentPolicy` and every ``RecurrentPPO`` argument. Before each
    rollout it numbers the rollout and sets environment ``e``'s noise position to
    ``e * (n_steps + 1)`` in the recurrent state; the positions live in the state the buffer
    stores, so the update regenerates each step's noise from them.

    Raises:
        ValueError: if the policy is not a CTRNNRecurrentPolicy, or ``(n_steps + 1) * n_envs``
            reaches 2**24 (positions would no longer be exact in float32).
    """

    def _setup_model(self) -> None:
        super()._setup_model()
        if not isinstance(self.policy, CTRNNRecurrentPolicy):
            raise ValueError(
                f"NoisyRecurrentPPO needs a CTRNNRecurrentPolicy, got {type(self.policy).__name__}"
            )
        if (self.n_steps + 1) * self.n_envs >= _EXACT_POSITIONS:
            raise ValueError(
                f"(n_steps + 1) * n_envs must be below 2**24, got ({self.n_steps} + 1) * "
                f"{self.n_envs}: use fewer steps or environments per rollout"
            )
        self.noise_rollouts = getattr(self, "noise_rollouts", 0)
        self.policy.driven = True

    def collect_rollouts(
        self,
        env: VecEnv,
        callback: BaseCallback,
        rollout_buffer: Any,
        n_rollout_steps: int,
    ) -> bool:
        """Number the rollout and reset the noise positions, then collect it as RecurrentPPO does."""
        self.policy.set_noise_rollout(self.noise_rollouts)
        self.noise_rollouts += 1
        start = torch.arange(self.n_envs, device=self.device) * float(self.n_steps + 1)
        for _, cell in self._last_lstm_states:
            cell[0, :, 0] = start
        return super().collect_rollouts(env, callback, rollout_buffer, n_rollout_steps)
