"""NoisyPathIntegration-v0: integrate 2-D velocity inputs into a position in a square arena.

The paths come from :mod:`noise_envs.trajectories` (the random walks of Sorscher et al. 2019), the
place-cell targets from :mod:`noise_envs.place_cells`.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import torch
from gymnasium import spaces

from noise_envs._checks import (
    check_choice,
    check_noise_level,
    check_nonnegative,
    check_positive,
    check_positive_int,
)
from noise_envs._memory import check_memory
from noise_envs.config import JsonConfig
from noise_envs.core import Metric, OpenLoopEpisode, Task, TaskState
from noise_envs.place_cells import PLACE_CELL_TUNINGS, place_cell_activity, tuning_range
from noise_envs.random import RandomSource
from noise_envs.trajectories import (
    Trajectories,
    generate_trajectories,
    unit_vector,
)

__all__ = [
    "STARTS",
    "TARGETS",
    "VELOCITY_ENCODINGS",
    "PathIntegrationConfig",
    "PathIntegrationState",
    "PathIntegrationTask",
]

VELOCITY_ENCODINGS = ("cartesian", "speed_heading")
"""Velocity inputs: (vx, vy), or (speed, cos heading, sin heading)."""
STARTS = ("center", "random_cued")
"""Start positions: the arena's centre, or uniform in the arena and shown at step 0."""
TARGETS = ("position", "place_cells")
"""Outputs: the position (x, y), or the activity of a population of place cells."""

MAX_SPEED_SCALES = 4.0
"""Speeds are capped at this many Rayleigh scales: a cap hits with probability e^-8 = 3e-4."""
MAX_SCALED = 1e6
"""Bound on the derived sizes (speed in half-sides per second, heading noise per step, cell
width in half-sides): beyond it float32 paths, observations or tunings overflow or mean nothing."""


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class PathIntegrationConfig(JsonConfig):
    """Options of :class:`PathIntegrationTask`; lengths in metres, times in seconds."""

    arena_size: float = 2.2
    """Side length of the square arena (m); positions are reported in units of half of it."""
    steps: int = 100
    """Steps per episode."""
    settle_steps: int = 0
    """Steps at the start whose output is not scored (time to take up a cued start)."""
    time_step: float = 0.02
    """Duration of one step (s)."""
    speed_scale: float = 0.26 * math.pi
    """Scale b of the Rayleigh distribution of speeds (m/s); the mean speed is b sqrt(pi / 2)."""
    turn_std: float = 11.52
    """Standard deviation of the heading's angular velocity (rad/s)."""
    wall_margin: float = 0.03
    """Within this distance of a wall (m) a walker heading towards it turns parallel to it."""
    velocity_encoding: str = "cartesian"
    """Velocity input: cartesian (vx, vy) or speed_heading (speed, cos, sin)."""
    start: str = "center"
    """Start position: center, or random_cued (uniform, shown as two inputs at step 0)."""
    target: str = "position"
    """Output: position (x, y) or place_cells (one output per cell)."""
    num_place_cells: int = 256
    """Number of place cells (target place_cells)."""
    place_cell_width: float = 0.12
    """Width (standard deviation) of a place cell's Gaussian tuning (m)."""
    place_cell_tuning: str = "gaussian"
    """Tuning curve: gaussian or difference_of_gaussians (with an inhibitory surround)."""
    place_cell_seed: int = 0
    """Seed of the place-cell centres, drawn uniformly in the arena."""
    decode_top_k: int = 3
    """Place-cell outputs are decoded as the activity-weighted mean of the top-k cells' centres."""
    obs_noise: float = 0.0
    """Standard deviation of Gaussian noise added to every observation."""

    def __post_init__(self) -> None:
        for name in ("arena_size", "time_step", "speed_scale"):
            check_positive(name, getattr(self, name))
        check_nonnegative("turn_std", self.turn_std)
        check_nonnegative("wall_margin", self.wall_margin)
        check_positive_int("steps", self.steps)
        _check_step_count("settle_steps", self.settle_steps, self.steps)
        check_choice("velocity_encoding", self.velocity_encoding, VELOCITY_ENCODINGS)
        check_choice("start", self.start, STARTS)
        check_choice("target", self.target, TARGETS)
        _check_place_cells(self)
        check_noise_level("obs_noise", self.obs_noise)
        _check_scales(self)
        check_memory("steps", self.steps, self.steps * self.row_bytes_per_step)

    @property
    def half_size(self) -> float:
        """Half the arena's side (m): the unit of the reported coordinates."""
        return self.arena_size / 2

    @property
    def max_speed(self) -> float:
        """The largest speed, in arena half-sides per second."""
        return MAX_SPEED_SCALES * self.speed_scale / self.half_size

    @property
    def row_bytes_per_step(self) -> int:
        """float32 bytes per step of one row: path, speed, heading, observation, target, mask."""
        outputs = 2 if self.target == "position" else self.num_place_cells
        return 4 * (4 + 5 + 2 * outputs)


def _check_step_count(name: str, value: int, steps: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < steps:
        raise ValueError(f"`{name}` must be an integer in [0, steps) = [0, {steps}), got {value!r}")


def _check_scales(config: PathIntegrationConfig) -> None:
    if config.max_speed > MAX_SCALED:
        raise ValueError(
            f"`speed_scale` / (`arena_size` / 2) = {config.speed_scale / config.half_size:g} "
            f"half-sides per second makes the largest speed {config.max_speed:g}, which must be "
            f"<= {MAX_SCALED:g}"
        )
    if config.turn_std * config.time_step > MAX_SCALED:
        raise ValueError(
            f"`turn_std` * `time_step` = {config.turn_std * config.time_step:g} rad per step "
            f"must be <= {MAX_SCALED:g}"
        )
    if config.place_cell_width / config.half_size > MAX_SCALED:
        raise ValueError(
            f"`place_cell_width` / (`arena_size` / 2) = "
            f"{config.place_cell_width / config.half_size:g} must be <= {MAX_SCALED:g}"
        )


def _check_place_cells(config: PathIntegrationConfig) -> None:
    check_positive_int("num_place_cells", config.num_place_cells)
    check_positive("place_cell_width", config.place_cell_width)
    check_choice("place_cell_tuning", config.place_cell_tuning, PLACE_CELL_TUNINGS)
    seed = config.place_cell_seed
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**63:
        raise ValueError(f"`place_cell_seed` must be an integer in [0, 2**63), got {seed!r}")
    # the centres [N, 2] and one row's activity of one step, float32
    check_memory("num_place_cells", config.num_place_cells, 16 * config.num_place_cells)
    check_positive_int("decode_top_k", config.decode_top_k)
    if config.decode_top_k > config.num_place_cells:
        raise ValueError(
            f"`decode_top_k` must be <= `num_place_cells` ({config.num_place_cells}), "
            f"got {config.decode_top_k}"
        )


@dataclasses.dataclass(frozen=True)
class PathIntegrationState(TaskState):
    """Adds the episode's path and the running sums of the position error.

    Attributes:
        positions: ``[B, T + 1, 2]``, the path (see :class:`Trajectories`).
        speeds: ``[B, T]``.
        headings: ``[B, T]``.
        squared_distance_sum: summed squared distance of decoded to true positions, ``[B]``.
        distance_sum: summed distance of decoded to true positions, ``[B]``.
        scored_steps: number of steps summed, ``[B]``.
    """

    positions: torch.Tensor
    speeds: torch.Tensor
    headings: torch.Tensor
    squared_distance_sum: torch.Tensor
    distance_sum: torch.Tensor
    scored_steps: torch.Tensor

    @property
    def trajectories(self) -> Trajectories:
        """The episode's paths."""
        return Trajectories(self.positions, self.speeds, self.headings)


class PathIntegrationTask(Task[PathIntegrationState, PathIntegrationConfig]):
    """2-D path integration: report where you are from the velocities you have seen.

    ## Description
    A walker moves through a square arena of side ``arena_size`` on a random smooth path (see
    :func:`generate_trajectories`): Rayleigh speeds, Gaussian heading increments, turns away
    from walls. Each step the network sees the velocity of the step and must output the
    position reached. It starts at the centre, or (``start="random_cued"``) at a uniform
    random position shown at step 0 only. Coordinates are in units of half the arena's side,
    so the arena is ``[-1, 1]^2``. The task is open loop: outputs do not change the path.

    ## Observation Space
    ``Box`` of shape ``(2,)`` (cartesian: ``vx, vy``) or ``(3,)`` (speed_heading: ``speed,
    cos, sin``), plus ``(x0, y0)`` at step 0 and ``(0, 0)`` later with ``random_cued``.
    Velocities are in half-sides per second, so ``p[t + 1] = p[t] + v[t] * time_step``; speeds
    are capped at ``MAX_SPEED_SCALES`` Rayleigh scales. Bounds widen by ``5 * obs_noise``.

    ## Action Space
    ``Box(-1, 1, (2,))``: the position; or ``Box(-1, 1, (N,))``: the place cells' activity,
    scaled from the tuning curve's range to ``[-1, 1]``. Actions are scored, not clipped.

    ## Rewards
    Minus the squared error on scored steps, 0 before.

    ## Episode End
    Terminates after ``steps`` steps.

    ## Noise options
    ``obs_noise``: Gaussian noise on every observation channel (cue channels included).

    ## Teacher signal
    The position after the current step (or its place-cell code), mask 1 from ``settle_steps``.

    ## Metrics
    ``position_mse`` (primary, lower is better): mean squared distance between the decoded
    output and the true position over scored steps. ``mean_distance_error`` (lower is better):
    mean distance. Both in half-sides (10% of the side is 0.2). Place-cell outputs are decoded
    as the activity-weighted mean of the ``decode_top_k`` most active cells' centres.

    ## Arguments
    See :class:`PathIntegrationConfig`.

    ## Version History
    * v0: initial version.

    References:
        Cueva & Wei, "Emergence of grid-like representations by training recurrent neural
        networks to perform spatial localization", ICLR 2018. Sorscher, Mel, Ganguli & Ocko,
        "A unified theory for the origin of grid cells through the lens of pattern formation",
        NeurIPS 2019 (trajectory generator).

    Example:
        >>> task = PathIntegrationTask(steps=5, start="random_cued")
        >>> state, obs = task.reset(3, generator=0)
        >>> tuple(obs.shape), tuple(state.positions.shape)
        ((3, 4), (3, 6, 2))
    """

    id = "NoisyPathIntegration-v0"
    config_class = PathIntegrationConfig
    metrics = (
        Metric(
            "position_mse",
            higher_is_better=False,
            description="mean squared distance of decoded to true position (half-sides^2)",
        ),
        Metric(
            "mean_distance_error",
            higher_is_better=False,
            description="mean distance of decoded to true position (half-sides)",
        ),
    )
    primary_metric = "position_mse"
    open_loop = True

    def __init__(self, config: PathIntegrationConfig | None = None, **options) -> None:
        super().__init__(config, **options)
        self.horizon = self.config.steps
        self.observation_space = self._observation_space()
        size = 2 if self.config.target == "position" else self.config.num_place_cells
        self.action_space = spaces.Box(-1.0, 1.0, shape=(size,), dtype=np.float32)
        generator = torch.Generator().manual_seed(self.config.place_cell_seed)
        self.place_cell_centres = (
            2 * torch.rand(self.config.num_place_cells, 2, generator=generator) - 1
        )
        """Centres ``[N, 2]`` of the place cells, uniform in the arena (CPU)."""
        self._centres_on: dict[torch.device, torch.Tensor] = {}

    def _observation_space(self) -> spaces.Box:
        config, margin = self.config, 5.0 * self.obs_noise
        vmax = config.max_speed
        if config.velocity_encoding == "cartesian":
            low, high = [-vmax, -vmax], [vmax, vmax]
        else:
            low, high = [0.0, -1.0, -1.0], [vmax, 1.0, 1.0]
        if config.start == "random_cued":
            low, high = [*low, -1.0, -1.0], [*high, 1.0, 1.0]
        return spaces.Box(
            np.asarray(low, dtype=np.float32) - margin,
            np.asarray(high, dtype=np.float32) + margin,
            dtype=np.float32,
        )

    def centres(self, device: torch.device | str) -> torch.Tensor:
        """The place-cell centres ``[N, 2]`` on ``device`` (cached)."""
        device = torch.device(device)
        if device not in self._centres_on:
            self._centres_on[device] = self.place_cell_centres.to(device)
        return self._centres_on[device]

    def encode(self, position: torch.Tensor) -> torch.Tensor:
        """The target for positions ``[B, 2]``: themselves, or the scaled place-cell code."""
        if self.config.target == "position":
            return position
        config = self.config
        activity = place_cell_activity(
            position,
            self.centres(position.device),
            config.place_cell_width / config.half_size,
            config.place_cell_tuning,
        )
        low, high = tuning_range(config.place_cell_tuning)
        return 2 * (activity - low) / (high - low) - 1

    def decode(self, output: torch.Tensor) -> torch.Tensor:
        """Positions ``[..., 2]`` read from outputs ``[..., A]`` (see Metrics)."""
        if self.config.target == "position":
            return output
        low, high = tuning_range(self.config.place_cell_tuning)
        rest = 2 * (0.0 - low) / (high - low) - 1  # the code of a silent cell
        values, index = torch.topk(output, self.config.decode_top_k, dim=-1)
        weights = (values - rest).clamp_min(0.0)
        silent = weights.sum(-1, keepdim=True) == 0
        weights = torch.where(silent, 1.0, weights)  # no cell active: plain mean of the top k
        chosen = self.centres(output.device)[index]
        return (weights.unsqueeze(-1) * chosen).sum(-2) / weights.sum(-1, keepdim=True)

    def position_after_step(self, state: PathIntegrationState) -> torch.Tensor:
        """The true position ``[B, 2]`` after the current step (the last one once ended)."""
        index = (state.t + 1).clamp_max(self.config.steps)
        return state.positions[torch.arange(state.batch_size, device=index.device), index]

    def teacher(self, state: PathIntegrationState) -> tuple[torch.Tensor, torch.Tensor]:
        """The code of the position after this step, weighted 1 from ``settle_steps`` on."""
        target = self.encode(self.position_after_step(state))
        scored = (state.t >= self.config.settle_steps).unsqueeze(-1).to(target.dtype)
        return target, scored.expand_as(target)

    def open_loop_episode(
        self,
        batch_size: int,
        generator: torch.Generator | RandomSource | int | None = None,
        device: torch.device | str = "cpu",
    ) -> OpenLoopEpisode:
        """The episodes at once: the same paths, observations, targets and masks as stepping."""
        state, first = self.reset(batch_size, generator, device)
        config = self.config
        speed, heading = state.speeds.T.unsqueeze(-1), state.headings.T  # [T, B, 1], [T, B]
        if config.velocity_encoding == "cartesian":
            parts = [speed * unit_vector(heading)]
        else:
            parts = [speed, unit_vector(heading)]
        if config.start == "random_cued":
            cue = torch.zeros(config.steps, batch_size, 2, device=speed.device)
            cue[0] = state.positions[:, 0]
            parts.append(cue)
        observations = self._observation_sequence(state, first, torch.cat(parts, dim=-1))
        targets = self.encode(state.positions[:, 1:].transpose(0, 1))
        scored = torch.arange(config.steps, device=speed.device) >= config.settle_steps
        masks = scored.to(targets.dtype).view(-1, 1, 1).expand_as(targets)
        return OpenLoopEpisode(observations, targets, masks)

    def episode_metrics(self, state: PathIntegrationState) -> dict[str, torch.Tensor]:
        """``position_mse`` and ``mean_distance_error`` over the scored steps, ``[B]`` each."""
        count = state.scored_steps.clamp_min(1.0)
        return {
            "position_mse": state.squared_distance_sum / count,
            "mean_distance_error": state.distance_sum / count,
        }

    def _row_bytes(self) -> int:
        return self.config.steps * self.config.row_bytes_per_step

    def _initial(
        self, batch_size: int, rng: RandomSource, device: torch.device
    ) -> PathIntegrationState:
        paths = generate_trajectories(self.config, batch_size, rng, device)
        zeros = torch.zeros(batch_size, device=device)
        return PathIntegrationState(
            **self._base_state(batch_size, rng, device),
            positions=paths.positions,
            speeds=paths.speeds,
            headings=paths.headings,
            squared_distance_sum=zeros,
            distance_sum=zeros.clone(),
            scored_steps=zeros.clone(),
        )

    def _transition(
        self, state: PathIntegrationState, action: torch.Tensor
    ) -> PathIntegrationState:
        error = self.decode(action.detach()) - self.position_after_step(state)
        squared = error.square().sum(-1)
        scored = (state.t >= self.config.settle_steps).to(squared.dtype)
        return dataclasses.replace(
            state,
            t=state.t + 1,
            squared_distance_sum=state.squared_distance_sum + scored * squared,
            distance_sum=state.distance_sum + scored * squared.sqrt(),
            scored_steps=state.scored_steps + scored,
        )

    def _observe(self, state: PathIntegrationState) -> torch.Tensor:
        steps = self.config.steps
        index = state.t.clamp_max(steps - 1).unsqueeze(-1)
        moving = (state.t < steps).to(state.speeds.dtype)  # still after the last step
        speed = state.speeds.gather(1, index).squeeze(1) * moving
        heading = state.headings.gather(1, index).squeeze(1)
        if self.config.velocity_encoding == "cartesian":
            parts = [speed.unsqueeze(-1) * unit_vector(heading)]
        else:
            parts = [speed.unsqueeze(-1), unit_vector(heading)]
        if self.config.start == "random_cued":
            cue = (state.t == 0).unsqueeze(-1).to(speed.dtype)
            parts.append(cue * state.positions[:, 0])
        return torch.cat(parts, dim=-1)

    def _terminal(self, state: PathIntegrationState) -> torch.Tensor:
        return state.t >= self.config.steps
