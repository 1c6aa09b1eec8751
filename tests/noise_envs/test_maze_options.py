"""NoisyMaze-v0's reward shaping option and its bounded work: hand values, limits, timings."""

import time

import gymnasium
import pytest
import torch

from noise_envs import MazeTask, make_task
from noise_envs.maze_layout import distances_to
from noise_envs.maze_paths import next_cells

# 2 rows x 3 columns, cells 0 1 2 / 3 4 5: one corridor 0-1-2-5-4-3 (0-3 and 1-4 closed).
S_BEND = ["+--+--+--+", "|        |", "+--+--+  +", "|        |", "+--+--+--+"]


def follow_teacher(task, state):
    rewards = []
    while not bool(state.done.all()):
        target, _ = task.teacher(state)
        state, _, reward, _ = task.step(state, target)
        rewards.append(reward)
    return state, torch.stack(rewards)


def test_shaping_by_hand():
    """Cell 0 -> 1 at speed 0.5: the corridor distance goes 1 -> 0.5 -> 0 (goal reached)."""
    task = MazeTask(layout=S_BEND, max_speed=0.5, shaping=0.2)
    state, _ = task.reset_to(torch.tensor([0]), torch.tensor([1]))
    state, _, reward, _ = task.step(state, torch.tensor([[1.0, 0.0]]))
    assert reward.tolist() == pytest.approx([-0.01 + 0.2 * 0.5])
    state, _, reward, done = task.step(state, torch.tensor([[0.8, 0.0]]))
    assert done.tolist() == [True] and reward.tolist() == pytest.approx([0.99 + 0.2 * 0.5])
    _, _, reward, _ = task.step(state, torch.tensor([[1.0, 0.0]]))
    assert reward.tolist() == [0.0]  # an ended episode earns nothing, shaping included


def test_shaping_sums_to_the_start_distance_along_the_corridor():
    """0 -> 3 round the S bend: 4 cell steps from cell 1 plus 1 to its centre, times shaping."""
    plain, shaped = MazeTask(layout=S_BEND), MazeTask(layout=S_BEND, shaping=0.5)
    start, goal = torch.tensor([0, 2]), torch.tensor([3, 3])
    _, plain_rewards = follow_teacher(plain, plain.reset_to(start, goal)[0])
    _, shaped_rewards = follow_teacher(shaped, shaped.reset_to(start, goal)[0])
    extra = (shaped_rewards - plain_rewards).sum(0)
    assert extra.tolist() == pytest.approx([0.5 * 5.0, 0.5 * 3.0], abs=1e-5)


def test_shaping_pays_nothing_for_standing_still_and_is_off_by_default():
    task = MazeTask(layout=S_BEND, shaping=1.0, max_steps=4)
    state, _ = task.reset_to(torch.tensor([0]), torch.tensor([3]))
    for _ in range(4):
        state, _, reward, _ = task.step(state, torch.zeros(1, 2))
        assert reward.tolist() == pytest.approx([-0.01])
    assert MazeTask().config.shaping == 0.0


def test_shaping_from_gymnasium_make_and_refused_when_negative():
    plain = gymnasium.make("NoisyMaze-v0")
    shaped = gymnasium.make("NoisyMaze-v0", shaping=0.5)
    totals = []
    for env in (plain, shaped):
        _, info = env.reset(seed=3)
        total, done = 0.0, False
        while not done:
            _, reward, terminated, truncated, info = env.step(info["target"])
            total, done = total + reward, terminated or truncated
        totals.append(total)
    task = shaped.unwrapped.task
    start_state, _ = task.reset(1, generator=3)
    assert task.corridor_distance(start_state).item() > 0
    assert totals[1] > totals[0] + 0.5  # every start is at least one cell from its goal
    with pytest.raises(ValueError, match="`shaping` must be >= 0, got -1"):
        gymnasium.make("NoisyMaze-v0", shaping=-1.0)


@pytest.mark.parametrize(
    ("options", "name"),
    [
        ({"size": 20_000}, "size"),
        ({"trail_length": 10**10}, "trail_length"),
        ({"max_steps": 10**12}, "max_steps"),
        ({"horizon_factor": 1e12}, "horizon_factor"),
    ],
)
def test_options_that_cannot_fit_in_memory_are_refused_up_front(options, name):
    start = time.perf_counter()
    with pytest.raises(
        ValueError, match=rf"`{name}` = [\d.e+]+ would need about [\d,]+ bytes .*limit"
    ):
        make_task("NoisyMaze-v0", **options)
    assert time.perf_counter() - start < 1.0


def test_batches_that_cannot_fit_are_refused_before_allocating():
    task = make_task("NoisyMaze-v0", size=20)
    with pytest.raises(ValueError, match=r"`batch_size` = 10000000 would need about [\d,]+ bytes"):
        task.reset(10_000_000)
    with pytest.raises(ValueError, match="`batch_size`"):
        task.reset_to(torch.zeros(10_000_000, dtype=torch.long), torch.ones(10_000_000).long())


def test_the_limit_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv("NOISE_ENVS_MEMORY_LIMIT", "1e6")
    assert make_task("NoisyMaze-v0", size=40).num_cells == 1600  # 40 * 40 * 400 < 1e6 bytes
    with pytest.raises(ValueError, match=r"`size` = 60 .* limit of 1,000,000 bytes"):
        make_task("NoisyMaze-v0", size=60)
    monkeypatch.setenv("NOISE_ENVS_MEMORY_LIMIT", "lots")
    with pytest.raises(ValueError, match="NOISE_ENVS_MEMORY_LIMIT must be a positive number"):
        make_task("NoisyMaze-v0")


def test_a_30x30_maze_builds_and_runs_in_bounded_time():
    """The all-pairs tables took 122 s here; linear work takes well under a second idle."""
    start = time.perf_counter()
    env = gymnasium.make("NoisyMaze-v0", size=30, max_episode_steps=-1)
    _, info = env.reset(seed=0)
    assert time.perf_counter() - start < 5.0
    done = False
    while not done:
        _, _, terminated, truncated, info = env.step(info["target"])
        done = terminated or truncated
    assert info["episode_metrics"]["path_efficiency"] == pytest.approx(1.0)


@pytest.mark.parametrize("name", ["obs_noise", "step_cost", "shaping"])
def test_huge_noise_and_reward_scales_are_refused_by_name(name):
    with pytest.raises(ValueError, match=rf"`{name}` must be <= 1e\+06, got 1e\+300"):
        make_task("NoisyMaze-v0", **{name: 1e300})
    with pytest.raises(ValueError, match=rf"`{name}` must be finite, got nan"):
        make_task("NoisyMaze-v0", **{name: float("nan")})


def test_per_episode_mazes_get_bfs_tables_in_bounded_time():
    """randomize_layout: a new maze per row, its tables linear in the cells (was 50 s here)."""
    task = make_task("NoisyMaze-v0", size=30, randomize_layout=True)
    start = time.perf_counter()
    state, _ = task.reset(16, generator=2)
    assert time.perf_counter() - start < 10.0
    relaxed = distances_to(state.walls, state.goal_cell, 30)  # relaxation, the plain BFS
    assert torch.equal(state.distance, relaxed)
    assert torch.equal(state.next_cell, next_cells(state.walls, relaxed, 30))
