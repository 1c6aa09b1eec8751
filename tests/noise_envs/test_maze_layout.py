"""Maze layouts: text parsing against hand-drawn mazes, generated perfect mazes, BFS distances."""

from collections import deque

import pytest
import torch

from noise_envs import RandomSource
from noise_envs.maze_layout import (
    OFFSETS,
    distances_to,
    format_layout,
    generate_walls,
    maze_tree,
    neighbours,
    parse_layout,
    tree_distances,
)

# 2 rows x 3 columns; cells 0 1 2 / 3 4 5. Open: 0-1, 1-2, 1-4, 3-4; 2-5 open, 0-3 closed.
HAND_DRAWN = [
    "+--+--+--+",
    "|        |",
    "+--+  +  +",
    "|     |  |",
    "+--+--+--+",
]
HAND_OPEN_EDGES = {(0, 1), (1, 2), (1, 4), (3, 4), (2, 5)}


def open_edges(walls, width):
    """The set of (cell, neighbour) pairs with cell < neighbour joined by an open side."""
    edges = set()
    cells = walls.shape[0]
    for cell in range(cells):
        row, col = divmod(cell, width)
        for side, (dcol, drow) in enumerate(OFFSETS):
            r, c = row + drow, col + dcol
            if 0 <= r < cells // width and 0 <= c < width and not walls[cell, side]:
                edges.add((min(cell, r * width + c), max(cell, r * width + c)))
    return edges


def bfs_distances(edges, cells, goal):
    """Plain breadth-first search from ``goal`` over an edge set; unreachable cells get None."""
    adjacent = {cell: [] for cell in range(cells)}
    for a, b in edges:
        adjacent[a].append(b)
        adjacent[b].append(a)
    distance = {goal: 0}
    queue = deque([goal])
    while queue:
        cell = queue.popleft()
        for other in adjacent[cell]:
            if other not in distance:
                distance[other] = distance[cell] + 1
                queue.append(other)
    return [distance.get(cell) for cell in range(cells)]


def test_parse_reads_the_hand_drawn_maze():
    width, height, walls = parse_layout(HAND_DRAWN)
    assert (width, height) == (3, 2)
    assert open_edges(walls, width) == HAND_OPEN_EDGES
    # outer sides closed: west of 0 and 3, north of 0..2, east of 2 and 5, south of 3..5
    assert walls[[0, 3], 2].all() and walls[[0, 1, 2], 3].all()
    assert walls[[2, 5], 0].all() and walls[[3, 4, 5], 1].all()


def test_format_is_the_inverse_of_parse():
    width, _, walls = parse_layout(HAND_DRAWN)
    assert format_layout(walls, width) == HAND_DRAWN


def test_format_marks_cells():
    _, _, walls = parse_layout(HAND_DRAWN)
    lines = format_layout(walls, 3, {0: "@", 5: "G"})
    assert lines[1] == "|@       |" and lines[3] == "|     |G |"


def test_corners_may_be_spaces():
    spaced = [line.replace("+", " ") for line in HAND_DRAWN]
    spaced[0] = "+" + spaced[0][1:]
    assert torch.equal(parse_layout(spaced)[2], parse_layout(HAND_DRAWN)[2])


def test_neighbours_table_by_hand():
    table = neighbours(3, 2)
    assert table[0].tolist() == [1, 3, -1, -1]  # east, south, west, north
    assert table[4].tolist() == [5, -1, 3, 1]


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize(("width", "height"), [(5, 5), (2, 2), (4, 3)])
def test_generated_mazes_are_perfect(seed, width, height):
    """Walls agree on both sides, the open sides form a spanning tree (C - 1 edges, connected)."""
    walls = generate_walls(width, height, 3, RandomSource.from_seed(seed))
    table = neighbours(width, height)
    for maze in walls:
        for cell in range(width * height):
            for side in range(4):
                other = int(table[cell, side])
                if other < 0:
                    assert maze[cell, side], "the outer boundary must be closed"
                else:
                    assert maze[cell, side] == maze[other, (side + 2) % 4]
        edges = open_edges(maze, width)
        assert len(edges) == width * height - 1
        assert None not in bfs_distances(edges, width * height, 0)


def test_generation_is_seeded_and_varied():
    a = generate_walls(5, 5, 8, RandomSource.from_seed(1))
    b = generate_walls(5, 5, 8, RandomSource.from_seed(1))
    assert torch.equal(a, b)
    assert len({tuple(maze.flatten().tolist()) for maze in a}) == 8


def test_each_row_depends_only_on_its_own_generator():
    """Row i of a per-row batch equals a batch of one drawn with the same generator seed."""
    seeds = [4, 9, 11]
    batch = generate_walls(5, 5, 3, RandomSource([torch.Generator().manual_seed(s) for s in seeds]))
    for row, seed in enumerate(seeds):
        single = generate_walls(5, 5, 1, RandomSource.from_seed(seed))
        assert torch.equal(batch[row], single[0])


def test_one_maze_alone_is_the_batched_search_row():
    """A batch of one runs the search in Python: the same maze as a row of the batched search."""
    seeds = [0, 7]
    generators = [torch.Generator().manual_seed(seed) for seed in seeds]
    batch = generate_walls(12, 9, 2, RandomSource(generators))
    for row, seed in enumerate(seeds):
        assert torch.equal(generate_walls(12, 9, 1, RandomSource.from_seed(seed))[0], batch[row])


@pytest.mark.parametrize("seed", range(4))
def test_distances_equal_a_breadth_first_search(seed):
    walls = generate_walls(6, 4, 4, RandomSource.from_seed(seed))
    goals = torch.tensor([0, 5, 13, 23])
    distance = distances_to(walls, goals, 6)
    for row in range(4):
        expected = bfs_distances(open_edges(walls[row], 6), 24, int(goals[row]))
        assert distance[row].tolist() == expected


@pytest.mark.parametrize("seed", range(3))
def test_tree_distances_equal_a_breadth_first_search(seed):
    """In generated (perfect) mazes, the tree formula gives BFS distances to every goal."""
    width, height = 7, 5
    walls = generate_walls(width, height, 3, RandomSource.from_seed(seed))
    tree = maze_tree(walls, width)
    goals = torch.tensor([0, 17, 34])
    distance = tree_distances(tree, goals)
    for row in range(3):
        expected = bfs_distances(open_edges(walls[row], width), 35, int(goals[row]))
        assert distance[row].tolist() == expected
    one = maze_tree(walls[:1], width)
    every_goal = tree_distances(one, torch.arange(35))
    for goal in (3, 22):
        assert every_goal[goal].tolist() == bfs_distances(open_edges(walls[0], width), 35, goal)


def test_maze_tree_by_hand_and_none_with_a_loop():
    """S bend 0-1-2-5-4-3: depth along the corridor, every subtree one interval; loops: None."""
    s_bend = ["+--+--+--+", "|        |", "+--+--+  +", "|        |", "+--+--+--+"]
    _, _, walls = parse_layout(s_bend)
    tree = maze_tree(walls[None], 3)
    assert tree.depth[0].tolist() == [0, 1, 2, 5, 4, 3]
    assert tree.first[0].tolist() == [0, 1, 2, 5, 4, 3]
    assert tree.end[0].tolist() == [6] * 6
    loop = ["+--+--+", "|     |", "+  +  +", "|     |", "+--+--+"]
    assert maze_tree(parse_layout(loop)[2][None], 2) is None


def test_distances_in_a_maze_with_a_loop():
    """User layouts may have loops: distances are still the shortest."""
    loop = ["+--+--+", "|     |", "+  +  +", "|     |", "+--+--+"]
    _, _, walls = parse_layout(loop)
    assert distances_to(walls[None], torch.tensor([0]), 2)[0].tolist() == [0, 1, 1, 2]


@pytest.mark.parametrize(
    ("layout", "message"),
    [
        (
            ["+--+--+", "|  x  |", "+--+  +", "|     |", "+--+--+"],
            r"line 1, column 3: unknown character 'x'; allowed: \['\+', '-', '\|', ' '\]",
        ),
        (
            ["+--+--+", "|     |", "+--+  +", "|     |", "+--+--"],
            "rows must all have the same length: line 0 has 7 characters, line 4 has 6",
        ),
        (
            ["+--+--+", "|  |  |", "+--+--+", "|     |", "+--+--+"],
            "cells are not all connected: 3 cells, e.g. row 0, column 1, cannot be reached",
        ),
        (["+--+", "|  |", "+--+"], r"must be at least 2 x 2 cells, got 1 x 1"),
        (["+--+--+--+", "|        |", "+--+--+--+"], r"must be at least 2 x 2 cells, got 1 x 3"),
        (["+--+--+", "|     |", "+--+--+", "|     |"], "must have 2 \\* height \\+ 1 lines"),
        (["+--+--+-", "|      |"] * 2 + ["+--+--+-"], "lines of 3 \\* width \\+ 1 characters"),
        ([], "`layout` is empty"),
        (
            ["+--+--+", "|      ", "+--+  +", "|     |", "+--+--+"],
            "line 1, column 6: the outer boundary must be closed",
        ),
        (
            ["+--+--+", "|     |", "+--+  +", "|     |", "+  +--+"],
            "line 4, column 1: the outer boundary must be closed",
        ),
        (
            ["+--+--+", "|  -  |", "+--+  +", "|     |", "+--+--+"],
            r"line 1, column 3: '-' is misplaced, this position takes one of '\|",
        ),
        (
            ["+--+--+", "| |   |", "+--+  +", "|     |", "+--+--+"],
            r"line 1, column 2: '\|' is misplaced, this position takes one of ' '",
        ),
        ("+--+\n|  |\n+--+", "must be a sequence of strings"),
    ],
)
def test_bad_layouts_are_refused_by_name(layout, message):
    with pytest.raises(ValueError, match=message):
        parse_layout(layout)
