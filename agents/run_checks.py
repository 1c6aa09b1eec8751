"""Checks of what a run folder holds, before anything reads it as true.

Its files are checked against each other, and its checkpoint against the model, optimizer and
random state that will resume from it. Every failure is CorruptRun naming the file, the field and
both values.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from agents.errors import CorruptRun
from agents.run_files import CHECKPOINT_FILE, RUN_FILE, check_state

__all__ = ["check_checkpoint", "check_progress"]


def check_progress(
    folder: Path,
    record: dict[str, Any],
    train_config: Any,
    iteration: int | None,
    tables: dict[str, list[dict[str, float]]],
    writing: bool = False,
) -> None:
    """Check that ``run.json``, the checkpoint's ``iteration`` and the tables' rows agree.

    The writers' order (tables, then ``checkpoint.pt``, then ``run.json``; the weights before
    ``status: complete``) makes ``iterations_done <= iteration <= rows <= iteration +
    checkpoint_every`` hold at every moment, and all equal ``iterations`` once complete.
    ``writing``: the files were read while a trainer wrote them (in the opposite order), so
    the rows, read last, may be any number of iterations ahead; their upper bound is not checked.

    Raises:
        CorruptRun: naming the files, the field and both values.
    """
    done, total, status = record["iterations_done"], train_config.iterations, record["status"]
    run_file, checkpoint_file = folder / RUN_FILE, folder / CHECKPOINT_FILE
    if iteration is None:  # a complete run's weights need no checkpoint to be read
        if done != 0 and status == "running":
            raise CorruptRun(
                f"{run_file} says running with `iterations_done` {done}, but {checkpoint_file} "
                "is missing"
            )
        iteration = done
    elif not 0 <= iteration <= total:
        raise CorruptRun(
            f"{checkpoint_file}: `iteration` is {iteration}, run.json's `iterations` is {total}; "
            f"it must be in [0, {total}]"
        )
    if done > iteration:
        raise CorruptRun(
            f"{checkpoint_file}: `iteration` is {iteration}, but {run_file} says "
            f"`iterations_done` {done}"
        )
    if status == "complete" and not done == iteration == total:
        raise CorruptRun(
            f"{run_file} says complete at `iterations_done` {done} of {total}, but "
            f"{checkpoint_file} has `iteration` {iteration}"
        )
    ahead = 0 if status == "complete" else train_config.checkpoint_every
    for name, rows in tables.items():
        most = len(rows) if writing and status == "running" else iteration + ahead
        if not iteration <= len(rows) <= most:
            raise CorruptRun(
                f"{folder / name} has {len(rows)} rows, but {checkpoint_file} has `iteration` "
                f"{iteration} (and run.json `checkpoint_every` {train_config.checkpoint_every})"
            )


def check_checkpoint(
    file: Path,
    checkpoint: dict[str, Any],
    template: dict[str, Any],
    optimizer: torch.optim.Optimizer,
) -> None:
    """Check a checkpoint read back against the state that will resume from it.

    Args:
        file: the checkpoint's path, for messages.
        checkpoint: what was read.
        template: a checkpoint as the trainer would write it now: the keys must be the same,
            ``model`` the same tensor names, shapes and dtypes, ``rng`` the same structure.
        optimizer: the optimizer whose state ``checkpoint["optimizer"]`` restores.

    Raises:
        CorruptRun: naming the file, the field and both values.
    """
    missing = sorted(template.keys() - checkpoint.keys())
    unexpected = sorted(checkpoint.keys() - template.keys())
    if missing or unexpected:
        raise CorruptRun(
            f"{file} is not a checkpoint: missing keys {missing}, unexpected {unexpected}"
        )
    check_state(checkpoint["model"], template["model"], file)
    _check_optimizer(file, checkpoint["optimizer"], optimizer)
    _check_like(file, "rng", checkpoint["rng"], template["rng"])


def _check_like(file: Path, field: str, value: Any, expected: Any) -> None:
    """CorruptRun unless ``value`` has ``expected``'s structure, tensor shapes and dtypes."""
    if isinstance(expected, dict):
        if not isinstance(value, dict) or sorted(value, key=str) != sorted(expected, key=str):
            got = sorted(value, key=str) if isinstance(value, dict) else type(value).__name__
            raise CorruptRun(f"{file}: `{field}` must have keys {sorted(expected)}, got {got}")
        for key in expected:
            _check_like(file, f"{field}.{key}", value[key], expected[key])
    elif isinstance(expected, torch.Tensor):
        if not isinstance(value, torch.Tensor) or (value.shape, value.dtype) != (
            expected.shape,
            expected.dtype,
        ):
            got = (tuple(value.shape), value.dtype) if isinstance(value, torch.Tensor) else value
            raise CorruptRun(
                f"{file}: `{field}` is {got}, expected a tensor of shape "
                f"{tuple(expected.shape)} and dtype {expected.dtype}"
            )
    elif isinstance(expected, int) and not isinstance(expected, bool):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise CorruptRun(f"{file}: `{field}` must be an integer >= 0, got {value!r}")


def _check_optimizer(file: Path, state: Any, optimizer: torch.optim.Optimizer) -> None:
    """CorruptRun unless ``state`` is an optimizer state of ``optimizer``'s parameters."""
    expected = optimizer.state_dict()
    if not isinstance(state, dict) or sorted(state) != ["param_groups", "state"]:
        raise CorruptRun(f"{file}: `optimizer` must have keys ['param_groups', 'state']")
    groups = state["param_groups"]
    wanted = [group["params"] for group in expected["param_groups"]]
    got = (
        [group.get("params") if isinstance(group, dict) else None for group in groups]
        if (isinstance(groups, list))
        else groups
    )
    if got != wanted:
        raise CorruptRun(f"{file}: `optimizer.param_groups` params are {got}, the model's {wanted}")
    params = [param for group in optimizer.param_groups for param in group["params"]]
    if not isinstance(state["state"], dict):
        raise CorruptRun(f"{file}: `optimizer.state` must be a dict")
    for index, entry in state["state"].items():
        if (
            not isinstance(index, int)
            or not 0 <= index < len(params)
            or not isinstance(entry, dict)
        ):
            raise CorruptRun(f"{file}: `optimizer.state` has an entry {index!r} of no parameter")
        for name, value in entry.items():
            if isinstance(value, torch.Tensor) and value.dim() > 0:
                if value.shape != params[index].shape:
                    raise CorruptRun(
                        f"{file}: `optimizer.state[{index}].{name}` has shape "
                        f"{tuple(value.shape)}, its parameter {tuple(params[index].shape)}"
                    )
                if not bool(torch.isfinite(value).all()):
                    raise CorruptRun(f"{file}: `optimizer.state[{index}].{name}` is not finite")
