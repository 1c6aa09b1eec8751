"""One training iteration of an ensemble as a fixed program over static buffers.

On an open-loop task every iteration of :func:`agents.ensemble_training.train_ensemble` runs the
same operations on tensors of the same shapes; only the episodes and the noise samples change.
:class:`StaticTrainStep` keeps those inputs in buffers made once and runs the step over them
(forward through the fused sequence, per-member losses, backward, per-member clipping, the
per-member finiteness guard, a masked Adam step) without reading any tensor on the host. On CUDA
the step is captured once as a CUDA graph and replayed every iteration (PyTorch's "whole network
capture": warm-up on a side stream, then ``torch.cuda.graph``); elsewhere the same function runs
eagerly. Before each run the host fills the buffers (the episodes, and the noise drawn from each
member's own generator as without capture); after it the host reads the losses, gradient norms
and active members in one transfer.
"""

from __future__ import annotations

import contextlib
import functools
import math
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import NamedTuple

import torch
from torch import nn

from agents.ctrnn import check_sequence_inputs
from agents.ensemble import CTRNNEnsemble
from agents.ensemble_noise import draw_blocks, member_draws_due
from agents.noise import sigma_column
from agents.recurrence import SequenceBuffers
from noise_envs._checks import check_finite_tensor
from noise_envs.core import OpenLoopEpisode
from noise_envs.random import RandomSource

__all__ = [
    "WARMUP_ITERATIONS",
    "StaticTrainStep",
    "StepOutcome",
    "clip_member_grad_norms",
    "draw_member_noise",
    "member_teacher_losses",
]

WARMUP_ITERATIONS = 3
"""Iterations run on a side stream before capture (PyTorch's recipe); their effect is undone."""

_CLIP_EPS = 1e-6
"""What ``torch.nn.utils.clip_grad_norm_`` adds to the norm before dividing by it."""


class StepOutcome(NamedTuple):
    """What the host reads after an iteration: one value per member, and the inputs' check.

    Attributes:
        losses: each member's teacher loss (NaN or inf where it diverged).
        grad_norms: each member's gradient norm before clipping.
        active: whether each member still trains (False from the iteration it diverged).
        inputs_finite: whether the iteration's observations were all finite.
    """

    losses: list[float]
    grad_norms: list[float]
    active: list[bool]
    inputs_finite: bool = True

    @classmethod
    def read(
        cls,
        losses: torch.Tensor,
        grad_norms: torch.Tensor,
        active: torch.Tensor,
        inputs_finite: torch.Tensor | None = None,
    ) -> StepOutcome:
        """The ``[K]`` tensors' values, copied to the host in one transfer (one device sync)."""
        rows = [losses.detach(), grad_norms.detach(), active]
        if inputs_finite is not None:
            rows.append(inputs_finite.expand_as(active))
        values = torch.stack([row.to(losses.dtype) for row in rows]).tolist()
        all_finite = inputs_finite is None or bool(values[3][0])
        return cls(values[0], values[1], [bool(alive) for alive in values[2]], all_finite)


def member_teacher_losses(
    actions: torch.Tensor, targets: torch.Tensor, masks: torch.Tensor, members: int
) -> torch.Tensor:
    """Each member's mask-weighted mean squared teacher error, ``[K]``.

    Args:
        actions: ``[T, K * B, A]``, rows grouped by member.
        targets: the teacher's targets, same shape.
        masks: the teacher's weights, same shape.
        members: K.

    Member ``k``'s value is what :meth:`noise_envs.core.OpenLoopEpisode.teacher_loss` gives its
    own rows.
    """
    steps = actions.shape[0]
    weighted = (masks * (actions - targets).square()).reshape(steps, members, -1)
    weights = masks.reshape(steps, members, -1)
    return weighted.sum((0, 2)) / weights.sum((0, 2)).clamp_min(1e-12)


def clip_member_grad_norms(params: Sequence[nn.Parameter], max_norm: float) -> torch.Tensor:
    """Clip each member's gradient to ``max_norm`` (0: no clipping); returns the norms ``[K]``.

    Member ``k``'s norm is the global 2-norm of slice ``k`` of every parameter's gradient, and
    its gradients are scaled as ``torch.nn.utils.clip_grad_norm_`` scales a lone network's.
    Nothing is read on the host.
    """
    grads = [param.grad for param in params if param.grad is not None]
    per_param = torch.stack([g.reshape(g.shape[0], -1).norm(dim=1) for g in grads])
    norms = per_param.norm(dim=0)
    limit = max_norm if max_norm > 0 else math.inf
    coef = (limit / (norms + _CLIP_EPS)).clamp(max=1.0)
    for grad in grads:
        grad.mul_(_member_rows(coef, grad))
    return norms


def draw_member_noise(
    blocks: Sequence[RandomSource],
    out: torch.Tensor,
    threads: int = 1,
    due: Sequence[bool] | None = None,
) -> None:
    """Fill ``out`` ``[T, K, B, N]`` with what ``draw_blocks(blocks, T, B, N, due=due)`` gives.

    ``out`` is a CPU tensor laid out as :func:`~agents.ensemble_noise.draw_blocks` lays out its
    result (a time-major view of member-major memory). With ``threads > 1`` that many members
    draw at once (torch releases the GIL while it samples): each draws from its own generator,
    so the numbers, and where each generator ends, are the same in any order.
    """
    steps, members, per_member, size = out.shape
    if len(blocks) != members:
        raise ValueError(f"`blocks` must hold one source per member ({members}), got {len(blocks)}")

    def draw(first: int, last: int) -> None:
        part = out[:, first:last]
        part_due = None if due is None else due[first:last]
        drawn = draw_blocks(blocks[first:last], steps, per_member, size, part, part_due)
        if drawn is not part:  # out's layout is draw_blocks', so it fills part in place
            part.copy_(drawn)

    if threads <= 1:
        draw(0, members)
    else:
        list(_draw_pool(threads).map(lambda k: draw(k, k + 1), range(members)))


@functools.cache
def _draw_pool(threads: int) -> ThreadPoolExecutor:
    """One pool per thread count for the process, its threads idle between draws."""
    return ThreadPoolExecutor(max_workers=threads, thread_name_prefix="member-noise")


def _available_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


class StaticTrainStep:
    """An ensemble's training iteration over fixed buffers, replayed as a CUDA graph on CUDA.

    The buffers' shapes are those of the first episode; every later episode must have them
    (a task whose episode length varies from batch to batch cannot be captured). The step is
    what :func:`~agents.ensemble_training.train_ensemble` does without capture, in the same
    order: each member's loss, one backward pass of their sum over the active members,
    per-member clipping, ``active &= finite(loss) & finite(norm)``, then an Adam step after
    which inactive members' weights and Adam moments are put back (a member stops exactly
    where it was). On the CPU it gives the same numbers bit for bit.

    Args:
        ensemble: the members, on their training device.
        optimizer: Adam over the ensemble's parameters (``capturable=True`` on CUDA).
        episode: the first iteration's episodes ``[T, K * B, ...]``: they fix the shapes and
            are checked once (finite), here.
        grad_clip: each member's maximal gradient norm (0: no clipping).

    Raises:
        ValueError: for episodes that do not fit the ensemble, or a non-capturable optimizer
            on CUDA.
    """

    def __init__(
        self,
        ensemble: CTRNNEnsemble,
        optimizer: torch.optim.Optimizer,
        episode: OpenLoopEpisode,
        *,
        grad_clip: float,
    ) -> None:
        device = ensemble.W.device
        if not isinstance(optimizer, torch.optim.Adam):  # _restore's fresh state is Adam's
            raise ValueError(
                f"`optimizer` must be a torch.optim.Adam (or AdamW), got {type(optimizer).__name__}"
            )
        if device.type == "cuda" and not all(g.get("capturable") for g in optimizer.param_groups):
            raise ValueError(
                "a captured step on CUDA needs an optimizer built with capturable=True (its "
                "step count stays on the GPU), e.g. torch.optim.Adam(params, capturable=True)"
            )
        k, dtype = ensemble.num_members, ensemble.W.dtype
        check_sequence_inputs(episode.observations, dtype, ensemble.input_size, rows="K * B")
        steps, rows = episode.observations.shape[:2]
        per_member = ensemble._rows_per_member("episode.observations", rows)
        self.ensemble, self.optimizer, self.grad_clip = ensemble, optimizer, grad_clip
        self.observations = _zeros_like(episode.observations, device)
        self.targets = _zeros_like(episode.targets, device)
        self.masks = _zeros_like(episode.masks, device)
        # member-major memory seen time-major, the layout draw_blocks fills in place
        by_member = torch.zeros(k, steps, per_member, ensemble.hidden_size, device=device)
        self.noise = by_member.transpose(0, 1)
        self.scale = torch.zeros(k, per_member, 1, device=device)
        self.active = torch.ones(k, dtype=torch.bool, device=device)
        self.losses = torch.zeros(k, device=device)
        self.grad_norms = torch.zeros(k, device=device)
        self._host_noise = self.noise if device.type == "cpu" else None
        # On CUDA the host's noise draws are most of an iteration's time, the GPU waiting:
        # members draw from their own generators, so they can draw side by side.
        self._draw_threads = 1 if device.type == "cpu" else min(k, _available_cpus())
        self._params = [param for group in optimizer.param_groups for param in group["params"]]
        # Memory of its own: a graph replays into the addresses it was captured with.
        self._buffers = SequenceBuffers()
        self._finite = torch.ones((), dtype=torch.bool, device=device)
        self._host_scale = torch.zeros(k, per_member, 1, pin_memory=device.type == "cuda")
        self._copies: list[torch.Tensor] = []
        self._graph: torch.cuda.CUDAGraph | None = None

    def __repr__(self) -> str:
        steps, k, per_member, n = self.noise.shape
        how = "graph captured" if self._graph is not None else "eager"
        return f"StaticTrainStep(K={k}, T={steps}, B={per_member}, N={n}, {how})"

    def load(
        self,
        episode: OpenLoopEpisode,
        sigma: torch.Tensor,
        noise: Sequence[RandomSource],
        draw_at_zero: Sequence[bool] | None = None,
    ) -> None:
        """Put one iteration's episodes and noise in the buffers.

        Args:
            episode: the episodes ``[T, K * B, ...]``, of the first episode's shapes.
            sigma: per-row noise levels ``[K * B]``, best on the CPU (checked on the host).
            noise: the K members' noise sources. Member ``k``'s is drawn from when one of its
                levels is above 0 or ``draw_at_zero[k]``, as
                :meth:`~agents.ensemble.CTRNNEnsemble.unroll` draws from a
                :class:`~agents.ensemble_noise.BlockRandomSource`.
            draw_at_zero: per member, whether its noise is drawn at levels of 0 (None: no
                member's is).

        Raises:
            ValueError: if the episodes' shapes or dtypes differ from the buffers'.
        """
        for name in ("observations", "targets", "masks"):
            self._check_fixed(name, getattr(episode, name))
        steps, k, per_member, n = self.noise.shape
        if len(noise) != k:
            raise ValueError(f"`noise` must hold one source per member ({k}), got {len(noise)}")
        scale = sigma_column(sigma, k * per_member, torch.device("cpu")).reshape(k, per_member, 1)
        if self.noise.device.type == "cpu":
            check_finite_tensor("observations", episode.observations)  # as the eager loop does
        for name in ("observations", "targets", "masks"):
            getattr(self, name).copy_(getattr(episode, name))
        if self.noise.device.type != "cpu":  # read with the outcome, so no sync here
            self._finite.copy_(torch.isfinite(self.observations).all())
        due = member_draws_due(scale, draw_at_zero or [False] * k)
        if any(due):  # else the noise is multiplied by 0 and nothing is drawn
            if self._host_noise is None:  # page-locked on CUDA, for a fast copy to the GPU
                host = torch.empty(k, steps, per_member, n, pin_memory=self.noise.is_cuda)
                self._host_noise = host.transpose(0, 1)
            draw_member_noise(noise, self._host_noise, self._draw_threads, due)
            if self._host_noise is not self.noise:
                # From page-locked memory, without waiting: read() syncs every iteration, so
                # this copy has ended before the next load() refills the host buffer.
                self.noise.copy_(self._host_noise, non_blocking=True)
        torch.mul(scale, self.ensemble.configs[0].noise_gain, out=self._host_scale)
        self.scale.copy_(self._host_scale, non_blocking=True)

    def run(self) -> None:
        """One training iteration over the buffers: a graph replay on CUDA, eager elsewhere.

        The first call on CUDA captures the graph (after warm-up iterations whose effect on
        the weights, the optimizer and the active members is undone).
        """
        if self.noise.device.type != "cuda":
            self.optimizer.zero_grad(set_to_none=True)
            self._iteration()
            return
        if self._graph is None:
            self._graph = self._capture()
        self._graph.replay()

    def read(self) -> StepOutcome:
        """The last iteration's losses, gradient norms and active members (one device sync).

        Raises:
            ValueError: if that iteration's observations held NaN or infinite values (checked
                on the device on CUDA, before the step on the CPU, as the eager loop does).
        """
        outcome = StepOutcome.read(self.losses, self.grad_norms, self.active, self._finite)
        if not outcome.inputs_finite:
            raise ValueError(
                "this iteration's episode `observations` hold NaN or infinite values; the "
                "task's inputs must be finite"
            )
        return outcome

    def _check_fixed(self, name: str, tensor: torch.Tensor) -> None:
        buffer = getattr(self, name)
        if tensor.shape != buffer.shape or tensor.dtype != buffer.dtype:
            raise ValueError(
                f"this iteration's episode `{name}` is {tuple(tensor.shape)} {tensor.dtype}, "
                f"the captured step's buffer {tuple(buffer.shape)} {buffer.dtype}: a captured "
                "step replays one program over fixed shapes, so every batch of episodes must "
                "have the first one's length and size (a task whose episode length varies "
                "with the batch, such as NoisyMultitask's trials, cannot be captured); train "
                "with capture=False"
            )

    def _iteration(self) -> None:
        """The step over the buffers; it reads no tensor on the host, so it can be captured."""
        ensemble = self.ensemble
        actions = ensemble.unroll_drawn(
            self.observations, self.noise, self.scale, buffers=self._buffers
        )
        losses = member_teacher_losses(actions, self.targets, self.masks, ensemble.num_members)
        torch.where(self.active, losses, torch.zeros_like(losses)).sum().backward()
        norms = clip_member_grad_norms(self._params, self.grad_clip)
        self.active.logical_and_(torch.isfinite(losses) & torch.isfinite(norms))
        with torch.no_grad():
            self.losses.copy_(losses)
            self.grad_norms.copy_(norms)
        self._masked_step()

    def _masked_step(self) -> None:
        """An optimizer step that leaves inactive members' weights and state as they were.

        :func:`~agents.ensemble_training.masked_step` without host reads: inactive members'
        gradients are set to 0 (not multiplied: a diverged gradient holds NaN), and after the
        step their slices of the weights and moments are put back with ``torch.where``. Moments
        that Adam makes at its first step are 0 for them (their gradient is 0).
        """
        state = self.optimizer.state
        tensors = [
            tensor
            for param in self._params
            for tensor in (param, *(v for key, v in state.get(param, {}).items() if key != "step"))
        ]
        if [copy.shape for copy in self._copies] != [tensor.shape for tensor in tensors]:
            self._copies = [torch.empty_like(tensor) for tensor in tensors]
        with torch.no_grad():
            for param in self._params:
                if param.grad is not None:
                    param.grad.masked_fill_(~_member_rows(self.active, param.grad), 0.0)
            for tensor, copy in zip(tensors, self._copies, strict=True):
                copy.copy_(tensor)
            self.optimizer.step()
            for tensor, copy in zip(tensors, self._copies, strict=True):
                tensor.copy_(torch.where(_member_rows(self.active, tensor), tensor, copy))

    def _capture(self) -> torch.cuda.CUDAGraph:
        """Warm up on a side stream, undo the warm-up, then capture one iteration."""
        self._warm_up(torch.cuda.Stream(self.noise.device))
        graph = torch.cuda.CUDAGraph()
        # gradients None now, so that the captured backward pass makes them in the graph's pool
        self.optimizer.zero_grad(set_to_none=True)
        with torch.cuda.graph(graph):
            self._iteration()
        return graph

    def _warm_up(self, stream: torch.cuda.Stream | None) -> None:
        """Run :data:`WARMUP_ITERATIONS` iterations (on ``stream`` if given), then undo them.

        They make the optimizer's state and the step's scratch memory; afterwards the weights,
        the active members and the optimizer (a fresh state: step 0, zero moments) are as before.
        """
        before = self._training_state()
        if stream is not None:  # after the copies (and the buffers' loading) are made
            stream.wait_stream(torch.cuda.current_stream(stream.device))
        with contextlib.nullcontext() if stream is None else torch.cuda.stream(stream):
            for _ in range(WARMUP_ITERATIONS):
                self.optimizer.zero_grad(set_to_none=True)
                self._iteration()
        if stream is not None:
            torch.cuda.current_stream(stream.device).wait_stream(stream)
        self._restore(before)

    def _training_state(self) -> tuple[list[torch.Tensor], list[dict], torch.Tensor]:
        """Copies of the weights, the optimizer state and the active members."""
        state = self.optimizer.state
        return (
            [param.detach().clone() for param in self._params],
            [
                {key: value.clone() for key, value in state.get(param, {}).items()}
                for param in self._params
            ],
            self.active.clone(),
        )

    def _restore(self, saved: tuple[list[torch.Tensor], list[dict], torch.Tensor]) -> None:
        """Put back what :meth:`_training_state` copied; state made since then starts at 0.

        Zero moments and step 0 are a fresh Adam's state, hence the optimizer check. Once the
        graph is captured, the optimizer's state tensors must stay the ones it holds (the graph
        replays into their memory): do not load another state into it.
        """
        weights, states, active = saved
        with torch.no_grad():
            for param, weight, before in zip(self._params, weights, states, strict=True):
                param.copy_(weight)
                for key, value in self.optimizer.state.get(param, {}).items():
                    if key in before:
                        value.copy_(before[key])
                    else:
                        value.zero_()  # Adam's fresh state: step 0, zero moments
            self.active.copy_(active)


def _member_rows(values: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """``values`` ``[K]`` shaped ``[K, 1, ...]`` to broadcast over ``like`` ``[K, ...]``."""
    return values.reshape(-1, *([1] * (like.dim() - 1)))


def _zeros_like(tensor: torch.Tensor, device: torch.device) -> torch.Tensor:
    """A contiguous buffer of ``tensor``'s shape and dtype on ``device``."""
    return torch.zeros(tensor.shape, dtype=tensor.dtype, device=device)
