"""NoisyMultitask-v0: encodings, targets, masks, task rules and perf against values from YANG19.md."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch

from noise_envs import MultitaskConfig, MultitaskTask, make_task
from noise_envs.multitask_trials import ALIASES, NEVER, TASK_NAMES

RING = 32
FIX_IN, RING1, RING2, RULE = 0, 1, 1 + RING, 1 + 2 * RING
UNIT = 2 * math.pi / RING  # 11.25 degrees between preferred directions


def trial(task_name: str, **fields) -> tuple[MultitaskTask, object]:
    """A batch-1 noise-free state of ``task_name`` with some trial fields set by hand."""
    task = MultitaskTask(tasks=task_name, obs_noise=0.0)
    state, _ = task.reset(1, generator=0)
    tensors = {}
    for name, value in fields.items():
        like = getattr(state, name)
        tensors[name] = torch.as_tensor(value, dtype=like.dtype).reshape(like.shape)
    return task, dataclasses.replace(state, **tensors)


def at_step(state, t: int):
    return dataclasses.replace(state, t=torch.tensor([t]))


def many(task_names, batch=4000, seed=0, **options):
    task = MultitaskTask(tasks=task_names, obs_noise=0.0, **options)
    state, _ = task.reset(batch, generator=seed)
    return task, state


# Encoding ---------------------------------------------------------------------------------------


def test_sizes_match_yang():
    """85 inputs (1 + 2 x 32 + 20), 33 outputs, dt 20 ms, Yang's input noise by default."""
    task = make_task("NoisyMultitask-v0")
    assert (task.obs_size, task.action_size) == (85, 33)
    assert task.config.dt == 20.0 and task.task_names == TASK_NAMES
    assert task.obs_noise == pytest.approx(0.01 * math.sqrt(10))
    assert task.open_loop and task.primary_metric == "perf"


def test_input_ring_bump_by_hand():
    """Stimulus at unit 5's angle, strength 1.3, in ring 2: 0.8 x 1.3 at unit 5, 0.8 e^-1/2 x 1.3
    two units (22.5 degrees) away, 0.8 e^-2 x 1.3 four units away; ring 1 silent."""
    task, state = trial(
        "fdgo",
        angle=[5 * UNIT, 0.0],
        strength=[[0.0, 1.3], [0.0, 0.0]],
        stimulus_on=[3, NEVER],
        stimulus_off=[NEVER, NEVER],
    )
    obs = task.observe(at_step(state, 3))[0].numpy()
    ring = obs[RING2 : RING2 + RING]
    assert ring[5] == pytest.approx(0.8 * 1.3)
    assert ring[7] == pytest.approx(0.8 * math.exp(-0.5) * 1.3, rel=1e-6)
    assert ring[3] == pytest.approx(0.8 * math.exp(-0.5) * 1.3, rel=1e-6)
    assert ring[9] == pytest.approx(0.8 * math.exp(-2) * 1.3, rel=1e-6)
    assert ring[21] == pytest.approx(0.8 * math.exp(-0.5 * 64) * 1.3, abs=1e-12)
    assert np.all(obs[RING1 : RING1 + RING] == 0)
    before = task.observe(at_step(state, 2))[0].numpy()
    assert np.all(before[RING1:RULE] == 0), "no stimulus before its onset"


def test_two_stimuli_in_one_ring_add_and_wrap_around():
    """Units near 0 and 2 pi are neighbours; two stimuli sum."""
    task, state = trial(
        "dm1",
        angle=[0.0, 2 * math.pi - UNIT],
        strength=[[1.0, 0.0], [0.5, 0.0]],
        stimulus_on=[0, 0],
        stimulus_off=[NEVER, NEVER],
    )
    ring = task.observe(at_step(state, 0))[0].numpy()[RING1 : RING1 + RING]
    one_unit = math.exp(-0.5 * (UNIT / (math.pi / 8)) ** 2)  # 11.25 / 22.5 = 1/2
    assert ring[0] == pytest.approx(0.8 * (1.0 + 0.5 * one_unit), rel=1e-6)
    assert ring[31] == pytest.approx(0.8 * (one_unit + 0.5), rel=1e-6)


@pytest.mark.parametrize("index", range(20))
def test_rule_input_is_one_hot_for_the_whole_trial(index):
    task = MultitaskTask(tasks=TASK_NAMES[index], obs_noise=0.0)
    episode = task.open_loop_episode(3, generator=index)
    rules = episode.observations[..., RULE:]
    expected = torch.zeros(20)
    expected[index] = 1.0
    assert torch.equal(rules, expected.expand_as(rules))


def test_fixation_input_per_family():
    """Off at the go cue in fdgo, delaygo and the DM families; never off in reactgo and matching."""
    task, state = many(["fdgo", "reactgo", "delaydm1", "dmsgo"], batch=64)
    episode = task.open_loop_episode(64, generator=0)
    t = torch.arange(episode.observations.shape[0]).unsqueeze(1)
    fixation = episode.observations[..., FIX_IN]
    stays_on = torch.isin(state.task, torch.tensor([1, 16]))
    expected = torch.where(stays_on, torch.ones_like(fixation), (t < state.go).float())
    alive = t < state.length
    assert torch.equal(fixation[alive], expected[alive])
    assert torch.equal(state.fixation_off[~stays_on], state.go[~stays_on])


# Targets and mask -------------------------------------------------------------------------------


def test_target_bump_and_fixation_target_at_known_times():
    """Fixation target 0.8 until the cue at step 10, then 0.05; ring 0.05, then the bump at unit 8."""
    task, state = trial("fdgo", go=10, length=15, response_angle=8 * UNIT, respond=True)
    target, _ = task.teacher(at_step(state, 9))
    assert target[0, 0] == pytest.approx(0.8)
    assert torch.allclose(target[0, 1:], torch.full((RING,), 0.05))
    target, _ = task.teacher(at_step(state, 10))
    ring = target[0, 1:].numpy()
    assert target[0, 0] == pytest.approx(0.05)
    assert ring[8] == pytest.approx(0.85)
    assert ring[10] == pytest.approx(0.05 + 0.8 * math.exp(-0.5), rel=1e-6)
    assert ring[24] == pytest.approx(0.05, abs=1e-12)


def test_fixation_target_option_and_no_go_trials():
    """The paper's 0.85 as an option; a no-go trial keeps the fixation target and a silent ring."""
    _, state = trial("dmsnogo", go=10, length=35, respond=False)
    task = MultitaskTask(tasks="dmsnogo", obs_noise=0.0, fixation_target=0.85)
    for t in (0, 10, 34):
        target, _ = task.teacher(at_step(state, t))
        assert target[0, 0] == pytest.approx(0.85)
        assert torch.allclose(target[0, 1:], torch.full((RING,), 0.05))


def test_mask_weights_per_period():
    """dt 20: 0 for steps 0-4, 1 (fixation 4) to the cue at 30, 0 for 30-34, 25 (100) to 54, then 0."""
    task, state = trial("fdgo", go=30, length=55)
    expected = {0: 0, 4: 0, 5: 1, 29: 1, 30: 0, 34: 0, 35: 25, 54: 25, 55: 0, 60: 0}
    for t, ring_weight in expected.items():
        _, mask = task.teacher(at_step(state, t))
        assert mask[0, 0].item() == 4 * ring_weight, f"fixation weight at step {t}"
        assert torch.all(mask[0, 1:] == ring_weight), f"ring weight at step {t}"


def test_mask_grace_scales_with_dt():
    """At dt = 50 ms the first 100 ms and the grace period are 2 steps."""
    task = MultitaskTask(tasks="fdgo", obs_noise=0.0, dt=50.0)
    state, _ = task.reset(1, generator=0)
    state = dataclasses.replace(state, go=torch.tensor([10]), length=torch.tensor([20]))
    weights = [task.teacher(at_step(state, t))[1][0, 1].item() for t in range(21)]
    assert weights == [0, 0] + [1] * 8 + [0, 0] + [25] * 8 + [0]


# Task rules -------------------------------------------------------------------------------------


def circular_distance(a, b):
    d = np.abs(np.asarray(a) - np.asarray(b)) % (2 * np.pi)
    return np.minimum(d, 2 * np.pi - d)


def rows_of(state, name):
    return (state.task == TASK_NAMES.index(name)).numpy()


def test_go_and_anti_respond_at_the_stimulus_or_opposite():
    _, state = many(list(TASK_NAMES[:6]))
    angle, response = state.angle[:, 0].numpy(), state.response_angle.numpy()
    for name in TASK_NAMES[:6]:
        rows = rows_of(state, name)
        shift = np.pi if "anti" in name else 0.0
        assert rows.sum() > 300
        np.testing.assert_allclose(
            circular_distance(response[rows], angle[rows] + shift), 0, atol=1e-5
        )
        assert state.respond[rows].all()
        # one stimulus of strength 1 in one ring, drawn per trial
        strength = state.strength[rows].numpy()
        assert np.all(strength[:, 1] == 0) and np.all(strength[:, 0].sum(-1) == 1)
        assert 0.4 < strength[:, 0, 0].mean() < 0.6


@pytest.mark.parametrize(
    ("name", "ring_weights"),
    [
        ("dm1", (1, 0)),
        ("dm2", (0, 1)),
        ("contextdm1", (1, 0)),
        ("contextdm2", (0, 1)),
        ("multidm", (1, 1)),
        ("delaydm1", (1, 0)),
        ("delaydm2", (0, 1)),
        ("contextdelaydm1", (1, 0)),
        ("contextdelaydm2", (0, 1)),
        ("multidelaydm", (1, 1)),
    ],
)
def test_decision_tasks_choose_the_stronger_stimulus_in_the_attended_ring(name, ring_weights):
    _, state = many(name, batch=2000)
    strength = state.strength.numpy()  # [B, stimulus, ring]
    score = strength @ np.array(ring_weights, dtype=np.float32)
    chosen = np.where(score[:, 0] > score[:, 1], 0, 1)
    expected = state.angle.numpy()[np.arange(len(chosen)), chosen]
    np.testing.assert_allclose(
        circular_distance(state.response_angle.numpy(), expected), 0, atol=1e-5
    )
    separation = circular_distance(state.angle[:, 0].numpy(), state.angle[:, 1].numpy())
    assert separation.min() >= np.pi / 2 - 1e-5 and separation.max() <= np.pi + 1e-5
    assert 0.3 < (chosen == 0).mean() < 0.7
    coherences = (0.08, 0.16, 0.32) if "delay" in name else (0.01, 0.02, 0.04, 0.08)
    if name.startswith("multi"):
        total = strength.sum(-1)  # gamma_j (1 + D_j) + gamma_j (1 - D_j) = 2 gamma_j
        half_gap = np.abs(total[:, 0] - total[:, 1]) / 4
        split = strength[:, :, 0] / (total / 2) - 1  # D_j
        assert np.all((np.abs(split) >= 0.1 - 1e-5) & (np.abs(split) <= 0.4 + 1e-5))
    else:
        used = np.array(ring_weights, bool) if not name.startswith("context") else [True, True]
        assert np.all(strength[:, :, ~np.array(used)] == 0)
        half_gap = np.abs(strength[:, 0, used] - strength[:, 1, used]) / 2
        mean = strength[:, :, used].mean(1)
        assert mean.min() >= 0.8 - 1e-5 and mean.max() <= 1.2 + 1e-5
    np.testing.assert_allclose(np.sort(np.unique(np.round(half_gap, 4))), coherences, atol=2e-4)


def test_context_tasks_draw_each_ring_separately_and_ignore_the_other():
    """In contextdm1 the answer follows ring 1 even where ring 2 disagrees (about half the rows)."""
    _, state = many("contextdm1", batch=2000)
    strength = state.strength.numpy()
    disagree = (strength[:, 0, 0] > strength[:, 1, 0]) != (strength[:, 0, 1] > strength[:, 1, 1])
    assert 0.35 < disagree.mean() < 0.65
    follows_ring_one = np.where(strength[:, 0, 0] > strength[:, 1, 0], 0, 1)
    expected = state.angle.numpy()[np.arange(2000), follows_ring_one]
    np.testing.assert_allclose(
        circular_distance(state.response_angle.numpy(), expected), 0, atol=1e-5
    )


@pytest.mark.parametrize("name", ["dmsgo", "dmsnogo"])
def test_match_to_sample(name):
    """Match: stim2 = stim1; non-match offsets 20 to 340 degrees; respond on (non-)match, at stim2."""
    _, state = many(name, batch=3000)
    separation = circular_distance(state.angle[:, 0].numpy(), state.angle[:, 1].numpy())
    match = separation < 1e-5
    assert 0.45 < match.mean() < 0.55
    assert separation[~match].min() >= np.pi / 9 - 1e-5
    respond = state.respond.numpy()
    assert np.array_equal(respond, match if name == "dmsgo" else ~match)
    np.testing.assert_allclose(
        circular_distance(state.response_angle[respond].numpy(), state.angle[respond, 1].numpy()),
        0,
        atol=1e-6,
    )
    rings = state.strength.numpy().sum(-1)
    assert np.all(rings == 1), "each stimulus in exactly one ring"
    independent = state.strength[:, 0, 0] != state.strength[:, 1, 0]
    assert 0.4 < independent.float().mean() < 0.6, "the two rings are drawn independently"


@pytest.mark.parametrize("name", ["dmcgo", "dmcnogo"])
def test_match_to_category(name):
    """Angles from {18, 54, ..., 342} degrees; category A below 180; respond on (non-)match."""
    _, state = many(name, batch=3000)
    degrees = np.degrees(state.angle.numpy())
    np.testing.assert_allclose(np.sort(np.unique(np.round(degrees, 3))), np.arange(18, 360, 36))
    same = (degrees[:, 0] < 180) == (degrees[:, 1] < 180)
    assert 0.45 < same.mean() < 0.55
    assert np.array_equal(state.respond.numpy(), same if name == "dmcgo" else ~same)


# perf -------------------------------------------------------------------------------------------


def output(fixation: float, direction: float | None) -> torch.Tensor:
    ring = torch.full((RING,), 0.05)
    if direction is not None:
        preferred = torch.arange(RING) * UNIT
        distance = torch.remainder(preferred - direction + math.pi, 2 * math.pi) - math.pi
        ring = ring + 0.8 * torch.exp(-0.5 * (distance / (math.pi / 8)) ** 2)
    return torch.cat([torch.tensor([fixation]), ring])


@pytest.mark.parametrize(
    ("respond", "fixation", "direction", "correct"),
    [
        (True, 0.05, 1.0, 1.0),  # correct
        (True, 0.05, 1.0 + 0.19 * math.pi, 1.0),  # just within 0.2 pi
        (True, 0.05, 1.0 + 0.21 * math.pi, 0.0),  # wrong direction
        (True, 0.05, 1.0 + math.pi, 0.0),  # opposite
        (True, 0.05, 1.0 - 0.19 * math.pi, 1.0),  # within 0.2 pi on the other side
        (True, 0.6, 1.0, 0.0),  # right direction, but fixation not broken on a go trial
        (True, 0.5, 1.0, 1.0),  # 0.5 is not above 0.5
        (False, 0.8, None, 1.0),  # no-go held
        (False, 0.8, 1.0, 1.0),  # no-go held; the ring is not read
        (False, 0.4, None, 0.0),  # no-go broken
    ],
)
def test_perf_on_hand_made_outputs(respond, fixation, direction, correct):
    task, state = trial("dmsgo", respond=respond, response_angle=1.0)
    state = dataclasses.replace(state, last_output=output(fixation, direction)[None])
    assert task.episode_metrics(state)["perf"].item() == correct


def test_perf_reads_the_rows_last_step_not_a_padded_one():
    """Rows of different lengths: the stored output is each row's step length - 1."""
    task = MultitaskTask(tasks="fdgo", obs_noise=0.0)
    state, _ = task.reset(4, generator=1)
    lengths = state.length.clone()
    assert len(set(lengths.tolist())) > 1
    for step in range(int(lengths.max()) + 3):
        action = torch.full((4, 33), float(step))
        state, _, _, done = task.step(state, action)
    assert done.all()
    torch.testing.assert_close(state.last_output[:, 0], (lengths - 1).float())
    assert state.t.tolist() == lengths.tolist()


def run_with(task, state, respond_with):
    """Step every row to its end, acting ``respond_with(target)``."""
    while not bool(state.done.all()):
        target, _ = task.teacher(state)
        state, _, _, _ = task.step(state, respond_with(target))
    return state


def rotate_ring(target: torch.Tensor) -> torch.Tensor:
    return torch.cat([target[:, :1], target[:, 1:].roll(RING // 2, dims=1)], dim=1)


def test_the_teachers_output_scores_one_on_every_task_and_its_rotation_zero_on_go_trials():
    task = MultitaskTask(obs_noise=0.0)
    state, _ = task.reset(2000, generator=3)
    assert set(state.task.tolist()) == set(range(20))
    metrics = task.episode_metrics(run_with(task, state, lambda target: target))
    assert torch.all(metrics["perf"] == 1) and torch.all(metrics["mse"] == 0)
    rotated = task.episode_metrics(run_with(task, state, rotate_ring))["perf"]
    assert torch.all(rotated[state.respond] == 0)
    assert torch.all(rotated[~state.respond] == 1), "no-go trials only read the fixation output"
    assert torch.equal(metrics["task"], state.task.float())


# Options ----------------------------------------------------------------------------------------


def test_aliases_name_the_same_tasks():
    assert MultitaskConfig(tasks=["go", "dnmc", "ctxdlydm2"]).task_names == (
        "fdgo",
        "dmcnogo",
        "contextdelaydm2",
    )
    assert set(ALIASES.values()) <= set(TASK_NAMES)
    assert len(ALIASES) == 17  # dm1, dm2 and multidm share their names


def test_config_round_trips_through_json():
    config = MultitaskConfig(tasks=["fdgo", "dms"], task_weights=[1.0, 3.0], dt=50.0, ring_size=16)
    assert config.tasks == ("fdgo", "dms") and config.task_weights == (1.0, 3.0)
    assert MultitaskConfig.from_json(config.to_json()) == config
    assert config.probabilities == (0.25, 0.75)


def test_task_weights_set_the_frequencies():
    """Yang's reference weights: contextdm1 five times as often as dm1."""
    _, state = many(["dm1", "contextdm1"], batch=6000, task_weights=[1.0, 5.0])
    share = (state.task == TASK_NAMES.index("contextdm1")).float().mean().item()
    assert share == pytest.approx(5 / 6, abs=0.015)


def test_ring_size_option():
    task = MultitaskTask(ring_size=16, obs_noise=0.0)
    assert (task.obs_size, task.action_size) == (1 + 32 + 20, 17)
    episode = task.open_loop_episode(4, generator=0)
    assert episode.targets.shape[-1] == 17


def test_horizon_is_the_longest_trial_and_bounds_every_draw():
    """Delayed DM: 600 + 600 + 1600 + 600 + 280 + 500 ms = 4180 ms = 209 steps."""
    task = MultitaskTask()
    assert task.horizon == 209
    assert MultitaskTask(tasks="fdgo").horizon == (680 + 1480 + 500) // 20
    _, state = many("delaydm1", batch=5000)
    assert state.length.max().item() <= 209


def test_observation_noise_on_every_channel_and_never_clipped():
    task = MultitaskTask()
    clean = MultitaskTask(obs_noise=0.0)
    noisy = task.open_loop_episode(256, generator=5).observations
    plain = clean.open_loop_episode(256, generator=5).observations
    difference = (noisy[1:] - plain[1:]).reshape(-1, 85)  # step 0's noise is drawn at reset
    np.testing.assert_allclose(difference.std(0).numpy(), 0.0316, rtol=0.05)
    assert noisy.abs().max() < task.observation_space.high[0] / 2


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"tasks": "fdgoo"}, r"`tasks` must be one of .* got 'fdgoo'. Did you mean 'fdgo'\?"),
        (
            {"tasks": ["dm1", "contxtdm1"]},
            r"`tasks\[1\]` must be one of .*Did you mean 'contextdm1'",
        ),
        ({"tasks": []}, r"`tasks` must be 'all', a task name or a non-empty list, got \(\)"),
        ({"tasks": ["dm1", "dm1"]}, r"`tasks` must not name a task twice"),
        ({"tasks": ["go", "fdgo"]}, r"`tasks` must not name a task twice"),
        ({"tasks": ["dm1", "dm2"], "task_weights": [1.0]}, r"one weight per task \(2\)"),
        (
            {"tasks": ["dm1", "dm2"], "task_weights": [1.0, -1.0]},
            r"`task_weights\[1\]` must be >= 0",
        ),
        (
            {"tasks": ["dm1", "dm2"], "task_weights": [0.0, 0.0]},
            r"`task_weights` must not all be 0",
        ),
        ({"dt": 0.0}, r"`dt` must be > 0, got 0.0"),
        ({"dt": -20.0}, r"`dt` must be > 0"),
        ({"dt": 600.0}, r"`dt` must be <= 500 ms"),
        ({"ring_size": 0}, r"`ring_size` must be an integer >= 1, got 0"),
        ({"ring_size": 8.5}, r"`ring_size` must be an integer >= 1"),
        ({"obs_noise": -0.1}, r"`obs_noise` must be >= 0"),
        ({"obs_noise": 1e300}, r"`obs_noise` must be <= 1e\+06, got 1e\+300"),
        ({"fixation_target": 0.0}, r"`fixation_target` must be > 0"),
        ({"steps": 5}, r"unknown MultitaskConfig option 'steps'"),
    ],
)
def test_bad_options_raise_clear_errors(options, message):
    with pytest.raises(ValueError, match=message):
        make_task("NoisyMultitask-v0", **options)


def test_a_batch_that_cannot_fit_is_refused_before_allocating(monkeypatch):
    """The estimate: 4 bytes x horizon x (obs + target + mask + the 4 R ring intermediate)."""
    task = MultitaskTask(tasks="fdgo", obs_noise=0.0)
    row = 4 * task.horizon * (85 + 2 * 33 + 4 * 32)
    monkeypatch.setenv("NOISE_ENVS_MEMORY_LIMIT", str(10 * row))
    task.reset(10, generator=0)  # exactly at the limit: allowed
    with pytest.raises(ValueError, match=r"`batch_size` = 11 would need about"):
        task.reset(11, generator=0)


def test_perf_is_bounded_and_task_is_a_label():
    metrics = {metric.name: metric for metric in MultitaskTask.metrics}
    assert metrics["perf"].bounds == (0.0, 1.0)
    assert metrics["task"].label and not metrics["perf"].label
