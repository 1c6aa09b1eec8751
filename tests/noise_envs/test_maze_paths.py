"""Motion through walls and the shortest-path oracle, against hand-built mazes and plain BFS."""

import math
import time
from collections import deque

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from noise_envs import RandomSource, maze_paths
from noise_envs.maze_layout import OFFSETS, distances_to, generate_walls, parse_layout
from noise_envs.maze_paths import (
    WALL_MARGIN,
    MazePaths,
    cell_centres,
    cell_of,
    goal_progress,
    move,
    next_cells,
    oracle_path_length,
    oracle_velocity,
)

# 2 x 2 cells: 0 | 1 closed, 0-2 open, 1-3 open, 2-3 open (a U around the wall 0|1).
U_TURN = ["+--+--+", "|  |  |", "+  +  +", "|     |", "+--+--+"]
# 3 x 3 cells, cell 0's south side and cell 1's east side closed.
CORNER = [
    "+--+--+--+",
    "|     |  |",
    "+--+  +  +",
    "|        |",
    "+  +  +  +",
    "|        |",
    "+--+--+--+",
]
OPEN = ["+--+--+--+", "|        |", "+  +  +  +", "|        |", "+--+--+--+"]


def walls_of(layout, batch=1):
    width, _, walls = parse_layout(layout)
    return width, walls.expand(batch, -1, -1)


def moved(layout, position, velocity):
    width, walls = walls_of(layout)
    new, cell = move(torch.tensor([position]), torch.tensor([velocity]), walls, width)
    return new[0].tolist(), int(cell[0])


def test_a_free_move_goes_all_the_way():
    position, cell = moved(OPEN, (0.5, 0.5), (0.9, 0.8))
    assert position == pytest.approx([1.4, 1.3]) and cell == 4


def test_a_move_into_a_wall_stops_short_of_it_and_slides():
    """East from cell 0 of U_TURN: x stops at 1 - margin, y moves its full 0.3."""
    position, cell = moved(U_TURN, (0.7, 0.2), (0.6, 0.3))
    assert position == pytest.approx([1 - WALL_MARGIN, 0.5]) and cell == 0


def test_the_outer_boundary_stops_moves():
    position, cell = moved(OPEN, (2.8, 0.1), (0.5, -0.4))
    assert position == pytest.approx([3 - WALL_MARGIN, WALL_MARGIN]) and cell == 2


def test_a_diagonal_move_goes_round_a_wall_end_only_through_open_sides():
    """In U_TURN from cell 2 (bottom left) up-right: y first enters cell 0, then x hits 0|1."""
    position, cell = moved(U_TURN, (0.8, 1.1), (0.4, -0.5))
    assert position == pytest.approx([1 - WALL_MARGIN, 0.6]) and cell == 0
    # x first: enters cell 3, then y goes up into cell 1 (open 3-1)
    position, cell = moved(U_TURN, (0.9, 1.2), (0.5, -0.4))
    assert position == pytest.approx([1.4, 0.8]) and cell == 1


def test_diagonal_moves_check_the_second_crossing_in_the_cell_the_first_led_into():
    """CORNER: cells 0 1 2 / 3 4 5 / 6 7 8, with 0-3 and 1-2 closed, everything else open."""
    # x first (x = 1 at 1/2, y = 1 at 3/4): 0 -> 1 -> 4, both open
    position, cell = moved(CORNER, (0.8, 0.7), (0.4, 0.4))
    assert cell == 4 and position == pytest.approx([1.2, 1.1])
    # same target, y first (a tie goes to y): 0 -> 3 is closed, so y stops and x goes on
    position, cell = moved(CORNER, (0.8, 0.8), (0.4, 0.4))
    assert cell == 1 and position == pytest.approx([1.2, 1 - WALL_MARGIN])
    # down-left from cell 1, x first: 1 -> 0 open, then 0 -> 3 closed
    position, cell = moved(CORNER, (1.1, 0.8), (-0.3, 0.4))
    assert cell == 0 and position == pytest.approx([0.8, 1 - WALL_MARGIN])
    # down-left from cell 1, y first: 1 -> 4 -> 3, both open
    position, cell = moved(CORNER, (1.3, 0.9), (-0.4, 0.3))
    assert cell == 3 and position == pytest.approx([0.9, 1.2])


def test_a_point_nearer_a_wall_than_the_margin_is_not_pushed_back():
    position, cell = moved(U_TURN, (1 - WALL_MARGIN / 2, 0.5), (0.3, 0.0))
    assert position == pytest.approx([1 - WALL_MARGIN / 2, 0.5], abs=1e-7) and cell == 0


def crossed_sides(start, end, width):
    """The (cell, side) pairs a move from cell ``start`` to cell ``end`` may pass through."""
    (row0, col0), (row1, col1) = divmod(start, width), divmod(end, width)
    dcol, drow = col1 - col0, row1 - row0
    east_west = {1: 0, -1: 2}
    south_north = {1: 1, -1: 3}
    if (dcol, drow) == (0, 0):
        return [[]]
    if drow == 0:
        return [[(start, east_west[dcol])]]
    if dcol == 0:
        return [[(start, south_north[drow])]]
    via_x, via_y = row0 * width + col1, row1 * width + col0
    return [
        [(start, east_west[dcol]), (via_x, south_north[drow])],
        [(start, south_north[drow]), (via_y, east_west[dcol])],
    ]


MAZES = [
    parse_layout(U_TURN)[2],
    parse_layout(CORNER)[2],
    *generate_walls(4, 3, 3, RandomSource.from_seed(0)),
]
WIDTHS = [2, 3, 4, 4, 4]


@settings(max_examples=100, deadline=None)
@given(
    maze=st.integers(0, len(MAZES) - 1),
    fraction=st.tuples(st.floats(0, 1), st.floats(0, 1)),
    velocity=st.tuples(st.floats(-1, 1), st.floats(-1, 1)),
)
def test_moves_never_cross_a_wall(maze, fraction, velocity):
    """Property: the new cell is reachable through open sides only, and no axis overshoots."""
    walls, width = MAZES[maze], WIDTHS[maze]
    height = walls.shape[0] // width
    position = torch.tensor([[fraction[0] * width, fraction[1] * height]]).clamp(WALL_MARGIN, None)
    position = torch.minimum(position, torch.tensor([[width, height]]) - WALL_MARGIN)
    start = int(cell_of(position, width, height)[0])
    new, cell = move(position, torch.tensor([velocity]), walls[None], width)
    assert int(cell[0]) == int(cell_of(new, width, height)[0]), "returned cell is not the cell"
    routes = crossed_sides(start, int(cell[0]), width)
    assert any(all(not walls[c, side] for c, side in route) for route in routes), (
        f"crossed a wall: {position.tolist()} + {velocity} -> {new.tolist()}"
    )
    low = torch.minimum(position, position + torch.tensor([velocity])) - 1e-6
    high = torch.maximum(position, position + torch.tensor([velocity])) + 1e-6
    assert ((new >= low) & (new <= high)).all(), "moved outside the box of the straight move"


def bfs_path_length(walls, width, start, goal):
    """Independent BFS over the open sides: cell steps from start to goal."""
    cells = walls.shape[0]
    seen, queue = {start: 0}, deque([start])
    while queue:
        cell = queue.popleft()
        row, col = divmod(cell, width)
        for side, (dcol, drow) in enumerate(OFFSETS):
            r, c = row + drow, col + dcol
            other = r * width + c
            if 0 <= r < cells // width and 0 <= c < width and not walls[cell, side]:
                if other not in seen:
                    seen[other] = seen[cell] + 1
                    queue.append(other)
    return seen[goal]


@pytest.mark.parametrize("seed", range(4))
def test_the_oracles_cell_path_is_a_shortest_path(seed):
    """Following next_cells from start to goal takes exactly the BFS number of open steps."""
    width, height = 5, 4
    walls = generate_walls(width, height, 6, RandomSource.from_seed(seed))
    goals = torch.arange(6) * 3 + seed
    table = next_cells(walls, distances_to(walls, goals, width), width)
    for row in range(6):
        for start in range(width * height):
            cell, steps = start, 0
            while cell != int(goals[row]):
                nxt = int(table[row, cell])
                side = [n for n in range(4) if _neighbour(cell, n, width, height) == nxt]
                assert side and not walls[row, cell, side[0]], "the next cell is not open"
                cell, steps = nxt, steps + 1
            assert steps == bfs_path_length(walls[row], width, start, int(goals[row]))


def _neighbour(cell, side, width, height):
    row, col = divmod(cell, width)
    dcol, drow = OFFSETS[side]
    r, c = row + drow, col + dcol
    return r * width + c if 0 <= r < height and 0 <= c < width else None


def test_oracle_velocity_by_hand():
    """Full speed towards the next centre, exactly onto it when nearer than a step."""
    _, walls = walls_of(OPEN)
    goal = torch.tensor([5])
    table = next_cells(walls, distances_to(walls, goal, 3), 3)
    position = torch.tensor([[0.5, 0.5], [2.4, 1.5]])
    cell = cell_of(position, 3, 2)
    velocity = oracle_velocity(position, cell, table.expand(2, -1), 3, 0.25)
    # from cell 0 the first listed shortest step is east, to (1.5, 0.5)
    assert velocity[0].tolist() == pytest.approx([1.0, 0.0])
    assert velocity[1].tolist() == pytest.approx([0.1 / 0.25, 0.0])


def test_goal_progress_counts_the_move_up_to_the_disc():
    reached, length = goal_progress(
        torch.tensor([[0.0, 0.0], [0.0, 0.0]]),
        torch.tensor([[0.9, 0.0], [0.5, 0.0]]),
        torch.tensor([[1.0, 0.0], [1.0, 0.0]]),
        0.2,
    )
    assert reached.tolist() == [True, False]
    assert length.tolist() == pytest.approx([0.8, 0.5])


def test_oracle_path_length_in_a_straight_corridor():
    """Straight east over 2 cells: 2 cells minus the goal radius, whatever the speed."""
    _, walls = walls_of(OPEN)
    goal = torch.tensor([2])
    table = next_cells(walls, distances_to(walls, goal, 3), 3)
    for speed in (0.25, 0.3, 1.0):
        length = oracle_path_length(torch.tensor([0]), goal, table, 3, speed, 0.2)
        assert float(length[0]) == pytest.approx(1.8)


def test_oracle_path_around_a_u_turn_cuts_corners():
    """From cell 0 to 1 in U_TURN: shorter than the centre line (3 - r), longer than 1 - r."""
    _, walls = walls_of(U_TURN)
    goal = torch.tensor([1])
    table = next_cells(walls, distances_to(walls, goal, 2), 2)
    length = float(oracle_path_length(torch.tensor([0]), goal, table, 2, 0.1, 0.2)[0])
    assert 1.0 < length < 3 - 0.2


@pytest.mark.parametrize("eager_cells", [64, 0])
def test_maze_paths_tables_and_memo(eager_cells, monkeypatch):
    """Path lengths, built at once or on demand, equal a fresh computation for every pair."""
    monkeypatch.setattr(maze_paths, "EAGER_CELLS", eager_cells)
    walls = generate_walls(4, 4, 1, RandomSource.from_seed(3))[0]
    paths = MazePaths(walls, 4, 0.25, 0.2)
    assert len(paths._lengths) == (16 * 15 if eager_cells else 0)
    start, goal = torch.tensor([0, 5, 0]), torch.tensor([15, 2, 15])
    first = paths.oracle_lengths(start, goal)
    again = paths.oracle_lengths(start, goal)
    table = next_cells(walls.expand(3, -1, -1), distances_to(walls.expand(3, -1, -1), goal, 4), 4)
    fresh = oracle_path_length(start, goal, table, 4, 0.25, 0.2)
    assert torch.equal(first, fresh) and torch.equal(again, fresh)
    pairs = [(a, b) for a in range(16) for b in range(16)]
    assert paths.longest == max(bfs_path_length(walls, 4, a, b) for a, b in pairs)


def test_memo_starts_over_when_full(monkeypatch):
    monkeypatch.setattr(maze_paths, "EAGER_CELLS", 0)
    monkeypatch.setattr(maze_paths, "MEMO_PAIRS", 3)
    walls = generate_walls(4, 4, 1, RandomSource.from_seed(3))[0]
    paths = MazePaths(walls, 4, 0.25, 0.2)
    paths.oracle_lengths(torch.tensor([0, 1]), torch.tensor([15, 15]))
    start, goal = torch.tensor([2, 0, 3]), torch.tensor([15, 15, 15])
    lengths = paths.oracle_lengths(start, goal)
    assert len(paths._lengths) == 3 and not lengths.isnan().any()
    assert float(lengths[1]) == float(paths.oracle_lengths(torch.tensor([0]), goal[:1])[0])


@pytest.mark.parametrize(
    "layout", [CORNER, OPEN, U_TURN], ids=["corner (loops)", "open (loops)", "u-turn (tree)"]
)
def test_towards_equals_bfs_tables_with_and_without_loops(layout):
    """Tree formula or relaxation: the same distances and next cells as the plain tables."""
    width, walls = walls_of(layout)
    paths = MazePaths(walls[0], width, 0.25, 0.2)
    goals = torch.arange(walls.shape[1])
    distance, next_cell = paths.towards(goals)
    every = walls.expand(goals.shape[0], -1, -1)
    assert torch.equal(distance, distances_to(every, goals, width))
    assert torch.equal(next_cell, next_cells(every, distance, width))
    cells = walls.shape[1]
    expected = max(
        bfs_path_length(walls[0], width, a, b) for a in range(cells) for b in range(cells)
    )
    assert paths.longest == expected
    assert (paths.tree is None) == (layout is not U_TURN)


@pytest.mark.parametrize(("size", "limit"), [(30, 5.0), (100, 20.0)])
def test_large_mazes_build_in_bounded_time(size, limit):
    """Linear in the cells: the all-pairs tables took 122 s for 30 x 30 (bounds for a busy CPU)."""
    start = time.perf_counter()
    walls = generate_walls(size, size, 1, RandomSource.from_seed(0))[0]
    paths = MazePaths(walls, size, 0.25, 0.2)
    goals = torch.tensor([0, size * size - 1])
    distance, _ = paths.towards(goals)
    paths.oracle_lengths(torch.tensor([size * size - 1, 0]), goals)
    assert time.perf_counter() - start < limit
    assert int(distance[0, -1]) == int(distance[1, 0]) > 0
    assert int(distance.max()) <= paths.longest < size * size


def test_cell_helpers():
    assert cell_of(torch.tensor([[2.999, 0.0], [0.0, 2.0]]), 3, 2).tolist() == [2, 3]
    assert cell_centres(torch.tensor([4]), 3).tolist() == [[1.5, 1.5]]
    assert math.isclose(WALL_MARGIN, 1e-3)


def test_all_pairs_distances_only_where_they_fit(monkeypatch):
    walls = generate_walls(4, 4, 1, RandomSource.from_seed(3))[0]
    paths = MazePaths(walls, 4, 0.25, 0.2)
    every = paths.distance
    assert every.shape == (16, 16) and torch.equal(every, every.T)
    monkeypatch.setenv("NOISE_ENVS_MEMORY_LIMIT", "1000")
    with pytest.raises(ValueError, match=r"`cells \(all-pairs distances\)` = 16 would need"):
        _ = paths.distance
