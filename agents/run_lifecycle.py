"""The one lifecycle of a run folder that every trainer writes through.

:func:`open_run` opens or creates the folder, refuses one that holds anything but a run of the
same trainer (:class:`~agents.errors.NotARunFolder`), takes the folder's writer lock
(:class:`~agents.errors.RunLocked` naming the holder's pid), checks the stored config against the
requested one (:class:`~agents.errors.RunMismatch`), checks every file read back against the
others and against the model, optimizer and random state that will resume from it
(:class:`~agents.errors.CorruptRun`), and removes the temporary files a killed writer left. The
returned :class:`RunWriter` then writes checkpoints atomically, in an order that a reader or a
resume can always make sense of, and finishes the run.

A caller training K models (an ensemble, a grid cell) opens K folders, one writer each, e.g. with
``contextlib.ExitStack``; if one of them cannot be opened, the locks already taken are released.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch
from filelock import FileLock, Timeout
from torch import nn

from agents.atomic import atomic_write_text, stale_temp_files
from agents.errors import CorruptRun, NotARunFolder, RunLocked, RunMismatch
from agents.models import model_kind
from agents.run_checks import check_checkpoint, check_progress
from agents.run_files import (
    CHECKPOINT_FILE,
    FORMAT_VERSION,
    RL_HISTORY_FILE,
    RL_TRAIN_FILE,
    RUN_FILE,
    TRAINERS,
    WEIGHTS_FILE,
    check_state,
    load_checkpoint,
    package_version,
    read_run_record,
    read_table,
    read_weights,
    save_checkpoint,
    save_weights,
    write_run_record,
    write_table,
)
from agents.runs import HISTORY_FILE, TABLES, parse_train_config
from noise_envs._checks import check_choice
from noise_envs.config import JsonConfig
from noise_envs.core import Task

__all__ = ["LOCK_FILE", "PID_FILE", "RunRequest", "RunWriter", "open_run", "run_lock", "run_path"]

LOCK_FILE = ".run.lock"
"""The writer lock of a run folder (``filelock``; the kernel releases it when its holder dies)."""
PID_FILE = ".run.lock.pid"
"""The process id of the lock's holder, written beside the lock."""
REPLACED_PREFIX = ".replaced-"
"""Folders inside a run folder that hold what ``overwrite`` moved aside."""
RUN_FILES = (RUN_FILE, WEIGHTS_FILE, CHECKPOINT_FILE, HISTORY_FILE, RL_HISTORY_FILE, RL_TRAIN_FILE)
"""The files a run's own writers write (and whose stale temporary files a resume removes)."""
RESUMABLE_CHANGES = ("iterations", "checkpoint_every")
"""Training options a resumed run may change: neither alters the iterations already done."""

_logger = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True, eq=False)
class RunRequest:
    """What a trainer asks of a run folder, and the state a checkpoint must fit to resume it.

    Attributes:
        task: the task trained on.
        model: the model saved in the run (a registered model kind).
        trainer: ``supervised`` or ``rl``.
        config: the trainer's own config (a TrainConfig or an RLTrainConfig).
        template: a checkpoint as the trainer would write it now; a checkpoint read back must
            have its keys, and its model and random state the same names, shapes and dtypes.
        optimizer: the optimizer whose state the checkpoint restores.
        check_checkpoint: further checks of a checkpoint read back, given the file and the
            checkpoint; raises CorruptRun.
    """

    task: Task
    model: nn.Module
    trainer: str
    config: JsonConfig
    template: dict[str, Any]
    optimizer: torch.optim.Optimizer
    check_checkpoint: Callable[[Path, dict[str, Any]], None] | None = None

    def __post_init__(self) -> None:
        check_choice("trainer", self.trainer, TRAINERS)

    def record(self, status: str, iterations_done: int) -> dict[str, Any]:
        """The content of ``run.json`` for this request (ValueError if a config is not JSON)."""
        return {
            "format_version": FORMAT_VERSION,
            "trainer": self.trainer,
            "task": {"id": self.task.id, "kwargs": self.task.config.to_dict()},
            "model": {"kind": model_kind(self.model), "config": self.model.config.to_dict()},
            "train": self.config.to_dict(),
            "status": status,
            "iterations_done": iterations_done,
            # per_step sigma is the paper's convention; Yang et al. 2019 scale by sqrt(2 / gamma).
            "noise_convention": getattr(self.model.config, "noise_scaling", "per_step"),
            "package_version": package_version(),
        }


def run_path(path: str | os.PathLike) -> Path:
    """``path`` as a run folder's path; ValueError for an empty path or the current folder."""
    if path is None or not str(path).strip():
        raise ValueError(f"`run_dir` must name a folder for the run, got {path!r}")
    folder = Path(path)
    if folder.resolve() == Path.cwd().resolve():
        raise ValueError(
            f"`run_dir` {str(path)!r} is the current folder; name a folder of its own for the run"
        )
    return folder


@contextlib.contextmanager
def run_lock(path: str | os.PathLike) -> Iterator[Path]:
    """Hold the writer lock of the run folder ``path`` (created if missing) while in the block.

    Raises:
        RunLocked: at once, naming the holder's pid, if another writer holds it.
    """
    folder = Path(path)
    folder.mkdir(parents=True, exist_ok=True)
    lock = _acquire(folder)
    try:
        yield folder
    finally:
        _release(folder, lock)


def _acquire(folder: Path) -> FileLock:
    lock = FileLock(folder / LOCK_FILE, timeout=0)
    try:
        lock.acquire()
    except Timeout:
        raise RunLocked(
            f"{folder} is being written by {_holder(folder)} (lock {folder / LOCK_FILE}); wait "
            "for it to finish or stop it"
        ) from None
    try:
        atomic_write_text(folder / PID_FILE, f"{os.getpid()}\n")
    except BaseException:
        lock.release()
        raise
    return lock


def _holder(folder: Path) -> str:
    try:
        return f"process {int((folder / PID_FILE).read_text(encoding='utf-8').strip())}"
    except (OSError, ValueError):
        return "another process (its pid is not written yet)"


def _release(folder: Path, lock: FileLock) -> None:
    with contextlib.suppress(FileNotFoundError):
        (folder / PID_FILE).unlink()  # before the lock: the next holder writes its own
    lock.release()


def open_run(
    path: str | os.PathLike,
    request: RunRequest,
    *,
    resume: bool = True,
    overwrite: bool = False,
) -> RunWriter:
    """Open (or create) the run folder ``path`` for writing ``request``'s run, and lock it.

    Args:
        path: the run folder; created if missing.
        request: what is trained, and the state a checkpoint must fit.
        resume: continue from the folder's checkpoint; False moves the old run aside and starts
            over (its config must still match).
        overwrite: move whatever the folder holds into ``path/.replaced-<time>-<pid>/`` and
            start a new run; nothing is ever deleted.

    Returns:
        The open writer; use it as a context manager (or call ``close``) to release the lock.

    Raises:
        ValueError: for an empty path, the current folder, or a config that is not JSON.
        NotARunFolder: if ``path`` is a file, or holds anything but a run of this trainer.
        RunLocked: if another process writes the folder (its pid is named).
        RunMismatch: if the stored run has another task, model, training config, or more
            iterations than asked for.
        CorruptRun: if a file read back is unreadable or disagrees with another or the model.
    """
    folder = run_path(path)
    request.record("running", 0)  # a config that cannot be saved fails before anything is done
    if folder.exists() and not folder.is_dir():
        raise NotARunFolder(f"{folder} is a file, not a run folder; nothing was changed")
    if not overwrite:
        _existing_record(folder, request.trainer)  # refuses before anything is touched
    folder.mkdir(parents=True, exist_ok=True)
    lock = _acquire(folder)
    try:
        return _open_locked(folder, lock, request, resume, overwrite)
    except BaseException:
        _release(folder, lock)
        raise


def _existing_record(folder: Path, trainer: str) -> dict[str, Any] | None:
    """The folder's run record; None for a missing or empty folder; else NotARunFolder."""
    if not folder.exists():
        return None
    if (folder / RUN_FILE).exists():
        record = read_run_record(folder)
        if record["trainer"] != trainer:
            raise NotARunFolder(
                f"{folder} holds a {record['trainer']} run, not a {trainer} one; nothing was "
                "changed; train into another folder, or pass overwrite=True to move it aside"
            )
        return record
    foreign = [name for name in sorted(os.listdir(folder)) if not _is_leftover(folder, name)]
    if foreign:
        shown = ", ".join(foreign[:8]) + (
            f" and {len(foreign) - 8} more" if len(foreign) > 8 else ""
        )
        raise NotARunFolder(
            f"{folder} is not a run folder: it has no {RUN_FILE} but holds {shown}; nothing was "
            "changed; train into a new or empty folder, or pass overwrite=True to move these "
            f"aside into {folder / REPLACED_PREFIX}<time>-<pid>/"
        )
    return None


def _is_leftover(folder: Path, name: str) -> bool:
    """Whether ``name`` in a folder without run.json is the lifecycle's own (lock, moved, tmp)."""
    if name in (LOCK_FILE, PID_FILE) or name.startswith(REPLACED_PREFIX):
        return True
    return any(temp.name == name for temp in stale_temp_files(folder, (*RUN_FILES, PID_FILE)))


def _move_aside(folder: Path) -> None:
    names = [
        name
        for name in sorted(os.listdir(folder))
        if name not in (LOCK_FILE, PID_FILE) and not name.startswith(REPLACED_PREFIX)
    ]
    if not names:
        return
    stem = f"{REPLACED_PREFIX}{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}"
    target, count = folder / stem, 0
    while target.exists():  # moved aside twice in one second by this process
        count += 1
        target = folder / f"{stem}.{count}"
    target.mkdir()
    for name in names:
        os.rename(folder / name, target / name)
    _logger.warning("moved the previous contents of %s to %s", folder, target)


def _open_locked(
    folder: Path, lock: FileLock, request: RunRequest, resume: bool, overwrite: bool
) -> RunWriter:
    if overwrite:
        _move_aside(folder)
    record = _existing_record(folder, request.trainer)  # again: another writer may have been
    checkpoint, tables = None, {}
    if record is not None:
        _check_same_run(folder, record, request)
        checkpoint, tables = _read_back(folder, record, request)
        if not resume:
            _move_aside(folder)
            record, checkpoint, tables = None, None, {}
        elif checkpoint is not None and checkpoint["iteration"] > request.config.iterations:
            raise RunMismatch(
                f"{folder} has already trained {checkpoint['iteration']} iterations, more than "
                f"`iterations` = {request.config.iterations}"
            )
    for temp in stale_temp_files(folder, (*RUN_FILES, PID_FILE)):
        temp.unlink(missing_ok=True)
    writer = RunWriter(folder, lock, request, checkpoint, tables)
    writer._begin(record)
    return writer


def _check_same_run(folder: Path, stored: dict[str, Any], request: RunRequest) -> None:
    """RunMismatch if the stored run has another task, model or (non-resumable) training config."""
    wanted = request.record("running", 0)
    differences = []
    for section in ("task", "model", "train"):
        before, after = _as_json(stored[section]), _as_json(wanted[section])
        if section == "train":
            for key in RESUMABLE_CHANGES:
                before.pop(key, None)
                after.pop(key, None)
        differences += _differences(before, after, section)
    if differences:
        raise RunMismatch(
            f"{folder} holds another run: {'; '.join(differences)}; nothing was changed; train "
            "into another folder, or pass overwrite=True to move this run aside"
        )


def _as_json(value: Any) -> Any:
    return json.loads(json.dumps(value))


def _differences(old: Any, new: Any, name: str) -> list[str]:
    if isinstance(old, dict) and isinstance(new, dict):
        return [
            difference
            for key in sorted(old.keys() | new.keys())
            for difference in _differences(old.get(key), new.get(key), f"{name}.{key}")
        ]
    return [] if old == new else [f"{name} is {old!r} there, {new!r} here"]


def _read_back(
    folder: Path, record: dict[str, Any], request: RunRequest
) -> tuple[dict[str, Any] | None, dict[str, list[dict[str, float]]]]:
    """The folder's checkpoint and tables, checked against each other and against ``request``."""
    stored_config = parse_train_config(folder, record)  # its task and model equal the request's
    checkpoint = None
    if (folder / CHECKPOINT_FILE).is_file():
        checkpoint = load_checkpoint(folder)
        check_checkpoint(folder / CHECKPOINT_FILE, checkpoint, request.template, request.optimizer)
        if request.check_checkpoint is not None:
            request.check_checkpoint(folder / CHECKPOINT_FILE, checkpoint)
    tables = {table.name: read_table(folder, table) for table in TABLES[request.trainer]}
    iteration = None if checkpoint is None else checkpoint["iteration"]
    check_progress(folder, record, stored_config, iteration, tables)
    if record["status"] == "complete":
        if checkpoint is None:
            raise CorruptRun(
                f"{folder / CHECKPOINT_FILE} is missing, so this complete run cannot be resumed; "
                "load it with load_run, or train into another folder"
            )
        check_state(read_weights(folder), request.template["model"], folder / WEIGHTS_FILE)
    return checkpoint, tables


class RunWriter:
    """An open, locked run folder: where training starts, and how it checkpoints and finishes.

    Attributes:
        path: the run folder.
        start: the iterations already done (the checkpoint's iteration, or 0).
        checkpoint: the checked checkpoint to resume from, or None to start from scratch.
        tables: each table's rows for iterations ``1..start``, by file name.
    """

    def __init__(
        self,
        path: Path,
        lock: FileLock,
        request: RunRequest,
        checkpoint: dict[str, Any] | None,
        tables: dict[str, list[dict[str, float]]],
    ) -> None:
        self.path, self._lock, self.request = path, lock, request
        self.checkpoint = checkpoint
        self.start = 0 if checkpoint is None else int(checkpoint["iteration"])
        self.tables = {
            table.name: tables.get(table.name, [])[: self.start]
            for table in TABLES[request.trainer]
        }
        self._complete = False

    def _begin(self, record: dict[str, Any] | None) -> None:
        total = self.request.config.iterations
        if record is not None and record["status"] == "complete" and self.start == total:
            self._complete = True  # nothing to train and nothing to write
            return
        if self.start > 0:  # rows after the checkpoint belong to iterations that run again
            for table in TABLES[self.request.trainer]:
                write_table(self.path, table, self.tables[table.name])
        write_run_record(self.path, self.request.record("running", self.start))

    def save(self, iteration: int, checkpoint: dict[str, Any], tables: dict[str, list]) -> None:
        """Write the tables' rows, then the checkpoint of ``iteration``, then ``run.json``.

        In this order a reader or a resume finds ``iterations_done <= checkpoint <= rows``, and
        trims the rows after the checkpoint.
        """
        for table in TABLES[self.request.trainer]:
            write_table(self.path, table, tables[table.name])
        save_checkpoint(self.path, checkpoint)
        write_run_record(self.path, self.request.record("running", iteration))

    def finish(self, model: nn.Module) -> None:
        """Write the final weights, then mark the run complete (nothing if it already was)."""
        if self._complete:
            return
        save_weights(self.path, model)
        write_run_record(self.path, self.request.record("complete", self.request.config.iterations))
        self._complete = True

    def close(self) -> None:
        """Release the folder's lock (again: nothing)."""
        if self._lock is not None:
            _release(self.path, self._lock)
            self._lock = None

    def __enter__(self) -> RunWriter:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
