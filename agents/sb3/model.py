"""Trained stable-baselines3 policies as :class:`~agents.policy.Policy` objects, and as run models.

:class:`SB3Policy` wraps a trained actor-critic policy so that the batched rollout and the noise
sweep run it unchanged: its action is the deterministic one (the Gaussian mean, or the most likely
discrete action), clipped to the action space as SB3's ``predict`` does, and ``sigma`` is the noise
level of the policy's noisy core (CTRNN or noisy MLP), with ``xi`` drawn from the caller's
``noise``. Policies without internal noise (SB3's ``MlpPolicy``, ``MlpLstmPolicy``) run at
``sigma = 0`` only.

:class:`CTRNNPolicyModel` and :class:`NoisyMLPPolicyModel` are the model kinds a run folder saves
(``recurrent_ppo_ctrnn``, ``ppo_noisy_mlp``): built from a JSON config alone, their weights are the
whole policy's. Building one needs the ``rl`` extra; importing this module does not.
"""

from __future__ import annotations

import torch
from torch import nn

from agents.noise import NoiseLike
from agents.sb3.config import CTRNNModelConfig, MLPModelConfig
from agents.sb3.core import CTRNNCore
from agents.sb3.extractor import NoisyMlpExtractor
from noise_envs._checks import check_positive_int, check_sigma

__all__ = ["CTRNNPolicyModel", "NoisyMLPPolicyModel", "SB3Policy"]


def _require_rl(feature: str) -> None:
    try:
        import sb3_contrib  # noqa: F401
        import stable_baselines3  # noqa: F401
    except ImportError as error:
        raise ImportError(
            f"{feature} needs stable-baselines3 and sb3-contrib: pip install 'noise-preference[rl]'"
        ) from error


class SB3Policy(nn.Module):
    """A trained stable-baselines3 actor-critic policy speaking the Policy protocol.

    Args:
        policy: an ``ActorCriticPolicy`` (e.g. ``model.policy`` of a PPO model) or a
            ``RecurrentActorCriticPolicy``; its CTRNN core or noisy extractor takes the noise.

    The state is the actor's recurrent state: ``[B, H]`` for a CTRNN core, ``[B, 2H]`` (``h``
    then ``c``) for an LSTM, ``[B, 0]`` for a feedforward policy.
    """

    def __init__(self, policy: nn.Module) -> None:
        super().__init__()
        self.policy = policy
        space = policy.action_space
        bounded = hasattr(space, "low") and not getattr(policy, "squash_output", False)
        low = torch.as_tensor(space.low, dtype=torch.float32) if bounded else None
        high = torch.as_tensor(space.high, dtype=torch.float32) if bounded else None
        self.register_buffer("action_low", low, persistent=False)
        self.register_buffer("action_high", high, persistent=False)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({type(self.policy).__name__}, core={self._core_name()})"

    def _core_name(self) -> str:
        core = self._recurrent_core()
        if core is not None:
            return repr(core)
        extractor = self.policy.mlp_extractor
        return type(extractor).__name__

    def _recurrent_core(self) -> nn.Module | None:
        return getattr(self.policy, "lstm_actor", None)

    def initial_state(self, batch_size: int, device: torch.device | str = "cpu") -> torch.Tensor:
        """Zeros ``[B, S]``: the actor's state at an episode start, as SB3 starts it."""
        check_positive_int("batch_size", batch_size)
        core = self._recurrent_core()
        size = 0 if core is None else core.hidden_size * (1 if isinstance(core, CTRNNCore) else 2)
        return torch.zeros(batch_size, size, device=device)

    def step(
        self,
        obs: torch.Tensor,
        state: torch.Tensor,
        sigma: float | torch.Tensor = 0.0,
        noise: NoiseLike = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The deterministic action ``[B, A]`` (clipped to the action space) and the next state."""
        features = self._features(obs)
        latent, state = self._actor_latent(features, state, sigma, noise)
        distribution = self.policy._get_action_dist_from_latent(latent)
        action = distribution.get_actions(deterministic=True)
        action = action.reshape(obs.shape[0], -1).to(torch.float32)
        if self.action_low is not None:
            action = torch.clamp(action, self.action_low, self.action_high)
        return action, state

    def _features(self, obs: torch.Tensor) -> torch.Tensor:
        from stable_baselines3.common.preprocessing import preprocess_obs

        extractor = self.policy.pi_features_extractor
        return extractor(
            preprocess_obs(obs, self.policy.observation_space, self.policy.normalize_images)
        )

    def _actor_latent(
        self,
        features: torch.Tensor,
        state: torch.Tensor,
        sigma: float | torch.Tensor,
        noise: NoiseLike,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        core = self._recurrent_core()
        if isinstance(core, CTRNNCore):
            state = core.step(features, state, sigma, noise)
            return self.policy.mlp_extractor.forward_actor(state), state
        extractor = self.policy.mlp_extractor
        if isinstance(extractor, NoisyMlpExtractor):
            return extractor.actor_step(features, sigma, noise), state
        _check_noise_free(self.policy, sigma)
        if core is None:
            return extractor.forward_actor(features), state
        h, c = state.chunk(2, dim=-1)
        output, (h, c) = core(features[None], (h[None].contiguous(), c[None].contiguous()))
        return extractor.forward_actor(output[0]), torch.cat((h[0], c[0]), dim=-1)


def _check_noise_free(policy: nn.Module, sigma: float | torch.Tensor) -> None:
    sigma = check_sigma(sigma)
    if bool(torch.as_tensor(sigma).any()):
        raise ValueError(
            f"`sigma` must be 0 for a {type(policy).__name__} without a noisy core (a CTRNN core "
            "or a NoisyMlpExtractor), got a nonzero level"
        )


def _constant_schedule(progress: float) -> float:
    """The learning-rate schedule a rebuilt policy is given (it is never trained)."""
    del progress
    return 1e-3


class _RebuiltPolicy(SB3Policy):
    """A trained policy rebuilt from its run config alone; subclasses name the policy class.

    ``generator`` is accepted for :func:`~agents.models.build_model`; the weights that matter are
    loaded from the run.
    """

    feature: str
    """What the subclass rebuilds, for the message when the ``rl`` extra is missing."""

    def __init__(
        self, config: CTRNNModelConfig | MLPModelConfig, generator: torch.Generator | None = None
    ) -> None:
        del generator
        _require_rl(self.feature)
        policy = self._policy_class()(
            config.observation_space(),
            config.action_space(),
            _constant_schedule,
            **config.policy_config().to_dict(),
        )
        super().__init__(policy)
        self.config = config

    @staticmethod
    def _policy_class() -> type[nn.Module]:
        raise NotImplementedError


class CTRNNPolicyModel(_RebuiltPolicy):
    """A RecurrentPPO CTRNN policy rebuilt from its run config (model kind ``recurrent_ppo_ctrnn``).

    Built from a :class:`~agents.sb3.config.CTRNNModelConfig`.
    """

    feature = "a RecurrentPPO CTRNN policy"

    @staticmethod
    def _policy_class() -> type[nn.Module]:
        from agents.sb3.recurrent import CTRNNRecurrentPolicy

        return CTRNNRecurrentPolicy


class NoisyMLPPolicyModel(_RebuiltPolicy):
    """A PPO noisy-MLP policy rebuilt from its run config (model kind ``ppo_noisy_mlp``).

    Built from a :class:`~agents.sb3.config.MLPModelConfig`.
    """

    feature = "a PPO noisy-MLP policy"

    @staticmethod
    def _policy_class() -> type[nn.Module]:
        from agents.sb3.feedforward import NoisyActorCriticPolicy

        return NoisyActorCriticPolicy


def policy_model(policy: nn.Module) -> CTRNNPolicyModel | NoisyMLPPolicyModel:
    """The run model of a trained CTRNN or noisy-MLP policy: a copy with the same weights.

    Raises:
        ValueError: for a policy without a CTRNN core or a noisy extractor.
    """
    spaces = (policy.observation_space, policy.action_space)
    model: CTRNNPolicyModel | NoisyMLPPolicyModel
    if isinstance(getattr(policy, "lstm_actor", None), CTRNNCore):
        model = CTRNNPolicyModel(CTRNNModelConfig.for_spaces(policy.config, *spaces))
    elif isinstance(getattr(policy, "mlp_extractor", None), NoisyMlpExtractor):
        model = NoisyMLPPolicyModel(MLPModelConfig.for_spaces(policy.config, *spaces))
    else:
        raise ValueError(
            f"only CTRNNRecurrentPolicy and NoisyActorCriticPolicy are saved as run models, got "
            f"{type(policy).__name__}; wrap it in SB3Policy to sweep it"
        )
    model.policy.load_state_dict(policy.state_dict())
    return model.to(policy.device)
