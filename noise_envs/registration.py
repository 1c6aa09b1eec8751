"""Environment ids: Gymnasium registration and :func:`make_task` for the batched simulators."""

from __future__ import annotations

import difflib
import functools

import gymnasium

from noise_envs.core import Task
from noise_envs.function_approx import FunctionApproxTask
from noise_envs.maze import MazeTask
from noise_envs.multitask import MultitaskTask
from noise_envs.path_integration import PathIntegrationTask
from noise_envs.regulator import RegulatorTask

__all__ = [
    "NAMESPACE",
    "TASKS",
    "adapter_name",
    "default_horizon",
    "make_task",
    "register_envs",
    "task_class",
]

NAMESPACE = "noise_envs"

TASKS: dict[str, type[Task]] = {
    task.id: task
    for task in (
        FunctionApproxTask,
        RegulatorTask,
        MazeTask,
        PathIntegrationTask,
        MultitaskTask,
    )
}
"""Every task class by its environment id."""


def task_class(env_id: str) -> type[Task]:
    """The task class registered as ``env_id`` (bare or ``noise_envs/``-namespaced)."""
    bare = env_id.removeprefix(f"{NAMESPACE}:").removeprefix(f"{NAMESPACE}/")
    if bare in TASKS:
        return TASKS[bare]
    message = f"unknown environment id {env_id!r}; registered ids: {sorted(TASKS)}"
    close = difflib.get_close_matches(bare, list(TASKS), n=1)
    if close:
        message += f". Did you mean {close[0]!r}?"
    raise ValueError(message)


def make_task(env_id: str, **kwargs) -> Task:
    """The batched simulator behind ``gymnasium.make(env_id, **kwargs)``.

    Example:
        >>> task = make_task("NoisyRegulator-v0", setpoint=0.5)
        >>> task.horizon
        60
    """
    return task_class(env_id)(**kwargs)


def adapter_name(task: type[Task], suffix: str) -> str:
    """The name of a task class's adapter: ``MazeTask`` -> ``MazeEnv`` / ``MazeVectorEnv``."""
    return task.__name__.removesuffix("Task") + suffix


@functools.cache
def default_horizon(env_id: str) -> int:
    """The episode length of ``env_id`` with its default options (its ``max_episode_steps``)."""
    return make_task(env_id).horizon


def register_envs() -> None:
    """Register every task under its bare id and under the ``noise_envs/`` namespace.

    The entry points are the task's own adapter classes (``noise_envs.env:MazeEnv``, whose
    docstring is the task's). ``max_episode_steps`` is the horizon of the default options, so
    ``gymnasium.spec(id).max_episode_steps`` is the default episode length. ``gymnasium.make``
    then wraps the env in a ``TimeLimit`` of that many steps whatever the options: options that
    lengthen episodes need ``gymnasium.make(id, ..., max_episode_steps=-1)`` (the task truncates
    at its own horizon) or the new length; the env warns when the limit cuts an episode short.
    ``gymnasium.make_vec`` needs nothing: the vector env keeps the task's own horizon.
    """
    for env_id, task in TASKS.items():
        for name in (env_id, f"{NAMESPACE}/{env_id}"):
            if name in gymnasium.registry:
                continue
            gymnasium.register(
                id=name,
                entry_point=f"noise_envs.env:{adapter_name(task, 'Env')}",
                vector_entry_point=f"noise_envs.vector_env:{adapter_name(task, 'VectorEnv')}",
                max_episode_steps=default_horizon(env_id),
                disable_env_checker=False,
            )
