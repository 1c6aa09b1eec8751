"""NoisyMaze-v0: steer a point through a maze to a goal, taught by a shortest-path oracle."""

from __future__ import annotations

import dataclasses
import math
import textwrap

import numpy as np
import torch
from gymnasium import spaces

from noise_envs._checks import (
    check_at_most,
    check_choice,
    check_in_range,
    check_noise_level,
    check_nonnegative,
    check_positive,
    check_positive_int,
)
from noise_envs._memory import check_memory
from noise_envs.config import JsonConfig
from noise_envs.core import Metric, Task, TaskState
from noise_envs.maze_layout import (
    distances_to,
    format_layout,
    generate_walls,
    maze_tree,
    parse_layout,
    tree_distances,
)
from noise_envs.maze_paths import (
    MazePaths,
    cell_centres,
    goal_progress,
    move,
    next_cells,
    oracle_path_length,
    oracle_velocity,
)
from noise_envs.maze_render import ansi_frame, rgb_frame
from noise_envs.random import RandomSource, as_random_source

__all__ = ["MazeConfig", "MazeState", "MazeTask"]

_STEP_BYTES = 64
"""Bytes per step and row of an episode kept whole (a rollout for training): observation, action,
teacher target and mask, reward and end flags, float32."""
_MAX_REWARD_SCALE = 1e6
"""The largest ``step_cost`` and ``shaping``: larger ones overflow float32 returns."""
_TRAIL_BYTES = 16
"""Bytes per row and trail entry: the (x, y) float32 pair and its copy on every step."""
_BUILD_BYTES_PER_CELL = 400
"""Bytes per cell to build a fixed maze: generation, the depth-first search, path tables."""
_ROW_BYTES_PER_CELL = 64
"""Bytes per cell and batch row at a reset: the distance and next-cell tables and temporaries."""
_RANDOM_ROW_BYTES_PER_CELL = 192
"""The same with ``randomize_layout``, which also generates every row's maze and its tables."""


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class MazeConfig(JsonConfig):
    """Options of :class:`MazeTask`."""

    size: int = 5
    """Cells per side of generated (square) mazes, at least 2; a `layout` sets its own size."""
    maze_seed: int = 0
    """Seed of the one generated maze every episode uses (without `layout` or `randomize_layout`)."""
    layout: tuple[str, ...] | None = None
    """A maze drawn as text lines, '+--+' / '|  |' style (see noise_envs.maze_layout)."""
    randomize_layout: bool = False
    """Generate a new maze for every episode from the episode's random numbers."""
    max_speed: float = 0.25
    """Cells per step per axis at action 1: velocity = clip(action, -1, 1) * max_speed; in (0, 1]."""
    goal_radius: float = 0.2
    """The goal is reached within this distance (cells) of the goal cell's centre; in (0, 0.5]."""
    step_cost: float = 0.01
    """Reward lost on every step (reaching the goal gives +1)."""
    horizon_factor: float = 3.0
    """Episodes are truncated after horizon_factor * longest shortest path / max_speed steps."""
    max_steps: int | None = None
    """A fixed number of steps before truncation instead of the horizon_factor rule."""
    trail_length: int = 32
    """Past positions the state keeps for drawing the trail (0 keeps none)."""
    obs_noise: float = 0.0
    """Standard deviation of Gaussian noise added to every observation."""
    shaping: float = 0.0
    """Weight of potential-based corridor-distance shaping added to the reward (0: none)."""

    def __post_init__(self) -> None:
        check_positive_int("size", self.size)
        if self.size < 2:
            raise ValueError(f"`size` must be an integer >= 2, got {self.size!r}")
        if isinstance(self.maze_seed, bool) or not isinstance(self.maze_seed, int):
            raise ValueError(f"`maze_seed` must be an integer >= 0, got {self.maze_seed!r}")
        check_nonnegative("maze_seed", self.maze_seed)
        if isinstance(self.layout, str):
            lines = tuple(textwrap.dedent(self.layout).strip("\n").splitlines())
            object.__setattr__(self, "layout", lines)
        if self.layout is not None:
            parse_layout(self.layout)
        if not isinstance(self.randomize_layout, bool):
            raise ValueError(
                f"`randomize_layout` must be True or False, got {self.randomize_layout!r}"
            )
        if self.randomize_layout and self.layout is not None:
            raise ValueError("`randomize_layout` must be False when a `layout` is given")
        check_positive("max_speed", self.max_speed)
        check_in_range("max_speed", self.max_speed, 0.0, 1.0)
        check_positive("goal_radius", self.goal_radius)
        check_in_range("goal_radius", self.goal_radius, 0.0, 0.5)
        check_nonnegative("step_cost", self.step_cost)
        check_at_most("step_cost", self.step_cost, _MAX_REWARD_SCALE)
        check_positive("horizon_factor", self.horizon_factor)
        if self.max_steps is not None:
            check_positive_int("max_steps", self.max_steps)
            check_memory("max_steps", self.max_steps, self.max_steps * _STEP_BYTES)
        if isinstance(self.trail_length, bool) or not isinstance(self.trail_length, int):
            raise ValueError(f"`trail_length` must be an integer >= 0, got {self.trail_length!r}")
        check_nonnegative("trail_length", self.trail_length)
        check_noise_level("obs_noise", self.obs_noise)
        check_nonnegative("shaping", self.shaping)
        check_at_most("shaping", self.shaping, _MAX_REWARD_SCALE)
        check_memory("trail_length", self.trail_length, self.trail_length * _TRAIL_BYTES)
        if self.layout is None:
            check_memory("size", self.size, self.size**2 * _BUILD_BYTES_PER_CELL)


@dataclasses.dataclass(frozen=True)
class MazeState(TaskState):
    """Adds the agent, its goal and its maze to :class:`~noise_envs.core.TaskState`.

    Attributes:
        position: the agent's point (x, y) in cells, ``[B, 2]``; row 0 is at the top.
        cell: the cell the agent is in, ``[B]`` int64.
        goal: the goal point, the goal cell's centre, ``[B, 2]``.
        goal_cell: the goal cell, ``[B]`` int64.
        walls: each row's maze, ``[B, C, 4]`` bool (see :mod:`noise_envs.maze_layout`).
        distance: cell steps from every cell to the goal cell, ``[B, C]`` int64.
        next_cell: the next cell on a shortest path to the goal from every cell, ``[B, C]``.
        reference_length: length of the oracle's path from the start, ``[B]``.
        travelled: length of the path taken so far, ``[B]``.
        reached: whether the goal has been reached, ``[B]`` bool.
        trail: the last ``trail_length`` positions, oldest first, ``[B, K, 2]`` (before ``K``
            steps, the first entries repeat the start).
    """

    position: torch.Tensor
    cell: torch.Tensor
    goal: torch.Tensor
    goal_cell: torch.Tensor
    walls: torch.Tensor
    distance: torch.Tensor
    next_cell: torch.Tensor
    reference_length: torch.Tensor
    travelled: torch.Tensor
    reached: torch.Tensor
    trail: torch.Tensor


class MazeTask(Task[MazeState, MazeConfig]):
    """Maze navigation with continuous motion and a shortest-path teacher.

    ## Description
    A point starts at the centre of a random cell of a maze and must reach the centre of another
    random cell (the two differ). By default every episode uses one maze generated from
    ``maze_seed`` (or the given ``layout``); with ``randomize_layout`` each episode, and so each
    batch row, draws its own perfect maze. Walls cannot be crossed: a move into a wall stops
    there and slides along it. The agent's own actions decide what it sees next, so this is a
    closed-loop task.

    ## Observation Space
    ``Box(-b, b, (8,))``, ``b = 1 + 5 * obs_noise``: the position (x, y) and the goal point,
    each scaled to [-1, 1] across the maze, then the current cell's walls (1 closed, 0 open) on
    its east, south, west and north sides; plus observation noise, clipped at ``b``.

    ## Action Space
    ``Box(-1, 1, (2,))``: the velocity (x, y) in units of ``max_speed`` cells per step; larger
    values are clipped for the motion (the teacher loss scores them as they are).

    ## Rewards
    ``-step_cost`` on every step, plus 1 on the step that reaches the goal. With ``shaping > 0``
    (off by default, so scores stay comparable), each step also earns
    ``shaping * (d(s) - d(s'))``, where ``d`` is the corridor distance from the agent's point to
    the goal point: the straight line to the centre of the next cell on a shortest path plus
    that cell's distance in cell steps to the goal cell, and ``d = 0`` once the goal is reached.
    This is potential-based shaping with potential ``-shaping * d`` (Ng, Harada & Russell 1999,
    "Policy invariance under reward transformations: theory and application to reward
    shaping", ICML), which leaves the optimal policies unchanged for undiscounted returns; a
    learner that discounts by ``gamma < 1`` sees Ng's ``gamma * phi(s') - phi(s)`` plus a small
    extra cost ``(1 - gamma) * shaping * d(s')`` per step for being far from the goal. An episode
    that reaches the goal earns ``shaping * d(start)`` in all.

    ## Episode End
    Terminates on coming within ``goal_radius`` of the goal point; truncated after ``horizon``
    steps: ``max_steps``, or ``ceil(horizon_factor * D / max_speed)`` with D the maze's longest
    shortest path in cell steps (``C - 1``, the worst case, with ``randomize_layout``).

    ## Teacher signal
    The oracle's velocity: towards the centre of the next cell on a shortest path from the
    agent's current cell (the goal point in the goal cell), at full speed, or exactly onto it
    when that is nearer than one step. Mask 1 on both axes at every step: training on it along
    the states the network visits is closed-loop imitation (as in DAgger); no gradient flows
    through the motion. At every reset each row gets its table of distances to its goal and of
    the next cell towards it (:class:`~noise_envs.maze_paths.MazePaths` for a fixed maze, linear
    in the cells), so a step only gathers.

    ## Memory
    Building a maze and resetting a batch take memory linear in the cells (times the batch), an
    episode kept whole (a training rollout) memory linear in the horizon; options (``size``,
    ``trail_length``, ``max_steps``, ``horizon_factor``) or batch sizes whose estimate exceeds the
    limit (8 GiB, or ``$NOISE_ENVS_MEMORY_LIMIT`` bytes) are refused up front with a ValueError
    that names the option, its value, the estimate and the limit.

    ## Metrics
    * ``path_efficiency`` (primary, higher is better): the length of the oracle's path from the
      start (``MazeState.reference_length``; it cuts the corners of the cell path) over the
      length travelled, if the goal was reached, else 0. About 1 for the oracle itself.
    * ``success`` (higher is better): 1 if the goal was reached, else 0.
    * ``oracle_mse`` (lower is better): mean squared error against the teacher's velocity.

    ## Arguments
    See :class:`MazeConfig`: ``size``, ``maze_seed``, ``layout``, ``randomize_layout``,
    ``max_speed``, ``goal_radius``, ``step_cost``, ``horizon_factor``, ``max_steps``,
    ``trail_length``, ``obs_noise``, ``shaping``.

    ## Version History
    * v0: initial version; ``shaping`` added (off by default, the unshaped rewards unchanged).

    Example:
        >>> import gymnasium
        >>> layout = ["+--+--+", "|     |", "+--+  +", "|     |", "+--+--+"]
        >>> env = gymnasium.make("NoisyMaze-v0", layout=layout, render_mode="ansi")
        >>> obs, info = env.reset(seed=0)
        >>> print(env.render())
        +--+--+
        |G    |
        +--+  +
        |   @ |
        +--+--+
        >>> terminated = truncated = False
        >>> while not (terminated or truncated):  # follow the oracle
        ...     obs, reward, terminated, truncated, info = env.step(info["target"])
        >>> print(env.render())
        +--+--+
        |@G . |
        +--+  +
        |   . |
        +--+--+
        >>> info["episode_metrics"]
        {'path_efficiency': 1.0, 'success': 1.0, 'oracle_mse': 0.0}
    """

    id = "NoisyMaze-v0"
    config_class = MazeConfig
    metrics = (
        Metric(
            "path_efficiency",
            higher_is_better=True,
            description="oracle path length / travelled length if the goal was reached, else 0",
            bounds=(0.0, 1.0),
        ),
        Metric(
            "success",
            higher_is_better=True,
            description="1 if the goal was reached",
            bounds=(0.0, 1.0),
        ),
        Metric("oracle_mse", higher_is_better=False, description="mse to the oracle's velocity"),
    )
    primary_metric = "path_efficiency"
    render_modes = ("ansi", "rgb_array")
    render_fps = 10

    def __init__(self, config: MazeConfig | None = None, **options) -> None:
        super().__init__(config, **options)
        config = self.config
        if config.layout is not None:
            self.width, self.height, walls = parse_layout(config.layout)
        else:
            self.width = self.height = config.size
            walls = None
            if not config.randomize_layout:
                rng = RandomSource.from_seed(config.maze_seed)
                walls = generate_walls(self.width, self.height, 1, rng)[0]
        self.walls: torch.Tensor | None = walls
        """The fixed maze ``[C, 4]``, or None with ``randomize_layout``."""
        self.paths: MazePaths | None = None
        """Shortest paths in the fixed maze, None with ``randomize_layout``."""
        if walls is not None:
            self.paths = MazePaths(walls, self.width, config.max_speed, config.goal_radius)
        longest = self.num_cells - 1 if walls is None else self.paths.longest
        self.horizon = config.max_steps or math.ceil(
            config.horizon_factor * longest / config.max_speed
        )
        if config.max_steps is None:
            check_memory("horizon_factor", config.horizon_factor, self.horizon * _STEP_BYTES)
        bound = 1.0 + 5.0 * self.obs_noise
        self.observation_space = spaces.Box(-bound, bound, shape=(8,), dtype=np.float32)
        self.action_space = spaces.Box(-1.0, 1.0, shape=(2,), dtype=np.float32)

    def __repr__(self) -> str:
        return f"MazeTask({self.id}, {self.height}x{self.width}, horizon={self.horizon})"

    @property
    def num_cells(self) -> int:
        """Number of cells C."""
        return self.width * self.height

    @property
    def maze_text(self) -> list[str]:
        """The fixed maze as a text layout (ValueError with ``randomize_layout``)."""
        return format_layout(self._fixed_walls(), self.width)

    def reset_to(
        self,
        start_cell: torch.Tensor,
        goal_cell: torch.Tensor,
        generator: torch.Generator | RandomSource | int | None = None,
        device: torch.device | str = "cpu",
    ) -> tuple[MazeState, torch.Tensor]:
        """Like :meth:`reset`, with the given start and goal cells ``[B]`` in the fixed maze."""
        self._fixed_walls()
        start, goal = (
            torch.as_tensor(c, device=device).long().reshape(-1) for c in (start_cell, goal_cell)
        )
        self._check_batch(start.shape[0])
        if start.shape != goal.shape or not ((0 <= start) & (start < self.num_cells)).all():
            raise ValueError(
                f"`start_cell` must be cells in [0, {self.num_cells}), got {start.tolist()}"
            )
        if not ((0 <= goal) & (goal < self.num_cells) & (goal != start)).all():
            raise ValueError(
                f"`goal_cell` must be cells in [0, {self.num_cells}) other than the start cells, "
                f"got {goal.tolist()}"
            )
        rng = as_random_source(generator, device)
        state = self._state_at(start, goal, rng, torch.device(device))
        return state, self.observe(state)

    def step(
        self, state: MazeState, action: torch.Tensor, *, validate: bool = True
    ) -> tuple[MazeState, torch.Tensor, torch.Tensor, torch.Tensor]:
        """As :meth:`Task.step`, with +1 reward on the step that reaches the goal (and shaping)."""
        moved, obs, reward, done = super().step(state, action, validate=validate)
        reward = reward + (moved.reached & ~state.reached).float()
        if self.config.shaping > 0:
            after = torch.where(moved.reached, 0.0, self.corridor_distance(moved))
            gained = torch.where(state.done, 0.0, self.corridor_distance(state) - after)
            reward = reward + self.config.shaping * gained
        return moved, obs, reward, done

    def corridor_distance(self, state: MazeState) -> torch.Tensor:
        """Distance ``[B]`` (cells) from the agent's point to the goal along the corridors.

        The straight line to the centre of the next cell on a shortest path (the goal point in
        the goal cell) plus that cell's distance in cell steps to the goal cell.
        """
        ahead = state.next_cell.gather(1, state.cell.unsqueeze(1))
        remaining = state.distance.gather(1, ahead).squeeze(1)
        line = (state.position - cell_centres(ahead.squeeze(1), self.width)).norm(dim=-1)
        return remaining.to(line.dtype) + line

    def teacher(self, state: MazeState) -> tuple[torch.Tensor, torch.Tensor]:
        """The oracle's velocity ``[B, 2]`` in action units, mask 1 (see the class docstring)."""
        target = oracle_velocity(
            state.position, state.cell, state.next_cell, self.width, self.config.max_speed
        )
        return target, torch.ones_like(target)

    def episode_metrics(self, state: MazeState) -> dict[str, torch.Tensor]:
        """``path_efficiency``, ``success`` and ``oracle_mse`` per row, ``[B]`` each."""
        efficiency = state.reference_length / state.travelled.clamp_min(1e-12)
        return {
            "path_efficiency": torch.where(state.reached, efficiency, 0.0),
            "success": state.reached.float(),
            "oracle_mse": state.teacher_mse,
        }

    def render(self, state: MazeState, mode: str) -> list:
        """One frame per row: a text layout (``ansi``) or an image ``[H, W, 3]`` uint8."""
        check_choice("mode", mode, self.render_modes)
        draw = ansi_frame if mode == "ansi" else rgb_frame
        rows = range(state.batch_size)
        return [draw(state, row, self.width, self.config.goal_radius) for row in rows]

    def _fixed_walls(self) -> torch.Tensor:
        if self.walls is None:
            raise ValueError("this maze task draws a new maze every episode (`randomize_layout`)")
        return self.walls

    def _row_bytes(self) -> int:
        """Bytes of a row's tables (see the class docstring)."""
        per_cell = _RANDOM_ROW_BYTES_PER_CELL if self.walls is None else _ROW_BYTES_PER_CELL
        return self.num_cells * per_cell + self.config.trail_length * _TRAIL_BYTES

    def _initial(self, batch_size: int, rng: RandomSource, device: torch.device) -> MazeState:
        walls = None
        if self.walls is None:
            walls = generate_walls(self.width, self.height, batch_size, rng, device)
        start = rng.integers(batch_size, low=0, high=self.num_cells).to(device)
        offset = rng.integers(batch_size, low=1, high=self.num_cells).to(device)
        return self._state_at(start, (start + offset) % self.num_cells, rng, device, walls)

    def _state_at(
        self,
        start: torch.Tensor,
        goal: torch.Tensor,
        rng: RandomSource,
        device: torch.device,
        walls: torch.Tensor | None = None,
    ) -> MazeState:
        if walls is None:
            walls = self.walls.to(device).expand(start.shape[0], -1, -1)
            distance, next_cell = self.paths.towards(goal)
            reference_length = self.paths.oracle_lengths(start, goal)
        else:
            distance = _distances(walls, goal, self.width)
            next_cell = next_cells(walls, distance, self.width)
            reference_length = oracle_path_length(
                start, goal, next_cell, self.width, self.config.max_speed, self.config.goal_radius
            )
        position = cell_centres(start, self.width)
        trail = position.unsqueeze(1).expand(-1, self.config.trail_length, -1)
        return MazeState(
            **self._base_state(start.shape[0], rng, device),
            position=position,
            cell=start,
            goal=cell_centres(goal, self.width),
            goal_cell=goal,
            walls=walls,
            distance=distance,
            next_cell=next_cell,
            reference_length=reference_length,
            travelled=torch.zeros_like(reference_length),
            reached=torch.zeros_like(start, dtype=torch.bool),
            trail=trail,
        )

    def _transition(self, state: MazeState, action: torch.Tensor) -> MazeState:
        # no gradient through the motion: visited states are data, as in DAgger
        velocity = action.detach().clamp(-1.0, 1.0) * self.config.max_speed
        position, cell = move(state.position, velocity, state.walls, self.width)
        reached, length = goal_progress(
            state.position, position, state.goal, self.config.goal_radius
        )
        travelled = state.travelled + length
        t = state.t + 1
        return dataclasses.replace(
            state,
            t=t,
            position=position,
            cell=cell,
            travelled=travelled,
            reached=reached,
            trail=_shift_in(state.trail, position),
        )

    def _observe(self, state: MazeState) -> torch.Tensor:
        points = torch.cat((state.position, state.goal), dim=-1)
        scale = points.new_tensor([2 / self.width, 2 / self.height] * 2)
        around = state.walls.gather(1, state.cell.view(-1, 1, 1).expand(-1, 1, 4)).squeeze(1)
        return torch.cat((points * scale - 1, around.float()), dim=-1)

    def _reward(
        self, state: MazeState, action: torch.Tensor, step_error: torch.Tensor
    ) -> torch.Tensor:
        """``-step_cost`` per step; :meth:`step` adds the goal's +1."""
        return torch.full_like(step_error, -self.config.step_cost)

    def _terminal(self, state: MazeState) -> torch.Tensor:
        return state.reached


def _distances(walls: torch.Tensor, goal: torch.Tensor, width: int) -> torch.Tensor:
    """Distances ``[B, C]`` to each row's goal in mazes ``[B, C, 4]``: linear in C for trees."""
    tree = maze_tree(walls, width)  # generated mazes are trees
    if tree is None:
        return distances_to(walls, goal, width)
    return tree_distances(tree, goal.to(tree.first.device))


def _shift_in(trail: torch.Tensor, position: torch.Tensor) -> torch.Tensor:
    """The trail ``[B, K, 2]`` with its oldest entry dropped and ``position [B, 2]`` appended."""
    if trail.shape[1] == 0:
        return trail
    return torch.cat((trail[:, 1:], position.unsqueeze(1)), dim=1)
