"""train_ensemble(capture=True): the static step gives what the eager loop gives.

On the CPU the static step runs eagerly over its buffers and must give the eager loop's numbers
bit for bit (the same operations on the same values); on CUDA it is a replayed graph, held to
the eager CUDA loop within float rounding (capturable Adam computes its bias correction on the
device in float32, the eager one on the host in float64).
"""

from __future__ import annotations

import contextlib
import dataclasses
import shutil

import pytest
import torch

from agents.captured_step import StaticTrainStep, draw_member_noise
from agents.ctrnn import CTRNN, CTRNNConfig
from agents.ensemble import CTRNNEnsemble
from agents.ensemble_noise import BlockRandomSource, draw_blocks
from agents.ensemble_training import train_ensemble
from agents.run_files import load_checkpoint
from agents.runs import load_run
from agents.supervised import TrainConfig, train
from noise_envs import make_task
from noise_envs.random import RandomSource

PLACEMENTS, SIGMAS, SEEDS = ["in", "out", "in", "out"], [0.3, 0.3, 1.0, 1.0], [0, 1, 2, 3]
BASE = TrainConfig(iterations=8, batch_size=4, learning_rate=1e-2, grad_clip=0.5)
UNSTABLE_TRAINING = TrainConfig(iterations=10, batch_size=8, learning_rate=1.0, grad_clip=0.0)
"""With :func:`_unstable`, members 0 and 1 blow up at iteration 2, member 2 at 6, 3 never."""
CUDA_TOLERANCE = {"rtol": 1e-4, "atol": 1e-5}
"""Captured vs. eager on CUDA: capturable Adam's float32 bias correction, 20 iterations."""


@pytest.fixture(scope="module")
def task():
    return make_task("NoisyFunctionApprox-v0", steps=12, response_steps=4)


def _config(task, **changes) -> CTRNNConfig:
    return CTRNNConfig(
        input_size=task.obs_size, output_size=task.action_size, hidden_size=8, **changes
    )


def _unstable(count=2):
    """``count`` copies of tests/agents/test_ensemble_training.py's unstable ensemble, its task."""
    task = make_task("NoisyFunctionApprox-v0", steps=20, response_steps=5)
    config = CTRNNConfig(input_size=1, output_size=1, hidden_size=16, recurrent_gain=3.0, dt=100.0)
    return task, [CTRNNEnsemble.from_seeds(config, SEEDS) for _ in range(count)]


def _train(task, capture, *, config=None, train_config=BASE, ensemble=None, **kwargs):
    if ensemble is None:
        ensemble = CTRNNEnsemble.from_seeds(config or _config(task), SEEDS, PLACEMENTS)
    if isinstance(train_config, TrainConfig):
        kwargs.setdefault("sigmas", SIGMAS)
        kwargs.setdefault("seeds", SEEDS)
    return train_ensemble(ensemble, task, train_config, capture=capture, progress=False, **kwargs)


def _rows(history):
    """History rows without the wall-clock column."""
    return [{k: v for k, v in row.items() if k != "seconds"} for row in history]


def assert_same(a, b, path="checkpoint"):
    """Nested dicts / lists of tensors and values equal exactly (NaN equal to NaN)."""
    if isinstance(a, dict):
        assert sorted(a, key=str) == sorted(b, key=str), path
        for key in a:
            assert_same(a[key], b[key], f"{path}.{key}")
    elif isinstance(a, list | tuple):
        assert len(a) == len(b), path
        for index, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_same(x, y, f"{path}[{index}]")
    elif isinstance(a, torch.Tensor):
        assert a.dtype == b.dtype and a.device == b.device, path
        torch.testing.assert_close(a, b, rtol=0, atol=0, equal_nan=True, msg=path)
    else:
        assert a == b or (a != a and b != b), path  # NaN == NaN here


def _train_both(task, tmp_path, **kwargs):
    """The eager and the captured loop, each into its own member folders; asserts all of it
    equal (weights, histories, each folder's files and checkpoint); returns the eager result."""
    folders = {c: [tmp_path / f"{c}-{k}" for k in range(4)] for c in (False, True)}
    eager, captured = (_train(task, c, run_dirs=folders[c], **kwargs) for c in (False, True))
    assert_same_training(eager, captured)
    for mine, theirs in zip(folders[True], folders[False], strict=True):
        assert sorted(p.name for p in mine.iterdir()) == sorted(p.name for p in theirs.iterdir())
        assert_same(load_checkpoint(theirs), load_checkpoint(mine))
        assert (mine / "run.json").read_text() == (theirs / "run.json").read_text()
        assert _rows(load_run(mine).history) == _rows(load_run(theirs).history)
    return eager


def assert_same_training(eager, captured):
    """Same weights, histories and divergences, exactly."""
    assert captured.diverged == eager.diverged
    assert_same(eager.ensemble.state_dict(), captured.ensemble.state_dict(), "weights")
    for k, (mine, theirs) in enumerate(zip(captured.histories, eager.histories, strict=True)):
        assert _rows(mine) == _rows(theirs), f"member {k}"


# --- the ensemble's sequence with noise drawn already ----------------------------------------


@pytest.mark.parametrize("fused", [True, False])
def test_unroll_drawn_equals_unroll_with_member_sources(task, fused):
    """Samples drawn as the member sources draw them, scaled by gain * sigma: unroll's outputs."""
    ensemble = CTRNNEnsemble.from_seeds(_config(task), SEEDS, PLACEMENTS)
    ensemble.fused = fused
    steps, per_member, k = 7, 3, len(SEEDS)
    inputs = torch.randn(
        steps, k * per_member, task.obs_size, generator=torch.Generator().manual_seed(0)
    )
    sigma = torch.tensor(SIGMAS).repeat_interleave(per_member)
    expected = ensemble.unroll(inputs, sigma, [RandomSource.from_seed(s) for s in SEEDS])
    blocks = [RandomSource.from_seed(s) for s in SEEDS]
    noise = draw_blocks(blocks, steps, per_member, ensemble.hidden_size)
    scale = sigma.reshape(k, per_member, 1) * ensemble.configs[0].noise_gain
    assert torch.equal(ensemble.unroll_drawn(inputs, noise, scale), expected)


def test_unroll_drawn_refuses_samples_of_another_shape(task):
    ensemble = CTRNNEnsemble.from_seeds(_config(task), [0, 1])
    inputs = torch.zeros(5, 6, task.obs_size)
    with pytest.raises(ValueError, match=r"Expected `noise` of shape \[5, 2, 3, 8\], got"):
        ensemble.unroll_drawn(inputs, torch.zeros(5, 6, 8), torch.zeros(2, 3, 1))
    with pytest.raises(ValueError, match=r"`scale` must have the model's dtype"):
        ensemble.unroll_drawn(
            inputs, torch.zeros(5, 2, 3, 8), torch.zeros(2, 3, 1, dtype=torch.float64)
        )


# --- the captured loop on the CPU equals the eager loop, bit for bit -------------------------


def test_captured_training_equals_eager_training_bit_for_bit(task, tmp_path):
    """Noise in and out, two sigmas: weights, histories and every checkpoint file, exactly."""
    eager = _train_both(task, tmp_path, train_config=BASE.replace(checkpoint_every=3))
    assert eager.diverged == {} and eager.ensemble.placements == tuple(PLACEMENTS)


def test_drawn_noise_levels_equal_the_eager_loop(task, tmp_path):
    """Members with noise distributions (per row, per batch) and fixed sigmas, Yang et al.'s
    sqrt(2 / gamma) noise gain: the same draws, the same scale."""
    configs = [
        BASE.replace(sigma_dist="uniform:0,1", seed=0),
        BASE.replace(sigma=0.5, seed=1),
        BASE.replace(sigma_dist={"kind": "discrete", "levels": [0, 0.5, 1], "per": "batch"}),
        BASE.replace(sigma=0.0, seed=3),
    ]
    config = _config(task, noise_scaling="sqrt_2_over_gamma")
    eager = _train_both(task, tmp_path, train_config=configs, config=config)
    assert eager.diverged == {} and all(len(rows) == BASE.iterations for rows in eager.histories)


def test_members_at_sigma_zero_draw_no_noise_as_in_the_eager_loop(task, tmp_path):
    """All levels 0: nothing is drawn (the generators' states agree) and the static noise,
    scaled by 0, changes nothing."""
    eager = _train_both(task, tmp_path, sigmas=[0.0] * 4)
    assert eager.diverged == {} and all(len(rows) == BASE.iterations for rows in eager.histories)


def test_a_member_diverging_mid_run_is_frozen_as_in_the_eager_loop():
    """lr 1 without clipping: the same members stop at the same iterations, at the same weights."""
    task, ensembles = _unstable()
    eager, captured = (
        train_ensemble(
            ensemble, task, UNSTABLE_TRAINING, seeds=SEEDS, capture=capture, progress=False
        )
        for capture, ensemble in zip((False, True), ensembles, strict=True)
    )
    assert eager.diverged == {0: 2, 1: 2, 2: 6}  # member 3 goes on
    assert_same_training(eager, captured)


def test_a_nan_weight_stops_only_its_member(task):
    """NaN in one weight of member 1: it stops at iteration 1 untouched; the others go on."""
    results = []
    for capture in (False, True):
        ensemble = CTRNNEnsemble.from_seeds(_config(task), SEEDS, PLACEMENTS)
        with torch.no_grad():
            ensemble.W[1, 0, 0] = float("nan")
        before = ensemble.member(1).state_dict()
        results.append(_train(task, capture, ensemble=ensemble))
        assert results[-1].diverged == {1: 1}
        assert results[-1].histories[1] == []
        assert_same(before, ensemble.member(1).state_dict(), "member 1")
        assert all(len(results[-1].histories[k]) == BASE.iterations for k in (0, 2, 3))
    assert_same_training(*results)


def test_a_member_frozen_at_adams_first_step_keeps_zero_moments(task):
    """As masked_step leaves it: its gradient is set to 0 (not NaN) before Adam makes moments."""
    ensemble = CTRNNEnsemble.from_seeds(_config(task), [0, 1])
    with torch.no_grad():
        ensemble.U[1] = float("nan")
    before = {name: value.clone() for name, value in ensemble.state_dict().items()}
    trained = {name: p for name, p in ensemble.named_parameters() if p.requires_grad}
    optimizer = torch.optim.Adam(trained.values())
    episode = task.open_loop_episode(6, 0)
    step = StaticTrainStep(ensemble, optimizer, episode, grad_clip=1.0)
    step.load(episode, torch.full((6,), 0.5), [RandomSource.from_seed(s) for s in (0, 1)])
    step.run()
    assert step.read().active == [True, False]
    for name, param in trained.items():
        assert_same(before[name][1], param.detach()[1], name)
        assert not torch.equal(before[name][0], param.detach()[0]), name
        for key in ("exp_avg", "exp_avg_sq"):
            assert not optimizer.state[param][key][1].any(), (name, key)


@pytest.mark.parametrize(
    ("iterations_before", "active"), [(0, [True] * 4), (1, [False, False, True, True])]
)
def test_the_warm_up_before_capture_leaves_no_trace(iterations_before, active):
    """What capture does first, run on the CPU: warm-up iterations and their undoing, after
    which the next iteration is as without them. On one batch, again and again, lr 1 blows
    members 0 and 1 up at the second iteration and member 2 at the third: in the warm-up."""
    task = _unstable()[0]
    rows = UNSTABLE_TRAINING.batch_size * len(SEEDS)

    def train(warm_up):
        ensemble = _unstable(1)[1][0]
        optimizer = torch.optim.Adam([p for p in ensemble.parameters() if p.requires_grad], lr=1.0)
        step = StaticTrainStep(ensemble, optimizer, task.open_loop_episode(rows, 0), grad_clip=0.0)
        sources = [RandomSource.from_seed(s) for s in SEEDS]
        for iteration in range(iterations_before + 1):
            step.load(task.open_loop_episode(rows, 0), torch.zeros(rows), sources)
            if warm_up and iteration == iterations_before:
                step._warm_up(None)
            step.run()
        return ensemble.state_dict(), optimizer.state_dict()["state"], step.read()

    plain = train(False)
    assert plain[2].active == active
    assert_same(plain, train(True))


def test_resume_of_a_captured_run_is_bit_identical(task, tmp_path, monkeypatch):
    """Interrupted after the checkpoint of iteration 4 and resumed: the uninterrupted run."""
    config = dataclasses.replace(BASE, iterations=6, checkpoint_every=2)
    whole = [tmp_path / f"whole-{k}" for k in range(4)]
    parts = [tmp_path / f"part-{k}" for k in range(4)]
    _train(task, True, train_config=config, run_dirs=whole)
    calls, episodes = [0], task.open_loop_episode

    def interrupted(*args, **kwargs):
        calls[0] += 1
        if calls[0] == 5:
            raise KeyboardInterrupt
        return episodes(*args, **kwargs)

    monkeypatch.setattr(task, "open_loop_episode", interrupted)
    with pytest.raises(KeyboardInterrupt):
        _train(task, True, train_config=config, run_dirs=parts)
    monkeypatch.setattr(task, "open_loop_episode", episodes)
    assert load_run(parts[0]).iterations_done == 4
    _train(task, True, train_config=config, run_dirs=parts)
    for one, other in zip(whole, parts, strict=True):
        a, b = load_run(one), load_run(other)
        assert b.status == "complete"
        assert_same(a.model.state_dict(), b.model.state_dict(), "weights")
        assert_same(load_checkpoint(one), load_checkpoint(other))
        assert _rows(a.history) == _rows(b.history)


# --- what cannot be captured -----------------------------------------------------------------


def test_episodes_that_change_length_are_refused():
    """NoisyMultitask's batches last as long as their longest trial: no fixed program."""
    task = make_task("NoisyMultitask-v0")
    ensemble = CTRNNEnsemble.from_seeds(_config(task), [0, 1])
    config = TrainConfig(iterations=5, batch_size=4)
    with pytest.raises(ValueError, match=r"fixed shapes.*NoisyMultitask.*capture=False"):
        train_ensemble(ensemble, task, config, seeds=[0, 1], capture=True, progress=False)


def test_a_closed_loop_task_is_refused():
    task = make_task("NoisyMaze-v0")
    ensemble = CTRNNEnsemble.from_seeds(_config(task), [0, 1])
    with pytest.raises(ValueError, match=r"`capture=True` needs an open-loop task.*NoisyMaze-v0"):
        train_ensemble(ensemble, task, TrainConfig(), seeds=[0, 1], capture=True, progress=False)
    with pytest.raises(ValueError, match=r"`capture` must be True or False, got 'yes'"):
        train_ensemble(ensemble, task, TrainConfig(), seeds=[0, 1], capture="yes", progress=False)


@pytest.mark.parametrize(("threads", "size"), [(1, 16), (3, 16), (3, 5)])
def test_member_noise_drawn_side_by_side_is_draw_blocks(threads, size):
    """Members drawn in threads, each from its own generator: draw_blocks' numbers, and each
    generator ends where draw_blocks leaves it (B * N = 48: one call per member; 15: steps)."""
    steps, members, per_member = 5, 7, 3
    out = torch.full((members, steps, per_member, size), float("nan")).transpose(0, 1)
    mine = [RandomSource.from_seed(s) for s in range(members)]
    theirs = [RandomSource.from_seed(s) for s in range(members)]
    draw_member_noise(mine, out, threads)
    assert torch.equal(out, draw_blocks(theirs, steps, per_member, size))
    for a, b in zip(mine, theirs, strict=True):
        assert torch.equal(a.generator.get_state(), b.generator.get_state())
    with pytest.raises(ValueError, match=r"one source per member \(7\), got 6"):
        draw_member_noise(mine[:6], out)


def test_the_step_needs_one_noise_source_per_member(task):
    ensemble = CTRNNEnsemble.from_seeds(_config(task), [0, 1])
    optimizer = torch.optim.Adam(ensemble.parameters())
    episode = task.open_loop_episode(6, 0)
    step = StaticTrainStep(ensemble, optimizer, episode, grad_clip=1.0)
    assert repr(step) == "StaticTrainStep(K=2, T=12, B=3, N=8, eager)"
    with pytest.raises(ValueError, match=r"one source per member \(2\), got 1"):
        step.load(episode, torch.zeros(6), [RandomSource.from_seed(0)])


def test_the_step_refuses_what_its_undoing_and_checks_cannot_serve(task):
    """Its warm-up undo resets state to a fresh Adam's; later episodes are checked as the
    eager loop checks them (non-finite observations: a ValueError, not silent divergence)."""
    ensemble = CTRNNEnsemble.from_seeds(_config(task), [0, 1])
    episode = task.open_loop_episode(6, 0)
    with pytest.raises(ValueError, match=r"`optimizer` must be a torch.optim.Adam.*got SGD"):
        StaticTrainStep(
            ensemble, torch.optim.SGD(ensemble.parameters(), lr=0.1), episode, grad_clip=1.0
        )
    step = StaticTrainStep(
        ensemble, torch.optim.AdamW(ensemble.parameters()), episode, grad_clip=1.0
    )
    sources = [RandomSource.from_seed(0), RandomSource.from_seed(1)]
    broken = dataclasses.replace(episode, observations=episode.observations.clone())
    broken.observations[3, 4, 0] = float("inf")
    with pytest.raises(ValueError, match=r"`observations`.*1 infinite"):
        step.load(broken, torch.zeros(6), sources)


def test_member_noise_is_drawn_only_for_members_due():
    """``due`` False: zeros and an untouched generator, alone or side by side."""
    steps, members, per_member, size = 4, 3, 2, 8
    for threads in (1, 3):
        out = torch.full((members, steps, per_member, size), float("nan")).transpose(0, 1)
        sources = [RandomSource.from_seed(s) for s in range(members)]
        before = sources[1].generator.get_state()
        draw_member_noise(sources, out, threads, due=[True, False, True])
        assert torch.equal(out[:, 1], torch.zeros(steps, per_member, size))
        assert torch.equal(sources[1].generator.get_state(), before)
        fresh = RandomSource.from_seed(2).normal_steps(steps, per_member, size)
        assert torch.equal(out[:, 2], fresh)


# --- CUDA: the captured graph -----------------------------------------------------------------


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_the_captured_graph_equals_eager_training_on_cuda(task):
    """20 iterations, noise in and out, two sigmas: the replayed graph and the eager loop."""
    config = dataclasses.replace(BASE, iterations=20)
    eager, captured = (
        _train(task, capture, train_config=config, device="cuda") for capture in (False, True)
    )
    assert captured.diverged == eager.diverged == {}
    for name, value in eager.ensemble.state_dict().items():
        torch.testing.assert_close(captured.ensemble.state_dict()[name], value, **CUDA_TOLERANCE)
    for mine, theirs in zip(captured.histories, eager.histories, strict=True):
        for a, b in zip(mine, theirs, strict=True):
            assert a["loss"] == pytest.approx(b["loss"], rel=1e-4)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_members_diverging_inside_the_graph_stop_as_in_the_eager_loop():
    """A NaN weight (stops at iteration 1) and lr 1 blow-ups (later): same stops, same weights."""
    task, ensembles = _unstable()
    results = []
    for capture, ensemble in zip((False, True), ensembles, strict=True):
        with torch.no_grad():
            ensemble.W[3, 0, 0] = float("nan")
        results.append(
            train_ensemble(
                ensemble, task, UNSTABLE_TRAINING, seeds=SEEDS, device="cuda", capture=capture,
                progress=False,
            )
        )  # fmt: skip
    eager, captured = results
    assert captured.diverged == eager.diverged and eager.diverged[3] == 1
    for k in range(4):
        for name, value in eager.ensemble.member(k).state_dict().items():
            mine = captured.ensemble.member(k).state_dict()[name]
            torch.testing.assert_close(mine, value, rtol=1e-3, atol=1e-4, equal_nan=True)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_an_iteration_waits_for_the_device_once(task):
    """load, replay and read after capture: one host sync, read()'s (the buffers are filled
    from page-locked memory without waiting; the inputs' check is read with the outcome)."""
    ensemble = CTRNNEnsemble.from_seeds(_config(task), SEEDS, PLACEMENTS).cuda()
    optimizer = torch.optim.Adam(ensemble.parameters(), lr=1e-2, capturable=True)
    env = BlockRandomSource([RandomSource.from_seed(s) for s in SEEDS], "cuda")
    noise = [RandomSource.from_seed(100 + s, device="cuda") for s in SEEDS]
    sigma = torch.tensor(SIGMAS).repeat_interleave(BASE.batch_size)
    step = None
    for iteration in range(6):
        episode = task.open_loop_episode(len(SEEDS) * BASE.batch_size, env, "cuda")
        if step is None:
            step = StaticTrainStep(ensemble, optimizer, episode, grad_clip=1.0)
        if iteration == 0:  # the first run captures, outside the count
            step.load(episode, sigma, noise)
            step.run()
            outcome = step.read()
        else:
            with _sync_debug("warn"), pytest.warns(UserWarning) as syncs:
                step.load(episode, sigma, noise)
                step.run()
                outcome = step.read()
            assert len([w for w in syncs if "synchroniz" in str(w.message)]) == 1
        assert all(outcome.active) and outcome.inputs_finite, outcome
    assert "graph captured" in repr(step)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_a_non_capturable_optimizer_is_refused_on_cuda(task):
    ensemble = CTRNNEnsemble.from_seeds(_config(task), [0, 1]).cuda()
    episode = task.open_loop_episode(4, 0, "cuda")
    with pytest.raises(ValueError, match="capturable=True"):
        StaticTrainStep(ensemble, torch.optim.Adam(ensemble.parameters()), episode, grad_clip=1.0)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_captured_cuda_folders_hold_lone_checkpoints_and_resume(task, tmp_path):
    """A captured CUDA run's member checkpoint is a lone run's (step on the CPU, not
    capturable): the captured ensemble and a lone trainer both resume it."""
    config = BASE.replace(iterations=6, checkpoint_every=2)
    folders = [tmp_path / f"member-{k}" for k in range(4)]
    _train(task, True, train_config=config.replace(iterations=4), run_dirs=folders, device="cuda")
    checkpoint = load_checkpoint(folders[1])
    steps = [entry["step"] for entry in checkpoint["optimizer"]["state"].values()]
    assert all(step.device.type == "cpu" and float(step) == 4 for step in steps)
    assert not any(group["capturable"] for group in checkpoint["optimizer"]["param_groups"])
    shutil.copytree(folders[1], tmp_path / "lone")
    whole = _train(task, True, train_config=config, device="cuda")
    resumed = _train(task, True, train_config=config, run_dirs=folders, device="cuda")
    for name, value in whole.ensemble.state_dict().items():
        torch.testing.assert_close(resumed.ensemble.state_dict()[name], value, **CUDA_TOLERANCE)
    lone = CTRNN(_config(task, placement=PLACEMENTS[1]))
    member = config.replace(sigma=SIGMAS[1], seed=SEEDS[1])
    train(lone, task, member, run_dir=tmp_path / "lone", device="cuda", progress=False)
    for name, value in whole.ensemble.member(1).state_dict().items():
        torch.testing.assert_close(lone.state_dict()[name], value, **CUDA_TOLERANCE)


@contextlib.contextmanager
def _sync_debug(mode: str):
    previous = torch.cuda.get_sync_debug_mode()
    torch.cuda.set_sync_debug_mode(mode)
    try:
        yield
    finally:
        torch.cuda.set_sync_debug_mode(previous)
