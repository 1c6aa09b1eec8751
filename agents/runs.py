"""Run folders: load one back (:func:`load_run`) and check that its files agree with each other.

The files and how each is read are in :mod:`agents.run_files`; writing a run goes through the one
lifecycle of :mod:`agents.run_lifecycle`. This module re-exports the file names and readers.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from agents.atomic import atomic_write_bytes, atomic_write_text
from agents.errors import CorruptRun, RunError
from agents.models import build_model
from agents.recalibration_config import RecalibrationConfig
from agents.run_checks import check_progress
from agents.run_files import (
    CHECKPOINT_FILE,
    FORMAT_VERSION,
    HISTORY,
    HISTORY_COLUMNS,
    HISTORY_FILE,
    RL_HISTORY_FILE,
    RUN_FILE,
    WEIGHTS_FILE,
    CsvTable,
    check_state,
    load_checkpoint,
    load_state,
    load_weights,
    read_history,
    read_run_record,
    read_table,
    save_checkpoint,
    save_weights,
    write_history,
    write_run_record,
)
from agents.train_config import TrainConfig
from noise_envs.config import JsonConfig
from noise_envs.core import Task
from noise_envs.registration import make_task, task_class

if TYPE_CHECKING:
    from agents.sb3.config import RLTrainConfig

__all__ = [
    "CHECKPOINT_FILE",
    "FORMAT_VERSION",
    "HISTORY_COLUMNS",
    "HISTORY_FILE",
    "RL_HISTORY",
    "RUN_FILE",
    "WEIGHTS_FILE",
    "Run",
    "atomic_write_bytes",
    "atomic_write_text",
    "load_checkpoint",
    "load_run",
    "load_state",
    "load_weights",
    "parse_record",
    "parse_train_config",
    "read_history",
    "read_run_record",
    "save_checkpoint",
    "save_weights",
    "write_history",
    "write_run_record",
]

RL_HISTORY_COLUMNS = ("iteration", "timesteps", "episodes", "episode_reward", "metric")
"""Columns of ``rl_history.csv``; ``metric`` is the mean of the task's primary metric."""
RL_HISTORY = CsvTable(RL_HISTORY_FILE, RL_HISTORY_COLUMNS, ("iteration", "timesteps", "episodes"))
"""The ``rl_history.csv`` of an RL run."""
TABLES = {"supervised": (HISTORY,), "rl": (HISTORY, RL_HISTORY), "recalibrate": (HISTORY,)}
"""The per-iteration tables of each trainer's runs."""
_READ_ATTEMPTS = 5


@dataclasses.dataclass(frozen=True, eq=False)
class Run:
    """A loaded run folder: the task, the model and its training, ready to evaluate.

    Attributes:
        path: the run folder.
        task_id: the environment id, e.g. ``NoisyRegulator-v0``.
        task_kwargs: the task's options; ``make_task(task_id, **task_kwargs)`` rebuilds it.
        model_kind: a :data:`~agents.models.MODEL_KINDS` name.
        model_config: the model's config.
        train_config: the trainer's own config: a TrainConfig (supervised) or an RLTrainConfig.
        model: the model with the final weights (or the last checkpoint's, while running), in
            ``eval()`` mode; its noise level is an argument of every call and ignores the mode.
        history: the rows of ``history.csv`` up to ``iterations_done`` (:data:`HISTORY_COLUMNS`).
        status: ``running`` or ``complete``.
        iterations_done: the iterations the loaded weights have been trained for.
        noise_convention: how sigma was scaled (``per_step`` is the paper's convention).
        trainer: ``supervised`` or ``rl``.
    """

    path: Path
    task_id: str
    task_kwargs: dict[str, Any]
    model_kind: str
    model_config: JsonConfig
    train_config: TrainConfig | RLTrainConfig
    model: nn.Module
    history: list[dict[str, float]]
    status: str
    iterations_done: int
    noise_convention: str
    trainer: str = "supervised"

    def task(self) -> Task:
        """A fresh instance of the run's task."""
        return make_task(self.task_id, **self.task_kwargs)

    def __repr__(self) -> str:
        return (
            f"Run({str(self.path)!r}, {self.task_id}, {self.model!r}, {self.status}, "
            f"{self.iterations_done}/{self.train_config.iterations} iterations)"
        )


def load_run(path: str | os.PathLike, device: torch.device | str = "cpu") -> Run:
    """Load a run folder: its configs, its history and its model on ``device``.

    A complete run loads ``weights.safetensors``; a running one the last checkpoint's weights.
    The files are checked against each other. A trainer may write the folder meanwhile: it
    writes the tables, then ``checkpoint.pt``, then ``run.json`` (the weights before
    ``status: complete``), each atomically, and this reads them in the opposite order, so what
    is read is one state the trainer wrote: ``complete`` only after the final weights, and a
    running state is the checkpoint's iteration with the table rows up to it (rows the trainer
    wrote after that checkpoint are left out). The read is repeated only if ``run.json`` came to
    describe another run (other configs) while the folder was read.

    Raises:
        NotARunFolder: if ``path`` has no ``run.json``.
        CorruptRun: if a file is unreadable, fails its schema, disagrees with another file or
            does not fit the model (the message names the file, the field and both values).
        RunError: if ``run.json`` was replaced by another run's 5 times while the folder was read.
    """
    folder = Path(path)
    for attempt in range(_READ_ATTEMPTS):
        before = _stamp(folder)
        try:
            run, error = _load_once(folder, device), None
        except CorruptRun as caught:
            run, error = None, caught
        after = _stamp(folder)
        if after == before:
            if error is not None:
                raise error
            return run
        if before is not None and after is not None and before[0] == after[0]:
            # Only the progress moved: this run's trainer wrote while the folder was read.
            # A check may have failed only because the tables ran ahead of the checkpoint read.
            return run if run is not None else _load_once(folder, device, writing=True)
        time.sleep(0.01 * (attempt + 1))
    raise RunError(
        f"{folder / RUN_FILE} changed {_READ_ATTEMPTS} times while the run was read (another "
        "run replaced it each time); try again"
    )


def _stamp(folder: Path) -> tuple[Any, tuple[Any, Any]] | None:
    """``run.json``'s identity (everything but the progress) and its progress, or None."""
    try:
        data = (folder / RUN_FILE).read_bytes()
    except FileNotFoundError:
        return None
    try:
        record = json.loads(data)
    except (ValueError, RecursionError):  # read_run_record says what is wrong with it
        return data, (None, None)
    if not isinstance(record, dict):
        return data, (None, None)
    progress = record.pop("status", None), record.pop("iterations_done", None)
    return json.dumps(record, sort_keys=True), progress


def _load_once(folder: Path, device: torch.device | str, writing: bool = False) -> Run:
    """Read the folder once; ``writing``: a trainer is writing it, its tables may run ahead."""
    record = read_run_record(folder)
    task_id, task_kwargs, model, train_config = parse_record(folder, record)
    iteration = None
    if (folder / CHECKPOINT_FILE).is_file() or record["status"] == "running":
        checkpoint = load_checkpoint(folder)
        check_state(checkpoint.get("model"), model.state_dict(), folder / CHECKPOINT_FILE)
        iteration = checkpoint["iteration"]
        if record["status"] == "running":
            model.load_state_dict(checkpoint["model"])
    tables = {table.name: read_table(folder, table) for table in TABLES[record["trainer"]]}
    check_progress(folder, record, train_config, iteration, tables, writing=writing)
    if record["status"] == "complete":
        load_weights(folder, model)
    done = record["iterations_done"] if iteration is None else iteration
    return Run(
        path=folder,
        task_id=task_id,
        task_kwargs=task_kwargs,
        model_kind=record["model"]["kind"],
        model_config=model.config,
        train_config=train_config,
        model=model.to(device).eval(),
        history=tables[HISTORY_FILE][:done],
        status=record["status"],
        iterations_done=done,
        noise_convention=record["noise_convention"],
        trainer=record["trainer"],
    )


def train_config_class(trainer: str) -> type[JsonConfig]:
    """The config class of ``trainer``'s runs: TrainConfig, RLTrainConfig or RecalibrationConfig."""
    if trainer == "recalibrate":
        return RecalibrationConfig
    if trainer == "rl":
        from agents.sb3.config import RLTrainConfig  # here: import agents never imports agents.sb3

        return RLTrainConfig
    return TrainConfig


def parse_record(
    folder: Path, record: dict[str, Any]
) -> tuple[str, dict[str, Any], nn.Module, Any]:
    """The task id and kwargs, a freshly built model and the train config of a checked record.

    Raises:
        CorruptRun: if an id, kind or config in ``run.json`` is not valid (the message names it).
    """
    try:
        task_id = task_class(record["task"]["id"]).id
        # JSON has no tuples; configs hold them (as JsonConfig.from_dict restores them).
        task_kwargs = {
            k: tuple(v) if isinstance(v, list) else v for k, v in record["task"]["kwargs"].items()
        }
        make_task(task_id, **task_kwargs)  # validates the options now, not at first use
        model = build_model(record["model"]["kind"], record["model"]["config"])
    except (TypeError, ValueError) as error:
        raise CorruptRun(f"{folder / RUN_FILE}: {error}") from error
    return task_id, task_kwargs, model, parse_train_config(folder, record)


def parse_train_config(folder: Path, record: dict[str, Any]) -> JsonConfig:
    """The train config of a checked record (no task or model is built).

    Raises:
        CorruptRun: if the ``train`` section of ``run.json`` is not a valid config.
    """
    try:
        return train_config_class(record["trainer"]).from_dict(record["train"])
    except (TypeError, ValueError) as error:
        raise CorruptRun(f"{folder / RUN_FILE}: {error}") from error
