"""Path-integration figures: true paths against the paths a network decodes, per test noise level.

Every level replays the same episodes with the same noise samples ``xi`` (common random numbers, as
in :func:`~evaluation.sweep.sweep_noise`), so the panels differ by the noise level alone.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from agents.policy import Policy
from agents.rollout import rollout
from evaluation.sweep_result import check_levels, check_seed
from noise_envs._checks import check_positive_int
from noise_envs.path_integration import PathIntegrationTask
from noise_envs.random import RandomSource

__all__ = ["PathTraces", "plot_paths", "trace_paths"]


@dataclasses.dataclass(frozen=True, kw_only=True, eq=False)
class PathTraces:
    """True and decoded paths of the same episodes at several test noise levels.

    Coordinates are the task's: units of half the arena's side, the arena is ``[-1, 1]^2``.
    """

    levels: np.ndarray
    """Test noise levels ``[L]``, ascending."""
    true: np.ndarray
    """True positions ``[E, T + 1, 2]``: the start, then the position after each step."""
    decoded: np.ndarray
    """Positions decoded from the network's output after each step, ``[L, E, T, 2]``."""

    @property
    def distance_errors(self) -> np.ndarray:
        """Distance of each decoded position to the true one, ``[L, E, T]``."""
        return np.linalg.norm(self.decoded - self.true[None, :, 1:], axis=-1)


def trace_paths(
    policy: Policy,
    task: PathIntegrationTask,
    levels: Sequence[float] | np.ndarray,
    *,
    episodes: int = 4,
    seed: int = 0,
    device: torch.device | str = "cpu",
) -> PathTraces:
    """Run ``episodes`` episodes at every test noise level and decode the outputs into positions.

    Args:
        policy: the network, speaking the :class:`~agents.policy.Policy` protocol.
        task: a path-integration task (its ``decode`` turns outputs into positions).
        levels: test noise levels ``[L]``, finite and >= 0.
        episodes: episodes per level E (the same paths at every level).
        seed: seed of the paths and of the network's noise.
        device: where to run.
    """
    if not isinstance(task, PathIntegrationTask):
        raise ValueError(f"`task` must be a PathIntegrationTask, got {type(task).__name__}")
    levels = check_levels(levels)
    check_positive_int("episodes", episodes)
    env_seed, noise_seed = np.random.SeedSequence(check_seed(seed)).generate_state(2, np.uint64)
    sources = [
        RandomSource(torch.Generator().manual_seed(int(s)), repeats=levels.size, device=device)
        for s in (env_seed, noise_seed)
    ]
    sigma = torch.as_tensor(levels, dtype=torch.float32, device=device)
    with torch.no_grad():
        result = rollout(
            policy,
            task,
            levels.size * episodes,
            sigma=sigma.repeat_interleave(episodes),
            env_rng=sources[0],
            noise=sources[1],
            device=device,
            record=True,
        )
        decoded = task.decode(result.actions)  # [T, L * E, 2]
    decoded = decoded.reshape(result.steps, levels.size, episodes, 2).permute(1, 2, 0, 3)
    return PathTraces(
        levels=levels,
        true=result.state.positions[:episodes].double().cpu().numpy(),
        decoded=decoded.double().cpu().numpy(),
    )


def plot_paths(
    traces: PathTraces,
    *,
    train_sigma: float | None = None,
    max_episodes: int = 4,
) -> Figure:
    """One panel per test noise level: true paths (solid) and decoded paths (dashed).

    Each episode keeps its colour across panels; a dot marks its start. The title gives the level
    and the mean distance error of the episodes shown, and marks the training level.

    Args:
        traces: what :func:`trace_paths` returned.
        train_sigma: the network's training noise, marked in its panel's title.
        max_episodes: the most episodes drawn per panel.

    Returns:
        A new figure (no pyplot state).
    """
    check_positive_int("max_episodes", max_episodes)
    shown = min(max_episodes, traces.true.shape[0])
    num_levels = traces.levels.size
    # "compressed" lays out fixed-aspect panels without clipping their two-line titles
    figure = Figure(figsize=(2.6 * num_levels, 3.4), layout="compressed")
    axes = figure.subplots(1, num_levels, squeeze=False)[0]
    errors = traces.distance_errors[:, :shown].mean(axis=(1, 2))
    for index, ax in enumerate(axes):
        for episode in range(shown):
            color = f"C{episode % 10}"
            true = traces.true[episode]
            ax.plot(true[:, 0], true[:, 1], color=color, linewidth=1.2)
            ax.plot(*true[0], "o", color=color, markersize=3)
            decoded = traces.decoded[index, episode]
            ax.plot(decoded[:, 0], decoded[:, 1], color=color, linestyle="--", linewidth=1.0)
        _draw_arena(ax)
        level = traces.levels[index]
        trained = train_sigma is not None and np.isclose(level, train_sigma)
        ax.set_title(
            f"test sigma {level:.3g}{' (train)' if trained else ''}\n"
            f"mean distance {errors[index]:.3f} (half-sides)",
            fontsize=9,
        )
    axes[0].set_ylabel("solid: true, dashed: decoded", fontsize=8)
    figure.suptitle(
        "True paths (solid, dot = start) and paths decoded from the network's output (dashed); "
        "the same episodes and noise samples at every test noise level (per-step std)",
        fontsize=9,
        wrap=True,
    )
    return figure


def _draw_arena(ax: Axes) -> None:
    """The arena's outline, equal axes, no ticks."""
    ax.plot([-1, 1, 1, -1, -1], [-1, -1, 1, 1, -1], color="0.4", linewidth=0.8)
    ax.set_xlim(-1.08, 1.08)
    ax.set_ylim(-1.08, 1.08)
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])
