"""The slow path of the noise sweep: any stable-baselines3 model, stepped in SB3's own vector envs.

:func:`evaluation.sweep.sweep_noise` batches every level and episode into one tensor program, which
needs the policy as a :class:`~agents.policy.Policy` (see :class:`~agents.sb3.model.SB3Policy`). A
model that cannot be batched that way (a custom features extractor holding numpy code, a
``VecNormalize`` in front of it, ...) is swept here instead: for each level the policy's noise level
is set, and ``model.predict(..., deterministic=True)`` acts in a ``DummyVecEnv`` of
:class:`~noise_envs.env.TaskEnv` copies. Every level uses the same environment seeds, and the
noise restarts with every level (a CTRNN core's keyed positions start afresh, a noisy
extractor's generator is reseeded), so episodes are paired across levels as far as their lengths
agree. The result holds the fields of
:class:`~evaluation.sweep_result.SweepResult`: ``SweepResult(**dataclasses.asdict(result))``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
from stable_baselines3.common.vec_env import DummyVecEnv

from agents.sb3.core import CTRNNCore
from agents.sb3.extractor import NoisyMlpExtractor
from noise_envs._checks import check_positive_int
from noise_envs.env import TaskEnv
from noise_envs.registration import make_task

__all__ = ["VecEnvSweep", "noise_level", "sweep_vec_env"]


@dataclasses.dataclass(frozen=True)
class VecEnvSweep:
    """Per-episode metrics of :func:`sweep_vec_env`, named as SweepResult's fields."""

    task_id: str
    levels: np.ndarray
    """Test noise levels ``[L]``, ascending."""
    metrics: dict[str, np.ndarray]
    """Per-episode metrics ``{name: [L, E]}``."""
    metric_directions: dict[str, bool]
    primary_metric: str
    seed: int


@contextlib.contextmanager
def noise_level(policy: Any, sigma: float) -> Iterator[None]:
    """Set the actor's noise level (CTRNN core or noisy extractor) for the ``with`` block.

    Raises:
        ValueError: for a nonzero ``sigma`` and a policy without a noisy core.
    """
    holder = getattr(policy, "lstm_actor", None)
    if not isinstance(holder, CTRNNCore):
        holder = getattr(policy, "mlp_extractor", None)
    if not isinstance(holder, (CTRNNCore, NoisyMlpExtractor)):
        if sigma != 0:
            raise ValueError(
                f"`sigma` must be 0 for a {type(policy).__name__} without a noisy core, got {sigma}"
            )
        yield
        return
    before, holder.sigma = holder.sigma, float(sigma)
    if isinstance(holder, NoisyMlpExtractor):
        holder.restart_noise()  # predict() draws fresh noise: the same for every level
    try:
        yield
    finally:
        holder.sigma = before


def sweep_vec_env(
    model: Any,
    env_id: str,
    levels: Sequence[float],
    *,
    episodes: int = 64,
    num_envs: int = 8,
    seed: int = 0,
    task_kwargs: dict[str, Any] | None = None,
    set_noise: Callable[[float], Any] | None = None,
) -> VecEnvSweep:
    """Evaluate an SB3 model's deterministic actions at each test noise level, episode by episode.

    Args:
        model: anything with SB3's ``predict(obs, state, episode_start, deterministic)``.
        env_id: the environment id; ``TaskEnv(env_id, **task_kwargs)`` makes each copy.
        levels: test noise levels (>= 0), swept in ascending order.
        episodes: episodes per level E.
        num_envs: environments stepped together; environment ``i`` is seeded ``seed + i``.
        seed: seed of the environments.
        task_kwargs: the task's options.
        set_noise: a context-manager factory ``set_noise(sigma)`` setting the model's noise level;
            by default :func:`noise_level` on ``model.policy`` (or the model itself).
    """
    check_positive_int("episodes", episodes)
    check_positive_int("num_envs", num_envs)
    task_kwargs = dict(task_kwargs or {})
    task = make_task(env_id, **task_kwargs)
    policy = getattr(model, "policy", model)
    set_noise = set_noise or (lambda sigma: noise_level(policy, sigma))
    levels = np.sort(np.asarray(levels, dtype=np.float64))
    if levels.ndim != 1 or levels.size == 0 or (levels < 0).any():
        raise ValueError(f"`levels` must be a non-empty 1-D sequence of numbers >= 0, got {levels}")
    rows = []
    for level in levels:
        envs = DummyVecEnv([lambda: TaskEnv(env_id, **task_kwargs)] * num_envs)
        envs.seed(seed)
        with set_noise(float(level)):
            rows.append(_run_episodes(model, envs, episodes))
        envs.close()
    metrics = {
        m.name: np.array([[row[m.name] for row in level] for level in rows]) for m in task.metrics
    }
    return VecEnvSweep(
        task_id=task.id,
        levels=levels,
        metrics=metrics,
        metric_directions={m.name: m.higher_is_better for m in task.metrics},
        primary_metric=task.primary_metric,
        seed=seed,
    )


def _run_episodes(model: Any, envs: DummyVecEnv, episodes: int) -> list[dict[str, float]]:
    """``episodes`` episodes' metrics; environment ``i`` runs episodes ``i, i + N, ...``."""
    quota = math.ceil(episodes / envs.num_envs)
    finished: list[list[dict[str, float]]] = [[] for _ in range(envs.num_envs)]
    obs, state = envs.reset(), None
    starts = np.ones(envs.num_envs, dtype=bool)
    while min(len(done) for done in finished) < quota:
        actions, state = model.predict(obs, state, starts, deterministic=True)
        obs, _, starts, infos = envs.step(actions)
        for row in np.flatnonzero(starts):
            if len(finished[row]) < quota:
                finished[row].append(infos[row]["episode_metrics"])
    ordered = [finished[i][k] for k in range(quota) for i in range(envs.num_envs)]
    return ordered[:episodes]
