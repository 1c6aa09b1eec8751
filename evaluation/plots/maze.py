"""Maze trajectories of one start and goal at several test noise levels, and their figure.

The trajectories share their random numbers across levels (as in
:func:`~evaluation.sweep.sweep_noise`), so the paths at different levels differ by the noise level
alone.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch
from matplotlib import colormaps
from matplotlib.axes import Axes
from matplotlib.cm import ScalarMappable
from matplotlib.collections import LineCollection
from matplotlib.colors import Normalize
from matplotlib.figure import Figure

from agents.policy import Policy
from evaluation.sweep_result import check_levels, check_seed
from noise_envs._checks import check_positive_int
from noise_envs.maze import MazeTask
from noise_envs.maze_layout import OFFSETS
from noise_envs.random import RandomSource

__all__ = ["MazeTrajectories", "draw_maze", "maze_trajectories", "plot_maze_trajectories"]


@dataclasses.dataclass(frozen=True, kw_only=True, eq=False)
class MazeTrajectories:
    """Paths of a policy from one start cell to one goal cell, ``episodes`` per test noise level."""

    levels: np.ndarray
    """Test noise levels ``[L]``, ascending."""
    positions: np.ndarray
    """Positions (x, y) in cells ``[L, E, T + 1, 2]``; an ended episode repeats its last one."""
    steps: np.ndarray
    """Steps each episode took ``[L, E]``."""
    success: np.ndarray
    """Whether each episode reached the goal ``[L, E]``."""
    start_cell: int
    """The start cell."""
    goal_cell: int
    """The goal cell."""


def maze_trajectories(
    policy: Policy,
    task: MazeTask,
    levels: np.ndarray | list[float],
    *,
    start_cell: int,
    goal_cell: int,
    episodes: int = 1,
    seed: int = 0,
    device: torch.device | str = "cpu",
) -> MazeTrajectories:
    """Run ``policy`` from ``start_cell`` to ``goal_cell`` of ``task``'s fixed maze at each level.

    Row ``l * E + e`` runs episode ``e`` at level ``l``; observation noise and the policy's noise
    samples come from sources tiled over the levels (common random numbers). Runs without
    gradients.

    Raises:
        ValueError: for bad levels, cells, counts or seeds, or a task with ``randomize_layout``.
    """
    levels = check_levels(levels)
    check_positive_int("episodes", episodes)
    env_seed, noise_seed = np.random.SeedSequence(check_seed(seed)).generate_state(2, np.uint64)
    rows = levels.size * episodes
    env_rng, noise = (
        RandomSource(torch.Generator().manual_seed(int(s)), repeats=levels.size, device=device)
        for s in (env_seed, noise_seed)
    )
    sigma = torch.as_tensor(levels, dtype=torch.float32, device=device).repeat_interleave(episodes)
    cells = (torch.full((rows,), c, dtype=torch.long) for c in (start_cell, goal_cell))
    state, obs = task.reset_to(*cells, generator=env_rng, device=device)
    positions = [state.position]
    with torch.no_grad():
        policy_state = policy.initial_state(rows, device)
        for _ in range(task.horizon):
            action, policy_state = policy.step(obs, policy_state, sigma, noise)
            state, obs, _, done = task.step(state, action, validate=False)
            positions.append(state.position)
            if bool(done.all()):
                break
    shape = (levels.size, episodes)
    return MazeTrajectories(
        levels=levels,
        positions=torch.stack(positions, 1).cpu().numpy().reshape(*shape, -1, 2),
        steps=state.t.cpu().numpy().reshape(shape),
        success=state.reached.cpu().numpy().reshape(shape),
        start_cell=int(start_cell),
        goal_cell=int(goal_cell),
    )


def draw_maze(ax: Axes, walls: torch.Tensor | np.ndarray, width: int) -> None:
    """Draw the closed sides of one maze ``walls [C, 4]`` on ``ax`` (row 0 at the top)."""
    walls = np.asarray(walls, dtype=bool)
    height = walls.shape[0] // width
    segments = []
    for cell, sides in enumerate(walls):
        row, col = divmod(cell, width)
        centre = np.array([col + 0.5, row + 0.5])
        # each wall once: east and south sides, plus the outer west and north ones
        drawn = [True, True, col == 0, row == 0]
        for side in np.flatnonzero(sides & np.array(drawn)):
            normal = 0.5 * np.array(OFFSETS[side], dtype=float)
            along = normal[::-1]
            segments.append([centre + normal - along, centre + normal + along])
    ax.add_collection(LineCollection(segments, colors="0.15", linewidths=2.0))
    ax.set_xlim(-0.05, width + 0.05)
    ax.set_ylim(height + 0.05, -0.05)
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])


def plot_maze_trajectories(
    task: MazeTask,
    trajectories: MazeTrajectories,
    *,
    ax: Axes | None = None,
    cmap: str = "viridis",
) -> Figure:
    """The maze with every trajectory overlaid, coloured by its test noise level.

    A circle marks the start, a star the goal; a colour bar maps colours to levels.

    Returns:
        The figure holding ``ax``.
    """
    if ax is None:
        ax = Figure(figsize=(5.0, 4.4), layout="constrained").add_subplot()
    draw_maze(ax, task.walls.cpu().numpy(), task.width)
    colours = colormaps[cmap]
    norm = Normalize(float(trajectories.levels.min()), float(trajectories.levels.max()) or 1.0)
    for level, paths, steps in zip(
        trajectories.levels, trajectories.positions, trajectories.steps, strict=True
    ):
        for path, length in zip(paths, steps, strict=True):
            ax.plot(*path[: length + 1].T, color=colours(norm(level)), linewidth=1.2, alpha=0.8)
    start, goal = (
        (cell % task.width + 0.5, cell // task.width + 0.5)
        for cell in (trajectories.start_cell, trajectories.goal_cell)
    )
    ax.plot(*start, "o", color="black", markersize=8, label="start")
    ax.plot(*goal, "*", color="crimson", markersize=14, label="goal")
    bar = ax.figure.colorbar(ScalarMappable(norm=norm, cmap=colours), ax=ax, shrink=0.8)
    bar.set_label("test noise $\\sigma$ (per-step std)")
    ax.legend(loc="upper left", bbox_to_anchor=(0.0, -0.01), ncols=2, frameon=False)
    return ax.figure
