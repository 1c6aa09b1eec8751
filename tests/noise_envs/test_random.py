"""RandomSource: single, per-row and tiled modes draw the numbers their generators dictate."""

import numpy as np
import pytest
import torch

from noise_envs import RandomSource, as_random_source


def generator(seed):
    return torch.Generator().manual_seed(seed)


def test_single_generator_draws_what_torch_draws():
    """One generator: normal(B, d) equals torch.randn((B, d)) from the same seed."""
    source = RandomSource.from_seed(3)
    torch.testing.assert_close(source.normal(4, 2), torch.randn((4, 2), generator=generator(3)))


def test_repeats_tile_one_block_of_draws():
    """repeats = 3: row r * 2 + e equals row e, and the block is a plain (2, 5) draw."""
    source = RandomSource(generator(11), repeats=3)
    x = source.normal(6, 5)
    block = torch.randn((2, 5), generator=generator(11))
    for r in range(3):
        assert torch.equal(x[2 * r : 2 * r + 2], block), f"block {r} differs"


def test_repeats_apply_to_uniform_and_integers():
    """Tiling holds for every sampler, with the documented ranges."""
    source = RandomSource(generator(0), repeats=2)
    u = source.uniform(8, 3, low=-2.0, high=-1.0)
    k = source.integers(8, 50, low=3, high=6)
    assert torch.equal(u[:4], u[4:]) and torch.equal(k[:4], k[4:])
    assert u.min() >= -2.0 and u.max() < -1.0
    assert k.dtype == torch.int64 and set(k.unique().tolist()) == {3, 4, 5}


def test_per_row_generators_equal_separate_single_generators():
    """Row i of a per-row source equals a batch-1 source built on an identically seeded generator."""
    seeds = [5, 17, 99]
    rows = RandomSource([generator(s) for s in seeds])
    batched = torch.cat([rows.normal(3, 4), rows.uniform(3, 2)], dim=1)
    for i, seed in enumerate(seeds):
        single = RandomSource(generator(seed))
        expected = torch.cat([single.normal(1, 4), single.uniform(1, 2)], dim=1)
        assert torch.equal(batched[i], expected[0]), f"row {i} differs"


def test_subset_keeps_the_chosen_rows_generators():
    """subset([2, 0]) draws from generators 2 and 0, in that order."""
    source = RandomSource([generator(s) for s in (1, 2, 3)])
    drawn = source.subset([2, 0]).normal(2, 3)
    torch.testing.assert_close(drawn[0], torch.randn(3, generator=generator(3)))
    torch.testing.assert_close(drawn[1], torch.randn(3, generator=generator(1)))


def test_subset_of_a_single_generator_source_is_itself():
    """Without per-row generators there is nothing to select."""
    source = RandomSource(generator(0))
    assert source.subset([0, 1]) is source


def test_samples_are_moved_to_the_requested_device():
    """Samples land on ``device``; the meta device checks this without CUDA."""
    source = RandomSource(generator(0), device="meta")
    assert source.normal(2, 3).device.type == "meta"
    assert source.device == torch.device("meta")


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cpu_generator_gives_the_same_numbers_on_cuda():
    """Numbers come from the CPU generator, so a CUDA source matches a CPU one."""
    on_gpu = RandomSource(generator(4), device="cuda").normal(3, 2)
    assert on_gpu.device.type == "cuda"
    torch.testing.assert_close(on_gpu.cpu(), RandomSource(generator(4)).normal(3, 2))


def test_as_random_source_accepts_seeds_generators_and_sources():
    """An int seeds a fresh generator, a source passes through, a list gives per-row mode."""
    torch.testing.assert_close(as_random_source(8).normal(2), RandomSource(generator(8)).normal(2))
    source = RandomSource(generator(0))
    assert as_random_source(source) is source
    assert as_random_source([generator(0), generator(1)]).rows is not None


def test_unseeded_sources_differ():
    """Without a seed each source draws fresh entropy."""
    assert not torch.equal(RandomSource().normal(1, 8), RandomSource().normal(1, 8))


def test_float64_draws():
    """dtype is honoured and the numbers are torch's float64 ones."""
    x = RandomSource(generator(2)).normal(2, 2, dtype=torch.float64)
    assert x.dtype == torch.float64
    torch.testing.assert_close(x, torch.randn((2, 2), generator=generator(2), dtype=torch.float64))


def test_repr_names_the_mode():
    """The repr says per-row or tiled and the device."""
    assert repr(RandomSource([generator(0)] * 2)) == "RandomSource(rows=2, device=cpu)"
    assert repr(RandomSource(generator(0), repeats=3)) == "RandomSource(repeats=3, device=cpu)"


def test_batch_size_must_be_a_multiple_of_repeats():
    with pytest.raises(
        ValueError, match=r"`batch_size` \(5\) must be a multiple of `repeats` \(2\)"
    ):
        RandomSource(generator(0), repeats=2).normal(5)


@pytest.mark.parametrize("repeats", [0, -1, 1.5])
def test_repeats_must_be_a_positive_integer(repeats):
    with pytest.raises(ValueError, match="`repeats` must be an integer >= 1"):
        RandomSource(generator(0), repeats=repeats)


def test_per_row_source_needs_one_generator_per_requested_row():
    source = RandomSource([generator(0), generator(1)])
    with pytest.raises(ValueError, match="one generator per row for 2 rows, but 3 rows"):
        source.normal(3)


def test_per_row_source_refuses_repeats():
    with pytest.raises(ValueError, match="`repeats` must be 1 when one generator is given per row"):
        RandomSource([generator(0)], repeats=2)


def test_per_row_source_refuses_non_generators():
    with pytest.raises(ValueError, match=r"`generator` must be a torch\.Generator or a sequence"):
        RandomSource([generator(0), 3])


def successive(source_factory, steps, batch, *shape, dtype=torch.float32):
    source = source_factory()
    return torch.stack([source.normal(batch, *shape, dtype=dtype) for _ in range(steps)]), source


@pytest.mark.parametrize(
    ("batch", "shape", "dtype"),
    [
        (64, (32,), torch.float32),
        (2, (8,), torch.float64),
        (3, (5,), torch.float32),  # not a multiple of torch's 16-sample block
        (7, (1,), torch.float32),
        (4, (2, 3), torch.float32),
    ],
)
def test_normal_steps_equals_successive_normal_calls(batch, shape, dtype):
    """normal_steps(T, B, ...) is bitwise T calls of normal(B, ...), and leaves the same state."""
    steps_source = RandomSource.from_seed(21)
    at_once = steps_source.normal_steps(6, batch, *shape, dtype=dtype)
    expected, source = successive(lambda: RandomSource.from_seed(21), 6, batch, *shape, dtype=dtype)
    assert at_once.shape == (6, batch, *shape) and at_once.dtype == dtype
    assert torch.equal(at_once, expected)
    assert torch.equal(steps_source.normal(3), source.normal(3))


def test_normal_steps_keeps_the_per_row_and_tiled_modes():
    """Per-row generators and repeats give, step by step, what their normal calls give."""

    def rows():
        return RandomSource([generator(seed) for seed in (1, 2, 3)])

    def tiled():
        return RandomSource(generator(4), repeats=2)

    expected, _ = successive(rows, 4, 3, 16)
    assert torch.equal(rows().normal_steps(4, 3, 16), expected)
    expected, _ = successive(tiled, 4, 8, 16)
    x = tiled().normal_steps(4, 8, 16)
    assert torch.equal(x, expected) and torch.equal(x[:, :4], x[:, 4:])


def test_normal_steps_rejects_non_positive_steps():
    """Zero steps is an error that names `steps`."""
    with pytest.raises(ValueError, match="`steps` must be"):
        RandomSource.from_seed(0).normal_steps(0, 4)


def test_no_generator_means_fresh_numbers_and_an_untouched_global_generator():
    """RandomSource(None) seeds a generator of its own: two such sources differ, and torch's
    global generator gives after them exactly what it would have given without them."""
    torch.manual_seed(7)
    expected = torch.rand(3)
    torch.manual_seed(7)
    first, second = RandomSource(None), as_random_source(None)
    assert (
        first.generator is not None
        and first.generator.initial_seed() != second.generator.initial_seed()
    )
    assert not torch.equal(first.normal(4, 8), second.normal(4, 8))
    assert torch.equal(torch.rand(3), expected)


@pytest.mark.parametrize(
    ("generator_value", "shown"),
    [
        (1.5, r"1\.5 \(float\)"),
        (True, r"True \(bool\)"),
        ("7", r"'7' \(str\)"),
        (object(), r"<object object at .*\(object\)"),
    ],
)
def test_as_random_source_refuses_what_is_not_a_seed_or_generator(generator_value, shown):
    """A float, a bool, a string...: one ValueError naming `generator`, the value and what is allowed."""
    with pytest.raises(ValueError, match=rf"`generator` must be an integer seed, .*got {shown}"):
        as_random_source(generator_value)


def test_per_row_generators_must_all_be_generators():
    """A list holding a seed among generators is refused, naming `generator`."""
    with pytest.raises(ValueError, match=r"`generator` must be a torch.Generator or a sequence"):
        RandomSource([generator(0), 1])


def test_numpy_integer_seed_draws_what_the_int_seed_draws():
    """np.int64(5) is the seed 5 (numpy seeds are seeds, unlike floats and bools)."""
    torch.testing.assert_close(
        as_random_source(np.int64(5)).normal(3, 2), torch.randn((3, 2), generator=generator(5))
    )
