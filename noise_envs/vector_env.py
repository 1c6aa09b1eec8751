"""``TaskVectorEnv``: N episodes of a batched :class:`~noise_envs.core.Task` as one vector env.

The N rows run as one tensor program. Each row has its own ``np_random`` and torch generator,
seeded exactly as a :class:`~noise_envs.env.TaskEnv` would seed them, so row ``i`` of
``reset(seed=s)`` replays ``TaskEnv.reset(seed=s + i)`` step for step.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
import torch
from gymnasium.error import ResetNeeded
from gymnasium.utils import seeding
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from noise_envs._checks import check_positive_int, check_shape
from noise_envs.core import Task, TaskState, select_rows, where_rows
from noise_envs.env import (
    bound_adapter,
    check_render_mode,
    describe_task,
    resolve_task,
    seed_generator,
    task_metadata,
    to_numpy,
)
from noise_envs.random import RandomSource
from noise_envs.registration import TASKS, default_horizon

__all__ = ["TaskVectorEnv", "task_vector_env_class"]


class TaskVectorEnv(VectorEnv):
    """``num_envs`` copies of a task, batched natively, with next-step autoreset.

    A row whose episode ended is reset on the following ``step`` (its action is ignored) and
    returns the new episode's first observation with reward 0 and ``terminated = truncated =
    False``, as Gymnasium's ``SyncVectorEnv`` does. ``infos`` follow the vector convention (an
    array per key plus a ``_key`` mask): ``target`` and ``mask`` of shape ``(N, A)`` for every
    row, and ``episode_metrics`` for the rows that ended on this step.

    Args:
        task: a task simulator, or an environment id given to :func:`~noise_envs.make_task`.
        num_envs: number of rows N.
        render_mode: None, or one of the task's ``render_modes`` (NoisyMaze-v0 draws ``ansi`` and
            ``rgb_array``); any other mode warns and becomes None, as in ``gymnasium.make``.
        device: where the simulator runs; the random numbers come from CPU generators, so
            they do not depend on the device.
        max_episode_steps: None, or a time limit shorter than the task's horizon that ends
            (truncates) episodes as Gymnasium's ``TimeLimit`` would. ``gymnasium.make_vec``
            passes the registered value, the default options' horizon: when the options change
            the horizon, that value is not a limit the user chose and the task's horizon holds.
        **task_kwargs: the task's options, only with an environment id.

    Example:
        >>> import gymnasium
        >>> envs = gymnasium.make_vec(
        ...     "NoisyRegulator-v0", num_envs=3, vectorization_mode="vector_entry_point", steps=2,
        ...     settle_steps=0, setpoint=0.5)
        >>> envs
        RegulatorVectorEnv(NoisyRegulator-v0, num_envs=3, setpoint=0.5, steps=2, settle_steps=0)
        >>> obs, infos = envs.reset(seed=0)
        >>> obs.shape, infos["target"][:, 0]
        ((3, 1), array([0.5, 0.5, 0.5], dtype=float32))
        >>> actions = np.zeros((3, 1), dtype=np.float32)
        >>> _ = envs.step(actions)
        >>> obs, rewards, terminated, truncated, infos = envs.step(actions)
        >>> rewards, terminated, infos["episode_metrics"]["mse"]
        (array([-0.25, -0.25, -0.25]), array([ True,  True,  True]), array([0.25, 0.25, 0.25]))
    """

    _bound_task: ClassVar[type[Task] | None] = None
    """The task class a per-task subclass (:func:`task_vector_env_class`) is bound to."""

    metadata: ClassVar[dict[str, Any]] = {
        "render_modes": [],
        "render_fps": None,
        "autoreset_mode": AutoresetMode.NEXT_STEP,
    }

    def __init__(
        self,
        task: Task | str,
        num_envs: int,
        render_mode: str | None = None,
        *,
        device: torch.device | str = "cpu",
        max_episode_steps: int | None = None,
        **task_kwargs: Any,
    ) -> None:
        self.task = resolve_task(task, task_kwargs)
        self.num_envs = check_positive_int("num_envs", num_envs)
        self.max_episode_steps = self._time_limit(max_episode_steps)
        """A time limit below the task's horizon, or None (the horizon ends episodes)."""
        self.single_observation_space = self.task.observation_space
        self.single_action_space = self.task.action_space
        self.observation_space = batch_space(self.single_observation_space, num_envs)
        self.action_space = batch_space(self.single_action_space, num_envs)
        self.metadata = task_metadata(self.task, type(self).metadata)
        self.render_mode = check_render_mode(self.task, render_mode)
        self.device = torch.device(device)
        self.state: TaskState | None = None
        """The simulator's state (batch N), None before the first reset."""
        self.row_np_random: list[np.random.Generator | None] = [None] * num_envs
        """Each row's numpy generator, the source of its episodes' torch generators."""
        self._autoreset = np.zeros(num_envs, dtype=bool)
        self._observations: torch.Tensor | None = None

    def __repr__(self) -> str:
        label = describe_task(self.task).split(", ", 1)
        options = f", {label[1]}" if len(label) > 1 else ""
        return f"{type(self).__name__}({label[0]}, num_envs={self.num_envs}{options})"

    def reset(
        self,
        *,
        seed: int | Sequence[int | None] | None = None,
        options: dict[str, Any] | None = None,
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Start new episodes in every row, or in the rows of ``options["reset_mask"]``.

        Args:
            seed: None (rows keep their generators, or get random ones on the first reset),
                an int ``s`` (row ``i`` is seeded ``s + i``) or one seed (or None) per row.
            options: only ``{"reset_mask": bool array (N,)}``, to reset some rows; the others
                keep their episodes and last observations.
        """
        mask = self._reset_mask(options)
        seeds = self._row_seeds(seed)
        for row in np.flatnonzero(mask):
            if seeds[row] is not None or self.row_np_random[row] is None:
                self.row_np_random[row] = seeding.np_random(seeds[row])[0]
        self._reset_rows(mask)
        self._autoreset[mask] = False
        return to_numpy(self._observations), self._teacher_info(mask)

    def step(
        self, actions: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        """Act in every row: ``actions`` has shape ``(N, A)``; returns Gymnasium's 5 arrays."""
        if self.state is None:
            raise ResetNeeded("Cannot call `step` before `reset`")
        actions = torch.tensor(np.asarray(actions, dtype=np.float32), device=self.device)
        check_shape("actions", actions, self.action_space.shape)
        was_done = self.state.done
        self.state, self._observations, reward, done = self.task.step(self.state, actions)
        if self.max_episode_steps is not None:
            done = self._apply_time_limit(done)
        ended = (done & ~was_done).cpu().numpy()
        truncated = self.state.truncated.cpu().numpy() & ended
        metrics = self.task.episode_metrics(self.state)
        if self._autoreset.any():
            self._reset_rows(self._autoreset)
        info = self._teacher_info(np.ones(self.num_envs, dtype=bool))
        if ended.any():
            info["episode_metrics"] = _masked_metrics(metrics, ended)
            info["_episode_metrics"] = ended
        self._autoreset = ended
        rewards = reward.double().cpu().numpy()
        return to_numpy(self._observations), rewards, ended & ~truncated, truncated, info

    def render(self) -> tuple[Any, ...] | None:
        """The task's frames of every row in ``render_mode``; None when that is None."""
        if self.render_mode is None:
            return None
        return tuple(self.task.render(self.state, self.render_mode))

    def _time_limit(self, max_episode_steps: int | None) -> int | None:
        if max_episode_steps is None:
            return None
        limit = check_positive_int("max_episode_steps", max_episode_steps)
        registered = self.task.id in TASKS and limit == default_horizon(self.task.id)
        return None if registered or limit >= self.task.horizon else limit

    def _apply_time_limit(self, done: torch.Tensor) -> torch.Tensor:
        """End (truncate) the rows that reached ``max_episode_steps``; returns the new ``done``."""
        cut = (self.state.t >= self.max_episode_steps) & ~done
        if bool(cut.any()):
            self.state = dataclasses.replace(
                self.state, done=done | cut, truncated=self.state.truncated | cut
            )
        return done | cut

    def _row_seeds(self, seed: int | Sequence[int | None] | None) -> list[int | None]:
        if seed is None:
            return [None] * self.num_envs
        if isinstance(seed, (int, np.integer)) and not isinstance(seed, bool):
            return [int(seed) + row for row in range(self.num_envs)]
        seeds = list(seed)
        if len(seeds) != self.num_envs:
            raise ValueError(
                f"`seed` must be None, an int or one seed per env ({self.num_envs}), "
                f"got {len(seeds)} seeds"
            )
        return seeds

    def _reset_mask(self, options: dict[str, Any] | None) -> np.ndarray:
        options = dict(options or {})
        mask = options.pop("reset_mask", None)
        if options:
            raise ValueError(f"the only reset option is 'reset_mask', got {sorted(options)}")
        if mask is None:
            return np.ones(self.num_envs, dtype=bool)
        mask = np.asarray(mask)
        if mask.dtype != np.bool_ or mask.shape != (self.num_envs,) or not mask.any():
            raise ValueError(
                f"`options['reset_mask']` must be a bool array of shape ({self.num_envs},) "
                f"with at least one True, got {mask!r}"
            )
        if self.state is None and not mask.all():
            raise ValueError("the first `reset` must reset every env: drop `reset_mask`")
        return mask

    def _reset_rows(self, mask: np.ndarray) -> None:
        """Start new episodes in the ``mask`` rows, drawing their generators from their np_random."""
        rows = np.flatnonzero(mask)
        generators = list(self.state.rng.rows) if self.state is not None else [None] * len(mask)
        for row in rows:
            generators[row] = seed_generator(self.row_np_random[row])
        rng = RandomSource(generators, device=self.device)
        fresh, obs = self.task.reset(len(rows), generator=rng.subset(rows), device=self.device)
        if len(rows) == self.num_envs:
            self.state, self._observations = fresh, obs
            return
        # Row i of the batch takes fresh row position[i]; only the masked rows are kept.
        position = torch.as_tensor(np.cumsum(mask) - 1, device=self.device).clamp_min(0)
        chosen = torch.as_tensor(mask, device=self.device)
        merged = where_rows(chosen, select_rows(fresh, position), self.state)
        self.state = dataclasses.replace(merged, rng=rng)
        self._observations = torch.where(chosen[:, None], obs[position], self._observations)

    def _teacher_info(self, rows: np.ndarray) -> dict[str, Any]:
        """``target`` and ``mask`` of the given rows (zeros elsewhere), with their ``_key`` masks."""
        target, mask = self.task.teacher(self.state)
        keep = torch.as_tensor(rows, device=self.device)[:, None]
        return {
            "target": to_numpy(torch.where(keep, target, 0.0)),
            "_target": rows.copy(),
            "mask": to_numpy(torch.where(keep, mask, 0.0)),
            "_mask": rows.copy(),
        }


def _masked_metrics(metrics: dict[str, torch.Tensor], ended: np.ndarray) -> dict[str, Any]:
    """Episode metrics as float64 arrays, zero outside ``ended``, each with its ``_name`` mask."""
    info: dict[str, Any] = {}
    for name, value in metrics.items():
        info[name] = np.where(ended, value.detach().double().cpu().numpy(), 0.0)
        info[f"_{name}"] = ended.copy()
    return info


def task_vector_env_class(task_class: type[Task]) -> type[TaskVectorEnv]:
    """The :class:`TaskVectorEnv` of one task class (``MazeTask`` -> ``MazeVectorEnv``).

    Like :func:`~noise_envs.env.task_env_class`: the task's options as keyword arguments, the
    task's docstring, no code of its own. Made once per class.
    """

    def __init__(
        self: TaskVectorEnv,
        num_envs: int,
        render_mode: str | None = None,
        *,
        device: torch.device | str = "cpu",
        max_episode_steps: int | None = None,
        **task_kwargs: Any,
    ) -> None:
        TaskVectorEnv.__init__(
            self,
            task_class.id,
            num_envs,
            render_mode,
            device=device,
            max_episode_steps=max_episode_steps,
            **task_kwargs,
        )

    return bound_adapter(TaskVectorEnv, task_class, "VectorEnv", __init__, globals())


for _task_class in TASKS.values():
    task_vector_env_class(_task_class)
