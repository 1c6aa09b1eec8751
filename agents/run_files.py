"""The files of a run folder: how each is written, and how each is read back and checked.

A run is a folder holding data only, never code, and every file in it is replaced atomically:

* ``run.json``: format version, trainer (``supervised`` / ``rl``), task id and kwargs, model kind
  and config, the trainer's own config, status (``running`` / ``complete``), iterations done,
  noise convention, package version;
* ``weights.safetensors``: the final weights, written when the run completes;
* ``checkpoint.pt``: iteration, model and optimizer state and the trainer's random state, read
  back with ``torch.load(weights_only=True)``;
* ``history.csv``: one row per iteration (:data:`HISTORY_COLUMNS`); RL runs add ``rl_history.csv``.

Everything read back is checked (a bounded, schema-checked ``run.json``; tensors of the model's
names, shapes and dtypes, finite); a file that fails is :class:`~agents.errors.CorruptRun`
naming the file, the field and both values.
"""

from __future__ import annotations

import csv
import dataclasses
import importlib.metadata
import io
import json
import os
import pickle
import warnings
from pathlib import Path
from typing import Any

import safetensors.torch
import torch
from safetensors import SafetensorError
from torch import nn

from agents.atomic import atomic_write_bytes, atomic_write_text
from agents.errors import CorruptRun, NotARunFolder

__all__ = [
    "CHECKPOINT_FILE",
    "FORMAT_VERSION",
    "HISTORY",
    "HISTORY_COLUMNS",
    "HISTORY_FILE",
    "READABLE_FORMATS",
    "RL_HISTORY_FILE",
    "RL_TRAIN_FILE",
    "RUN_FILE",
    "STATUSES",
    "TRAINERS",
    "WEIGHTS_FILE",
    "CsvTable",
    "check_state",
    "load_checkpoint",
    "load_state",
    "load_weights",
    "read_history",
    "read_json",
    "read_run_record",
    "read_table",
    "save_checkpoint",
    "save_weights",
    "write_history",
    "write_run_record",
    "write_table",
]

FORMAT_VERSION = 2
"""Version of the folder layout that this module writes; 2 stores the trainer and its own config."""
READABLE_FORMATS = (1, 2)
"""Versions this module reads (format 1 kept an RL run's config in ``rl_train.json``)."""
RUN_FILE = "run.json"
WEIGHTS_FILE = "weights.safetensors"
CHECKPOINT_FILE = "checkpoint.pt"
HISTORY_FILE = "history.csv"
RL_HISTORY_FILE = "rl_history.csv"
RL_TRAIN_FILE = "rl_train.json"
"""Format 1 only: the whole RL training config (format 2 keeps it in ``run.json``)."""
HISTORY_COLUMNS = ("iteration", "loss", "grad_norm", "learning_rate", "seconds")
"""Columns of ``history.csv``: iteration (1-based), loss, gradient norm before clipping, learning
rate, and the wall-clock seconds the iteration took."""
STATUSES = ("running", "complete")
TRAINERS = ("supervised", "rl", "recalibrate")
RL_MODEL_KINDS = ("recurrent_ppo_ctrnn", "ppo_noisy_mlp")
MAX_JSON_BYTES = 1 << 20
"""Largest ``run.json`` read back (a real one is a few kilobytes)."""
MAX_JSON_DEPTH = 16
"""Deepest nesting of objects and lists read back from ``run.json`` (a real one nests 3 deep)."""

_RECORD_TYPES: dict[str, type | tuple[type, ...]] = {
    "format_version": int,
    "trainer": str,
    "task": dict,
    "model": dict,
    "train": dict,
    "status": str,
    "iterations_done": int,
    "noise_convention": str,
    "package_version": str,
}
_SECTION_TYPES = {"task": {"id": str, "kwargs": dict}, "model": {"kind": str, "config": dict}}


@dataclasses.dataclass(frozen=True)
class CsvTable:
    """A CSV file of a run with one row per iteration: its name, columns and integer columns."""

    name: str
    columns: tuple[str, ...]
    int_columns: tuple[str, ...] = ("iteration",)


HISTORY = CsvTable(HISTORY_FILE, HISTORY_COLUMNS)
"""The ``history.csv`` every run has."""


def package_version() -> str:
    """The installed version of this package, or ``unknown``."""
    try:
        return importlib.metadata.version("noise-preference")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


# run.json


def write_run_record(folder: str | os.PathLike, record: dict[str, Any]) -> None:
    """Write ``record`` as the folder's ``run.json`` (atomically)."""
    atomic_write_text(Path(folder) / RUN_FILE, json.dumps(record, indent=2) + "\n")


def read_json(file: Path) -> Any:
    """The JSON value in ``file``, bounded in size and nesting.

    Raises:
        CorruptRun: if the file is larger than 1 MiB, nested deeper than 16, or not JSON.
    """
    data = file.read_bytes()
    if len(data) > MAX_JSON_BYTES:
        raise CorruptRun(f"{file} is {len(data)} bytes; a run's JSON is at most {MAX_JSON_BYTES}")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise CorruptRun(f"{file} is not valid JSON: {error}") from error
    depth = _json_depth(text)
    if depth > MAX_JSON_DEPTH:
        raise CorruptRun(
            f"{file} nests {depth} levels deep; a run's JSON nests at most {MAX_JSON_DEPTH}"
        )
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise CorruptRun(f"{file} is not valid JSON: {error}") from error


def _json_depth(text: str) -> int:
    """The deepest nesting of ``[`` and ``{`` outside strings (the text need not be valid)."""
    depth = deepest = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth -= 1
    return deepest


def read_run_record(folder: str | os.PathLike) -> dict[str, Any]:
    """The folder's ``run.json``, checked against the schema and given in the current format.

    A format 1 record gets its ``trainer`` and, for an RL run, the config of ``rl_train.json``.

    Raises:
        NotARunFolder: if the folder has no ``run.json``.
        CorruptRun: naming the file, the field and what is wrong.
    """
    folder = Path(folder)
    file = folder / RUN_FILE
    if not file.is_file():
        raise NotARunFolder(f"{folder} is not a run folder: it has no {RUN_FILE}")
    record = read_json(file)
    if not isinstance(record, dict):
        raise CorruptRun(f"{file} must hold a JSON object, got {type(record).__name__}")
    version = record.get("format_version")
    if version not in READABLE_FORMATS or isinstance(version, bool):
        raise CorruptRun(
            f"{file} has format_version {version!r}; this package reads {list(READABLE_FORMATS)}"
        )
    if version == 1:
        record = _upgrade_format_1(folder, record)
    _check_record(file, record)
    return record


def _upgrade_format_1(folder: Path, record: dict[str, Any]) -> dict[str, Any]:
    model = record.get("model")
    kind = model.get("kind") if isinstance(model, dict) else None
    record = {**record, "format_version": FORMAT_VERSION, "trainer": "supervised"}
    if kind in RL_MODEL_KINDS:
        legacy = folder / RL_TRAIN_FILE
        if not legacy.is_file():
            raise CorruptRun(f"{folder / RUN_FILE}: a format 1 RL run needs {legacy}")
        record.update(trainer="rl", train=read_json(legacy))
    return record


def _check_record(file: Path, record: dict[str, Any]) -> None:
    missing = sorted(_RECORD_TYPES.keys() - record.keys())
    unknown = sorted(record.keys() - _RECORD_TYPES.keys())
    if missing or unknown:
        raise CorruptRun(f"{file} is not a run record: missing keys {missing}, unknown {unknown}")
    for key, kind in _RECORD_TYPES.items():
        _check_type(file, key, record[key], kind)
    for section, types in _SECTION_TYPES.items():
        value = record[section]
        if sorted(value) != sorted(types):
            raise CorruptRun(
                f"{file}: `{section}` must be an object with keys {list(types)}, got {list(value)}"
            )
        for key, kind in types.items():
            _check_type(file, f"{section}.{key}", value[key], kind)
    for key, allowed in (("trainer", TRAINERS), ("status", STATUSES)):
        if record[key] not in allowed:
            raise CorruptRun(f"{file}: `{key}` must be one of {allowed}, got {record[key]!r}")
    if record["iterations_done"] < 0:
        raise CorruptRun(
            f"{file}: `iterations_done` must be an integer >= 0, got {record['iterations_done']}"
        )


def _check_type(file: Path, name: str, value: Any, kind: type | tuple[type, ...]) -> None:
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise CorruptRun(
            f"{file}: `{name}` must be a JSON {getattr(kind, '__name__', kind)}, got {value!r}"
        )


# weights and tensors


def save_weights(folder: str | os.PathLike, model: nn.Module) -> None:
    """Write the model's weights as the folder's ``weights.safetensors`` (atomically)."""
    tensors = {
        name: value.detach().cpu().contiguous() for name, value in model.state_dict().items()
    }
    atomic_write_bytes(Path(folder) / WEIGHTS_FILE, safetensors.torch.save(tensors))


def read_weights(folder: str | os.PathLike) -> dict[str, torch.Tensor]:
    """The tensors of the folder's ``weights.safetensors``; CorruptRun if it cannot be read."""
    file = Path(folder) / WEIGHTS_FILE
    try:
        return safetensors.torch.load(file.read_bytes())
    except (OSError, SafetensorError) as error:
        raise CorruptRun(f"cannot read the weights file {file}: {error}") from error


def load_weights(folder: str | os.PathLike, model: nn.Module) -> None:
    """Load the folder's ``weights.safetensors`` into ``model`` after checking them.

    Raises:
        CorruptRun: if the file is missing, truncated or corrupt, or does not fit the model.
    """
    load_state(model, read_weights(folder), Path(folder) / WEIGHTS_FILE)


def check_state(
    state: Any, expected: dict[str, torch.Tensor], source: str | Path, field: str = "model"
) -> None:
    """Check that ``state`` has ``expected``'s names, shapes and dtypes and only finite values.

    Raises:
        CorruptRun: naming ``source``, the field, the tensor and both values.
    """
    if not isinstance(state, dict):
        raise CorruptRun(
            f"{source}: `{field}` must be a dict of tensors, got {type(state).__name__}"
        )
    missing, unexpected = sorted(expected.keys() - state.keys()), sorted(state.keys() - expected)
    if missing or unexpected:
        raise CorruptRun(
            f"{source} does not match the model config: `{field}` misses {missing}, "
            f"has unexpected {unexpected}"
        )
    for name, tensor in expected.items():
        value = state[name]
        if not isinstance(value, torch.Tensor) or value.shape != tensor.shape:
            got = tuple(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__
            raise CorruptRun(
                f"{source} does not match the model config: {field} {name!r} is {got}, "
                f"the config needs shape {tuple(tensor.shape)}"
            )
        if value.dtype != tensor.dtype:
            raise CorruptRun(
                f"{source}: {field} {name!r} has dtype {value.dtype}, the model {tensor.dtype}"
            )
        if value.is_floating_point() and not bool(torch.isfinite(value).all()):
            raise CorruptRun(f"{source}: {field} {name!r} holds NaN or infinite values")


def load_state(model: nn.Module, state: Any, source: str | Path) -> None:
    """Load ``state`` into ``model`` after :func:`check_state` against the model's own state."""
    check_state(state, model.state_dict(), source)
    model.load_state_dict(state)


# checkpoint.pt


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
        CorruptRun: if the file is missing, truncated, corrupt, holds anything but data, or is
            not a dict with an integer ``iteration``.
    """
    file = Path(folder) / CHECKPOINT_FILE
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # torch's pickle-protocol notes
            checkpoint = torch.load(file, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        after = str(error).partition("WeightsUnpickler error:")[2].splitlines()
        detail = next((line.strip() for line in after if line.strip()), type(error).__name__)
        raise CorruptRun(
            f"cannot read the checkpoint {file}: it is not plain data (corrupt, or holding "
            f"code) and was not unpickled ({detail})"
        ) from error
    except (OSError, RuntimeError, EOFError, ValueError) as error:
        first_line = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise CorruptRun(f"cannot read the checkpoint {file}: {first_line}") from error
    if not isinstance(checkpoint, dict):
        raise CorruptRun(f"{file} must hold a dict, got {type(checkpoint).__name__}")
    iteration = checkpoint.get("iteration")
    if isinstance(iteration, bool) or not isinstance(iteration, int):
        raise CorruptRun(f"{file}: `iteration` must be an integer, got {iteration!r}")
    return checkpoint


# CSV tables


def write_table(folder: str | os.PathLike, table: CsvTable, rows: list[dict[str, Any]]) -> None:
    """Write ``rows`` (dicts with at least ``table``'s columns) as the table's file, atomically."""
    text = io.StringIO()
    writer = csv.DictWriter(
        text, fieldnames=table.columns, lineterminator="\n", extrasaction="ignore"
    )
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(Path(folder) / table.name, text.getvalue())


def read_table(folder: str | os.PathLike, table: CsvTable) -> list[dict[str, float]]:
    """The rows of the table's file (empty if there is none), iterations 1, 2, ... in order.

    Raises:
        CorruptRun: if the file has other columns, a value that is not a number, or
            iterations that are not 1, 2, ... (the message names the file and line).
    """
    file = Path(folder) / table.name
    if not file.is_file():
        return []
    rows = []
    with open(file, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        if tuple(reader.fieldnames or ()) != table.columns:
            raise CorruptRun(
                f"{file} must have the columns {list(table.columns)}, got {reader.fieldnames}"
            )
        try:
            for row in reader:
                rows.append(_parse_row(row, table))
                if rows[-1]["iteration"] != len(rows):
                    raise CorruptRun(
                        f"{file} line {reader.line_num}: `iteration` is "
                        f"{rows[-1]['iteration']}, expected {len(rows)}"
                    )
        except (TypeError, ValueError) as error:
            raise CorruptRun(f"{file} line {reader.line_num}: {error}") from error
    return rows


def _parse_row(row: dict[str, str], table: CsvTable) -> dict[str, float]:
    return {
        key: int(value) if key in table.int_columns else float(value) for key, value in row.items()
    }


def write_history(folder: str | os.PathLike, rows: list[dict[str, float]]) -> None:
    """Write ``rows`` (dicts with :data:`HISTORY_COLUMNS`) as the folder's ``history.csv``."""
    write_table(folder, HISTORY, rows)


def read_history(folder: str | os.PathLike) -> list[dict[str, float]]:
    """The rows of the folder's ``history.csv`` (empty if there is none yet); see :func:`read_table`."""
    return read_table(folder, HISTORY)
