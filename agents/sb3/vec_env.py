"""A Gymnasium vector env as a stable-baselines3 ``VecEnv``, so SB3 trains on the batched tasks.

stable-baselines3 steps its own ``VecEnv`` type, which resets an ended environment within the same
step and hands back the last observation in ``info["terminal_observation"]``. Gymnasium 1.x vector
envs reset on the *next* step instead. :class:`SB3VecEnv` converts one into the other by resetting
the ended rows at once (``options={"reset_mask": ...}``), so a
:class:`~noise_envs.vector_env.TaskVectorEnv` of N rows runs as one tensor program instead of N
Python environments.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import gymnasium
import numpy as np
from gymnasium.vector import AutoresetMode
from stable_baselines3.common.vec_env import VecEnv

__all__ = ["SB3VecEnv", "make_sb3_vec_env"]


class SB3VecEnv(VecEnv):
    """Run a Gymnasium ``VectorEnv`` with next-step autoreset as an SB3 ``VecEnv``.

    The wrapped env must accept ``reset(options={"reset_mask": mask})`` (Gymnasium's vector envs
    and :class:`~noise_envs.vector_env.TaskVectorEnv` do). Each ended row's info holds
    ``terminal_observation``, ``TimeLimit.truncated`` and, where the env reports them, its
    ``episode_metrics`` (and ``is_success`` from a ``success`` metric, for SB3's success rate).

    Example:
        >>> import noise_envs
        >>> envs = make_sb3_vec_env("NoisyRegulator-v0", num_envs=2, steps=2, settle_steps=0)
        >>> envs.seed(0)
        [0, 1]
        >>> obs = envs.reset()
        >>> _ = envs.step(np.zeros((2, 1), dtype=np.float32))
        >>> obs, rewards, dones, infos = envs.step(np.zeros((2, 1), dtype=np.float32))
        >>> dones.tolist(), sorted(infos[0])
        ([True, True], ['TimeLimit.truncated', 'episode_metrics', 'terminal_observation'])
    """

    def __init__(self, env: gymnasium.vector.VectorEnv) -> None:
        mode = env.metadata.get("autoreset_mode", AutoresetMode.NEXT_STEP)
        if mode != AutoresetMode.NEXT_STEP:
            raise ValueError(f"SB3VecEnv needs a next-step autoreset vector env, got {mode}")
        self.env = env
        self._actions: np.ndarray | None = None
        super().__init__(env.num_envs, env.single_observation_space, env.single_action_space)

    def __repr__(self) -> str:
        return f"SB3VecEnv({self.env!r})"

    def reset(self) -> np.ndarray:
        """Reset every row, with the seeds given to ``seed()`` if any; returns observations."""
        seeds = None if all(seed is None for seed in self._seeds) else list(self._seeds)
        obs, _ = self.env.reset(seed=seeds)
        self._reset_seeds()
        self._reset_options()
        self.reset_infos = [{} for _ in range(self.num_envs)]
        return obs

    def step_async(self, actions: np.ndarray) -> None:
        """Remember the actions ``(N, A)`` for :meth:`step_wait`."""
        self._actions = np.asarray(actions)

    def step_wait(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[dict[str, Any]]]:
        """Step every row; rows that ended are reset at once (SB3's convention)."""
        obs, rewards, terminated, truncated, info = self.env.step(self._actions)
        dones = np.logical_or(terminated, truncated)
        infos = [{} for _ in range(self.num_envs)]
        for row in np.flatnonzero(dones):
            infos[row] = _ended_info(
                info, row, obs[row], bool(truncated[row] and not terminated[row])
            )
        if dones.any():
            obs, _ = self.env.reset(options={"reset_mask": dones})
        return obs, np.asarray(rewards, dtype=np.float32), dones, infos

    def close(self) -> None:
        """Close the wrapped env."""
        self.env.close()

    def get_attr(self, attr_name: str, indices: Any = None) -> list[Any]:
        """The wrapped env's attribute, once per selected row (the rows share one env)."""
        return [getattr(self.env, attr_name)] * len(self._rows(indices))

    def set_attr(self, attr_name: str, value: Any, indices: Any = None) -> None:
        """Set an attribute of the wrapped env (for all rows: they share one env)."""
        setattr(self.env, attr_name, value)

    def env_method(
        self, method_name: str, *method_args: Any, indices: Any = None, **method_kwargs: Any
    ) -> list[Any]:
        """Call a method of the wrapped env once and return its result for each selected row."""
        result = getattr(self.env, method_name)(*method_args, **method_kwargs)
        return [result] * len(self._rows(indices))

    def env_is_wrapped(self, wrapper_class: type, indices: Any = None) -> list[bool]:
        """False for every row: a vector env carries no per-row Gymnasium wrappers."""
        return [False] * len(self._rows(indices))

    def _rows(self, indices: int | Iterable[int] | None) -> Sequence[int]:
        return list(self._get_indices(indices))


def _ended_info(
    info: dict[str, Any], row: int, last_obs: np.ndarray, truncated: bool
) -> dict[str, Any]:
    """One ended row's SB3 info: its last observation, truncation flag and episode metrics."""
    ended: dict[str, Any] = {
        "terminal_observation": np.array(last_obs),
        "TimeLimit.truncated": truncated,
    }
    metrics = info.get("episode_metrics")
    if metrics is not None:
        values = {
            name: float(value[row]) for name, value in metrics.items() if not name.startswith("_")
        }
        ended["episode_metrics"] = values
        if "success" in values:
            ended["is_success"] = values["success"] > 0.5
    return ended


def make_sb3_vec_env(
    env_id: str, num_envs: int, *, device: str = "cpu", **task_kwargs: Any
) -> SB3VecEnv:
    """``num_envs`` rows of a registered task as one batched SB3 ``VecEnv``."""
    return SB3VecEnv(
        gymnasium.make_vec(
            env_id,
            num_envs=num_envs,
            vectorization_mode="vector_entry_point",
            device=device,
            **task_kwargs,
        )
    )
