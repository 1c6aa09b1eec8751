"""Environment ids: Gymnasium registration and :func:`make_task` for the batched simulators."""

from __future__ import annotations

import difflib

import gymnasium

from noise_envs.core import Task
from noise_envs.function_approx import FunctionApproxTask
from noise_envs.maze import MazeTask
from noise_envs.multitask import MultitaskTask
from noise_envs.path_integration import PathIntegrationTask
from noise_envs.regulator import RegulatorTask

__all__ = ["NAMESPACE", "TASKS", "make_task", "register_envs", "task_class"]

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


def register_envs() -> None:
    """Register every task under its bare id and under the ``noise_envs/`` namespace."""
    for env_id in TASKS:
        for name in (env_id, f"{NAMESPACE}/{env_id}"):
            if name in gymnasium.registry:
                continue
            gymnasium.register(
                id=name,
                entry_point="noise_envs.env:TaskEnv",
                vector_entry_point="noise_envs.vector_env:TaskVectorEnv",
                kwargs={"task": env_id},
                disable_env_checker=False,
            )
