r"""A CTRNN's whole sequence as one autograd node, for K member-stacked networks at once.

.. math::
    z_t = W h_{t-1} + U u_t + b + m\,\sigma\xi_t, \qquad
    h_t = (1 - \gamma) h_{t-1} + \gamma \big(f(z_t) + (1 - m)\,\sigma\xi_t\big), \qquad
    y_t = W_{out} h_t + b_{out}

with ``m = 1`` for a member whose noise is inside f and ``m = 0`` for one whose noise is outside.
Autograd would record some ten nodes per step and keep ``[T, K, B, N]`` intermediates of each
(the drive, its gradient, the gradient of the states, ...); at ensemble sizes those no longer fit
the CPU's cache, and writing them costs more than the arithmetic. This function runs the forward
loop without a graph, keeps only the states and ``f'(z_t)``, and in the backward loop accumulates
every weight's gradient step by step into ``[K, ...]`` buffers, each step's work on ``[K, B, N]``
blocks that stay in cache. The values equal autograd's up to float rounding (sums are taken in
another order).
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import torch
from torch.autograd.function import once_differentiable
from torch.nn import functional as F

from noise_envs._checks import check_choice

__all__ = ["ACTIVATIONS_WITH_SLOPE", "SequenceBuffers", "ctrnn_sequence"]


def _relu(z: torch.Tensor, slope: torch.Tensor) -> torch.Tensor:
    a = z.relu_()
    torch.sign(a, out=slope)  # 1.0 or 0.0, without gt's bool-to-float conversion
    return a


def _tanh(z: torch.Tensor, slope: torch.Tensor) -> torch.Tensor:
    a = z.tanh_()
    torch.addcmul(_one(a.dtype, a.device), a, a, value=-1.0, out=slope)  # 1 - tanh^2
    return a


@functools.cache
def _one(dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """A 0-dim 1, made once per dtype and device (not one allocation and fill per step)."""
    return torch.ones((), dtype=dtype, device=device)


def _sigmoid(z: torch.Tensor, slope: torch.Tensor) -> torch.Tensor:
    a = z.sigmoid_()
    torch.addcmul(a, a, a, value=-1.0, out=slope)  # a (1 - a)
    return a


def _softplus(z: torch.Tensor, slope: torch.Tensor) -> torch.Tensor:
    torch.sigmoid(z, out=slope)
    return F.softplus(z)


ACTIVATIONS_WITH_SLOPE: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "relu": _relu,
    "tanh": _tanh,
    "sigmoid": _sigmoid,
    "softplus": _softplus,
}
"""``f(z)`` by activation name, computed in place of ``z``, writing ``f'(z)`` into ``slope``."""


class SequenceBuffers:
    """Memory that :func:`ctrnn_sequence` writes its states and slopes into, from call to call.

    A fresh ``[T, K, B, N]`` buffer costs its page faults on every call (two of them, some
    megabytes each, at ensemble sizes). An owner that finishes each call's backward pass before
    the next call, and keeps none of its states (a training loop), can lend every call the same
    memory: the states a call returns are overwritten by the next call.
    """

    def __init__(self) -> None:
        self._held: dict[str, torch.Tensor] = {}

    def take(self, name: str, like: torch.Tensor, shape: tuple[int, ...]) -> torch.Tensor:
        """A tensor of ``shape`` with ``like``'s dtype and device, the same memory as last time."""
        held = self._held.get(name)
        if (
            held is None
            or held.shape != shape
            or held.dtype != like.dtype
            or held.device != like.device
        ):
            held = like.new_empty(shape)
            self._held[name] = held
        return held.detach()  # a tensor of its own (no autograd history), on the same memory


def ctrnn_sequence(
    inputs: torch.Tensor,
    weights: tuple[torch.Tensor, ...],
    h0: torch.Tensor,
    *,
    gamma: float,
    activation: str,
    noise: torch.Tensor | None = None,
    scale: torch.Tensor | float = 1.0,
    inside: torch.Tensor | None = None,
    sides: tuple[bool, bool] | None = None,
    buffers: SequenceBuffers | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Outputs ``[T, K, B, O]`` and states ``[T, K, B, N]`` of K CTRNNs (see the module doc).

    Time-major, so that every step reads and writes contiguous ``[K, B, ...]`` blocks.

    Args:
        inputs: ``[T, K, B, I]``.
        weights: ``(W [K, N, N], U [K, N, I], b [K, N], W_out [K, O, N], b_out [K, O])``.
        h0: initial states ``[K, B, N]``.
        gamma: ``dt / tau``.
        activation: relu, tanh, sigmoid or softplus.
        noise: noise samples ``[T, K, B, N]``, or None; they get no gradient.
        scale: what multiplies them: a float, or a tensor that broadcasts to ``[K, B, 1]``
            (``sigma`` times the noise gain, per member or per row).
        inside: ``[K]`` bool, whether each member's noise is inside f (None: all inside).
        sides: whether any member's noise is inside f and whether any is outside, where the
            caller knows them; None reads them from ``inside`` (a device sync on a GPU, which
            a captured CUDA graph cannot hold).
        buffers: memory for the states and slopes, lent by an owner that runs the backward
            pass of each call before the next (see :class:`SequenceBuffers`); None: fresh.
    """
    check_choice("activation", activation, ACTIVATIONS_WITH_SLOPE)
    scales = (None, None)
    if noise is not None:
        members = noise.shape[1]
        scale = torch.as_tensor(scale, dtype=noise.dtype, device=noise.device)
        scale = scale.expand(members, 1, 1) if scale.dim() == 0 else scale
        mask = torch.ones(members, 1, 1, dtype=noise.dtype, device=noise.device)
        if inside is not None:
            mask = inside.to(noise.dtype).reshape(-1, 1, 1)
        any_in, any_out = (bool(mask.any()), not bool(mask.all())) if sides is None else sides
        in_scale = scale * mask if any_in else None
        out_scale = scale * (1.0 - mask) if any_out else None
        scales = (in_scale, out_scale)
    return _Sequence.apply(inputs, h0, noise, *scales, gamma, activation, buffers, *weights)


class _Sequence(torch.autograd.Function):
    # Every step writes into buffers made once: a fresh [K, B, N] tensor per operation costs
    # more than the operation at these sizes (for example, 128 KiB blocks are mmap'ed afresh).
    @staticmethod
    def forward(ctx, inputs, h0, noise, in_scale, out_scale, gamma, activation, buffers, *weights):
        W, U, b, W_out, b_out = weights
        f = ACTIVATIONS_WITH_SLOPE[activation]
        steps, members, batch, _ = inputs.shape
        n = W.shape[-1]
        shape = (steps, members, batch, n)
        if buffers is None:
            states, slopes = inputs.new_empty(shape), inputs.new_empty(shape)
        else:
            states, slopes = (
                buffers.take("states", inputs, shape),
                buffers.take("slopes", inputs, shape),
            )
        # slopes are float: a bool mask costs a conversion every step
        outputs = inputs.new_empty(steps, members, batch, W_out.shape[1])
        bias, out_bias, recurrent, read = b.unsqueeze(1), b_out.unsqueeze(1), W.mT, W_out.mT
        project = _product(U.mT)
        z, h = torch.empty_like(h0), h0
        # Per-step views made at once: indexing in the loop costs more than some of its ops.
        xs, hs, ds, ys = inputs.unbind(0), states.unbind(0), slopes.unbind(0), outputs.unbind(0)
        xis = noise.unbind(0) if noise is not None else None
        lerp, baddbmm = torch.lerp, torch.baddbmm
        for t in range(steps):
            project(bias, xs[t], z)
            z.baddbmm_(h, recurrent)
            if in_scale is not None:
                z.addcmul_(xis[t], in_scale)
            a = f(z, ds[t])
            if out_scale is not None:
                a.addcmul_(xis[t], out_scale)
            h = lerp(h, a, gamma, out=hs[t])
            baddbmm(out_bias, h, read, out=ys[t])
        ctx.save_for_backward(inputs, h0, states, slopes, W, U, W_out)
        ctx.gamma = gamma
        ctx.set_materialize_grads(False)  # an unused output's gradient stays None, not zeros
        return outputs, states

    @staticmethod
    @once_differentiable  # its backward is not itself differentiable: say so if asked
    def backward(ctx, grad_outputs, grad_states):
        inputs, h0, states, slopes, W, U, W_out = ctx.saved_tensors
        gamma, needs = ctx.gamma, ctx.needs_input_grad
        steps = states.shape[0]
        # The loop runs on g_t = dL/dz_t / gamma; gamma multiplies the sums once at the end.
        grad_W = torch.zeros_like(W)
        grad_U, grad_W_out = _Accumulator(U), _Accumulator(W_out)
        grad_z_sum = torch.zeros_like(h0)
        grad_b_out = None
        if needs[12] and grad_outputs is not None:
            grad_b_out = grad_outputs.sum((0, 2))
        grad_inputs = torch.empty_like(inputs) if needs[0] else None
        carry = torch.zeros_like(h0)  # dL/dh_{t-1} through the steps from t on
        grad_h, g = torch.empty_like(h0), torch.empty_like(h0)
        read_back = _product(W_out)
        hs, ds, xs = states.unbind(0), slopes.unbind(0), inputs.unbind(0)
        previous_states = (h0, *hs[:-1])
        grad_ys = grad_outputs.unbind(0) if grad_outputs is not None else None
        grad_hs = grad_states.unbind(0) if grad_states is not None else None
        mul, baddbmm, g_t = torch.mul, torch.baddbmm, g.mT
        for t in range(steps - 1, -1, -1):
            if grad_ys is not None:
                read_back(carry, grad_ys[t], grad_h)
                grad_W_out.add(grad_ys[t], hs[t])
            else:
                grad_h.copy_(carry)
            if grad_hs is not None:
                grad_h.add_(grad_hs[t])
            mul(grad_h, ds[t], out=g)
            grad_W.baddbmm_(g_t, previous_states[t])
            grad_U.add(g, xs[t])
            grad_z_sum.add_(g)
            if grad_inputs is not None:
                torch.bmm(g, U, out=grad_inputs[t]).mul_(gamma)
            baddbmm(grad_h, g, W, beta=1.0 - gamma, alpha=gamma, out=carry)
        return (
            grad_inputs,
            carry if needs[1] else None,
            None,  # noise
            None,  # in_scale
            None,  # out_scale
            None,  # gamma
            None,  # activation
            None,  # buffers
            grad_W.mul_(gamma) if needs[8] else None,
            grad_U.result().mul_(gamma) if needs[9] else None,
            grad_z_sum.sum(1).mul_(gamma) if needs[10] else None,
            grad_W_out.result() if needs[11] else None,
            grad_b_out,
        )


def _product(
    right: torch.Tensor,
) -> Callable[[torch.Tensor, torch.Tensor, torch.Tensor], None]:
    """``out = add + left @ right`` for ``[K, B, D] @ [K, D, M]``; elementwise when D is 1.

    A batched product over a dimension of 1 is an outer product, which ``addcmul`` does several
    times faster than ``baddbmm`` (a network with one input, or one output read back).
    """
    if right.shape[1] == 1:
        return lambda add, left, out: torch.addcmul(add, left, right, out=out)
    return lambda add, left, out: torch.baddbmm(add, left, right, out=out)


class _Accumulator:
    """The sum over steps of ``left^T @ right`` ``[K, L, R]``, kept elementwise if L or R is 1.

    With one column on either side the product is an outer product per row, which ``addcmul``
    accumulates into ``[K, B, max(L, R)]`` faster than a batched product with a dimension of 1.
    """

    def __init__(self, like: torch.Tensor) -> None:
        self.like = like
        self.total = torch.zeros_like(like)
        self.rows: torch.Tensor | None = None

    def add(self, left: torch.Tensor, right: torch.Tensor) -> None:
        if 1 not in self.like.shape[1:]:
            self.total.baddbmm_(left.mT, right)
        elif self.rows is None:
            self.rows = left * right
        else:
            self.rows.addcmul_(left, right)

    def result(self) -> torch.Tensor:
        if self.rows is None:
            return self.total
        return self.rows.sum(1).reshape(self.like.shape)
