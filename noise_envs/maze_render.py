"""Drawing :class:`~noise_envs.maze.MazeTask` states: text frames and RGB images."""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING

import numpy as np

from noise_envs.maze_layout import format_layout
from noise_envs.maze_paths import cell_of

if TYPE_CHECKING:
    from noise_envs.maze import MazeState

__all__ = ["CELL_PIXELS", "ansi_frame", "rgb_frame", "trail_points"]

CELL_PIXELS = 32
"""Side of a cell in rendered images, in pixels."""

_WALL = (30, 30, 30)
_GOAL = (60, 170, 75)
_AGENT = (215, 50, 40)
_TRAIL = (120, 160, 230)
_AGENT_RADIUS = 0.15
"""Radius of the agent's disc in images, in cells."""


def trail_points(state: MazeState, row: int) -> np.ndarray:
    """The positions ``[n, 2]`` the trail of ``row`` holds, oldest first, ending at the present."""
    trail = state.trail[row].detach().cpu().numpy()
    kept = min(int(state.t[row]) + 1, trail.shape[0])
    if kept == 0:
        return state.position[row : row + 1].detach().cpu().numpy()
    return trail[trail.shape[0] - kept :]


def ansi_frame(state: MazeState, row: int, width: int, goal_radius: float) -> str:
    """The maze of ``row`` as text: ``@`` the agent, ``G`` the goal, ``.`` cells on the trail."""
    del goal_radius  # the text shows cells, not distances
    walls = state.walls[row].detach().cpu()
    height = walls.shape[0] // width
    points = state.trail.new_tensor(trail_points(state, row))
    marks = dict.fromkeys(cell_of(points, width, height).tolist(), ".")
    goal, agent = int(state.goal_cell[row]), int(state.cell[row])
    marks[goal] = "G"
    marks[agent] = "@G" if agent == goal else "@"
    return "\n".join(format_layout(walls, width, marks))


def rgb_frame(state: MazeState, row: int, width: int, goal_radius: float) -> np.ndarray:
    """The maze of ``row`` as an image ``[height * 32, width * 32, 3]`` uint8.

    Walls are dark lines, the goal disc green, the trail blue and the agent a red disc.
    """
    walls = state.walls[row].detach().cpu().numpy()
    height = walls.shape[0] // width
    image = np.full((height * CELL_PIXELS, width * CELL_PIXELS, 3), 255, dtype=np.uint8)
    _fill_disc(image, state.goal[row].detach().cpu().numpy(), goal_radius, _GOAL)
    _draw_path(image, trail_points(state, row), _TRAIL)
    _fill_disc(image, state.position[row].detach().cpu().numpy(), _AGENT_RADIUS, _AGENT)
    _draw_walls(image, walls, width)
    return image


def _pixel_grid(image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pixel centres (x, y) in cell units."""
    rows, cols = np.indices(image.shape[:2])
    return (cols + 0.5) / CELL_PIXELS, (rows + 0.5) / CELL_PIXELS


def _fill_disc(image: np.ndarray, centre: np.ndarray, radius: float, colour: tuple) -> None:
    x, y = _pixel_grid(image)
    image[(x - centre[0]) ** 2 + (y - centre[1]) ** 2 <= radius**2] = colour


def _draw_path(image: np.ndarray, points: np.ndarray, colour: tuple) -> None:
    """Mark the pixels along the polyline through ``points`` (cell units), 3 pixels wide."""
    for start, end in itertools.pairwise(points):
        samples = max(2, int(np.ceil(np.abs(end - start).max() * CELL_PIXELS * 2)))
        line = start + np.linspace(0.0, 1.0, samples)[:, None] * (end - start)
        pixels = np.floor(line * CELL_PIXELS).astype(int)
        for dx, dy in ((0, 0), (1, 0), (-1, 0), (0, 1), (0, -1)):
            cols = np.clip(pixels[:, 0] + dx, 0, image.shape[1] - 1)
            rows = np.clip(pixels[:, 1] + dy, 0, image.shape[0] - 1)
            image[rows, cols] = colour


def _draw_walls(image: np.ndarray, walls: np.ndarray, width: int) -> None:
    """Closed sides as 2-pixel lines on the cell boundaries, kept inside the image."""
    size, (height_px, width_px) = CELL_PIXELS, image.shape[:2]
    for cell, sides in enumerate(walls):
        row, col = divmod(cell, width)
        left, top = col * size, row * size
        rows = slice(top, min(top + size + 1, height_px))
        cols = slice(left, min(left + size + 1, width_px))
        if sides[0]:
            image[rows, _line(left + size, width_px)] = _WALL
        if sides[1]:
            image[_line(top + size, height_px), cols] = _WALL
        if sides[2]:
            image[rows, _line(left, width_px)] = _WALL
        if sides[3]:
            image[_line(top, height_px), cols] = _WALL


def _line(boundary: int, limit: int) -> slice:
    """The 2 pixels around the pixel boundary ``boundary``, shifted inside ``[0, limit)``."""
    start = min(max(boundary - 1, 0), limit - 2)
    return slice(start, start + 2)
