"""Random smooth paths in a square arena, the walks of the path-integration task.

The random-walk model of Sorscher et al. (2019) (after Cueva & Wei 2018): Rayleigh-distributed
speeds, headings that turn by Gaussian increments, and a turn away from a wall (with a slow-down)
when the walker is near it and heading towards it. Coordinates are in half-sides, so the arena is
``[-1, 1]^2``.
"""

from __future__ import annotations

import dataclasses
import math
from typing import TYPE_CHECKING

import torch

from noise_envs.random import RandomSource

if TYPE_CHECKING:
    from noise_envs.path_integration import PathIntegrationConfig

__all__ = [
    "NEAR_WALL_SLOWDOWN",
    "Trajectories",
    "distance_to_wall",
    "generate_trajectories",
    "unit_vector",
    "wall_turn",
]

NEAR_WALL_SLOWDOWN = 0.25
"""Speed factor while turning away from a wall (Sorscher et al. 2019)."""
_STEP_SAFETY = 0.99
"""A step covers at most this fraction of the distance to the wall ahead, so walkers stay inside."""


@dataclasses.dataclass(frozen=True)
class Trajectories:
    """Random paths in the arena ``[-1, 1]^2`` (units of half the arena's side).

    Attributes:
        positions: ``[B, T + 1, 2]``, the start and the position after each step.
        speeds: ``[B, T]``, the speed during each step (half-sides per second).
        headings: ``[B, T]``, the direction of motion during each step (rad).
    """

    positions: torch.Tensor
    speeds: torch.Tensor
    headings: torch.Tensor

    @property
    def velocities(self) -> torch.Tensor:
        """``[B, T, 2]``: ``positions[:, t + 1] = positions[:, t] + velocities[:, t] * dt``."""
        return self.speeds.unsqueeze(-1) * unit_vector(self.headings)


def unit_vector(angle: torch.Tensor) -> torch.Tensor:
    """Unit vectors ``[..., 2]`` pointing at ``angle``."""
    return torch.stack((torch.cos(angle), torch.sin(angle)), dim=-1)


def wall_turn(
    position: torch.Tensor, heading: torch.Tensor, margin: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """The turn that steers a walker near a wall parallel to it (Sorscher et al. 2019).

    A walker within ``margin`` of its nearest wall whose heading makes an angle ``a`` with the
    wall's outward normal, ``|a| < pi / 2``, turns by ``sign(a) (pi / 2 - |a|)``.

    Args:
        position: ``[B, 2]`` in ``[-1, 1]^2``.
        heading: ``[B]`` (rad).
        margin: distance from a wall that counts as near (half-sides).

    Returns:
        The turn ``[B]`` (rad, 0 away from walls) and whether each walker is near a wall ``[B]``.
    """
    x, y = position.unbind(-1)
    # The walls x = 1, y = 1, x = -1, y = -1 have outward normals at 0, pi/2, pi, 3pi/2.
    distance, wall = torch.stack((1 - x, 1 - y, 1 + x, 1 + y), dim=-1).min(dim=-1)
    towards = torch.remainder(heading - wall * (math.pi / 2) + math.pi, 2 * math.pi) - math.pi
    near = (distance < margin) & (towards.abs() < math.pi / 2)
    turn = torch.where(near, torch.sign(towards) * (math.pi / 2 - towards.abs()), 0.0)
    return turn, near


def distance_to_wall(position: torch.Tensor, direction: torch.Tensor) -> torch.Tensor:
    """Distance ``[B]`` from ``position [B, 2]`` to the arena's edge along unit ``direction [B, 2]``.

    Along axis k the wall ahead is at ``sign(c_k)``, at distance ``(1 - sign(c_k) p_k) / |c_k|``
    (infinite for ``c_k = 0``); the nearer of the two axes counts.
    """
    return ((1 - position * torch.sign(direction)) / direction.abs()).amin(dim=-1)


def generate_trajectories(
    config: PathIntegrationConfig, batch_size: int, rng: RandomSource, device: torch.device
) -> Trajectories:
    """Draw ``batch_size`` random paths of ``config.steps`` steps.

    Each step the heading turns away from a near wall and by ``turn_std * dt * xi``; the walker
    then moves at its Rayleigh speed (a quarter of it while turning away from a wall), shortened
    where needed so that it stays inside the arena.
    """
    steps, dt, half = config.steps, config.time_step, config.half_size
    heading = rng.uniform(batch_size, low=0.0, high=2 * math.pi).to(device)
    if config.start == "random_cued":
        position = rng.uniform(batch_size, 2, low=-1.0, high=1.0).to(device)
    else:
        position = torch.zeros(batch_size, 2, device=device)
    unit = rng.uniform(batch_size, steps).to(device)
    speed = config.speed_scale / half * torch.sqrt(-2 * torch.log1p(-unit))  # Rayleigh
    speed = speed.clamp_max(config.max_speed)
    noise = config.turn_std * dt * rng.normal(batch_size, steps).to(device)
    positions, speeds, headings = [position], [], []
    for t in range(steps):
        turn, near = wall_turn(position, heading, config.wall_margin / half)
        heading = heading + turn + noise[:, t]
        direction = unit_vector(heading)
        now = speed[:, t] * torch.where(near, NEAR_WALL_SLOWDOWN, 1.0)
        now = torch.minimum(now, _STEP_SAFETY / dt * distance_to_wall(position, direction))
        position = position + (now * dt).unsqueeze(-1) * direction
        positions.append(position)
        speeds.append(now)
        headings.append(heading)
    return Trajectories(
        positions=torch.stack(positions, dim=1),
        speeds=torch.stack(speeds, dim=1),
        headings=torch.stack(headings, dim=1),
    )
