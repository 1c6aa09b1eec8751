"""Training refuses, up front, an iteration whose BPTT graph would not fit in memory."""

import pytest
import torch

from agents import CTRNN, CTRNNConfig, TrainConfig, train
from agents.supervised import bptt_bytes
from noise_envs import make_task
from noise_envs._memory import MEMORY_LIMIT_ENV


def ctrnn(task, hidden_size):
    config = CTRNNConfig(
        input_size=task.obs_size, output_size=task.action_size, hidden_size=hidden_size
    )
    return CTRNN(config, generator=torch.Generator().manual_seed(0))


def test_a_maze_of_size_400_is_refused_before_anything_is_written(tmp_path):
    """Horizon 455,100 steps x 128 rows: far over 8 GiB; the message names the options."""
    task = make_task("NoisyMaze-v0", size=400)
    assert task.horizon == 455_100
    folder = tmp_path / "run"
    with pytest.raises(
        ValueError,
        match=r"closed-loop BPTT .* horizon is 455,100 steps; `batch_size` = 128 would need .*"
        r"GiB.*maze `size` or `max_steps`.*`hidden_size`",
    ):
        train(ctrnn(task, 64), task, TrainConfig(iterations=1), run_dir=folder, progress=False)
    assert not folder.exists()


def test_the_estimate_by_hand_and_the_limit_at_it(tmp_path, monkeypatch):
    """Regulator, 4 units, 1 input and 1 output: 16 * 4 + 16 * 2 + 64 = 160 bytes a row-step;
    a limit of exactly the estimate trains, one byte less refuses."""
    task = make_task("NoisyRegulator-v0", steps=6, settle_steps=2)
    model = ctrnn(task, 4)
    estimate = bptt_bytes(model, task, 8)
    assert estimate == 8 * task.horizon * 160
    config = TrainConfig(iterations=1, batch_size=8)
    monkeypatch.setenv(MEMORY_LIMIT_ENV, str(estimate - 1))
    with pytest.raises(
        ValueError,
        match=rf"open-loop BPTT .* `batch_size` = 8 would need about "
        rf"{estimate:,} bytes",
    ):
        train(model, task, config, progress=False)
    monkeypatch.setenv(MEMORY_LIMIT_ENV, str(estimate))
    assert train(model, task, config, progress=False).iterations_done == 1


@pytest.mark.parametrize("hidden_size", [16, 128])
def test_the_estimate_covers_what_autograd_keeps_in_the_maze(hidden_size):
    """The storage autograd saves for a closed-loop maze iteration (each storage once) is under
    the estimate, and the estimate is at most 4 times it."""
    task = make_task("NoisyMaze-v0", max_steps=20)
    model = ctrnn(task, hidden_size)
    seen, total = set(), [0]

    def pack(tensor):
        storage = tensor.untyped_storage()
        if storage.data_ptr() not in seen:
            seen.add(storage.data_ptr())
            total[0] += storage.nbytes()
        return tensor

    from agents.rollout import teacher_loss

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        teacher_loss(model, task, 16, sigma=0.5, env_rng=0, noise=torch.Generator())
    params = sum(p.numel() * p.element_size() for p in model.parameters())
    kept = total[0] - params  # the parameters are not per step
    assert kept <= bptt_bytes(model, task, 16) <= 4 * kept
