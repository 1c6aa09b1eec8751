"""Mazes for :mod:`noise_envs.maze`: walls, text layouts, random generation, distances.

A maze is a grid of ``height`` x ``width`` square cells of side 1. Cell ``c = row * width + col``
spans ``[col, col + 1] x [row, row + 1]`` in (x, y) coordinates, with row 0 at the top (y grows
downwards, as in the text layout and in images). Its walls are a bool tensor ``[..., C, 4]``,
true where the side is closed, in the order of :data:`DIRECTIONS`; the outer boundary is closed.

Everything is batched over a leading dimension ``B``: ``walls [B, C, 4]``, one maze per row.

Text layouts draw each cell two characters wide:

.. code-block:: text

    +--+--+--+
    |     |  |
    +--+  +  +
    |        |
    +--+--+--+

Lines ``0, 2, ...`` hold the horizontal walls (``--`` closed, two spaces open) between ``+``
corners; lines ``1, 3, ...`` hold the cells (two spaces) between vertical walls (``|`` closed, a
space open). A maze of ``height`` rows and ``width`` columns has ``2 * height + 1`` lines of
``3 * width + 1`` characters. Corners may be ``+`` or a space.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import torch

from noise_envs.random import RandomSource

__all__ = [
    "DIRECTIONS",
    "OFFSETS",
    "MazeTree",
    "distances_to",
    "format_layout",
    "generate_walls",
    "maze_tree",
    "neighbours",
    "parse_layout",
    "tree_distances",
]

DIRECTIONS = ("east", "south", "west", "north")
"""The order of the four sides of a cell in wall tensors and observations."""
OFFSETS = ((1, 0), (0, 1), (-1, 0), (0, -1))
"""(column, row) step towards each of :data:`DIRECTIONS`; the opposite of side d is (d + 2) % 4."""

_CORNERS = "+ "
_ALLOWED = "+-| "


def neighbours(width: int, height: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """The cell beyond each side of each cell, ``[C, 4]`` int64, ``-1`` outside the grid."""
    row, col = torch.meshgrid(
        torch.arange(height, device=device), torch.arange(width, device=device), indexing="ij"
    )
    row, col = row.reshape(-1), col.reshape(-1)
    table = []
    for dcol, drow in OFFSETS:
        r, c = row + drow, col + dcol
        inside = (r >= 0) & (r < height) & (c >= 0) & (c < width)
        table.append(torch.where(inside, r * width + c, -1))
    return torch.stack(table, dim=-1)


def generate_walls(
    width: int,
    height: int,
    batch_size: int,
    rng: RandomSource,
    device: torch.device | str = "cpu",
) -> torch.Tensor:
    """Perfect mazes by randomized depth-first search (recursive backtracking), ``[B, C, 4]``.

    Every row runs the same ``2 (C - 1)`` iterations of the search from cell 0 (each cell is
    pushed once and popped once), so the batch advances in lockstep; the random choices of all
    iterations are drawn at once, ``[B, 2 (C - 1), 4]``, so each row's maze depends only on its
    own random numbers.
    """
    cells = width * height
    table = neighbours(width, height, device)
    rows = torch.arange(batch_size, device=device)
    priority = rng.uniform(batch_size, 2 * (cells - 1), 4).to(device)
    if batch_size == 1:  # one maze: the same search step by step in Python, without tensor calls
        return _carve_one(table.tolist(), priority[0].tolist()).to(device)[None]
    walls = torch.ones(batch_size, cells, 4, dtype=torch.bool, device=device)
    visited = torch.zeros(batch_size, cells, dtype=torch.bool, device=device)
    visited[:, 0] = True
    stack = torch.zeros(batch_size, cells, dtype=torch.long, device=device)
    top = torch.zeros(batch_size, dtype=torch.long, device=device)
    for step in range(2 * (cells - 1)):
        cell = stack[rows, top]
        beyond = table[cell]
        fresh = (beyond >= 0) & ~visited.gather(1, beyond.clamp_min(0))
        side = torch.where(fresh, priority[:, step], -1.0).argmax(dim=1)
        nxt = beyond[rows, side]
        carve = fresh.any(dim=1)
        walls[rows, cell, side] &= ~carve
        walls[rows, nxt.clamp_min(0), (side + 2) % 4] &= ~carve
        visited[rows, nxt.clamp_min(0)] |= carve
        top = torch.where(carve, top + 1, top - 1)
        stack[rows, top.clamp_min(0)] = torch.where(carve, nxt, stack[rows, top.clamp_min(0)])
    return walls


def _carve_one(table: list[list[int]], priority: list[list[float]]) -> torch.Tensor:
    """:func:`generate_walls` for one maze, ``[C, 4]``: the same choices (first best side)."""
    cells = len(table)
    walls = [[True] * 4 for _ in range(cells)]
    visited = [False] * cells
    visited[0] = True
    stack = [0]
    for step in range(2 * (cells - 1)):
        cell, best, side = stack[-1], -1.0, -1
        for direction, other in enumerate(table[cell]):
            if other >= 0 and not visited[other] and priority[step][direction] > best:
                best, side = priority[step][direction], direction
        if side < 0:
            stack.pop()
            continue
        other = table[cell][side]
        walls[cell][side] = walls[other][(side + 2) % 4] = False
        visited[other] = True
        stack.append(other)
    return torch.tensor(walls, dtype=torch.bool)


def distances_to(walls: torch.Tensor, goals: torch.Tensor, width: int) -> torch.Tensor:
    """Breadth-first distances in cell steps from every cell to each row's goal, ``[B, C]``.

    Computed by relaxing all cells at once until nothing changes (at most C - 1 rounds);
    unreachable cells keep the distance ``C``.

    Args:
        walls: ``[B, C, 4]`` bool.
        goals: goal cell of each row, ``[B]`` int64.
        width: cells per row.
    """
    batch, cells, _ = walls.shape
    table = neighbours(width, cells // width, walls.device)
    distance = torch.full((batch, cells), cells, dtype=torch.long, device=walls.device)
    distance[torch.arange(batch, device=walls.device), goals] = 0
    for _ in range(cells - 1):
        through = distance[:, table.clamp_min(0)] + 1
        through = torch.where(walls, cells, through).amin(dim=-1)
        relaxed = torch.minimum(distance, through)
        if torch.equal(relaxed, distance):
            break
        distance = relaxed
    return distance


@dataclasses.dataclass(frozen=True)
class MazeTree:
    """Perfect mazes (every pair of cells joined by exactly one path) as trees rooted at cell 0.

    Attributes:
        depth: cell steps from cell 0 to every cell, ``[B, C]`` int64.
        first: every cell's position in a depth-first (pre-)order from cell 0, ``[B, C]`` int64.
        end: ``first`` plus the number of cells in the cell's subtree, ``[B, C]`` int64: the
            subtree of cell ``x`` is the cells whose ``first`` lies in ``[first[x], end[x])``.
    """

    depth: torch.Tensor
    first: torch.Tensor
    end: torch.Tensor


def maze_tree(walls: torch.Tensor, width: int) -> MazeTree | None:
    """The tree of each perfect maze ``walls [B, C, 4]``, or None if some row has a loop.

    One depth-first search per row, ``O(C)`` each. A maze is a tree when it is connected and
    has exactly ``C - 1`` open passages (generated mazes always are; drawn layouts may not be).
    """
    cells = walls.shape[1]
    if bool(((~walls).sum(dim=(1, 2)) != 2 * (cells - 1)).any()):
        return None
    table = neighbours(width, cells // width).tolist()
    rows = [_tree_order(closed, table) for closed in walls.cpu().tolist()]
    if any(row is None for row in rows):
        return None
    depth, first, end = (torch.tensor([row[k] for row in rows]) for k in range(3))
    return MazeTree(depth.to(walls.device), first.to(walls.device), end.to(walls.device))


def _tree_order(
    closed: list[list[bool]], table: list[list[int]]
) -> tuple[list[int], list[int], list[int]] | None:
    """``(depth, first, end)`` lists of one tree-shaped maze; None if it is not connected."""
    cells = len(closed)
    parent, depth, first = [-1] * cells, [0] * cells, [-1] * cells
    order, stack = [], [0]
    first[0] = -2
    while stack:
        cell = stack.pop()
        first[cell] = len(order)
        order.append(cell)
        for side in (3, 2, 1, 0):
            other = table[cell][side]
            if other >= 0 and not closed[cell][side] and first[other] == -1:
                first[other], parent[other], depth[other] = -2, cell, depth[cell] + 1
                stack.append(other)
    if len(order) < cells:
        return None
    size = [1] * cells
    for cell in reversed(order[1:]):
        size[parent[cell]] += size[cell]
    return depth, first, [first[cell] + size[cell] for cell in range(cells)]


def tree_distances(tree: MazeTree, goals: torch.Tensor) -> torch.Tensor:
    """Cell steps from every cell to each row's goal in tree-shaped mazes, ``[B, C]`` int64.

    The same numbers as :func:`distances_to`, in ``O(C)`` per row without rounds:
    ``d(c, g) = depth[c] + depth[g] - 2 depth[lca(c, g)]``, where ``depth[lca(c, g)] + 1`` counts
    the ancestors-or-self of ``g`` on the path from cell 0 to ``c``; that count is a prefix sum
    over the depth-first order, in which every subtree is one interval.

    Args:
        tree: ``B`` trees, or one tree (batch 1) shared by all goals.
        goals: goal cell of each row, ``[B]`` int64.
    """
    batch = goals.shape[0]
    depth, first, end = (t.expand(batch, -1) for t in (tree.depth, tree.first, tree.end))
    rows = torch.arange(batch, device=goals.device)
    goal_first = first[rows, goals].unsqueeze(1)
    above_goal = ((first <= goal_first) & (goal_first < end)).long()
    change = torch.zeros(batch, depth.shape[1] + 1, dtype=torch.long, device=goals.device)
    change.scatter_add_(1, first, above_goal).scatter_add_(1, end, -above_goal)
    shared = change.cumsum(dim=1).gather(1, first)  # depth of the lowest common ancestor + 1
    return depth + depth[rows, goals].unsqueeze(1) - 2 * (shared - 1)


def parse_layout(lines: Sequence[str]) -> tuple[int, int, torch.Tensor]:
    """Read a text layout (see the module docstring) into ``(width, height, walls [C, 4])``.

    Raises:
        ValueError: naming the line and column of an unknown or misplaced character, if rows
            differ in length, the size is not that of a grid of at least 2 x 2 cells, the outer
            boundary has an opening, or some cell cannot be reached from cell 0.

    Example:
        >>> width, height, walls = parse_layout(
        ...     ["+--+--+", "|     |", "+--+  +", "|     |", "+--+--+"]
        ... )
        >>> width, height, walls[0].tolist()  # cell 0: east open; south, west, north closed
        (2, 2, [False, True, True, True])
    """
    if isinstance(lines, str) or not all(isinstance(line, str) for line in lines):
        raise ValueError(f"`layout` must be a sequence of strings (one per line), got {lines!r}")
    width, height = _check_grid_size(lines)
    walls = torch.ones(height * width, 4, dtype=torch.bool)
    for line_index, line in enumerate(lines):
        for column, char in enumerate(line):
            closed = _read_char(line_index, column, char)
            _set_wall(walls, width, height, line_index, column, closed)
    _check_connected(walls, width, height)
    return width, height, walls


def format_layout(
    walls: torch.Tensor, width: int, marks: dict[int, str] | None = None
) -> list[str]:
    """Draw one maze ``walls [C, 4]`` as a text layout; ``marks`` fills cells with 2-char text."""
    cells = walls.shape[0]
    height, marks = cells // width, marks or {}
    closed = walls.tolist()
    lines = []
    for row in range(height):
        top = [("--" if closed[row * width + col][3] else "  ") for col in range(width)]
        lines.append("+" + "+".join(top) + "+")
        middle = "|" if closed[row * width][2] else " "
        for col in range(width):
            cell = row * width + col
            middle += marks.get(cell, "  ")[:2].ljust(2) + ("|" if closed[cell][0] else " ")
        lines.append(middle)
    bottom = [("--" if closed[(height - 1) * width + col][1] else "  ") for col in range(width)]
    lines.append("+" + "+".join(bottom) + "+")
    return lines


def _check_grid_size(lines: Sequence[str]) -> tuple[int, int]:
    if not lines:
        raise ValueError("`layout` is empty; draw at least 2 x 2 cells (5 lines of 7 characters)")
    for index, line in enumerate(lines):
        if len(line) != len(lines[0]):
            raise ValueError(
                f"`layout` rows must all have the same length: line 0 has {len(lines[0])} "
                f"characters, line {index} has {len(line)}"
            )
    if len(lines) % 2 == 0 or len(lines[0]) % 3 != 1:
        raise ValueError(
            f"`layout` must have 2 * height + 1 lines of 3 * width + 1 characters, got "
            f"{len(lines)} lines of {len(lines[0])}"
        )
    width, height = (len(lines[0]) - 1) // 3, (len(lines) - 1) // 2
    if width < 2 or height < 2:
        raise ValueError(f"`layout` must be at least 2 x 2 cells, got {height} x {width}")
    return width, height


def _read_char(line_index: int, column: int, char: str) -> bool:
    """Whether the character closes its slot; ValueError if it is unknown or misplaced."""
    where = f"`layout` line {line_index}, column {column}"
    if char not in _ALLOWED:
        raise ValueError(f"{where}: unknown character {char!r}; allowed: {list(_ALLOWED)}")
    corner, wall_row = column % 3 == 0, line_index % 2 == 0
    if wall_row and corner:
        allowed = _CORNERS
    elif wall_row:
        allowed = "- "
    elif corner:
        allowed = "| "
    else:
        allowed = " "
    if char not in allowed:
        raise ValueError(f"{where}: {char!r} is misplaced, this position takes one of {allowed!r}")
    return char in "-|"


def _set_wall(
    walls: torch.Tensor, width: int, height: int, line_index: int, column: int, closed: bool
) -> None:
    """Record the wall drawn at (line, column) on the cells on both of its sides."""
    if line_index % 2 == 0 and column % 3 != 0:
        row, col, side = line_index // 2, column // 3, 3  # wall above cell (row, col)
    elif line_index % 2 == 1 and column % 3 == 0:
        row, col, side = line_index // 2, column // 3, 2  # wall left of cell (row, col)
    else:
        return
    col_step, row_step = OFFSETS[side]
    inside = row < height and col < width
    outside = not (0 <= row + row_step < height and 0 <= col + col_step < width)
    if (not inside or outside) and not closed:
        raise ValueError(
            f"`layout` line {line_index}, column {column}: the outer boundary must be closed"
        )
    if inside:
        walls[row * width + col, side] = closed
    if not outside:
        walls[(row + row_step) * width + col + col_step, (side + 2) % 4] = closed


def _check_connected(walls: torch.Tensor, width: int, height: int) -> None:
    distance = distances_to(walls[None], torch.zeros(1, dtype=torch.long), width)[0]
    unreachable = torch.nonzero(distance >= walls.shape[0]).flatten().tolist()
    if unreachable:
        row, col = divmod(unreachable[0], width)
        raise ValueError(
            f"`layout` cells are not all connected: {len(unreachable)} cells, e.g. row {row}, "
            f"column {col}, cannot be reached from row 0, column 0"
        )
