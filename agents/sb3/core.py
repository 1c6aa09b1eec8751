"""The CTRNN as a drop-in for ``nn.LSTM``: the recurrent core of RecurrentPPO policies.

RecurrentPPO stores each step's recurrent state ``(h, c)`` and, in the update, re-runs every stored
sequence from its stored start state. A CTRNN has no cell state, so the LSTM's ``c`` slot carries
the *noise position* instead: ``c[0, n, 0]`` is the position of column ``n``'s next step, and the
noise of that step is ``sigma * keyed_normal((seed, stream, rollout, position), N)``. Re-running a
sequence from its stored state therefore replays exactly the noise the rollout used, with nothing
but the state stored (see :mod:`agents.sb3.keyed_noise`).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from agents.ctrnn import CTRNN, ctrnn_step
from agents.noise import ACTIVATIONS, NoiseLike, scaled_noise
from agents.sb3.config import CTRNNPolicyConfig
from agents.sb3.keyed_noise import keyed_normal
from noise_envs._checks import check_nonnegative, check_shape

__all__ = ["CTRNNCore"]


class CTRNNCore(nn.Module):
    """A CTRNN called like ``nn.LSTM``: ``(x [L, N, F], (h, c)) -> (y [L, N, H], (h, c))``.

    ``h`` and ``c`` are ``[1, N, H]``: ``h`` holds the hidden units, ``c[0, :, 0]`` the noise
    position (the rest of ``c`` stays zero). ``y`` is the hidden state after each step. Rows whose
    ``episode_starts`` entry is 1 restart from ``h = 0`` before that step; their noise position
    runs on. The update is :func:`agents.ctrnn.ctrnn_step`, with the initial weights of a
    :class:`~agents.ctrnn.CTRNN` of the same config.

    Noise (level ``sigma``, an attribute, scaled by the config's noise convention) is replayed from
    the key ``(config.seed, stream, rollout, position)`` when ``config.replay_noise`` is true, and
    drawn fresh from a generator otherwise. It never depends on ``train()`` / ``eval()``.

    Args:
        input_size: features per step F.
        config: the policy's CTRNN options.
        stream: distinguishes the noise of cores that share a config (actor 0, critic 1).
        sigma: the noise level; ``config.sigma`` by default.

    Example:
        >>> core = CTRNNCore(2, CTRNNPolicyConfig(hidden_size=3, sigma=0.5), stream=0)
        >>> state = (torch.zeros(1, 4, 3), torch.zeros(1, 4, 3))
        >>> y, (h, c) = core(torch.zeros(5, 4, 2), state)
        >>> tuple(y.shape), c[0, :, 0].tolist()
        ((5, 4, 3), [5.0, 5.0, 5.0, 5.0])
    """

    num_layers = 1

    def __init__(
        self,
        input_size: int,
        config: CTRNNPolicyConfig,
        *,
        stream: int,
        sigma: float | None = None,
    ) -> None:
        super().__init__()
        seeds = np.random.SeedSequence((config.seed, stream)).generate_state(2, dtype=np.uint64)
        ctrnn_config = config.ctrnn_config(input_size)
        template = CTRNN(ctrnn_config, generator=torch.Generator().manual_seed(int(seeds[0])))
        self.W, self.U, self.b = template.W, template.U, template.b
        self.input_size = input_size
        self.hidden_size = config.hidden_size
        self.config = config
        self.stream = stream
        self.activation = ACTIVATIONS[config.activation]
        self.gamma = ctrnn_config.gamma
        self.noise_gain = ctrnn_config.noise_gain
        self.sigma = check_nonnegative("sigma", config.sigma if sigma is None else sigma)
        """Noise level of :meth:`forward` (a sweep passes its own to :meth:`step`)."""
        self.rollout = 0
        """Index of the rollout being collected or learned from, part of the noise key."""
        self._fresh = torch.Generator().manual_seed(int(seeds[1]))

    def __repr__(self) -> str:
        c = self.config
        return (
            f"CTRNNCore(in={self.input_size}, hidden={self.hidden_size}, {c.activation}, "
            f"noise {c.placement}, sigma={self.sigma:g}, stream={self.stream})"
        )

    def forward(
        self,
        x: torch.Tensor,
        state: tuple[torch.Tensor, torch.Tensor],
        episode_starts: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        """Run ``L`` steps of ``N`` sequences; ``episode_starts`` is ``[L, N]`` (1 = restart)."""
        check_shape("x", x, (None, None, self.input_size))
        steps, columns = x.shape[0], x.shape[1]
        h, c = state
        check_shape("h", h, (1, columns, self.hidden_size))
        check_shape("c", c, (1, columns, self.hidden_size))
        position = c[0, :, 0]
        noise = self._sequence_noise(position, steps, x.device)
        hidden, outputs = h[0], []
        for t in range(steps):
            if episode_starts is not None:
                hidden = hidden * (1.0 - episode_starts[t]).unsqueeze(-1)
            hidden = self._update(hidden, x[t], None if noise is None else noise[t])
            outputs.append(hidden)
        c = torch.cat(((position + steps)[None, :, None], c[..., 1:]), dim=-1)
        return torch.stack(outputs), (hidden[None], c)

    def step(
        self,
        features: torch.Tensor,
        hidden: torch.Tensor,
        sigma: float | torch.Tensor = 0.0,
        noise: NoiseLike = None,
    ) -> torch.Tensor:
        """One step outside RL: the new hidden state ``[B, H]``, noise from ``noise`` at ``sigma``.

        This is the :class:`~agents.policy.Policy` path (sweeps): ``sigma`` is a float or ``[B]``
        and ``xi`` comes from ``noise`` (generator, source or the samples ``[B, H]``).
        """
        check_shape("features", features, (hidden.shape[0], self.input_size))
        scaled = scaled_noise(
            sigma, noise, (hidden.shape[0], self.hidden_size), hidden.device, gain=self.noise_gain
        )
        return self._update(hidden, features, scaled)

    def _update(
        self, hidden: torch.Tensor, features: torch.Tensor, noise: torch.Tensor | None
    ) -> torch.Tensor:
        """One CTRNN step of this core with the scaled noise ``noise`` (or none)."""
        return ctrnn_step(
            hidden,
            features,
            self.W,
            self.U,
            self.b,
            activation=self.activation,
            placement=self.config.placement,
            gamma=self.gamma,
            noise=noise,
        )

    def _sequence_noise(
        self, position: torch.Tensor, steps: int, device: torch.device
    ) -> torch.Tensor | None:
        """The scaled noise ``[L, N, H]`` of ``steps`` steps from ``position`` ``[N]`` on."""
        scale = self.sigma * self.noise_gain
        if scale == 0:
            return None
        shape = (steps, position.shape[0], self.hidden_size)
        if not self.config.replay_noise:
            return scale * torch.randn(shape, generator=self._fresh).to(device)
        positions = position.long()[None, :] + torch.arange(steps, device=device)[:, None]
        key = (self.config.seed, self.stream, self.rollout, positions)
        return scale * keyed_normal(key, self.hidden_size, device=device)
