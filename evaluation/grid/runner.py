"""Run a grid: validate it, train and sweep the cells not yet done, write the summary and figures.

``out_dir`` holds ``grid.json`` (the spec's cells), one run folder per cell named by the content
hash of its config (:attr:`~evaluation.grid.cells.Cell.folder_name`), ``summary.csv`` (and
``summary.parquet`` with pyarrow), ``settings.txt`` (the verdicts over seeds) and the figures.
Stopping the runner at any moment and starting it again trains only what is missing: done cells
are checked and skipped, a partial run resumes from its checkpoint, a corrupt one is redone.

TODO(ensembles): cells of one :attr:`~evaluation.grid.cells.Cell.group` (same task and
architecture) could train together as one :class:`~agents.ensemble.CTRNNEnsemble` once
``train_ensemble`` writes member run folders through the run lifecycle; today each cell trains
alone through :func:`~agents.supervised.train_run`.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from agents.atomic import atomic_write_text
from agents.errors import RunError
from evaluation.grid.backends import BACKENDS, run_cells
from evaluation.grid.cell_run import read_cell
from evaluation.grid.cells import Cell, ensemble_chunks
from evaluation.grid.spec import GridSpec
from evaluation.grid.summary import settings_table, write_table
from noise_envs._checks import check_choice, check_positive_int

__all__ = ["GridResult", "run_grid"]

GRID_FILE = "grid.json"
SUMMARY_FILE = "summary.csv"
SETTINGS_FILE = "settings.txt"

_logger = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class GridResult:
    """What :func:`run_grid` did and found.

    Attributes:
        out_dir: the grid's folder.
        cells: every cell of the spec, in spec order.
        rows: the summary rows (one per cell and sweep axis), in cell order.
        ran: the folder names of the cells trained or swept now.
        skipped: the folder names of the cells already done.
        files: the summary, settings and figure files written.
        seconds: the runner's wall time.
        cell_seconds: the time each done cell took to train and sweep (as recorded when it was
            done, in whichever run), summed.
    """

    out_dir: Path
    cells: list[Cell]
    rows: list[dict[str, Any]]
    ran: list[str]
    skipped: list[str]
    files: list[Path]
    seconds: float
    cell_seconds: float = 0.0

    def settings_table(self) -> str:
        """The per-setting verdicts over seeds, as text."""
        return settings_table(self.rows)


def run_grid(
    spec: GridSpec,
    out_dir: str | Path,
    *,
    workers: int = 1,
    backend: str = "local",
    address: str | None = None,
    device: str = "cpu",
    progress: bool = True,
    figures: bool = True,
) -> GridResult:
    """Train and sweep every cell of ``spec`` not yet done in ``out_dir``; summarise them all.

    Args:
        spec: the grid; validated whole before anything trains.
        out_dir: the grid's folder (created if missing).
        workers: local worker processes (1: this process), or the CPUs of a local Ray cluster.
        backend: ``local`` or ``ray`` (the ``ray`` extra).
        address: the Ray cluster to join; None starts a local one.
        device: the torch device of every cell.
        progress: show a progress bar over the cells (only on a terminal).
        figures: draw the per-task figures.

    Raises:
        ValueError: for a bad spec (naming the entry) or bad options.
        RunError: if some cells failed (each named with its error); the others are done and
            summarised.
    """
    check_positive_int("workers", workers)
    check_choice("backend", backend, BACKENDS)
    tick = time.perf_counter()
    cells = spec.cells()
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise ValueError(f"`out_dir` must name a folder, but {out_dir} is a file")
    out_dir.mkdir(parents=True, exist_ok=True)
    _write_grid_file(spec, cells, out_dir)
    _adopt_full_hash_folders(cells, out_dir)
    records = {cell.key: read_cell(cell, out_dir / cell.folder_name) for cell in cells}
    skipped = [cell.folder_name for cell in cells if records[cell.key] is not None]
    jobs = [
        [cell for cell in chunk if records[cell.key] is None]
        for chunk in ensemble_chunks(cells, spec.ensemble_size)
    ]
    jobs = [job for job in jobs if job]
    failures = _run(jobs, records, out_dir, backend, workers, address, device, progress)
    rows = [row for cell in cells if records[cell.key] for row in records[cell.key]["rows"]]
    files = write_table(rows, out_dir / SUMMARY_FILE) if rows else []
    if rows:
        settings = settings_table(rows)
        atomic_write_text(out_dir / SETTINGS_FILE, settings + "\n")
        files.append(out_dir / SETTINGS_FILE)
        if figures:
            from evaluation.grid.figures import write_grid_figures

            files += write_grid_figures(cells, out_dir)
    if failures:
        raise RunError(
            f"{len(failures)} of {len(cells)} grid cells failed (the others are done and in "
            f"{out_dir / SUMMARY_FILE}): "
            + "; ".join(failures[:3])
            + (f"; and {len(failures) - 3} more (see the log)" if len(failures) > 3 else "")
        )
    return GridResult(
        out_dir=out_dir,
        cells=cells,
        rows=rows,
        ran=[cell.folder_name for job in jobs for cell in job],
        skipped=skipped,
        files=files,
        seconds=time.perf_counter() - tick,
        cell_seconds=sum(float(r.get("seconds", 0.0)) for r in records.values() if r),
    )


def _run(
    todo: Sequence[Sequence[Cell]],
    records: dict[str, Any],
    out_dir: Path,
    backend: str,
    workers: int,
    address: str | None,
    device: str,
    progress: bool,
) -> list[str]:
    """Run the jobs still to do, filling ``records``; the failures as ``folder: error``."""
    failures: list[str] = []
    if not todo:
        return failures
    jobs = [
        ([cell.to_dict() for cell in job], [str(out_dir / cell.folder_name) for cell in job])
        for job in todo
    ]
    total = sum(len(job) for job in todo)
    with tqdm(total=total, desc="grid cells", disable=None if progress else True) as bar:

        def done(job: Any, found: Any, error: Any) -> None:
            bar.update(len(job[1]))
            if error is not None:
                names = ", ".join(Path(folder).name for folder in job[1])
                failures.append(f"{names}: {type(error).__name__}: {error}")
                _logger.error("grid cells %s failed: %s", names, error)
            else:
                for record in found:
                    records[record["key"]] = record

        run_cells(jobs, done, backend=backend, workers=workers, address=address, device=device)
    return failures


def _adopt_full_hash_folders(cells: list[Cell], out_dir: Path) -> None:
    """Rename the folders that grids named by the full-config hash to the current names.

    Before the hash left defaulted fields out, a cell's folder ended in the hash of its whole
    config; such a folder is renamed, not retrained (read_cell still checks what it holds).
    """
    for cell in cells:
        old, new = out_dir / cell.full_folder_name, out_dir / cell.folder_name
        if old != new and old.is_dir() and not new.exists():
            os.replace(old, new)


def _write_grid_file(spec: GridSpec, cells: Sequence[Cell], out_dir: Path) -> None:
    """``grid.json``: the grid's name and every cell with its folder, for readers of the folder."""
    content = {
        "format": "noise-preference grid",
        "name": spec.name,
        "cells": [{"folder": cell.folder_name, "cell": cell.to_dict()} for cell in cells],
    }
    atomic_write_text(out_dir / GRID_FILE, json.dumps(content, indent=1, sort_keys=True) + "\n")
