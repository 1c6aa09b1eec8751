"""``TaskEnv``: one episode of a batched :class:`~noise_envs.core.Task` as a Gymnasium env.

The adapter holds no task logic: it converts numpy to torch and back, seeds the simulator from
``self.np_random``, and packs the teacher signal and episode metrics into ``info``.
"""

from __future__ import annotations

import dataclasses
import inspect
import re
import warnings
from collections.abc import Callable
from typing import Any, ClassVar, TypeVar

import gymnasium
import numpy as np
import torch
from gymnasium.error import ResetNeeded

from noise_envs._checks import check_shape
from noise_envs.core import Task, TaskState
from noise_envs.random import RandomSource
from noise_envs.registration import TASKS, adapter_name, make_task

__all__ = ["TaskEnv", "adapter_doc", "bound_adapter", "task_env_class"]

_Adapter = TypeVar("_Adapter")

_SEED_BOUND = 2**63 - 1
"""torch generators are seeded with integers drawn uniformly from [0, 2**63 - 1)."""


def resolve_task(task: Task | str, task_kwargs: dict[str, Any]) -> Task:
    """The simulator an adapter wraps: ``task`` itself, or ``make_task(task, **task_kwargs)``."""
    if isinstance(task, Task):
        if task_kwargs:
            raise ValueError(
                f"task options {sorted(task_kwargs)} can only be given with an environment id; "
                f"{task!r} is already configured"
            )
        return task
    if isinstance(task, str):
        return make_task(task, **task_kwargs)
    raise ValueError(f"`task` must be a Task or an environment id, got {task!r}")


def task_metadata(task: Task, base: dict[str, Any]) -> dict[str, Any]:
    """``base`` with the render modes and frame rate the task declares (none by default)."""
    return {
        **base,
        "render_modes": list(getattr(task, "render_modes", ())),
        "render_fps": getattr(task, "render_fps", None),
    }


def check_render_mode(task: Task, render_mode: str | None) -> str | None:
    """``render_mode`` if it is None or one the task declares; otherwise warn and return None.

    As ``gymnasium.make`` does for an undeclared mode, this warns rather than fails, so tools that
    ask every env for a frame mode (stable-baselines3's ``make_vec_env`` asks for ``rgb_array``)
    get an env that renders nothing.
    """
    modes = list(getattr(task, "render_modes", ()))
    if render_mode is None or render_mode in modes:
        return render_mode
    warnings.warn(
        f"{task.id} cannot render {render_mode!r} (its render modes: {modes}); "
        "render_mode is None and render() returns None",
        UserWarning,
        stacklevel=3,
    )
    return None


def describe_task(task: Task) -> str:
    """``"<id>, option=value, ..."`` listing the options that differ from their defaults."""
    parts = [task.id]
    for field in dataclasses.fields(task.config):
        value = getattr(task.config, field.name)
        if field.default is dataclasses.MISSING:
            default = (
                field.default_factory()
                if field.default_factory is not dataclasses.MISSING
                else dataclasses.MISSING
            )
        else:
            default = field.default
        if value != default:
            parts.append(f"{field.name}={value!r}")
    return ", ".join(parts)


def adapter_doc(task_class: type[Task], adapter: type) -> str:
    """The task's own docstring, then a line on the adapter, for ``help(env.unwrapped)``.

    The task's examples stay with the task (doctests run once, where they are written).
    """
    own = inspect.cleandoc(task_class.__doc__ or task_class.__name__)
    own = re.split(r"^Examples?:$", own, maxsplit=1, flags=re.MULTILINE)[0].rstrip()
    task_name = f"{task_class.__module__}.{task_class.__name__}"
    summary = inspect.cleandoc(adapter.__doc__ or "").split("\n\n")[0]
    return (
        f"{own}\n\n## Adapter\n{summary} This is :class:`{adapter.__module__}."
        f"{adapter.__name__}` bound to {task_class.id} (:class:`{task_name}`, which has the "
        "examples); see the adapter class for ``info``, seeding and rendering."
    )


def bound_adapter(
    adapter: type[_Adapter],
    task_class: type[Task],
    suffix: str,
    init: Callable[..., None],
    namespace: dict[str, Any],
) -> type[_Adapter]:
    """``adapter`` bound to ``task_class``, made once and kept in ``namespace`` (a module's globals).

    The class is named after the task with ``suffix`` (``MazeTask`` -> ``MazeEnv``), has
    ``init`` as ``__init__`` and :func:`adapter_doc` as docstring; a second call returns it.
    """
    name = adapter_name(task_class, suffix)
    made = namespace.get(name)
    if isinstance(made, type) and issubclass(made, adapter) and made._bound_task is task_class:
        return made
    made = type(
        name,
        (adapter,),
        {"__init__": init, "__module__": namespace["__name__"], "_bound_task": task_class},
    )
    made.__doc__ = adapter_doc(task_class, adapter)
    namespace[name] = made
    return made


def seed_generator(np_random: np.random.Generator) -> torch.Generator:
    """A fresh CPU torch generator seeded by one draw from ``np_random``.

    CPU generators give the same numbers whatever device the simulation runs on.
    """
    return torch.Generator().manual_seed(int(np_random.integers(_SEED_BOUND)))


def to_numpy(tensor: torch.Tensor) -> np.ndarray:
    """A float32 numpy copy of ``tensor`` (a copy, so callers may modify it freely)."""
    return tensor.detach().cpu().numpy().astype(np.float32, copy=True)


class TaskEnv(gymnasium.Env[np.ndarray, np.ndarray]):
    """A single environment (batch 1) running a batched task simulator.

    Observations and actions are float32 numpy arrays of the task's single-env spaces.
    ``reset(seed=s)`` seeds ``self.np_random`` and draws the simulator's torch generator from
    it, so a :class:`~noise_envs.vector_env.TaskVectorEnv` row seeded ``s`` sees the same
    episodes.

    ``info`` holds the teacher signal for the next action, ``target`` and ``mask`` (shape
    ``(A,)``), and when the episode ends, ``episode_metrics``: ``{name: float}``. Stepping an
    ended episode raises :class:`gymnasium.error.ResetNeeded`.

    Args:
        task: a task simulator, or an environment id given to :func:`~noise_envs.make_task`.
        render_mode: None, or one of the task's ``render_modes`` (NoisyMaze-v0 draws ``ansi``
            and ``rgb_array``); any other mode warns and becomes None, as in ``gymnasium.make``.
        device: where the simulator runs.
        **task_kwargs: the task's options, only with an environment id.

    Example:
        >>> import gymnasium
        >>> env = gymnasium.make("NoisyFunctionApprox-v0", steps=3, response_steps=1)
        >>> obs, info = env.reset(seed=0)
        >>> obs.shape, info["mask"]
        ((1,), array([0.], dtype=float32))
        >>> terminated = False
        >>> while not terminated:  # act as the teacher says
        ...     obs, reward, terminated, truncated, info = env.step(info["target"])
        >>> info["episode_metrics"]
        {'mse': 0.0}
        >>> env.unwrapped
        FunctionApproxEnv(NoisyFunctionApprox-v0, steps=3, response_steps=1)
    """

    _bound_task: ClassVar[type[Task] | None] = None
    """The task class a per-task subclass (:func:`task_env_class`) is bound to."""

    metadata: ClassVar[dict[str, Any]] = {
        "render_modes": sorted({mode for task in TASKS.values() for mode in task.render_modes}),
        "render_fps": None,
    }
    """The render modes of all registered tasks, for ``gymnasium.make``'s check of the class;
    each instance's ``metadata`` lists only its own task's modes and frame rate."""

    def __init__(
        self,
        task: Task | str,
        render_mode: str | None = None,
        *,
        device: torch.device | str = "cpu",
        **task_kwargs: Any,
    ) -> None:
        self.task = resolve_task(task, task_kwargs)
        self.observation_space = self.task.observation_space
        self.action_space = self.task.action_space
        self.metadata = task_metadata(self.task, type(self).metadata)
        self.render_mode = check_render_mode(self.task, render_mode)
        self.device = torch.device(device)
        self.state: TaskState | None = None
        """The simulator's state (batch 1), None before the first reset."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}({describe_task(self.task)})"

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Start an episode; ``options`` is accepted for the API but must be empty."""
        super().reset(seed=seed)
        if options:
            raise ValueError(f"`options` must be empty or None (none are supported), got {options}")
        self._warn_if_cut_by_a_time_limit()
        rng = RandomSource(seed_generator(self.np_random), device=self.device)
        self.state, obs = self.task.reset(1, generator=rng, device=self.device)
        return to_numpy(obs[0]), self._info()

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        """Act for one step: ``action`` has shape ``(A,)``; returns Gymnasium's 5-tuple."""
        if self.state is None:
            raise ResetNeeded("Cannot call `step` before `reset`")
        if bool(self.state.done[0]):
            raise ResetNeeded("The episode has ended; call `reset` before `step`")
        action = torch.tensor(np.asarray(action, dtype=np.float32), device=self.device)
        check_shape("action", action, self.action_space.shape)
        self.state, obs, reward, done = self.task.step(self.state, action[None])
        truncated = bool(self.state.truncated[0])
        terminated = bool(done[0]) and not truncated
        return to_numpy(obs[0]), float(reward[0]), terminated, truncated, self._info()

    def render(self) -> Any:
        """The task's frame of the current state in ``render_mode``; None when that is None."""
        if self.render_mode is None:
            return None
        return self.task.render(self.state, self.render_mode)[0]

    def _warn_if_cut_by_a_time_limit(self) -> None:
        """Warn when the last episode stopped at the registered ``max_episode_steps``.

        ``gymnasium.make`` wraps the env in a ``TimeLimit`` of the registered length (the
        default options' horizon) whatever the options; an unfinished episode reset exactly
        there, short of the task's own horizon, was most likely cut by it.
        """
        spec = gymnasium.registry.get(self.spec.id) if self.spec is not None else None
        limit = spec.max_episode_steps if spec is not None else None
        if self.state is None or limit is None or bool(self.state.done[0]):
            return
        if int(self.state.t[0]) == limit < self.task.horizon:
            warnings.warn(
                f"the episode stopped at step {limit}, the max_episode_steps registered for "
                f"{self.spec.id}, before the task's horizon {self.task.horizon}: with options "
                "that lengthen episodes, call gymnasium.make(..., max_episode_steps="
                f"{self.task.horizon}) (or -1, to leave the time limit to the task)",
                UserWarning,
                stacklevel=3,
            )

    def _info(self) -> dict[str, Any]:
        target, mask = self.task.teacher(self.state)
        info: dict[str, Any] = {"target": to_numpy(target[0]), "mask": to_numpy(mask[0])}
        if bool(self.state.done[0]):
            metrics = self.task.episode_metrics(self.state)
            info["episode_metrics"] = {name: float(value[0]) for name, value in metrics.items()}
        return info


def task_env_class(task_class: type[Task]) -> type[TaskEnv]:
    """The :class:`TaskEnv` of one task class, named after it (``MazeTask`` -> ``MazeEnv``).

    It takes the task's options as keyword arguments and its docstring is the task's, so
    ``help(env.unwrapped)`` describes the observations, actions, rewards, episode end and
    metrics; it holds no code of its own. Made once per class.
    """

    def __init__(
        self: TaskEnv,
        render_mode: str | None = None,
        *,
        device: torch.device | str = "cpu",
        **task_kwargs: Any,
    ) -> None:
        TaskEnv.__init__(self, task_class.id, render_mode, device=device, **task_kwargs)

    return bound_adapter(TaskEnv, task_class, "Env", __init__, globals())


for _task_class in TASKS.values():
    task_env_class(_task_class)
