"""Noise-preference tasks as batched PyTorch simulators and Gymnasium environments.

Importing the package registers every environment id, bare (``NoisyFunctionApprox-v0``) and
namespaced (``noise_envs/NoisyFunctionApprox-v0``).
"""

from noise_envs.config import JsonConfig
from noise_envs.core import Metric, Task, TaskState, repeat_rows, select_rows, where_rows
from noise_envs.cued import CuedResponseState, CuedResponseTask
from noise_envs.env import TaskEnv
from noise_envs.function_approx import FUNCTIONS, FunctionApproxConfig, FunctionApproxTask
from noise_envs.maze import MazeConfig, MazeState, MazeTask
from noise_envs.multitask import MultitaskConfig, MultitaskState, MultitaskTask
from noise_envs.path_integration import (
    PathIntegrationConfig,
    PathIntegrationState,
    PathIntegrationTask,
)
from noise_envs.random import RandomSource, as_random_source
from noise_envs.registration import TASKS, make_task, register_envs, task_class
from noise_envs.regulator import RegulatorConfig, RegulatorTask
from noise_envs.vector_env import TaskVectorEnv

__all__ = [
    "FUNCTIONS",
    "TASKS",
    "CuedResponseState",
    "CuedResponseTask",
    "FunctionApproxConfig",
    "FunctionApproxTask",
    "JsonConfig",
    "MazeConfig",
    "MazeState",
    "MazeTask",
    "Metric",
    "MultitaskConfig",
    "MultitaskState",
    "MultitaskTask",
    "PathIntegrationConfig",
    "PathIntegrationState",
    "PathIntegrationTask",
    "RandomSource",
    "RegulatorConfig",
    "RegulatorTask",
    "Task",
    "TaskEnv",
    "TaskState",
    "TaskVectorEnv",
    "as_random_source",
    "make_task",
    "register_envs",
    "repeat_rows",
    "select_rows",
    "task_class",
    "where_rows",
]

register_envs()
