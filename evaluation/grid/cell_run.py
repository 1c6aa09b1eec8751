"""Train and sweep one grid cell into its run folder, skipping it when it is already done.

A cell's folder is an ordinary run folder (:mod:`agents.run_lifecycle`) plus the cell's sweeps
(``sweep_model.csv``, ``sweep_env.csv``) and, written last, ``cell.json`` (the cell's config and
its preference rows). A cell is done when ``cell.json`` holds this cell's config, the run loads
back complete (every file checked: a truncated weights file is a
:class:`~agents.errors.CorruptRun`) and its sweeps read back. A partial run resumes from its
checkpoint; a corrupt one is moved aside (into ``.replaced-<time>-<pid>/``, nothing is deleted)
and trained again. Every file is written atomically.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from agents.atomic import atomic_write_text
from agents.errors import CorruptRun, NotARunFolder, RunMismatch
from agents.run_lifecycle import run_lock
from agents.runs import Run, load_run
from evaluation.grid.cells import Cell
from evaluation.stats import preference
from evaluation.sweep import sweep_noise
from evaluation.sweep_result import SweepResult
from noise_envs.registration import make_task

__all__ = [
    "CELL_FILE",
    "SWEEP_FILES",
    "cell_is_done",
    "preference_rows",
    "read_cell",
    "run_cell",
    "run_cells_together",
]

CELL_FILE = "cell.json"
"""Written last into a cell's folder: the cell's config and its preference rows."""
SWEEP_FILES = {"model": "sweep_model.csv", "env": "sweep_env.csv"}
"""The sweep table of each axis in a cell's folder."""
_FORMAT = "noise-preference grid cell"
_REDO = (CorruptRun, NotARunFolder, RunMismatch)

_logger = logging.getLogger(__name__)


def run_cell(
    cell: Cell, folder: str | Path, *, device: torch.device | str = "cpu", progress: bool = False
) -> dict[str, Any]:
    """Train ``cell`` into ``folder`` (resuming, or redoing a corrupt run), sweep it, record it.

    Returns:
        The content of ``cell.json``: ``cell``, ``key``, ``rows`` (one preference row per sweep
        axis) and ``seconds``; read back as it is when the cell was already done.

    Raises:
        RunLocked: if another process writes the folder.
        TrainingDiverged: if training diverged (the last checkpoint is kept).
    """
    folder = Path(folder)
    done = read_cell(cell, folder)
    if done is not None:
        return done
    tick = time.perf_counter()
    _train(cell, folder, device, progress)
    return _sweep_and_record(cell, folder, device, tick)


def run_cells_together(
    cells: Sequence[Cell],
    folders: Sequence[str | Path],
    *,
    device: torch.device | str = "cpu",
    progress: bool = False,
) -> list[dict[str, Any]]:
    """Train the cells not yet done as one ensemble (one run folder each), then sweep each.

    The cells must share task, architecture and training options but the sigma, the seed and
    the placement (one :attr:`~evaluation.grid.cells.Cell.group`, supervised CTRNNs); each member
    is the run ``train_run`` of that cell writes, up to float rounding
    (:func:`agents.ensemble_training.train_ensemble`). A single cell trains alone.

    Returns:
        Each cell's ``cell.json`` record, in order.
    """
    folders = [Path(folder) for folder in folders]
    records = [read_cell(cell, folder) for cell, folder in zip(cells, folders, strict=True)]
    pending = [k for k, record in enumerate(records) if record is None]
    if len(pending) <= 1:
        return [
            record or run_cell(cell, folder, device=device, progress=progress)
            for cell, folder, record in zip(cells, folders, records, strict=True)
        ]
    tick = time.perf_counter()
    members = [cells[k] for k in pending]
    try:
        _train_ensemble(members, [folders[k] for k in pending], device, progress, False)
    except _REDO as error:
        _logger.warning("redoing the ensemble of %s: %s", folders[pending[0]], error)
        _train_ensemble(members, [folders[k] for k in pending], device, progress, True)
    seconds = (time.perf_counter() - tick) / len(pending)
    for k in pending:
        records[k] = _sweep_and_record(cells[k], folders[k], device, time.perf_counter() - seconds)
    return records


def _train_ensemble(
    cells: Sequence[Cell],
    folders: Sequence[Path],
    device: torch.device | str,
    progress: bool,
    overwrite: bool,
) -> None:
    from agents.ctrnn import CTRNNConfig
    from agents.ensemble import CTRNNEnsemble
    from agents.ensemble_training import train_ensemble
    from agents.supervised import TrainConfig

    ensemble = CTRNNEnsemble.from_seeds(
        CTRNNConfig.from_dict(cells[0].model),
        [cell.seed for cell in cells],
        [cell.placement for cell in cells],
    )
    train_ensemble(
        ensemble,
        make_task(cells[0].task_id, **_task_kwargs(cells[0].task_kwargs)),
        [TrainConfig.from_dict(cell.train) for cell in cells],
        run_dirs=folders,
        device=device,
        progress=progress,
        overwrite=overwrite,
    )


def _sweep_and_record(
    cell: Cell, folder: Path, device: torch.device | str, tick: float
) -> dict[str, Any]:
    """Sweep the cell's trained run and write its sweeps, then ``cell.json``, under its lock."""
    run = load_run(folder, device=device)
    with run_lock(folder):
        sweeps = sweep_cell(cell, run, device)
        for axis, result in sweeps.items():
            result.to_csv(folder / SWEEP_FILES[axis])
        record = {
            "format": _FORMAT,
            "cell": cell.to_dict(),
            "key": cell.key,
            "rows": preference_rows(cell, sweeps, folder),
            "seconds": time.perf_counter() - tick,
        }
        atomic_write_text(folder / CELL_FILE, json.dumps(record, indent=1, sort_keys=True) + "\n")
    return record


def read_cell(cell: Cell, folder: str | Path) -> dict[str, Any] | None:
    """``cell.json`` of a done cell; None if the cell must still be trained or swept."""
    folder = Path(folder)
    try:
        record = json.loads((folder / CELL_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict) or record.get("format") != _FORMAT:
        return None
    if not cell.same_config(record.get("cell")):  # fields at their defaults aside
        return None
    try:
        if load_run(folder).status != "complete":
            return None
        for axis in cell.sweep["axes"]:
            SweepResult.from_csv(folder / SWEEP_FILES[axis])
    except (*_REDO, OSError, ValueError) as error:
        _logger.warning("cell %s is not done: %s", folder, error)
        return None
    return record


def cell_is_done(cell: Cell, folder: str | Path) -> bool:
    """Whether ``folder`` holds ``cell`` trained, swept and recorded (every file checked)."""
    return read_cell(cell, folder) is not None


def _train(cell: Cell, folder: Path, device: torch.device | str, progress: bool) -> Run:
    """Train (or resume) the cell's run; a corrupt or foreign folder is moved aside and redone."""
    try:
        return _train_once(cell, folder, device, progress, overwrite=False)
    except _REDO as error:
        _logger.warning("redoing cell %s: %s", folder, error)
        return _train_once(cell, folder, device, progress, overwrite=True)


def _train_once(
    cell: Cell, folder: Path, device: torch.device | str, progress: bool, overwrite: bool
) -> Run:
    if cell.trainer == "rl":
        from agents.sb3 import config as sb3_config
        from agents.sb3.training import train_rl_run

        policy = getattr(sb3_config, cell.model_kind).from_dict(cell.model)
        return train_rl_run(
            folder,
            cell.task_id,
            policy,
            sb3_config.RLTrainConfig.from_dict(cell.train),
            task_kwargs=cell.task_kwargs,
            device=device,
            progress=progress,
            overwrite=overwrite,
        )
    from agents.supervised import TrainConfig, train_run

    return train_run(
        folder,
        cell.task_id,
        cell.model,
        TrainConfig.from_dict(cell.train),
        model_kind=cell.model_kind,
        task_kwargs=_task_kwargs(cell.task_kwargs),
        device=device,
        progress=progress,
        overwrite=overwrite,
    )


def _task_kwargs(kwargs: dict[str, Any]) -> dict[str, Any]:
    """JSON lists back to the tuples the task configs hold."""
    return {k: tuple(v) if isinstance(v, list) else v for k, v in kwargs.items()}


def sweep_cell(cell: Cell, run: Run, device: torch.device | str = "cpu") -> dict[str, SweepResult]:
    """The cell's sweeps by axis: the model's noise, and/or the environment's observation noise.

    The ``model`` axis sweeps ``test_sigmas`` with the environment at its training
    ``obs_noise``; the ``env`` axis sweeps ``test_obs_noise`` with the network at its training
    sigma (a distribution's mean), every level with the same seed (so the same trials and network
    noise).
    """
    spec, kwargs = cell.sweep, _task_kwargs(cell.task_kwargs)
    sweeps = {}
    if "model" in spec["axes"]:
        sweeps["model"] = sweep_noise(
            run.model,
            make_task(cell.task_id, **kwargs),
            spec["test_sigmas"],
            episodes=spec["episodes"],
            seed=spec["seed"],
            device=device,
        )
    if "env" in spec["axes"]:
        parts = [
            sweep_noise(
                run.model,
                make_task(cell.task_id, **(kwargs | {"obs_noise": level})),
                [cell.train_sigma],
                episodes=spec["episodes"],
                seed=spec["seed"],
                device=device,
            )
            for level in spec["test_obs_noise"]
        ]
        sweeps["env"] = SweepResult(
            task_id=parts[0].task_id,
            levels=np.asarray(spec["test_obs_noise"], dtype=np.float64),
            metrics={
                name: np.concatenate([part.metrics[name] for part in parts])
                for name in parts[0].metrics
            },
            metric_directions=parts[0].metric_directions,
            primary_metric=parts[0].primary_metric,
            seed=spec["seed"],
        )
    return sweeps


def preference_rows(
    cell: Cell, sweeps: dict[str, SweepResult], folder: str | Path
) -> list[dict[str, Any]]:
    """One summary-table row per sweep axis: the cell's factors and its preference statistics."""
    rows = []
    for axis, result in sweeps.items():
        pref = preference(result, cell.sweep.get("metric"), seed=cell.sweep["seed"])
        rows.append(
            {
                "cell": cell.key,
                "task": cell.label,
                "task_id": cell.task_id,
                "model_kind": cell.model_kind,
                "activation": cell.model.get("activation", ""),
                "placement": cell.placement,
                "train_sigma": cell.train_sigma,
                "train_noise": cell.train_noise_label,
                "train_obs_noise": cell.train_obs_noise,
                "seed": cell.seed,
                "axis": axis,
                "metric": pref.metric,
                "higher_is_better": pref.higher_is_better,
                "sigma_star": pref.sigma_star,
                "sigma_star_low": pref.sigma_star_ci[0],
                "sigma_star_high": pref.sigma_star_ci[1],
                "metric_at_zero": pref.metric_at_zero,
                "metric_at_sigma_star": pref.metric_at_best,
                "ratio": pref.ratio,
                "ratio_low": pref.ratio_ci[0],
                "ratio_high": pref.ratio_ci[1],
                "significant": pref.significant,
                "folder": Path(folder).name,
            }
        )
    return rows
