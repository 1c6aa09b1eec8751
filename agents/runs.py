"""The run folder: what one training run was, its weights, its checkpoint and its history.

A run is a folder holding data only, never code, and every file in it is replaced atomically:

* ``run.json``: format version, task id and kwargs, model kind and config, training config,
  status (``running`` / ``complete``), iterations done, noise convention, package version;
* ``weights.safetensors``: the final weights, written when the run completes;
* ``checkpoint.pt``: iteration, model and optimizer state and the training generators' states,
  read back with ``torch.load(weights_only=True)``;
* ``history.csv``: one row per iteration (:data:`HISTORY_COLUMNS`).
"""

from __future__ import annotations

import csv
import dataclasses
import importlib.metadata
import io
import json
import os
import pickle
from pathlib import Path
from typing import TYPE_CHECKING, Any

import safetensors.torch
import torch
from safetensors import SafetensorError
from torch import nn

from agents.atomic import atomic_write_bytes, atomic_write_text
from agents.models import build_model, model_kind
from noise_envs.config import JsonConfig
from noise_envs.core import Task
from noise_envs.registration import make_task, task_class

if TYPE_CHECKING:
    from agents.supervised import TrainConfig

__all__ = [
    "CHECKPOINT_FILE",
    "FORMAT_VERSION",
    "HISTORY_COLUMNS",
    "HISTORY_FILE",
    "RUN_FILE",
    "WEIGHTS_FILE",
    "Run",
    "atomic_write_bytes",
    "atomic_write_text",
    "load_checkpoint",
    "load_run",
    "load_state",
    "load_weights",
    "read_history",
    "read_run_record",
    "run_record",
    "save_checkpoint",
    "save_weights",
    "update_run_record",
    "write_history",
    "write_run_record",
]

FORMAT_VERSION = 1
"""Version of the folder layout that this module writes and reads."""
RUN_FILE = "run.json"
WEIGHTS_FILE = "weights.safetensors"
CHECKPOINT_FILE = "checkpoint.pt"
HISTORY_FILE = "history.csv"
HISTORY_COLUMNS = ("iteration", "loss", "grad_norm", "learning_rate", "seconds")
"""Columns of ``history.csv``: iteration (1-based), loss, gradient norm before clipping, learning
rate, and the wall-clock seconds the iteration took."""
STATUSES = ("running", "complete")

_RECORD_KEYS = frozenset(
    {
        "format_version",
        "task",
        "model",
        "train",
        "status",
        "iterations_done",
        "noise_convention",
        "package_version",
    }
)
_SECTION_KEYS = {"task": ("id", "kwargs"), "model": ("kind", "config")}
_CHECKPOINT_KEYS = ("iteration", "model", "optimizer", "rng")


def _package_version() -> str:
    try:
        return importlib.metadata.version("noise-preference")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def run_record(
    task: Task, model: nn.Module, train_config: JsonConfig, *, status: str, iterations_done: int
) -> dict[str, Any]:
    """The content of ``run.json`` for training ``model`` on ``task`` with ``train_config``.

    The task is recorded by id and its full config as kwargs, so ``make_task(id, **kwargs)``
    rebuilds it. Raises ValueError if a config cannot be written to JSON (e.g. a callable).
    """
    return {
        "format_version": FORMAT_VERSION,
        "task": {"id": task.id, "kwargs": task.config.to_dict()},
        "model": {"kind": model_kind(model), "config": model.config.to_dict()},
        "train": train_config.to_dict(),
        "status": status,
        "iterations_done": iterations_done,
        # per_step sigma is the paper's convention; Yang et al. 2019 scale by sqrt(2 / gamma).
        "noise_convention": getattr(model.config, "noise_scaling", "per_step"),
        "package_version": _package_version(),
    }


def write_run_record(folder: str | os.PathLike, record: dict[str, Any]) -> None:
    """Write ``record`` as the folder's ``run.json`` (atomically)."""
    atomic_write_text(Path(folder) / RUN_FILE, json.dumps(record, indent=2) + "\n")


def update_run_record(folder: str | os.PathLike, **changes: Any) -> None:
    """Rewrite the folder's ``run.json`` with some top-level entries changed."""
    write_run_record(folder, {**read_run_record(folder), **changes})


def read_run_record(folder: str | os.PathLike) -> dict[str, Any]:
    """The folder's ``run.json``, checked to be a run record of this format.

    Raises:
        ValueError: naming the folder or file and what is missing or wrong.
    """
    file = Path(folder) / RUN_FILE
    if not file.is_file():
        raise ValueError(f"{folder} is not a run folder: it has no {RUN_FILE}")
    try:
        record = json.loads(file.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"{file} is not valid JSON: {error}") from error
    _check_record(file, record)
    return record


def _check_record(file: Path, record: Any) -> None:
    if not isinstance(record, dict):
        raise ValueError(f"{file} must hold a JSON object, got {type(record).__name__}")
    version = record.get("format_version")
    if version != FORMAT_VERSION:
        raise ValueError(
            f"{file} has format_version {version!r}; this package reads {FORMAT_VERSION}"
        )
    missing, unknown = sorted(_RECORD_KEYS - record.keys()), sorted(record.keys() - _RECORD_KEYS)
    if missing or unknown:
        raise ValueError(f"{file} is not a run record: missing keys {missing}, unknown {unknown}")
    for section, keys in _SECTION_KEYS.items():
        value = record[section]
        if not isinstance(value, dict) or sorted(value) != sorted(keys):
            raise ValueError(f"{file}: `{section}` must be an object with keys {list(keys)}")
    if record["status"] not in STATUSES:
        raise ValueError(f"{file}: `status` must be one of {STATUSES}, got {record['status']!r}")
    done = record["iterations_done"]
    if isinstance(done, bool) or not isinstance(done, int) or done < 0:
        raise ValueError(f"{file}: `iterations_done` must be an integer >= 0, got {done!r}")


def save_weights(folder: str | os.PathLike, model: nn.Module) -> None:
    """Write the model's weights as the folder's ``weights.safetensors`` (atomically)."""
    tensors = {
        name: value.detach().cpu().contiguous() for name, value in model.state_dict().items()
    }
    atomic_write_bytes(Path(folder) / WEIGHTS_FILE, safetensors.torch.save(tensors))


def load_weights(folder: str | os.PathLike, model: nn.Module) -> None:
    """Load the folder's ``weights.safetensors`` into ``model``.

    Raises:
        ValueError: if the file is missing, truncated or corrupt, or does not fit the model.
    """
    file = Path(folder) / WEIGHTS_FILE
    try:
        state = safetensors.torch.load(file.read_bytes())
    except (OSError, SafetensorError) as error:
        raise ValueError(f"cannot read the weights file {file}: {error}") from error
    load_state(model, state, file)


def save_checkpoint(folder: str | os.PathLike, checkpoint: dict[str, Any]) -> None:
    """Write ``checkpoint`` as the folder's ``checkpoint.pt`` (atomically).

    It must hold only tensors, numbers, strings, None and nested dicts, lists and tuples of
    them, so that :func:`load_checkpoint` reads it with ``weights_only=True``.
    """
    buffer = io.BytesIO()
    torch.save(checkpoint, buffer)
    atomic_write_bytes(Path(folder) / CHECKPOINT_FILE, buffer.getvalue())


def load_checkpoint(folder: str | os.PathLike) -> dict[str, Any]:
    """The folder's ``checkpoint.pt``, on the CPU, read without unpickling any code.

    Raises:
        ValueError: if the file is missing, truncated, corrupt, holds anything but data, or
            lacks one of ``iteration``, ``model``, ``optimizer``, ``rng``.
    """
    file = Path(folder) / CHECKPOINT_FILE
    try:
        checkpoint = torch.load(file, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, EOFError, pickle.UnpicklingError) as error:
        first_line = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise ValueError(f"cannot read the checkpoint {file}: {first_line}") from error
    if not isinstance(checkpoint, dict) or any(key not in checkpoint for key in _CHECKPOINT_KEYS):
        raise ValueError(f"{file} is not a checkpoint: it needs the keys {list(_CHECKPOINT_KEYS)}")
    return checkpoint


def load_state(model: nn.Module, state: dict[str, torch.Tensor], source: str | Path) -> None:
    """Load ``state`` into ``model`` after checking its names and shapes against the model's.

    Raises:
        ValueError: naming ``source`` and the first mismatch (the weights were saved for
            another model config).
    """
    expected = model.state_dict()
    missing, unexpected = sorted(expected.keys() - state.keys()), sorted(state.keys() - expected)
    if missing or unexpected:
        raise ValueError(
            f"{source} does not match the model config: missing {missing}, unexpected {unexpected}"
        )
    for name, tensor in expected.items():
        value = state[name]
        if not isinstance(value, torch.Tensor) or value.shape != tensor.shape:
            got = tuple(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__
            raise ValueError(
                f"{source} does not match the model config: {name!r} is {got}, "
                f"the config needs shape {tuple(tensor.shape)}"
            )
    model.load_state_dict(state)


def write_history(folder: str | os.PathLike, rows: list[dict[str, float]]) -> None:
    """Write ``rows`` (dicts with :data:`HISTORY_COLUMNS`) as the folder's ``history.csv``."""
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=HISTORY_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(Path(folder) / HISTORY_FILE, text.getvalue())


def read_history(folder: str | os.PathLike) -> list[dict[str, float]]:
    """The rows of the folder's ``history.csv`` (empty if there is none yet).

    Raises:
        ValueError: if the file has other columns or a value that is not a number.
    """
    file = Path(folder) / HISTORY_FILE
    if not file.is_file():
        return []
    with open(file, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        if tuple(reader.fieldnames or ()) != HISTORY_COLUMNS:
            raise ValueError(f"{file} must have the columns {list(HISTORY_COLUMNS)}")
        try:
            return [
                {
                    key: int(value) if key == "iteration" else float(value)
                    for key, value in row.items()
                }
                for row in reader
            ]
        except (TypeError, ValueError) as error:
            raise ValueError(f"{file} line {reader.line_num}: {error}") from error


@dataclasses.dataclass(frozen=True, eq=False)
class Run:
    """A loaded run folder: the task, the model and its training, ready to evaluate.

    Attributes:
        path: the run folder.
        task_id: the environment id, e.g. ``NoisyRegulator-v0``.
        task_kwargs: the task's options; ``make_task(task_id, **task_kwargs)`` rebuilds it.
        model_kind: a :data:`~agents.models.MODEL_KINDS` name.
        model_config: the model's config.
        train_config: the training config.
        model: the model with the final weights (or the last checkpoint's, while running), in
            ``eval()`` mode; its noise level is an argument of every call and ignores the mode.
        history: every row of ``history.csv``, as dicts with :data:`HISTORY_COLUMNS`.
        status: ``running`` or ``complete``.
        iterations_done: the iterations the loaded weights have been trained for.
        noise_convention: how sigma was scaled (``per_step`` is the paper's convention).
    """

    path: Path
    task_id: str
    task_kwargs: dict[str, Any]
    model_kind: str
    model_config: JsonConfig
    train_config: TrainConfig
    model: nn.Module
    history: list[dict[str, float]]
    status: str
    iterations_done: int
    noise_convention: str

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

    Raises:
        ValueError: if ``path`` is not a run folder of this format, if a file is missing,
            truncated or corrupt (the message names it), or if the weights do not fit the config.
    """
    folder = Path(path)
    record = read_run_record(folder)
    task_id, task_kwargs, model, train_config = _parse_record(folder, record)
    if record["status"] == "complete":
        load_weights(folder, model)
        iterations_done = record["iterations_done"]
    else:
        checkpoint = load_checkpoint(folder)
        load_state(model, checkpoint["model"], folder / CHECKPOINT_FILE)
        iterations_done = int(checkpoint["iteration"])
    return Run(
        path=folder,
        task_id=task_id,
        task_kwargs=task_kwargs,
        model_kind=record["model"]["kind"],
        model_config=model.config,
        train_config=train_config,
        model=model.to(device).eval(),
        history=read_history(folder),
        status=record["status"],
        iterations_done=iterations_done,
        noise_convention=record["noise_convention"],
    )


def _parse_record(
    folder: Path, record: dict[str, Any]
) -> tuple[str, dict[str, Any], nn.Module, TrainConfig]:
    # Imported here because agents.supervised imports this module to write its runs.
    from agents.supervised import TrainConfig

    try:
        task_id = task_class(record["task"]["id"]).id
        kwargs = record["task"]["kwargs"]
        if not isinstance(kwargs, dict):
            raise ValueError(f"`task.kwargs` must be an object, got {type(kwargs).__name__}")
        # JSON has no tuples; configs hold them (as JsonConfig.from_dict restores them).
        task_kwargs = {k: tuple(v) if isinstance(v, list) else v for k, v in kwargs.items()}
        make_task(task_id, **task_kwargs)  # validates the options now, not at first use
        model = build_model(record["model"]["kind"], record["model"]["config"])
        train_config = TrainConfig.from_dict(record["train"])
    except (TypeError, ValueError) as error:
        raise ValueError(f"{folder / RUN_FILE}: {error}") from error
    return task_id, task_kwargs, model, train_config
