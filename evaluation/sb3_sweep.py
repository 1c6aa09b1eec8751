"""The slow path of the noise sweep: any stable-baselines3 model, stepped in SB3's own vector envs.

:func:`evaluation.sweep.sweep_noise` batches every level and episode into one tensor program, which
needs the policy as a :class:`~agents.policy.Policy` (see :class:`~agents.sb3.model.SB3Policy`). A
model that cannot be batched that way (a custom features extractor holding numpy code, a
``VecNormalize`` in front of it, ...) is swept here instead: for each level the policy's noise level
is set, and ``model.predict(..., deterministic=True)`` acts in a ``DummyVecEnv`` of
:class:`~noise_envs.env.TaskEnv` copies. Every level uses the same environment seeds, and the
noise restarts with every level (a CTRNN core's keyed positions start afresh, a noisy
extractor's generator is reseeded), so episodes are paired across levels as far as their lengths
agree. The result is a :class:`~evaluation.sweep_result.SweepResult`, like every other sweep's.

Needs the ``rl`` extra (stable-baselines3), imported on the first sweep; ``import evaluation``
does not import this module.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np

from agents.sb3.core import CTRNNCore
from agents.sb3.extractor import NoisyMlpExtractor
from evaluation.sweep_result import SweepResult, check_levels, check_seed
from noise_envs._checks import check_positive_int
from noise_envs.env import TaskEnv
from noise_envs.registration import make_task

__all__ = ["noise_level", "sweep_vec_env"]


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
) -> SweepResult:
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

    Returns:
        The per-episode metrics ``[L, E]`` of every level, as a :class:`SweepResult`.

    Raises:
        ValueError: for bad ``levels``, ``episodes``, ``num_envs`` or ``seed``, or a nonzero level for a
            model without a noisy core.
        ImportError: without stable-baselines3 (the ``rl`` extra).
    """
    check_positive_int("episodes", episodes)
    check_positive_int("num_envs", num_envs)
    check_seed(seed)
    task_kwargs = dict(task_kwargs or {})
    task = make_task(env_id, **task_kwargs)
    policy = getattr(model, "policy", model)
    set_noise = set_noise or (lambda sigma: noise_level(policy, sigma))
    levels = check_levels(levels)
    dummy_vec_env = _dummy_vec_env_class()
    rows = []
    for level in levels:
        envs = dummy_vec_env([lambda: TaskEnv(env_id, **task_kwargs)] * num_envs)
        envs.seed(seed)
        try:
            with set_noise(float(level)):
                rows.append(_run_episodes(model, envs, episodes))
        finally:
            envs.close()
    metrics = {
        m.name: np.array([[row[m.name] for row in level] for level in rows]) for m in task.metrics
    }
    return SweepResult(
        task_id=task.id,
        levels=levels,
        metrics=metrics,
        metric_directions={m.name: m.higher_is_better for m in task.metrics},
        primary_metric=task.primary_metric,
        seed=seed,
    )


def _dummy_vec_env_class() -> type:
    """stable-baselines3's ``DummyVecEnv``, or an ImportError that says what to install."""
    try:
        from stable_baselines3.common.vec_env import DummyVecEnv
    except ImportError as error:
        raise ImportError(
            "evaluation.sb3_sweep.sweep_vec_env needs stable-baselines3: "
            "pip install 'noise-preference[rl]'"
        ) from error
    return DummyVecEnv


def _run_episodes(model: Any, envs: Any, episodes: int) -> list[dict[str, float]]:
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
