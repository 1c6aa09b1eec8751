"""Memory reused from call to call: the same numbers as fresh memory, on the same memory."""

from __future__ import annotations

import pytest
import torch

from agents.ensemble_noise import draw_blocks
from agents.recurrence import SequenceBuffers, ctrnn_sequence
from noise_envs.random import RandomSource

K, T, B, N, GAMMA = 3, 6, 4, 8, 0.1


def _case(seed: int):
    generator = torch.Generator().manual_seed(seed)

    def randn(*shape):
        return torch.randn(*shape, generator=generator).requires_grad_()

    weights = (randn(K, N, N), randn(K, N, 1), randn(K, N), randn(K, 1, N), randn(K, 1))
    noise = torch.randn(T, K, B, N, generator=generator)
    return randn(T, K, B, 1), randn(K, B, N), weights, noise


def _run(seed: int, buffers: SequenceBuffers | None):
    inputs, h0, weights, noise = _case(seed)
    outputs, states = ctrnn_sequence(
        inputs, weights, h0, gamma=GAMMA, activation="relu", noise=noise, buffers=buffers
    )
    leaves = (inputs, h0, *weights)
    grads = torch.autograd.grad(outputs.square().sum() + states.sin().sum(), leaves)
    return outputs.detach().clone(), states.detach().clone(), grads, states.data_ptr()


def test_lent_buffers_give_the_values_and_gradients_of_fresh_memory():
    buffers = SequenceBuffers()
    pointers = []
    for seed in (0, 1):  # the second call overwrites the first one's memory
        *lent, pointer = _run(seed, buffers)
        *fresh, _ = _run(seed, None)
        pointers.append(pointer)
        assert torch.equal(lent[0], fresh[0]) and torch.equal(lent[1], fresh[1])
        for got, want in zip(lent[2], fresh[2], strict=True):
            assert torch.equal(got, want)
    assert pointers[0] == pointers[1]


def test_buffers_of_another_shape_or_dtype_are_new_memory():
    buffers, like = SequenceBuffers(), torch.zeros(1)
    first = buffers.take("states", like, (2, 3))
    assert buffers.take("states", like, (2, 3)).data_ptr() == first.data_ptr()
    assert buffers.take("states", like, (3, 2)).shape == (3, 2)
    assert buffers.take("states", like.double(), (3, 2)).dtype == torch.float64
    assert buffers.take("slopes", like, (3, 2)).data_ptr() != first.data_ptr()


@pytest.mark.parametrize("size", [8, 5])  # 4 x 8 = 32 rows of 16 in one call; 4 x 5 = 20 not
def test_drawn_blocks_are_each_members_step_by_step_stream(size):
    seeds = (3, 4)
    sources = [RandomSource.from_seed(seed) for seed in seeds]
    xi = draw_blocks(sources, T, B, size)
    drawn = xi.clone()
    again = draw_blocks(sources, T, B, size, out=xi)
    assert again.data_ptr() == xi.data_ptr()  # the memory is reused
    for k, seed in enumerate(seeds):
        alone = RandomSource.from_seed(seed)
        first, second = alone.normal_steps(T, B, size), alone.normal_steps(T, B, size)
        assert torch.equal(drawn[:, k], first) and torch.equal(again[:, k], second)
        # each member's generator ends where its lone calls leave it
        assert torch.equal(sources[k].normal(2), alone.normal(2))
