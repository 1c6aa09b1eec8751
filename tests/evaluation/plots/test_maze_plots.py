"""Maze trajectory plots: the rollout behind them and the figure's contents."""

import numpy as np
import pytest
import torch
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure

from evaluation.plots.maze import draw_maze, maze_trajectories, plot_maze_trajectories
from noise_envs import MazeTask

CORRIDOR = ["+--+--+--+", "|        |", "+--+--+  +", "|        |", "+--+--+--+"]


class EastPolicy:
    """Moves east at half speed plus sigma * xi, recording the xi of every step."""

    def __init__(self):
        self.draws = []

    def initial_state(self, batch_size, device="cpu"):
        return torch.zeros(batch_size, 1, device=device)

    def step(self, obs, state, sigma=0.0, noise=None):
        xi = noise.normal(obs.shape[0], 2)
        self.draws.append(xi)
        sigma = torch.as_tensor(sigma).reshape(-1, 1)
        return torch.tensor([0.5, 0.0]) + sigma * xi, state


def test_trajectories_start_at_the_start_and_follow_the_actions():
    """At level 0 the path goes east by 0.5 * 0.25 per step from cell 0 to cell 2's disc."""
    task = MazeTask(layout=CORRIDOR)
    result = maze_trajectories(
        EastPolicy(), task, [0.0, 0.2], start_cell=0, goal_cell=2, episodes=3, seed=1
    )
    assert result.positions.shape[:2] == (2, 3)
    np.testing.assert_allclose(result.positions[:, :, 0], np.broadcast_to([0.5, 0.5], (2, 3, 2)))
    # 0.5 -> within 0.2 of 2.5 takes ceil(1.8 / 0.125) = 15 steps
    assert result.steps[0].tolist() == [15, 15, 15] and result.success[0].all()
    expected = 0.5 + 0.125 * np.arange(16)
    np.testing.assert_allclose(result.positions[0, 0, :16, 0], expected, rtol=1e-6)
    np.testing.assert_allclose(result.positions[0, 0, 16:, 0], expected[-1])


def test_every_level_sees_the_same_noise_samples():
    policy = EastPolicy()
    task = MazeTask(layout=CORRIDOR)
    maze_trajectories(policy, task, [0.0, 0.1, 0.3], start_cell=3, goal_cell=2, episodes=2)
    for xi in policy.draws:
        blocks = xi.reshape(3, 2, 2)
        assert torch.equal(blocks[0], blocks[1]) and torch.equal(blocks[0], blocks[2])
        assert not torch.equal(blocks[0, 0], blocks[0, 1])


def test_a_task_without_a_fixed_maze_is_refused():
    task = MazeTask(size=3, randomize_layout=True)
    with pytest.raises(ValueError, match="draws a new maze every episode"):
        maze_trajectories(EastPolicy(), task, [0.0], start_cell=0, goal_cell=1)


def test_bad_levels_are_refused():
    with pytest.raises(ValueError, match="levels"):
        maze_trajectories(EastPolicy(), MazeTask(), [-1.0], start_cell=0, goal_cell=1)


def test_draw_maze_draws_each_closed_wall_once():
    """CORRIDOR has 10 outer unit walls and 2 inner ones (0-3 and 1-4)."""
    task = MazeTask(layout=CORRIDOR)
    ax = Figure().add_subplot()
    draw_maze(ax, task.walls, task.width)
    (walls,) = [c for c in ax.collections if isinstance(c, LineCollection)]
    assert len(walls.get_segments()) == 12
    assert ax.get_ylim()[0] > ax.get_ylim()[1], "row 0 is drawn at the top"


def test_plot_colours_paths_by_level():
    task = MazeTask(layout=CORRIDOR)
    result = maze_trajectories(
        EastPolicy(), task, [0.0, 0.5], start_cell=3, goal_cell=2, episodes=2, seed=0
    )
    fig = plot_maze_trajectories(task, result)
    ax = fig.axes[0]
    paths = [line for line in ax.lines if line.get_label() not in ("start", "goal")]
    assert len(paths) == 4
    colours = [tuple(line.get_color()) for line in paths]
    assert colours[0] == colours[1] and colours[2] == colours[3] and colours[0] != colours[2]
    assert len(fig.axes) == 2, "a colour bar"


def test_source_of_randomness_is_explicit():
    """The same seed gives the same paths; another seed draws other noise samples."""
    task = MazeTask(layout=CORRIDOR)
    runs = [
        maze_trajectories(EastPolicy(), task, [0.3], start_cell=0, goal_cell=2, seed=s).positions
        for s in (4, 4, 5)
    ]
    assert np.array_equal(runs[0], runs[1]) and not np.array_equal(runs[0], runs[2])
