"""Moving through a maze and the shortest-path oracle, for :mod:`noise_envs.maze`.

Points are (x, y) in cell units, walls ``[B, C, 4]`` bool as in :mod:`noise_envs.maze_layout`.
"""

from __future__ import annotations

import math

import torch

from noise_envs._memory import check_memory
from noise_envs.maze_layout import (
    MazeTree,
    distances_to,
    maze_tree,
    neighbours,
    tree_distances,
)

__all__ = [
    "EAGER_CELLS",
    "MEMO_PAIRS",
    "WALL_MARGIN",
    "MazePaths",
    "cell_centres",
    "cell_of",
    "goal_progress",
    "move",
    "next_cells",
    "oracle_path_length",
    "oracle_velocity",
]

WALL_MARGIN = 1e-3
"""How far (in cells) a point stopped by a wall stays from it, so it stays inside its own cell."""

EAGER_CELLS = 64
"""Mazes with at most this many cells get all their oracle path lengths when built."""

MEMO_PAIRS = 1_000_000
"""At most this many (start, goal) path lengths are kept; the memo starts over when full."""

_EAST_SOUTH = torch.tensor([0, 1])
_WEST_NORTH = torch.tensor([2, 3])


def next_cells(walls: torch.Tensor, distance: torch.Tensor, width: int) -> torch.Tensor:
    """The next cell on a shortest path from every cell to the goal, ``[B, C]`` (the goal: itself).

    Among open neighbours, the one nearest the goal; ties go to the first of :data:`DIRECTIONS`.

    Args:
        walls: ``[B, C, 4]`` bool.
        distance: distances to the goal from :func:`distances_to`, ``[B, C]``.
        width: cells per row.
    """
    cells = walls.shape[1]
    table = neighbours(width, cells // width, walls.device)
    ahead = torch.where(walls, cells + 1, distance[:, table.clamp_min(0)]).argmin(dim=-1)
    step = table.expand(walls.shape[0], -1, -1).gather(-1, ahead.unsqueeze(-1)).squeeze(-1)
    at_goal = distance == 0
    return torch.where(at_goal, torch.arange(cells, device=walls.device), step)


def cell_of(position: torch.Tensor, width: int, height: int) -> torch.Tensor:
    """The cell ``[B]`` (int64) holding each point ``position [B, 2]`` (x, y)."""
    col = position[:, 0].floor().long().clamp(0, width - 1)
    row = position[:, 1].floor().long().clamp(0, height - 1)
    return row * width + col


def cell_centres(cells: torch.Tensor, width: int) -> torch.Tensor:
    """The centre (x, y) of each cell, ``[..., 2]`` float32."""
    return torch.stack((cells % width, cells // width), dim=-1).float() + 0.5


def move(
    position: torch.Tensor, velocity: torch.Tensor, walls: torch.Tensor, width: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Move points by ``velocity`` without crossing a wall, sliding along walls they hit.

    The straight move from ``position`` to ``position + velocity`` crosses at most one cell
    boundary per axis (every ``|velocity|`` is at most 1), in the order it reaches them. The
    first crossing is checked against the walls of the cell the point starts in, the second
    against the walls of the cell the first crossing led into. A crossing through a closed side
    stops that axis :data:`WALL_MARGIN` short of the wall (or where it is, if it is nearer),
    and the other axis moves on: the point slides along the wall. No axis moves backwards.

    Args:
        position: points ``[B, 2]`` (x, y) inside the grid.
        velocity: displacements ``[B, 2]`` in cells, each entry in ``[-1, 1]``.
        walls: ``[B, C, 4]`` bool.
        width: cells per row.

    Returns:
        The new points ``[B, 2]`` and the cells ``[B]`` (int64) they are in.
    """
    batch, cells, _ = walls.shape
    corner = (
        position.floor().clamp_min(0).minimum(position.new_tensor([width - 1, cells // width - 1]))
    )
    target = position + velocity
    forward = velocity > 0
    boundary = torch.where(forward, corner + 1, corner)
    crosses = torch.where(forward, target >= boundary, target < boundary)
    time = torch.where(crosses, (boundary - position) / velocity.where(crosses, 1.0), torch.inf)
    step = torch.where(forward, 1, -1) * crosses
    here = corner.long()
    cell = here[:, 1] * width + here[:, 0]
    beyond = (cell.unsqueeze(-1) + step * step.new_tensor([1, width])).clamp(0, cells - 1)
    side = torch.where(forward, _EAST_SOUTH.to(walls.device), _WEST_NORTH.to(walls.device))
    # closed sides: (x here, y here, y beyond the x crossing, x beyond the y crossing)
    lookup = torch.cat((cell.unsqueeze(-1) * 4 + side, beyond * 4 + side.flip(-1)), dim=-1)
    closed = walls.reshape(batch, cells * 4).gather(1, lookup)
    x_first = time[:, :1] < time[:, 1:]
    first = torch.cat((x_first, ~x_first), dim=-1)
    passed = crosses & ~closed[:, :2]
    blocked = crosses & torch.where(first | ~passed.flip(-1), closed[:, :2], closed[:, 2:].flip(-1))
    # a point already nearer the wall than the margin stays where it is
    stop = torch.where(
        forward,
        torch.maximum(boundary - WALL_MARGIN, position),
        torch.minimum(boundary + WALL_MARGIN, position),
    )
    moved = crosses & ~blocked
    new_cell = cell + (step * moved * step.new_tensor([1, width])).sum(-1)
    return torch.where(blocked, stop, target), new_cell


def oracle_velocity(
    position: torch.Tensor,
    cell: torch.Tensor,
    next_cell: torch.Tensor,
    width: int,
    max_speed: float,
) -> torch.Tensor:
    """The shortest-path oracle's velocity ``[B, 2]``, in units of ``max_speed``.

    It heads for the centre of the next cell on a shortest path from the current cell (the goal
    cell's centre inside the goal cell) at full speed (norm 1), or exactly onto that point when
    it is nearer than one step. The straight move to an adjacent cell's centre crosses only their
    shared side, so the oracle never touches a wall.

    Args:
        position: points ``[B, 2]``.
        cell: the cells ``[B]`` they are in.
        next_cell: next cell towards each row's goal, ``[B, C]`` (see :func:`next_cells`).
        width: cells per row.
        max_speed: cells per step at velocity 1.
    """
    waypoint = cell_centres(next_cell.gather(1, cell.unsqueeze(1)).squeeze(1), width)
    offset = waypoint - position
    distance = offset.norm(dim=-1, keepdim=True)
    return offset / distance.clamp_min(1e-12) * (distance / max_speed).clamp(max=1.0)


def goal_progress(
    position: torch.Tensor, moved: torch.Tensor, goal: torch.Tensor, goal_radius: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Whether a move from ``position`` to ``moved`` ``[B, 2]`` ends in the goal disc, and its length.

    The length ``[B]`` counts the move only up to the disc around the point ``goal [B, 2]``
    (exact for a move straight at the goal).
    """
    to_goal = (goal - moved).norm(dim=-1)
    reached = to_goal <= goal_radius
    inside = torch.where(reached, goal_radius - to_goal, 0.0)
    return reached, (moved - position).norm(dim=-1) - inside


def oracle_path_length(
    start: torch.Tensor,
    goal: torch.Tensor,
    next_cell: torch.Tensor,
    width: int,
    max_speed: float,
    goal_radius: float,
) -> torch.Tensor:
    """Length ``[B]`` of the path the oracle takes from the start cell's centre to the goal disc.

    Steps :func:`oracle_velocity` exactly as the maze task does, so an agent that copies the
    oracle travels exactly this far. Its path cuts the corners of the cell path.

    Args:
        start: start cells ``[B]``.
        goal: goal cells ``[B]``, different from the start cells.
        next_cell: next cell towards each row's goal, ``[B, C]`` (see :func:`next_cells`).
        width: cells per row.
        max_speed: cells per step at velocity 1.
        goal_radius: radius of the goal disc, in cells.
    """
    position, target = cell_centres(start, width), cell_centres(goal, width)
    travelled = torch.zeros(start.shape[0], device=start.device)
    reached = torch.zeros_like(travelled, dtype=torch.bool)
    # the oracle's path is no longer than the centre line, at most C cells
    for _ in range(math.ceil(next_cell.shape[1] / max_speed) + 2):
        cell = cell_of(position, width, next_cell.shape[1] // width)
        velocity = oracle_velocity(position, cell, next_cell, width, max_speed) * max_speed
        arrived, length = goal_progress(position, position + velocity, target, goal_radius)
        travelled = travelled + torch.where(reached, 0.0, length)
        position = torch.where(reached.unsqueeze(-1), position, position + velocity)
        reached = reached | arrived
        if bool(reached.all()):
            break
    return travelled


class MazePaths:
    """Shortest paths in one fixed maze, built in time and memory linear in its cells.

    Episodes draw their goals at random, so the teacher needs the distances to a new goal at
    every reset: in a perfect maze (a tree, as every generated maze is) they come from one
    depth-first search at construction and a few ``O(C)`` tensor operations per goal
    (:func:`~noise_envs.maze_layout.tree_distances`); in a drawn layout with loops, from
    breadth-first relaxation towards each goal (:func:`~noise_envs.maze_layout.distances_to`).
    No table over all (goal, cell) pairs is kept. The oracle's path lengths are computed for
    all pairs at once in mazes of up to :data:`EAGER_CELLS` cells; in larger ones each (start,
    goal) pair's length is computed the first time an episode needs it and kept (it never
    changes, so this memo changes no result; it is bounded by :data:`MEMO_PAIRS`).

    Args:
        walls: the maze, ``[C, 4]`` bool.
        width: cells per row.
        max_speed: cells per step at velocity 1.
        goal_radius: radius of the goal disc, in cells.
    """

    def __init__(self, walls: torch.Tensor, width: int, max_speed: float, goal_radius: float):
        self.walls = walls.cpu()
        """The maze, ``[C, 4]`` bool (on the CPU)."""
        self.width, self.max_speed, self.goal_radius = width, max_speed, goal_radius
        self.tree: MazeTree | None = maze_tree(self.walls[None], width)
        """The maze as a tree rooted at cell 0, None if it has loops."""
        self.longest = self._longest()
        """The longest shortest path (the maze's diameter), in cell steps."""
        self._lengths: dict[tuple[int, int], float] = {}
        cells = self.num_cells
        if cells <= EAGER_CELLS:
            pairs = torch.arange(cells * cells)
            start, goal = pairs // cells, pairs % cells
            off_diagonal = start != goal
            self.oracle_lengths(start[off_diagonal], goal[off_diagonal])

    @property
    def num_cells(self) -> int:
        """Number of cells C."""
        return self.walls.shape[0]

    def distances(self, goals: torch.Tensor) -> torch.Tensor:
        """Cell steps from every cell to each goal ``[B]``, ``[B, C]`` int64 on the CPU."""
        goals = goals.cpu()
        if self.tree is not None:
            return tree_distances(self.tree, goals)
        unique, inverse = torch.unique(goals, return_inverse=True)
        walls = self.walls.expand(unique.shape[0], -1, -1)
        return distances_to(walls, unique, self.width)[inverse]

    def towards(self, goals: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The distances to each goal ``[B]`` and the next cells towards it, ``[B, C]`` each.

        The same tables as :func:`~noise_envs.maze_layout.distances_to` and
        :func:`next_cells` give, on the goals' device.
        """
        distance = self.distances(goals)
        walls = self.walls.expand(goals.shape[0], -1, -1)
        next_cell = next_cells(walls, distance, self.width)
        return distance.to(goals.device), next_cell.to(goals.device)

    @property
    def distance(self) -> torch.Tensor:
        """Cell steps between all pairs, ``[goal, cell]``: ``C x C`` memory, small mazes only.

        Raises:
            ValueError: if the table would not fit in memory (see :mod:`noise_envs._memory`).
        """
        cells = self.num_cells
        check_memory("cells (all-pairs distances)", cells, 3 * 8 * cells * cells)
        return self.distances(torch.arange(cells))

    def oracle_lengths(self, start: torch.Tensor, goal: torch.Tensor) -> torch.Tensor:
        """:func:`oracle_path_length` of each (start, goal) pair, ``[B]`` on their device."""
        pairs = list(zip(start.tolist(), goal.tolist(), strict=True))
        missing = sorted({pair for pair in pairs if pair not in self._lengths})
        if missing:
            if len(self._lengths) + len(missing) > MEMO_PAIRS:
                self._lengths.clear()
                missing = sorted(set(pairs))
            first, last = torch.tensor(missing).reshape(-1, 2).unbind(1)
            _, next_cell = self.towards(last)
            lengths = oracle_path_length(
                first, last, next_cell, self.width, self.max_speed, self.goal_radius
            )
            self._lengths.update(zip(missing, lengths.tolist(), strict=True))
        values = [self._lengths.get(pair, math.nan) for pair in pairs]
        return torch.tensor(values, dtype=torch.float32, device=start.device)

    def _longest(self) -> int:
        if self.tree is not None:
            # in a tree, the farthest cell from any cell is one end of a longest path
            far = self.tree.depth.argmax(dim=1)
            return int(tree_distances(self.tree, far).max())
        rows = max(1, 2**22 // self.num_cells)
        goals = torch.arange(self.num_cells)
        return max(int(self.distances(chunk).max()) for chunk in goals.split(rows))
