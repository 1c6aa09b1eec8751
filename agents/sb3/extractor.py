"""A noisy replacement for stable-baselines3's ``MlpExtractor``: noisy hidden layers for PPO.

The actor and the critic each get a :class:`~agents.mlp.NoisyLayers` stack. While PPO collects a
rollout or learns from it, the policy tells the extractor each row's *noise position* (which
environment and step of the rollout it is); the noise of a row is then
``sigma * keyed_normal((seed, stream, rollout, position), L * H)``, the same in the rollout and in
every epoch of the update (see :mod:`agents.sb3.keyed_noise`). Without positions (e.g. in SB3's
``predict``) or with ``replay_noise=False`` it is drawn fresh from a generator.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from agents.mlp import NoisyLayers
from agents.noise import NoiseLike, scaled_noise
from agents.sb3.config import MLPPolicyConfig
from agents.sb3.keyed_noise import keyed_normal

__all__ = ["NoisyMlpExtractor"]

_ACTOR, _CRITIC = 0, 1
"""Noise streams of the actor's and the critic's layers."""


class NoisyMlpExtractor(nn.Module):
    """Actor and critic hidden layers with noise inside or outside the activation.

    Speaks ``MlpExtractor``'s interface (``latent_dim_pi``, ``latent_dim_vf``, ``forward``,
    ``forward_actor``, ``forward_critic``) at the noise level ``sigma`` (an attribute), and
    :meth:`actor_step` for sweeps, which take the noise level and samples as arguments.

    Example:
        >>> extractor = NoisyMlpExtractor(3, MLPPolicyConfig(hidden_size=8, sigma=0.5))
        >>> extractor.positions = torch.tensor([0, 1])
        >>> a = extractor.forward_actor(torch.ones(2, 3))
        >>> bool(torch.equal(a, extractor.forward_actor(torch.ones(2, 3))))  # replayed noise
        True
    """

    def __init__(self, feature_dim: int, config: MLPPolicyConfig) -> None:
        super().__init__()
        seeds = np.random.SeedSequence(config.seed).generate_state(3, dtype=np.uint64)
        networks = [
            NoisyLayers(
                feature_dim,
                config.hidden_size,
                config.num_layers,
                activation=config.activation,
                placement=config.placement,
                generator=torch.Generator().manual_seed(int(seed)),
            )
            for seed in seeds[:2]
        ]
        self.policy_net, self.value_net = networks
        self.config = config
        self.latent_dim_pi = self.latent_dim_vf = config.hidden_size
        self.sigma = config.sigma
        """Noise level of the actor's layers."""
        self.critic_sigma = config.sigma if config.noisy_critic else 0.0
        """Noise level of the critic's layers."""
        self.rollout = 0
        """Index of the rollout being collected or learned from, part of the noise key."""
        self.positions: torch.Tensor | None = None
        """Noise position of each row of the next calls ``[B]`` (int64), or None for fresh noise."""
        self._fresh_seed = int(seeds[2])
        self._fresh = torch.Generator().manual_seed(self._fresh_seed)

    def forward(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The actor's and the critic's latent features ``[B, H]``."""
        return self.forward_actor(features), self.forward_critic(features)

    def forward_actor(self, features: torch.Tensor) -> torch.Tensor:
        """The actor's latent features ``[B, H]`` at noise level ``sigma``."""
        return self.policy_net(features, self._noise(_ACTOR, self.sigma, features))

    def forward_critic(self, features: torch.Tensor) -> torch.Tensor:
        """The critic's latent features ``[B, H]`` at noise level ``critic_sigma``."""
        return self.value_net(features, self._noise(_CRITIC, self.critic_sigma, features))

    def actor_step(
        self, features: torch.Tensor, sigma: float | torch.Tensor = 0.0, noise: NoiseLike = None
    ) -> torch.Tensor:
        """The actor's latent features at ``sigma`` (float or ``[B]``), ``xi`` from ``noise``."""
        shape = (features.shape[0], self.policy_net.noise_size)
        return self.policy_net(features, scaled_noise(sigma, noise, shape, features.device))

    def restart_noise(self) -> None:
        """Restart the generator of fresh noise (used without positions), e.g. for each level."""
        self._fresh.manual_seed(self._fresh_seed)

    def _noise(self, stream: int, sigma: float, features: torch.Tensor) -> torch.Tensor | None:
        if sigma == 0:
            return None
        rows, size = features.shape[0], self.policy_net.noise_size
        if self.positions is None or not self.config.replay_noise:
            return sigma * torch.randn(rows, size, generator=self._fresh).to(features.device)
        if self.positions.shape != (rows,):
            raise ValueError(
                f"Expected noise positions of shape [{rows}], got {tuple(self.positions.shape)}"
            )
        key = (self.config.seed, stream, self.rollout, self.positions.to(features.device))
        return sigma * keyed_normal(key, size, device=features.device)
