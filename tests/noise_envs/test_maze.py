"""NoisyMaze-v0: the task's options, episodes, teacher, metrics and rendering, against hand values."""

import math
import pickle
import warnings

import gymnasium
import numpy as np
import pytest
import torch
from gymnasium.utils.env_checker import check_env, data_equivalence
from stable_baselines3.common.env_checker import check_env as sb3_check_env

from noise_envs import MazeConfig, MazeTask, RandomSource, TaskEnv, TaskVectorEnv, make_task
from noise_envs.maze_layout import distances_to, format_layout, parse_layout
from noise_envs.maze_paths import WALL_MARGIN

# 2 rows x 3 columns, cells 0 1 2 / 3 4 5: one corridor 0-1-2-5-4-3 (0-3 and 1-4 closed).
S_BEND = [
    "+--+--+--+",
    "|        |",
    "+--+--+  +",
    "|        |",
    "+--+--+--+",
]


def follow_teacher(task, state):
    """Act as the teacher says until every row is done; returns the final state and rewards."""
    rewards = []
    while not bool(state.done.all()):
        target, _ = task.teacher(state)
        state, _, reward, _ = task.step(state, target)
        rewards.append(reward)
    return state, torch.stack(rewards)


def test_default_task_is_a_fixed_5x5_perfect_maze():
    task = make_task("NoisyMaze-v0")
    assert (task.width, task.height) == (5, 5)
    assert task.observation_space.shape == (8,) and task.action_space.shape == (2,)
    assert task.primary_metric == "path_efficiency"
    assert format_layout(task.walls, 5) == task.maze_text
    open_sides = int((~task.walls).sum())
    assert open_sides == 2 * 24  # a spanning tree of 25 cells, each edge seen from both sides
    assert task.horizon == math.ceil(3.0 * task.paths.longest / 0.25)


def test_maze_seed_changes_the_maze():
    assert not torch.equal(MazeTask(maze_seed=0).walls, MazeTask(maze_seed=1).walls)
    assert torch.equal(MazeTask(maze_seed=3).walls, MazeTask(maze_seed=3).walls)


def test_layout_as_lines_or_as_one_string():
    text = "\n        " + "\n        ".join(S_BEND) + "\n"
    assert MazeTask(layout=text).config.layout == tuple(S_BEND)
    task = MazeTask(layout=S_BEND)
    assert (task.width, task.height) == (3, 2) and task.maze_text == S_BEND


def test_horizon_scales_with_the_longest_shortest_path():
    """S_BEND's longest shortest path is 0 -> 3: 5 steps; horizon = ceil(f * 5 / speed)."""
    assert MazeTask(layout=S_BEND).horizon == math.ceil(3.0 * 5 / 0.25)
    assert MazeTask(layout=S_BEND, horizon_factor=2.0, max_speed=0.5).horizon == 20
    assert MazeTask(layout=S_BEND, max_steps=7).horizon == 7
    assert MazeTask(size=3, randomize_layout=True).horizon == math.ceil(3.0 * 8 / 0.25)


def test_reset_draws_distinct_start_and_goal_cells_uniformly():
    task = MazeTask(size=3)
    state, _ = task.reset(9000, generator=0)
    assert (state.cell != state.goal_cell).all()
    assert torch.equal(state.position, torch.stack((state.cell % 3, state.cell // 3), -1) + 0.5)
    counts = torch.bincount(state.cell * 9 + state.goal_cell, minlength=81).reshape(9, 9)
    assert (counts.diagonal() == 0).all()
    off_diagonal = counts[~torch.eye(9, dtype=torch.bool)].float()
    assert off_diagonal.min() > 0.6 * 9000 / 72 and off_diagonal.max() < 1.4 * 9000 / 72


def test_observation_by_hand():
    """Start at cell 3 (x 0.5, y 1.5), goal cell 2 (2.5, 0.5) in S_BEND, 3 wide and 2 high."""
    task = MazeTask(layout=S_BEND)
    _, obs = task.reset_to(torch.tensor([3]), torch.tensor([2]))
    # x / 3 and y / 2 scaled to [-1, 1]; walls east, south, west, north of cell 3: 0, 1, 1, 1
    expected = [2 * 0.5 / 3 - 1, 2 * 1.5 / 2 - 1, 2 * 2.5 / 3 - 1, 2 * 0.5 / 2 - 1, 0, 1, 1, 1]
    assert obs[0].tolist() == pytest.approx(expected)


def test_teacher_points_along_the_shortest_path():
    """From cell 3 the way to cell 2 is east along the bottom, then up at cell 5."""
    task = MazeTask(layout=S_BEND)
    state, _ = task.reset_to(torch.tensor([3, 5]), torch.tensor([2, 2]))
    target, mask = task.teacher(state)
    torch.testing.assert_close(target, torch.tensor([[1.0, 0.0], [0.0, -1.0]]))
    assert mask.tolist() == [[1.0, 1.0], [1.0, 1.0]]


def test_an_episode_by_hand():
    """Cell 0 -> cell 1 at speed 0.5: two steps east reach the goal; rewards and metrics."""
    task = MazeTask(layout=S_BEND, max_speed=0.5, goal_radius=0.2, step_cost=0.01)
    state, _ = task.reset_to(torch.tensor([0]), torch.tensor([1]))
    action = torch.tensor([[1.0, 0.0]])
    state, _, reward, done = task.step(state, action)
    assert state.position.tolist() == [[1.0, 0.5]] and reward.tolist() == pytest.approx([-0.01])
    assert not done[0]
    state, _, reward, done = task.step(state, action * 0.8)
    torch.testing.assert_close(state.position, torch.tensor([[1.4, 0.5]]))
    assert reward.tolist() == pytest.approx([0.99]) and done.tolist() == [True]
    assert not state.truncated[0]
    metrics = task.episode_metrics(state)
    # travelled up to the goal disc: 0.5 + 0.4 - (0.2 - 0.1) = 0.8, the oracle's path too
    assert state.travelled.tolist() == pytest.approx([0.8])
    assert state.reference_length.tolist() == pytest.approx([0.8])
    assert metrics["path_efficiency"].tolist() == pytest.approx([1.0])
    assert metrics["success"].tolist() == [1.0]
    # teacher errors: (1, 0) was right; then (0.8, 0) against (1, 0): 0.04 over 2 steps
    assert metrics["oracle_mse"].tolist() == pytest.approx([0.04 / 4])


def test_a_detour_lowers_path_efficiency():
    """Two steps south, into the wall, then follow the teacher east."""
    task = MazeTask(layout=S_BEND)
    state, _ = task.reset_to(torch.tensor([0]), torch.tensor([2]))
    for _ in range(2):
        state, *_ = task.step(state, torch.tensor([[0.0, 1.0]]))
    torch.testing.assert_close(state.position, torch.tensor([[0.5, 1 - WALL_MARGIN]]))
    state, _ = follow_teacher(task, state)
    efficiency = float(task.episode_metrics(state)["path_efficiency"][0])
    expected = float(state.reference_length[0] / state.travelled[0])
    assert efficiency == pytest.approx(expected) and 0.5 < efficiency < 0.95


def test_actions_beyond_the_box_are_clipped_for_the_motion():
    task = MazeTask(layout=S_BEND, max_speed=0.25)
    state, _ = task.reset_to(torch.tensor([0]), torch.tensor([2]))
    state, *_ = task.step(state, torch.tensor([[3.0, 0.0]]))
    assert state.position.tolist() == [[0.75, 0.5]]


def test_truncation_at_the_horizon_without_the_goal():
    task = MazeTask(layout=S_BEND, max_steps=3)
    state, _ = task.reset_to(torch.tensor([0]), torch.tensor([2]))
    for _ in range(3):
        state, _, reward, done = task.step(state, torch.zeros(1, 2))
    assert done.tolist() == [True] and state.truncated.tolist() == [True]
    assert reward.tolist() == pytest.approx([-0.01])
    metrics = task.episode_metrics(state)
    assert metrics["success"].tolist() == [0.0] and metrics["path_efficiency"].tolist() == [0.0]


@pytest.mark.parametrize("options", [{}, {"randomize_layout": True, "size": 4}])
def test_the_oracle_followed_exactly_always_succeeds_with_efficiency_one(options):
    task = MazeTask(**options)
    state, _ = task.reset(200, generator=5)
    state, rewards = follow_teacher(task, state)
    metrics = task.episode_metrics(state)
    assert metrics["success"].min() == 1.0 and metrics["oracle_mse"].max() == 0.0
    torch.testing.assert_close(metrics["path_efficiency"], torch.ones(200))
    assert (state.t < task.horizon).all()
    # each row earns +1 once, and pays step_cost on each of its steps
    torch.testing.assert_close(rewards.sum(0), 1 - 0.01 * state.t.float())


def test_randomized_layouts_differ_per_row_and_are_perfect():
    task = MazeTask(size=4, randomize_layout=True)
    state, _ = task.reset(6, generator=0)
    assert len({tuple(walls.flatten().tolist()) for walls in state.walls}) == 6
    assert ((~state.walls).sum((1, 2)) == 2 * 15).all()
    distance = distances_to(state.walls, state.goal_cell, 4)
    assert (distance < 16).all()


def test_randomized_rows_replay_alone_with_their_generator():
    """Row i of a per-row batch equals a batch of one with the same generator seed."""
    task = MazeTask(size=4, randomize_layout=True, obs_noise=0.1)
    seeds = [3, 8]
    batch, obs = task.reset(
        2, generator=RandomSource([torch.Generator().manual_seed(s) for s in seeds])
    )
    for row, seed in enumerate(seeds):
        single, single_obs = task.reset(1, generator=seed)
        assert torch.equal(batch.walls[row], single.walls[0])
        assert torch.equal(obs[row], single_obs[0])


def test_observation_noise_is_added_and_kept_in_bounds():
    task = MazeTask(obs_noise=0.3)
    state, noisy = task.reset(500, generator=0)
    clean = task._observe(state)
    assert 0.2 < float((noisy - clean).std()) < 0.4
    assert task.observation_space.contains(noisy[0].numpy())
    assert task.observation_space.high[0] == pytest.approx(1 + 5 * 0.3)


def test_no_gradient_flows_through_the_motion():
    """Imitation along visited states: positions never carry gradients."""
    task = MazeTask()
    state, _ = task.reset(3, generator=0)
    action = torch.zeros(3, 2, requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the action's bound check reads no tensor in the graph
        state, obs, _, _ = task.step(state, action)
    assert not state.position.requires_grad and not obs.requires_grad
    assert state.error_sum.requires_grad


def test_action_requiring_grad_steps_like_a_plain_one():
    """An action in the autograd graph gives the same state, reward and bound check as without."""
    task = MazeTask()
    start, _ = task.reset(3, generator=0)
    action = torch.tensor([[0.3, -0.2], [0.0, 0.1], [-0.5, 0.5]])
    _, obs, reward, _ = task.step(start, action.clone().requires_grad_())
    _, plain_obs, plain_reward, _ = task.step(start, action)
    torch.testing.assert_close(obs, plain_obs)
    torch.testing.assert_close(reward.detach(), plain_reward)
    with pytest.raises(ValueError, match=r"`action` must be finite .*got max \|action\| = 2e\+06"):
        task.step(start, torch.full((3, 2), 2e6, requires_grad=True))


def test_config_round_trips_through_json():
    config = MazeConfig(layout=tuple(S_BEND), max_speed=0.5, max_steps=9, obs_noise=0.1)
    assert MazeConfig.from_json(config.to_json()) == config
    assert MazeConfig.from_json(MazeConfig().to_json()) == MazeConfig()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"size": 1}, "`size` must be an integer >= 2, got 1"),
        ({"size": 2.5}, "`size` must be an integer >= 1, got 2.5"),
        ({"max_speed": 0.0}, "`max_speed` must be > 0, got 0.0"),
        ({"max_speed": -0.5}, "`max_speed` must be > 0, got -0.5"),
        ({"max_speed": 1.5}, r"`max_speed` must be in \[0.0, 1.0\], got 1.5"),
        ({"max_speed": math.nan}, "`max_speed` must be finite, got nan"),
        ({"goal_radius": 0.6}, r"`goal_radius` must be in \[0.0, 0.5\], got 0.6"),
        ({"goal_radius": 0}, "`goal_radius` must be > 0, got 0"),
        ({"step_cost": -1.0}, "`step_cost` must be >= 0, got -1.0"),
        ({"horizon_factor": 0}, "`horizon_factor` must be > 0, got 0"),
        ({"max_steps": 0}, "`max_steps` must be an integer >= 1, got 0"),
        ({"trail_length": -1}, "`trail_length` must be >= 0, got -1"),
        ({"maze_seed": -2}, "`maze_seed` must be >= 0, got -2"),
        ({"randomize_layout": 1}, "`randomize_layout` must be True or False, got 1"),
        (
            {"layout": tuple(S_BEND), "randomize_layout": True},
            "`randomize_layout` must be False when a `layout` is given",
        ),
        (
            {"layout": ("+--+--+", "|  ?  |", "+--+  +", "|     |", "+--+--+")},
            "line 1, column 3: unknown character '\\?'",
        ),
        ({"obs_noise": -0.1}, "`obs_noise` must be >= 0, got -0.1"),
        ({"speed": 0.5}, "unknown MazeConfig option 'speed'.*Did you mean 'max_speed'"),
    ],
)
def test_bad_options_are_refused_by_name(options, message):
    with pytest.raises(ValueError, match=message):
        make_task("NoisyMaze-v0", **options)


@pytest.mark.parametrize(
    ("action", "message"),
    [
        (torch.zeros(2, 3), r"Expected `action` of shape \[2, 2\], got \(2, 3\)"),
        (torch.zeros(2), r"Expected `action` of shape \[2, 2\], got \(2,\)"),
        (torch.tensor([[0.0, math.nan], [0.0, 0.0]]), "`action` must be finite"),
        (torch.tensor([[0.0, math.inf], [0.0, 0.0]]), "`action` must be finite"),
    ],
)
def test_bad_actions_are_refused(action, message):
    task = MazeTask()
    state, _ = task.reset(2, generator=0)
    with pytest.raises(ValueError, match=message):
        task.step(state, action)


@pytest.mark.parametrize(
    ("action", "message"),
    [
        (np.zeros(3, dtype=np.float32), r"Expected `action` of shape \[2\], got \(3,\)"),
        (np.array([np.nan, 0.0], dtype=np.float32), "`action` must be finite"),
    ],
)
def test_bad_actions_are_refused_by_the_env(action, message):
    env = gymnasium.make("NoisyMaze-v0")
    env.reset(seed=0)
    with pytest.raises(ValueError, match=message):
        env.step(action)


def test_reset_to_refuses_bad_cells():
    task = MazeTask(layout=S_BEND)
    with pytest.raises(ValueError, match=r"`start_cell` must be cells in \[0, 6\), got \[6\]"):
        task.reset_to(torch.tensor([6]), torch.tensor([0]))
    with pytest.raises(ValueError, match=r"`goal_cell` must be cells in .* other than the start"):
        task.reset_to(torch.tensor([1]), torch.tensor([1]))
    with pytest.raises(ValueError, match="draws a new maze every episode"):
        MazeTask(randomize_layout=True).reset_to(torch.tensor([1]), torch.tensor([0]))


def test_render_ansi_by_hand():
    """Two steps east from cell 3: the agent in cell 4, the trail in 3 and 4, the goal in 2."""
    task = MazeTask(layout=S_BEND, max_speed=0.5)
    state, _ = task.reset_to(torch.tensor([3]), torch.tensor([2]))
    for _ in range(2):
        state, *_ = task.step(state, torch.tensor([[1.0, 0.0]]))
    expected = ["+--+--+--+", "|      G |", "+--+--+  +", "|.  @    |", "+--+--+--+"]
    assert task.render(state, "ansi") == ["\n".join(expected)]


def test_render_rgb_array_shows_maze_goal_agent_and_trail():
    task = MazeTask(layout=S_BEND, max_speed=0.5)
    state, _ = task.reset_to(torch.tensor([3]), torch.tensor([2]))
    for _ in range(2):
        state, *_ = task.step(state, torch.tensor([[1.0, 0.0]]))
    (frame,) = task.render(state, "rgb_array")
    assert frame.shape == (64, 96, 3) and frame.dtype == np.uint8
    pixel = lambda x, y: tuple(frame[int(y * 32), int(x * 32)])  # noqa: E731
    assert pixel(2.5, 0.5) == (60, 170, 75)  # goal
    assert pixel(*state.position[0].tolist()) == (215, 50, 40)  # agent at (1.5, 1.5)
    assert pixel(0.8, 1.5) == (120, 160, 230)  # trail from (0.5, 1.5)
    assert pixel(1.0, 1.0) == (30, 30, 30)  # the wall between the rows
    assert pixel(2.5, 1.0) == (255, 255, 255)  # the open side 2-5


def test_gymnasium_make_with_render_modes_and_checkers_without_warnings():
    for mode in ("rgb_array", "ansi"):
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            env = gymnasium.make("NoisyMaze-v0", render_mode=mode)
            check_env(env.unwrapped)
            sb3_check_env(env, warn=True)
            env.reset(seed=0)
            frame = env.render()
        assert isinstance(frame, np.ndarray if mode == "rgb_array" else str)


def test_human_render_mode_warns_and_names_the_modes_there_are():
    with pytest.warns(
        UserWarning, match=r"cannot render 'human' \(its render modes: \['ansi', 'rgb"
    ):
        env = TaskEnv("NoisyMaze-v0", render_mode="human")
    assert env.render_mode is None


def test_make_vec_with_64_envs_and_vector_render():
    envs = gymnasium.make_vec(
        "NoisyMaze-v0", num_envs=64, vectorization_mode="vector_entry_point", render_mode="ansi"
    )
    assert isinstance(envs, TaskVectorEnv) and envs.num_envs == 64
    obs, infos = envs.reset(seed=0)
    assert obs.shape == (64, 8) and infos["target"].shape == (64, 2)
    obs, rewards, *_ = envs.step(infos["target"])
    assert rewards.tolist() == pytest.approx([-0.01] * 64)
    assert len(envs.render()) == 64


@pytest.mark.parametrize("options", [{"randomize_layout": True, "size": 3}, {"obs_noise": 0.2}])
def test_vector_env_equals_single_envs_with_teacher_actions(options):
    """Seeded alike, the vector env's rows replay single envs through goal-reaching autoresets."""
    num_envs = 3
    envs = TaskVectorEnv("NoisyMaze-v0", num_envs, **options)
    singles = [TaskEnv("NoisyMaze-v0", **options) for _ in range(num_envs)]
    obs, infos = envs.reset(seed=7)
    single = [env.reset(seed=7 + i) for i, env in enumerate(singles)]
    assert np.array_equal(obs, np.stack([o for o, _ in single]))
    targets = [info["target"] for _, info in single]
    ended, endings = [False] * num_envs, 0
    for step in range(40):
        a = envs.step(infos["target"])
        infos = a[-1]
        rows = []
        for i, env in enumerate(singles):
            if ended[i]:
                o, info = env.reset()
                rows.append((o, 0.0, False, False))
            else:
                o, r, te, tr, info = env.step(targets[i])
                rows.append((o, r, te, tr))
                endings += te
            ended[i] = rows[-1][2] or rows[-1][3]
            targets[i] = info["target"]
        b = tuple(np.array(column) for column in zip(*rows, strict=True))
        for name, x, y in zip(("obs", "rewards", "terminated", "truncated"), a[:4], b, strict=True):
            assert np.array_equal(x, y.astype(x.dtype)), f"{name} differ at step {step}"
    assert endings >= 2, "no autoreset exercised"


def test_pickle_round_trip_mid_episode():
    env = TaskEnv("NoisyMaze-v0", obs_noise=0.1, render_mode="ansi")
    env.reset(seed=3)
    env.step(np.array([0.3, -0.2], dtype=np.float32))
    copy = pickle.loads(pickle.dumps(env))
    for step in range(5):
        action = np.array([0.1 * step, 0.5], dtype=np.float32)
        assert data_equivalence(env.step(action), copy.step(action), exact=True), f"step {step}"
    assert env.render() == copy.render()


def test_repr():
    assert repr(MazeTask()) == f"MazeTask(NoisyMaze-v0, 5x5, horizon={MazeTask().horizon})"
    assert repr(TaskEnv("NoisyMaze-v0", size=4)) == "TaskEnv(NoisyMaze-v0, size=4)"


def test_layout_parse_is_what_the_task_uses():
    assert torch.equal(MazeTask(layout=S_BEND).walls, parse_layout(S_BEND)[2])


def test_the_oracle_in_the_task_walks_a_bfs_shortest_path():
    """Followed in random mazes, the oracle changes cell exactly BFS-distance times."""
    from collections import deque

    task = MazeTask(size=4, randomize_layout=True)
    state, _ = task.reset(8, generator=11)
    walls, start, goal = state.walls.clone(), state.cell.clone(), state.goal_cell.clone()
    changes = torch.zeros(8, dtype=torch.long)
    while not bool(state.done.all()):
        before = state.cell
        state, *_ = task.step(state, task.teacher(state)[0])
        changes += (state.cell != before).long()
    for row in range(8):
        seen, queue = {int(start[row]): 0}, deque([int(start[row])])
        while queue:
            cell = queue.popleft()
            r, c = divmod(cell, 4)
            for side, (dc, dr) in enumerate([(1, 0), (0, 1), (-1, 0), (0, -1)]):
                other = (r + dr) * 4 + c + dc
                if not walls[row, cell, side] and other not in seen:
                    seen[other] = seen[cell] + 1
                    queue.append(other)
        assert int(changes[row]) == seen[int(goal[row])]


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_vector_env_matches_the_cpu_one():
    """The random numbers come from CPU generators, so only float rounding may differ."""
    options = {"obs_noise": 0.2, "randomize_layout": True, "size": 4}
    cpu = TaskVectorEnv("NoisyMaze-v0", 4, **options)
    cuda = TaskVectorEnv("NoisyMaze-v0", 4, device="cuda", **options)
    obs_cpu, info_cpu = cpu.reset(seed=0)
    obs_cuda, _ = cuda.reset(seed=0)
    np.testing.assert_allclose(obs_cpu, obs_cuda, atol=1e-5)
    for step in range(30):
        a, b = cpu.step(info_cpu["target"]), cuda.step(info_cpu["target"])
        np.testing.assert_allclose(a[0], b[0], atol=1e-4, err_msg=f"step {step}")
        assert np.array_equal(a[2], b[2]) and np.array_equal(a[3], b[3]), f"step {step}"
        info_cpu = a[-1]


def test_the_supervised_trainer_and_run_folders_take_the_maze_as_is(tmp_path):
    """Closed-loop imitation through agents.supervised, saved and reloaded with its layout."""
    from agents import CTRNNConfig, TrainConfig, load_run, train_run

    options = {"layout": S_BEND, "max_steps": 6}
    config = CTRNNConfig(input_size=8, output_size=2, hidden_size=8)
    train_config = TrainConfig(iterations=2, batch_size=4, checkpoint_every=1)
    run = train_run(tmp_path, "NoisyMaze-v0", config, train_config, task_kwargs=options)
    assert run.status == "complete" and len(run.history) == 2
    assert np.isfinite([row["loss"] for row in run.history]).all()
    assert load_run(tmp_path).task().config == MazeConfig(layout=tuple(S_BEND), max_steps=6)
