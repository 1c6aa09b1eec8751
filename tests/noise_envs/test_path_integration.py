"""NoisyPathIntegration-v0: paths, inputs, targets, decoding and metrics against independent truth."""

import math
import re
import warnings

import gymnasium
import numpy as np
import pytest
import torch
from gymnasium.utils.env_checker import check_env, data_equivalence
from stable_baselines3.common.env_checker import check_env as sb3_check_env

from noise_envs import PathIntegrationConfig, PathIntegrationTask, RandomSource, TaskEnv
from noise_envs.path_integration import MAX_SPEED_SCALES
from noise_envs.place_cells import place_cell_activity, tuning_range
from noise_envs.trajectories import distance_to_wall, generate_trajectories, wall_turn

ENV_ID = "NoisyPathIntegration-v0"
VARIANTS = [
    {},
    {"velocity_encoding": "speed_heading", "start": "random_cued"},
    {"target": "place_cells", "num_place_cells": 32},
    {
        "target": "place_cells",
        "place_cell_tuning": "difference_of_gaussians",
        "start": "random_cued",
        "num_place_cells": 16,
    },
]
OPEN_FIELD = {"arena_size": 1000.0, "steps": 50}
"""An arena so large that no walker comes near a wall: speeds and turns are the raw draws."""


def run_teacher_episode(task, batch_size, seed):
    """Act as the teacher for a whole episode; returns observations [T+1, B, O] and the state."""
    state, obs = task.reset(batch_size, generator=seed)
    observations = [obs]
    while not bool(state.done.all()):
        target, _ = task.teacher(state)
        state, obs, _, _ = task.step(state, target)
        observations.append(obs)
    return torch.stack(observations).double().numpy(), state


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"arena_size": 0.3, "wall_margin": 0.0, "start": "random_cued"},
        {"arena_size": 0.2, "speed_scale": 5.0, "turn_std": 0.0},
    ],
)
def test_paths_never_leave_the_arena(options):
    """Even a fast walker in a tiny arena without wall avoidance stays in [-1, 1]^2."""
    task = PathIntegrationTask(steps=200, **options)
    state, _ = task.reset(512, generator=0)
    assert state.positions.abs().max() <= 1.0
    assert (state.speeds >= 0).all()


@pytest.mark.parametrize("encoding", ["cartesian", "speed_heading"])
def test_integrated_velocity_inputs_reproduce_the_target_positions(encoding):
    """p0 + cumsum(v * dt) over the observed velocities equals each step's teacher target."""
    task = PathIntegrationTask(steps=60, velocity_encoding=encoding, time_step=0.05)
    state, obs = task.reset(64, generator=3)
    positions, velocities = [], []
    for _ in range(task.horizon):
        target, _ = task.teacher(state)
        observed = obs.double().numpy()
        if encoding == "speed_heading":
            observed = observed[:, :1] * observed[:, 1:3]
        positions.append(target.double().numpy())
        velocities.append(observed)
        state, obs, _, _ = task.step(state, target)
    integrated = np.cumsum(np.stack(velocities) * 0.05, axis=0)  # the start is the centre
    positions = np.stack(positions)
    np.testing.assert_allclose(integrated, positions, atol=1e-5)
    assert np.abs(positions).max() > 0.3, "the walkers should go somewhere"


def test_cued_start_is_shown_at_step_zero_only_and_is_uniform_in_the_arena():
    """random_cued: channels 2-3 carry p0 at t = 0 and 0 later; p0 ~ U([-1, 1]^2)."""
    task = PathIntegrationTask(steps=3, start="random_cued")
    observations, state = run_teacher_episode(task, 20000, seed=1)
    start = state.positions[:, 0].double().numpy()
    np.testing.assert_array_equal(observations[0, :, 2:], start)
    assert (observations[1:, :, 2:] == 0).all()
    np.testing.assert_allclose(start.mean(0), 0.0, atol=0.02)
    np.testing.assert_allclose(start.var(0), 1.0 / 3.0, atol=0.01)


def test_center_start_and_zero_velocity_after_the_last_step():
    task = PathIntegrationTask(steps=4)
    observations, state = run_teacher_episode(task, 8, seed=0)
    assert (state.positions[:, 0] == 0).all()
    assert observations.shape == (5, 8, 2)
    assert (observations[-1] == 0).all() and (np.abs(observations[:-1]).sum(-1) > 0).all()


def test_speeds_are_rayleigh_far_from_walls():
    """Mean b sqrt(pi/2) and second moment 2 b^2 (in half-sides per second), capped at 4 b."""
    task = PathIntegrationTask(**OPEN_FIELD)
    state, _ = task.reset(4000, generator=2)
    b = task.config.speed_scale / task.config.half_size
    speeds = state.speeds.double()
    assert speeds.mean().item() == pytest.approx(b * math.sqrt(math.pi / 2), rel=0.01)
    assert speeds.square().mean().item() == pytest.approx(2 * b**2, rel=0.02)
    assert speeds.max().item() <= MAX_SPEED_SCALES * b * (1 + 1e-6)


def test_heading_increments_are_gaussian_with_the_configured_spread():
    """Far from walls the heading changes by N(0, (turn_std * dt)^2) per step."""
    task = PathIntegrationTask(**OPEN_FIELD, turn_std=5.0, time_step=0.04)
    state, _ = task.reset(4000, generator=4)
    increments = state.headings.diff(dim=1).double()
    assert increments.mean().item() == pytest.approx(0.0, abs=0.002)
    assert increments.std().item() == pytest.approx(5.0 * 0.04, rel=0.01)


@pytest.mark.parametrize(
    ("position", "heading", "turn", "near"),
    [
        ((0.99, 0.0), 0.3, math.pi / 2 - 0.3, True),  # towards the wall x = 1: turn parallel
        ((0.99, 0.0), -0.5, -(math.pi / 2 - 0.5), True),
        ((0.99, 0.0), math.pi, 0.0, False),  # heading away from the wall
        ((0.0, 0.98), math.pi / 2 + 0.2, math.pi / 2 - 0.2, True),  # top wall, turns to pi
        ((-0.97, 0.1), 2 * math.pi + math.pi - 0.1, -(math.pi / 2 - 0.1), True),  # left wall
        ((0.5, 0.0), 0.0, 0.0, False),  # too far from any wall
    ],
)
def test_wall_turn_steers_parallel_to_the_nearest_wall(position, heading, turn, near):
    got_turn, got_near = wall_turn(torch.tensor([position]), torch.tensor([heading]), 0.05)
    assert got_turn.item() == pytest.approx(turn, abs=1e-6)
    assert got_near.item() is near


def test_distance_to_wall_along_a_heading():
    """Hand-computed exits: straight, diagonal into a corner, and along an axis."""
    position = torch.tensor([[0.5, 0.0], [0.0, 0.0], [1.0, 1.0], [0.0, -0.5]])
    direction = torch.tensor(
        [[1.0, 0.0], [math.sqrt(0.5), math.sqrt(0.5)], [-1.0, 0.0], [0.6, -0.8]]
    )
    expected = [0.5, math.sqrt(2.0), 2.0, 0.625]
    np.testing.assert_allclose(distance_to_wall(position, direction).numpy(), expected, rtol=1e-6)


def reference_paths(config, batch_size, seed):
    """A scalar float64 re-implementation of the walk, fed the generator's draws in order.

    Returns the paths ``[B, T + 1, 2]`` and how many steps turned away from a wall.
    """
    g = torch.Generator().manual_seed(seed)
    heading0 = (2 * math.pi * torch.rand(batch_size, generator=g)).double().numpy()
    start = (2 * torch.rand(batch_size, 2, generator=g) - 1).double().numpy()
    uniform = torch.rand(batch_size, config.steps, generator=g).double().numpy()
    xi = torch.randn(batch_size, config.steps, generator=g).double().numpy()
    half, dt = config.half_size, config.time_step
    b, margin = config.speed_scale / half, config.wall_margin / half
    paths, turns = np.zeros((batch_size, config.steps + 1, 2)), 0
    for i in range(batch_size):
        p, h = start[i].copy(), heading0[i]
        paths[i, 0] = p
        for t in range(config.steps):
            walls = [1 - p[0], 1 - p[1], 1 + p[0], 1 + p[1]]
            k = int(np.argmin(walls))
            a = (h - k * math.pi / 2 + math.pi) % (2 * math.pi) - math.pi
            near = walls[k] < margin and abs(a) < math.pi / 2
            turns += near
            h += (math.copysign(math.pi / 2 - abs(a), a) if near else 0.0) + (
                config.turn_std * dt * xi[i, t]
            )
            speed = min(b * math.sqrt(-2 * math.log(1 - uniform[i, t])), 4 * b)
            speed *= 0.25 if near else 1.0
            c = np.array([math.cos(h), math.sin(h)])
            exits = [(math.copysign(1, c[j]) - p[j]) / c[j] for j in range(2) if c[j] != 0]
            speed = min(speed, 0.99 * min(exits) / dt)
            p = p + speed * dt * c
            paths[i, t + 1] = p
    return paths, turns


def test_paths_match_a_scalar_reference_of_the_walk():
    """Wall turns, slow-down near walls, Rayleigh speeds and the stay-inside rule, step by step."""
    config = PathIntegrationConfig(steps=60, start="random_cued", arena_size=0.5, wall_margin=0.05)
    paths = generate_trajectories(config, 32, RandomSource.from_seed(7), torch.device("cpu"))
    expected, turns = reference_paths(config, 32, seed=7)
    np.testing.assert_allclose(paths.positions.double().numpy(), expected, atol=1e-4)
    assert turns >= 50, f"only {turns} wall turns: the test should exercise them"


def test_teacher_is_the_next_position_and_the_mask_starts_after_settling():
    task = PathIntegrationTask(steps=5, settle_steps=2)
    state, _ = task.reset(4, generator=0)
    masks = []
    for t in range(5):
        target, mask = task.teacher(state)
        torch.testing.assert_close(target, state.positions[:, t + 1])
        masks.append(mask[0].tolist())
        state, *_ = task.step(state, torch.zeros(4, 2))
    assert masks == [[0.0, 0.0]] * 2 + [[1.0, 1.0]] * 3


def test_metrics_of_a_silent_network_are_the_mean_squared_and_plain_distances():
    """Output 0 everywhere: position_mse = mean |p|^2, distance = mean |p| over scored steps."""
    task = PathIntegrationTask(steps=30, settle_steps=10)
    state, _ = task.reset(16, generator=5)
    positions = state.positions[:, 11:].double().numpy()
    for _ in range(task.horizon):
        state, *_ = task.step(state, torch.zeros(16, 2))
    metrics = task.episode_metrics(state)
    squared = (positions**2).sum(-1)
    np.testing.assert_allclose(metrics["position_mse"].numpy(), squared.mean(1), rtol=1e-5)
    np.testing.assert_allclose(
        metrics["mean_distance_error"].numpy(), np.sqrt(squared).mean(1), rtol=1e-5
    )
    np.testing.assert_allclose(state.teacher_mse.numpy(), squared.mean(1) / 2, rtol=1e-5)


def test_the_teacher_scores_perfectly():
    _, state = run_teacher_episode(PathIntegrationTask(steps=20), 8, seed=0)
    metrics = PathIntegrationTask().episode_metrics(state)
    assert metrics["position_mse"].abs().max() == 0 and metrics["mean_distance_error"].max() == 0


def test_gaussian_place_cells_by_hand():
    """Activity 1 at the centre, exp(-1/2) one width away, about 0 far away."""
    centres = torch.tensor([[0.0, 0.0], [0.12, 0.0], [0.9, 0.9]])
    activity = place_cell_activity(torch.zeros(1, 2), centres, 0.12, "gaussian")[0]
    np.testing.assert_allclose(activity.numpy(), [1.0, math.exp(-0.5), 0.0], atol=1e-6)


def test_gaussian_place_cell_code_is_the_activity_scaled_to_the_action_space():
    """Code = 2 * activity - 1 with the width in half-sides; a cell's own centre codes +1."""
    task = PathIntegrationTask(target="place_cells", num_place_cells=8, arena_size=4.0)
    positions = task.place_cell_centres[:3]
    activity = place_cell_activity(positions, task.place_cell_centres, 0.12 / 2.0, "gaussian")
    code = task.encode(positions)
    torch.testing.assert_close(code, 2 * activity - 1)
    torch.testing.assert_close(code.diagonal(), torch.ones(3))


def test_difference_of_gaussians_range_is_the_curves_extremes():
    """tuning_range matches the minimum and maximum over a fine grid of distances."""
    distances = torch.linspace(0, 10, 200001, dtype=torch.float64)[:, None]
    values = place_cell_activity(
        distances * torch.tensor([[1.0, 0.0]], dtype=torch.float64),
        torch.zeros(1, 2, dtype=torch.float64),
        1.0,
        "difference_of_gaussians",
    )
    low, high = tuning_range("difference_of_gaussians")
    assert values.min().item() == pytest.approx(low, abs=1e-9)
    assert values.max().item() == pytest.approx(high, abs=1e-12)
    assert low < 0 and tuning_range("gaussian") == (0.0, 1.0)


@pytest.mark.parametrize("tuning", ["gaussian", "difference_of_gaussians"])
def test_place_cell_codes_lie_in_the_action_space_and_decode_near_the_position(tuning):
    task = PathIntegrationTask(target="place_cells", place_cell_tuning=tuning, steps=20)
    state, _ = task.reset(256, generator=0)
    positions = state.positions.reshape(-1, 2)
    code = task.encode(positions)
    assert code.min() >= -1 and code.max() <= 1 and code.shape == (positions.shape[0], 256)
    errors = (task.decode(code) - positions).norm(dim=-1)
    assert errors.mean() < 0.06, "256 cells of width 0.11 locate a position to a few hundredths"


def test_decoding_is_the_weighted_mean_of_the_top_k_centres():
    """Weights are each top cell's output above a silent cell's code (-1 for Gaussians)."""
    task = PathIntegrationTask(target="place_cells", num_place_cells=5, decode_top_k=2)
    centres = task.place_cell_centres
    output = torch.tensor([[-1.0, 0.5, -0.9, 0.0, -1.0]])
    expected = (1.5 * centres[1] + 1.0 * centres[3]) / 2.5
    torch.testing.assert_close(task.decode(output)[0], expected)
    silent = torch.full((1, 5), -1.0)
    assert torch.isfinite(task.decode(silent)).all()


def test_place_cell_centres_come_from_their_own_seed():
    a, b = (PathIntegrationTask(target="place_cells", place_cell_seed=s) for s in (1, 1))
    c = PathIntegrationTask(target="place_cells", place_cell_seed=2)
    torch.testing.assert_close(a.place_cell_centres, b.place_cell_centres)
    assert not torch.equal(a.place_cell_centres, c.place_cell_centres)
    assert a.place_cell_centres.abs().max() <= 1


def test_common_random_numbers_tile_the_paths():
    """With a tiled source, rows e and E + e share their path (what the noise sweep relies on)."""
    task = PathIntegrationTask(steps=10, start="random_cued")
    state, _ = task.reset(6, generator=RandomSource.from_seed(0, repeats=2))
    torch.testing.assert_close(state.positions[:3], state.positions[3:])
    assert not torch.equal(state.positions[0], state.positions[1])


@pytest.mark.parametrize("options", VARIANTS, ids=repr)
@pytest.mark.parametrize("obs_noise", [0.0, 0.2])
def test_env_checkers_pass_without_warnings(options, obs_noise):
    env = gymnasium.make(ENV_ID, obs_noise=obs_noise, steps=10, **options)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_env(env.unwrapped)
        sb3_check_env(env, warn=True)


@pytest.mark.parametrize("options", VARIANTS, ids=repr)
def test_observations_stay_in_the_observation_space(options):
    task = PathIntegrationTask(steps=50, speed_scale=3.0, **options)
    observations, _ = run_teacher_episode(task, 256, seed=0)
    space = task.observation_space
    assert (observations >= space.low).all() and (observations <= space.high).all()


@pytest.mark.parametrize("options", VARIANTS, ids=repr)
def test_vector_env_equals_sync_vector_env_of_single_envs(options):
    """Per-row generators: make_vec's native rows equal SyncVectorEnv over TaskEnvs, infos too."""
    options = {"steps": 3, "obs_noise": 0.1, **options}
    ours = gymnasium.make_vec(ENV_ID, 3, vectorization_mode="vector_entry_point", **options)
    sync = gymnasium.make_vec(ENV_ID, 3, vectorization_mode="sync", **options)
    assert data_equivalence(ours.reset(seed=5), sync.reset(seed=5), exact=True)
    actions = np.random.default_rng(0).uniform(-1, 1, (8, *ours.action_space.shape))
    for step, action in enumerate(actions.astype(np.float32)):
        assert data_equivalence(ours.step(action), sync.step(action), exact=True), f"step {step}"


def test_episode_metrics_reach_the_env_info():
    env = TaskEnv(ENV_ID, steps=3)
    env.reset(seed=0)
    for _ in range(3):
        *_, info = env.step(np.zeros(2, dtype=np.float32))
    assert set(info["episode_metrics"]) == {"position_mse", "mean_distance_error"}


def test_config_json_round_trip():
    config = PathIntegrationConfig(
        arena_size=1.0, target="place_cells", place_cell_tuning="difference_of_gaussians"
    )
    assert PathIntegrationConfig.from_json(config.to_json()) == config


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"arena_size": 0.0}, "`arena_size` must be > 0, got 0.0"),
        ({"arena_size": -2}, "`arena_size` must be > 0, got -2"),
        ({"time_step": 0}, "`time_step` must be > 0, got 0"),
        ({"speed_scale": -0.1}, "`speed_scale` must be > 0, got -0.1"),
        ({"speed_scale": float("nan")}, "`speed_scale` must be finite, got nan"),
        ({"turn_std": -1.0}, "`turn_std` must be >= 0, got -1.0"),
        ({"wall_margin": -0.01}, "`wall_margin` must be >= 0, got -0.01"),
        ({"steps": 0}, "`steps` must be an integer >= 1, got 0"),
        ({"steps": 5, "settle_steps": 5}, "`settle_steps` must be an integer in [0, steps) = "),
        ({"settle_steps": -1}, "`settle_steps` must be an integer in [0, steps) = [0, 100)"),
        (
            {"velocity_encoding": "polar"},
            "`velocity_encoding` must be one of ['cartesian', 'speed_heading'], got 'polar'",
        ),
        (
            {"velocity_encoding": "speed-heading"},
            "got 'speed-heading'. Did you mean 'speed_heading'?",
        ),
        ({"start": "random"}, "`start` must be one of ['center', 'random_cued'], got 'random'"),
        ({"target": "grid_cells"}, "`target` must be one of ['position', 'place_cells']"),
        ({"num_place_cells": 0}, "`num_place_cells` must be an integer >= 1, got 0"),
        ({"num_place_cells": 2.5}, "`num_place_cells` must be an integer >= 1, got 2.5"),
        ({"place_cell_width": 0.0}, "`place_cell_width` must be > 0, got 0.0"),
        (
            {"place_cell_tuning": "mexican_hat"},
            "`place_cell_tuning` must be one of ['gaussian', 'difference_of_gaussians']",
        ),
        ({"place_cell_seed": -1}, "`place_cell_seed` must be an integer in [0, 2**63), got -1"),
        ({"decode_top_k": 0}, "`decode_top_k` must be an integer >= 1, got 0"),
        (
            {"num_place_cells": 2, "decode_top_k": 3},
            "`decode_top_k` must be <= `num_place_cells` (2), got 3",
        ),
        ({"obs_noise": -0.5}, "`obs_noise` must be >= 0, got -0.5"),
        ({"arena": 2.0}, "unknown PathIntegrationConfig option 'arena'"),
    ],
)
def test_bad_options_are_refused_by_name(options, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        PathIntegrationTask(**options)


def test_bad_options_are_refused_through_gymnasium_make():
    with pytest.raises(ValueError, match=re.escape("`arena_size` must be > 0, got -1.0")):
        gymnasium.make(ENV_ID, arena_size=-1.0)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_paths_match_the_cpu_paths():
    """Random numbers come from CPU generators, so the device does not change the paths."""
    task = PathIntegrationTask(steps=20, target="place_cells", start="random_cued")
    cpu, _ = task.reset(8, generator=0)
    cuda, _ = task.reset(8, generator=0, device="cuda")
    torch.testing.assert_close(cuda.positions.cpu(), cpu.positions, atol=1e-5, rtol=1e-5)
    target, _ = task.teacher(cuda)
    assert target.device.type == "cuda"
