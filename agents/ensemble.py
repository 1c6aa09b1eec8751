"""K CTRNNs of one architecture as one module: stacked ``[K, ...]`` weights, one program.

At the sizes this field uses (16-256 units) a CTRNN step is bound by per-operation overhead, not
arithmetic; stepping K networks with batched matrix products (``torch.baddbmm``) costs about as
many operations as stepping one. Each member keeps its own initial weights, its own noise
placement (inside or outside f) and, in training, its own noise level and random streams.

Rows are grouped by member: with ``K`` members and ``B`` rows per member, rows
``k * B .. (k + 1) * B - 1`` of every input, state, sigma and output belong to member ``k``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import torch
from torch import nn

from agents.ctrnn import CTRNN, READOUTS, CTRNNConfig, check_sequence_inputs
from agents.ensemble_noise import BlockRandomSource, draw_blocks, member_draws_due, member_sigma
from agents.noise import (
    ACTIVATIONS,
    PLACEMENTS,
    NoiseLike,
    check_model_input,
    scaled_noise,
    sigma_column,
)
from agents.recurrence import SequenceBuffers, ctrnn_sequence
from noise_envs._checks import check_choice, check_shape, check_sigma
from noise_envs.random import RandomSource, as_random_source

__all__ = [
    "MEMBER_FIELDS",
    "BlockRandomSource",
    "CTRNNEnsemble",
    "check_architecture",
    "member_sigma",
]

MEMBER_FIELDS = ("placement", "recurrent_gain", "recurrent_init", "recurrent_scale")
"""CTRNN options that may differ between members (the noise placement and how W starts); every
other option is the shared architecture."""

_PARAMETERS = ("W", "U", "b", "W_out", "b_out", "h0")
"""The CTRNN's parameters, in its registration order (the order its optimizer state uses)."""

MemberNoise = NoiseLike | Sequence[RandomSource | torch.Generator]
"""Noise for an ensemble: one source for all rows, the samples, or one source per member."""


class CTRNNEnsemble(nn.Module):
    """K CTRNNs of one architecture with stacked parameters ``[K, ...]``, run as one program.

    Member ``k`` is initialised exactly as ``CTRNN(configs[k], generators[k])`` is, so an
    ensemble built from the seeds of K runs starts from their weights. Members share every
    :class:`~agents.ctrnn.CTRNNConfig` option except :data:`MEMBER_FIELDS` (noise placement and
    how the recurrent weights start). Speaks :class:`~agents.policy.Policy` and
    :class:`~agents.policy.SequencePolicy` with rows grouped by member (see the module doc);
    ``noise`` may be one source for all rows, the samples, or a sequence of K sources (member
    ``k``'s rows drawn from source ``k``, as :class:`BlockRandomSource` does).

    Example:
        >>> config = CTRNNConfig(input_size=1, output_size=1, hidden_size=8)
        >>> ensemble = CTRNNEnsemble.from_seeds(config, seeds=[0, 1], placements=["in", "out"])
        >>> y, h = ensemble(torch.zeros(5, 2 * 3, 1), sigma=0.1, noise=[0, 1])
        >>> tuple(y.shape), tuple(h.shape), ensemble.num_members
        ((5, 6, 1), (5, 6, 8), 2)
    """

    def __init__(
        self,
        configs: Sequence[CTRNNConfig],
        generators: Sequence[torch.Generator | None] | None = None,
    ) -> None:
        super().__init__()
        configs = tuple(configs)
        if not configs:
            raise ValueError("`configs` must hold at least one CTRNNConfig (K >= 1), got none")
        if generators is not None and len(generators) != len(configs):
            raise ValueError(
                f"`generators` must have one entry per member ({len(configs)}), "
                f"got {len(generators)}"
            )
        check_architecture(configs)
        gens = list(generators) if generators is not None else [None] * len(configs)
        members = [CTRNN(config, gen) for config, gen in zip(configs, gens, strict=True)]
        self.configs = configs
        for name in _PARAMETERS:
            stacked = torch.stack([getattr(m, name).detach() for m in members])
            requires_grad = getattr(members[0], name).requires_grad
            setattr(self, name, nn.Parameter(stacked, requires_grad=requires_grad))
        inside = torch.tensor([c.placement == "in" for c in configs])
        self.register_buffer("inside", inside[:, None, None].float(), persistent=False)
        self.activation = ACTIVATIONS[configs[0].activation]
        self.training_buffers = SequenceBuffers()
        """Memory the training loop lends the fused recurrence, kept from call to call."""
        self.fused = True
        """Run sequences through the one-node recurrence (False: autograd op by op)."""
        self._noise_buffer: torch.Tensor | None = None

    @classmethod
    def from_seeds(
        cls,
        config: CTRNNConfig,
        seeds: Sequence[int],
        placements: Sequence[str] | None = None,
    ) -> CTRNNEnsemble:
        """Members built from ``config`` with initial weights seeded like ``train_run`` seeds them.

        Args:
            config: the shared architecture (and the placement when ``placements`` is None).
            seeds: one seed per member; member ``k`` starts as
                ``CTRNN(config_k, torch.Generator().manual_seed(seeds[k]))``.
            placements: one noise placement per member ("in" or "out"), or None for
                ``config.placement`` everywhere.
        """
        seeds = list(seeds)
        if placements is None:
            placements = [config.placement] * len(seeds)
        placements = list(placements)
        if len(placements) != len(seeds):
            raise ValueError(
                f"`placements` and `seeds` must have the same length (one per member), got "
                f"{len(placements)} placements and {len(seeds)} seeds"
            )
        for placement in placements:
            check_choice("placements", placement, PLACEMENTS)
        configs = [dataclasses.replace(config, placement=p) for p in placements]
        generators = [torch.Generator().manual_seed(int(seed)) for seed in seeds]
        return cls(configs, generators)

    @classmethod
    def from_members(cls, members: Sequence[CTRNN]) -> CTRNNEnsemble:
        """An ensemble holding copies of ``members``' configs and weights."""
        members = list(members)
        for index, member in enumerate(members):
            if not isinstance(member, CTRNN):
                raise ValueError(f"`members[{index}]` must be a CTRNN, got {type(member).__name__}")
        ensemble = cls([member.config for member in members])
        for index, member in enumerate(members):
            ensemble.set_member(index, member)
        return ensemble.to(members[0].W.device) if members else ensemble

    @property
    def num_members(self) -> int:
        """The number of members K."""
        return len(self.configs)

    @property
    def placements(self) -> tuple[str, ...]:
        """Each member's noise placement."""
        return tuple(config.placement for config in self.configs)

    @property
    def hidden_size(self) -> int:
        """Units per member N."""
        return self.configs[0].hidden_size

    @property
    def input_size(self) -> int:
        """Input length per member I."""
        return self.configs[0].input_size

    @property
    def output_size(self) -> int:
        """Output length per member O."""
        return self.configs[0].output_size

    def __repr__(self) -> str:
        c = self.configs[0]
        counts = {p: self.placements.count(p) for p in PLACEMENTS if p in self.placements}
        noise = ", ".join(f"{n} noise {p}" for p, n in counts.items())
        return (
            f"CTRNNEnsemble(K={self.num_members}, in={c.input_size}, hidden={c.hidden_size}, "
            f"out={c.output_size}, {c.activation}, {noise}, gamma={c.gamma:g}, {c.noise_scaling})"
        )

    def member(self, index: int) -> CTRNN:
        """Member ``index`` as a plain :class:`~agents.ctrnn.CTRNN` (a copy of its weights)."""
        index = self._check_index(index)
        model = CTRNN(self.configs[index]).to(self.W.device)
        with torch.no_grad():
            for name in _PARAMETERS:
                getattr(model, name).copy_(getattr(self, name)[index])
        return model

    def set_member(self, index: int, model: CTRNN) -> None:
        """Put ``model``'s weights (and noise placement) in place of member ``index``."""
        index = self._check_index(index)
        if not isinstance(model, CTRNN):
            raise ValueError(f"`model` must be a CTRNN, got {type(model).__name__}")
        configs = list(self.configs)
        configs[index] = model.config
        check_architecture(configs)
        self.configs = tuple(configs)
        with torch.no_grad():
            for name in _PARAMETERS:
                getattr(self, name)[index].copy_(getattr(model, name))
            self.inside[index] = float(model.config.placement == "in")

    def initial_state(self, batch_size: int, device: torch.device | str = "cpu") -> torch.Tensor:
        """The hidden states ``[K * B, N]`` of ``batch_size = K * B`` rows grouped by member."""
        per_member = self._rows_per_member("batch_size", batch_size)
        return self.h0.to(device).repeat_interleave(per_member, dim=0)

    def readout(self, h: torch.Tensor) -> torch.Tensor:
        """Outputs ``[K, R, O]`` for member-stacked states ``[K, R, N]``."""
        z = torch.baddbmm(self.b_out.unsqueeze(1), h, self.W_out.transpose(1, 2))
        return READOUTS[self.configs[0].readout](z)

    def step(
        self,
        obs: torch.Tensor,
        state: torch.Tensor,
        sigma: float | torch.Tensor = 0.0,
        noise: MemberNoise = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """One step of every member: outputs ``[K * B, O]`` and new states ``[K * B, N]``.

        Args:
            obs: inputs ``[K * B, I]``, grouped by member.
            state: hidden states ``[K * B, N]``.
            sigma: noise level, a float or ``[K * B]`` (see :func:`member_sigma`).
            noise: one source for all rows, ``xi`` itself ``[K * B, N]``, or K sources.
        """
        k, n = self.num_members, self.hidden_size
        # Not checked for NaN, unlike CTRNN.step: in a closed loop, a diverged member's rows of
        # obs and state may overflow, which the trainer's per-member guard handles.
        check_model_input("obs", obs, self.W.dtype, finite=False)
        check_model_input("state", state, self.W.dtype, finite=False)
        rows = state.shape[0]
        per_member = self._rows_per_member("state", rows)
        check_shape("obs", obs, (rows, self.input_size))
        check_shape("state", state, (rows, n))
        scaled = self._scaled_noise(sigma, noise, rows, obs.device, steps=None)
        h = state.reshape(k, per_member, n)
        pre = torch.baddbmm(self.b.unsqueeze(1), obs.reshape(k, per_member, -1), self.U.mT)
        pre = torch.baddbmm(pre, h, self.W.mT)
        rate = self._rate(pre, None if scaled is None else scaled.reshape(k, per_member, n))
        h = torch.lerp(h, rate, self.configs[0].gamma)
        return self.readout(h).reshape(rows, -1), h.reshape(rows, n)

    def forward(
        self,
        inputs: torch.Tensor,
        sigma: float | torch.Tensor = 0.0,
        noise: MemberNoise | int = None,
        h0: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Run sequences: inputs ``[T, K * B, I]`` -> outputs ``[T, K * B, O]``, states ``[T, K * B, N]``.

        The trajectory :meth:`step` gives step by step with the same noise (up to float
        rounding); as in :meth:`agents.ctrnn.CTRNN.forward`, the input drive and every step's
        noise are made at once. The time loop is one autograd node
        (:func:`~agents.recurrence.ctrnn_sequence`) unless ``fused`` is false.
        """
        outputs, hidden = self._sequence(inputs, sigma, noise, h0)
        steps, rows = inputs.shape[:2]
        return outputs.reshape(steps, rows, -1), hidden.reshape(steps, rows, -1)

    def unroll(
        self,
        inputs: torch.Tensor,
        sigma: float | torch.Tensor = 0.0,
        noise: MemberNoise = None,
        *,
        buffers: SequenceBuffers | None = None,
    ) -> torch.Tensor:
        """Outputs ``[T, K * B, O]`` for inputs ``[T, K * B, I]`` (see :meth:`forward`).

        ``buffers``: memory the fused recurrence may reuse from call to call, for a caller that
        runs each call's backward pass before the next (see
        :class:`~agents.recurrence.SequenceBuffers`).
        """
        outputs = self._sequence(inputs, sigma, noise, None, buffers)[0]
        return outputs.reshape(*inputs.shape[:2], -1)

    def unroll_drawn(
        self,
        inputs: torch.Tensor,
        noise: torch.Tensor,
        scale: torch.Tensor,
        *,
        buffers: SequenceBuffers | None = None,
    ) -> torch.Tensor:
        """Outputs ``[T, K * B, O]`` for inputs ``[T, K * B, I]`` and member noise drawn already.

        The trajectory :meth:`unroll` gives with member sources whose samples are ``noise``
        ``[T, K, B, N]`` (as :func:`~agents.ensemble_noise.draw_blocks` lays them out) and the
        scale ``gain * sigma`` ``[K, B, 1]``. Only shapes and dtypes are checked, never values,
        so nothing waits for the device and the call can be captured in a CUDA graph: check the
        inputs' values once beforehand (a zero scale gives no noise).
        """
        k, n = self.num_members, self.hidden_size
        check_sequence_inputs(inputs, self.W.dtype, self.input_size, rows="K * B", finite=False)
        steps, rows = inputs.shape[:2]
        per_member = self._rows_per_member("inputs", rows)
        for name, tensor, shape in (
            ("noise", noise, (steps, k, per_member, n)),
            ("scale", scale, (k, per_member, 1)),
        ):
            check_shape(name, check_model_input(name, tensor, self.W.dtype, finite=False), shape)
        h = self.initial_state(rows, inputs.device).reshape(k, per_member, n)
        x = inputs.reshape(steps, k, per_member, -1)
        outputs = self._recurrence(x, h, noise, scale, buffers)[0]
        return outputs.reshape(steps, rows, -1)

    def _sequence(
        self,
        inputs: torch.Tensor,
        sigma: float | torch.Tensor,
        noise: MemberNoise | int,
        h0: torch.Tensor | None,
        buffers: SequenceBuffers | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Outputs ``[T, K, B, O]`` and states ``[T, K, B, N]``."""
        check_sequence_inputs(inputs, self.W.dtype, self.input_size, rows="K * B")
        k, n = self.num_members, self.hidden_size
        steps, rows = inputs.shape[:2]
        per_member = self._rows_per_member("inputs", rows)
        h = self.initial_state(rows, inputs.device) if h0 is None else h0
        check_shape("h0", h, (rows, n))
        if isinstance(noise, int) and not isinstance(noise, bool):
            noise = as_random_source(noise, inputs.device)
        xi, scale = self._member_noise(sigma, noise, steps, per_member, inputs.device)
        h = h.reshape(k, per_member, n)
        x = inputs.reshape(steps, k, per_member, -1)  # time-major, rows grouped by member
        return self._recurrence(x, h, xi, scale, buffers)

    def _recurrence(
        self,
        x: torch.Tensor,
        h: torch.Tensor,
        xi: torch.Tensor | None,
        scale: float | torch.Tensor,
        buffers: SequenceBuffers | None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Outputs ``[T, K, B, O]`` and states ``[T, K, B, N]`` for inputs ``[T, K, B, I]``.

        ``h``: initial states ``[K, B, N]``; ``xi``: samples ``[T, K, B, N]`` or None, scaled
        by ``scale`` (a float or ``[K, B, 1]``). Reads no tensor's values on the host.
        """
        c = self.configs[0]
        if self.fused:
            weights = (self.W, self.U, self.b, self.W_out, self.b_out)
            inside = self.inside.reshape(-1) > 0
            outputs, hidden = ctrnn_sequence(
                x,
                weights,
                h,
                gamma=c.gamma,
                activation=c.activation,
                noise=xi,
                scale=scale,
                inside=inside,
                sides=("in" in self.placements, "out" in self.placements),
                buffers=buffers,
            )
            return READOUTS[c.readout](outputs), hidden  # the sequence's outputs are linear
        drive = torch.einsum("tkbi,kni->tkbn", x, self.U) + self.b.unsqueeze(1)
        noise_in, noise_out = self._split_noise(None if xi is None else xi * scale)
        if noise_in is not None:
            drive = drive + noise_in
        hidden = self._eager_recurrence(drive, h, noise_out)
        outputs = torch.einsum("tkbn,kon->tkbo", hidden, self.W_out) + self.b_out.unsqueeze(1)
        return READOUTS[c.readout](outputs), hidden

    def _eager_recurrence(
        self, drive: torch.Tensor, h: torch.Tensor, noise_out: torch.Tensor | None
    ) -> torch.Tensor:
        """The time loop recorded op by op by autograd: states ``[T, K, B, N]``."""
        drives = drive.unbind(0)
        outside = noise_out.unbind(0) if noise_out is not None else None
        recurrent, gamma, f = self.W.mT, self.configs[0].gamma, self.activation
        states = []
        for t in range(len(drives)):
            rate = f(torch.baddbmm(drives[t], h, recurrent))
            if outside is not None:
                rate = rate + outside[t]
            h = torch.lerp(h, rate, gamma)
            states.append(h)
        return torch.stack(states)

    def _rate(self, pre: torch.Tensor, scaled: torch.Tensor | None) -> torch.Tensor:
        """``f(pre + noise)`` for noise-in members, ``f(pre) + noise`` for noise-out ones."""
        noise_in, noise_out = self._split_noise(scaled)
        rate = self.activation(pre if noise_in is None else pre + noise_in)
        return rate if noise_out is None else rate + noise_out

    def _split_noise(
        self, scaled: torch.Tensor | None
    ) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """The noise ``[T, K, B, N]`` added inside f and outside it, each or None."""
        if scaled is None:
            return None, None
        placements = set(self.placements)
        if placements == {"in"}:
            return scaled, None
        if placements == {"out"}:
            return None, scaled
        return scaled * self.inside, scaled * (1.0 - self.inside)

    def _member_noise(
        self,
        sigma: float | torch.Tensor,
        noise: MemberNoise,
        steps: int,
        per_member: int,
        device: torch.device,
    ) -> tuple[torch.Tensor | None, float | torch.Tensor]:
        """Samples ``xi`` ``[T, K, B, N]`` and the scale ``gain * sigma``, ``[K, B, 1]`` or a float.

        None when no noise is due. Member sources draw their blocks straight into this layout
        and the scale ``gain * sigma`` is applied in the time loop; one source or samples
        ``[T, K * B, N]`` go through :func:`~agents.noise.scaled_noise` as for one CTRNN.
        """
        k, n, gain = self.num_members, self.hidden_size, self.configs[0].noise_gain
        if isinstance(noise, Sequence) and not isinstance(noise, torch.Tensor):
            noise = self._block_source(noise, device)
        if not isinstance(noise, BlockRandomSource) or len(noise.blocks) != k:
            scaled = scaled_noise(sigma, noise, (k * per_member, n), device, gain=gain, steps=steps)
            if scaled is None:
                return None, 1.0
            return scaled.reshape(steps, k, per_member, n), 1.0
        due = None  # every member draws
        if isinstance(sigma, torch.Tensor) and sigma.dim() > 0:
            scale = sigma_column(sigma, k * per_member, device).reshape(k, per_member, 1)
            due = member_draws_due(scale, noise.draw_at_zero)
            if not any(due):
                return None, 1.0
            if gain != 1.0:
                scale = scale * gain
        else:
            scale = float(check_sigma(float(sigma))) * gain
            if scale == 0:
                return None, 1.0
        # The samples are read only inside the forward pass, never saved for backward, so one
        # buffer serves every call (a fresh one per call costs its page faults every time).
        self._noise_buffer = draw_blocks(
            noise.blocks, steps, per_member, n, self._noise_buffer, due=due
        )
        return self._noise_buffer.to(device), scale

    def _block_source(self, noise: Sequence, device: torch.device) -> BlockRandomSource:
        if len(noise) != self.num_members:
            raise ValueError(
                f"`noise` must be one source for all rows, the samples, or one source per "
                f"member ({self.num_members}), got a sequence of {len(noise)}"
            )
        return BlockRandomSource(noise, device)

    def _scaled_noise(
        self,
        sigma: float | torch.Tensor,
        noise: MemberNoise,
        rows: int,
        device: torch.device,
        steps: int | None,
    ) -> torch.Tensor | None:
        if isinstance(noise, Sequence) and not isinstance(noise, torch.Tensor):
            noise = self._block_source(noise, device)
        k = self.num_members
        if steps is None and isinstance(noise, BlockRandomSource) and len(noise.blocks) == k:
            # member by member, drawn only where due, as _member_noise draws a sequence's
            xi, scale = self._member_noise(sigma, noise, 1, rows // k, device)
            return None if xi is None else (xi[0] * scale).reshape(rows, self.hidden_size)
        gain = self.configs[0].noise_gain
        return scaled_noise(sigma, noise, (rows, self.hidden_size), device, gain=gain, steps=steps)

    def _rows_per_member(self, name: str, rows: int) -> int:
        if rows < 1 or rows % self.num_members:
            raise ValueError(
                f"`{name}` has {rows} rows; an ensemble of {self.num_members} members needs a "
                f"positive multiple of {self.num_members} (rows grouped by member)"
            )
        return rows // self.num_members

    def _check_index(self, index: int) -> int:
        k = self.num_members
        if isinstance(index, bool) or not isinstance(index, int) or not -k <= index < k:
            raise ValueError(f"`index` must be an integer in [0, {k}), got {index!r}")
        return index % k


def check_architecture(configs: Sequence[CTRNNConfig]) -> None:
    """Raise ValueError unless ``configs`` are CTRNNConfigs of one architecture.

    They may differ only in :data:`MEMBER_FIELDS`; the message names the first member and
    option that differ from member 0.
    """
    for index, config in enumerate(configs):
        if not isinstance(config, CTRNNConfig):
            raise ValueError(
                f"`configs[{index}]` must be a CTRNNConfig, got {type(config).__name__}"
            )
    first = _architecture(configs[0])
    for index, config in enumerate(configs[1:], start=1):
        other = _architecture(config)
        for key in first:
            if first[key] != other[key]:
                raise ValueError(
                    f"members must share one architecture (all options but {list(MEMBER_FIELDS)}"
                    f"): member {index} has {key}={other[key]!r}, member 0 has {key}={first[key]!r}"
                )


def _architecture(config: CTRNNConfig) -> dict[str, object]:
    return {k: v for k, v in config.to_dict().items() if k not in MEMBER_FIELDS}
