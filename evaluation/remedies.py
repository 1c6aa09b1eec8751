"""The remedies for noise preference, measured side by side on a preset grid's task.

For one task of :mod:`evaluation.grid.presets` (its model, training budget, seeds and sweep) and
one training noise level ``sigma``, :func:`run_remedies` compares three noise-in networks per seed:

* ``fixed``: trained at the fixed ``sigma`` (the grid's own cell);
* ``distribution``: trained with the level drawn per episode from ``U(0, 2 sigma)`` (same mean);
* ``recalibrated``: the fixed network with its linear read-out refitted at zero noise
  (:func:`evaluation.recalibrate.recalibrate`); tasks whose model has no linear read-out (the
  multitask's sigmoid) have no such row.

The two trained networks are grid cells (:func:`evaluation.grid.cell_run.run_cell`: folders named
by content hash, resumable, skipped when done): the preset's grid with its training-noise factor
set to ``sigma`` and ``U(0, 2 sigma)`` (a distribution entry of ``train_sigmas``); every network is
swept over the same test levels (``0``, ``sigma`` and ``2 sigma`` always among them). It writes
``remedies.csv`` (one row per remedy and seed), ``remedies.md`` (the table averaged over seeds),
``remedies.png`` (metric against test noise, the seeds' episodes pooled) and, with ``analyze``, the
output bias and kink occupancy of the mechanism analysis for each trained network (seed 0), which
say *why*.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from agents.atomic import atomic_write_text
from agents.noise_distribution import NoiseDistribution, training_noise
from agents.runs import load_run
from evaluation.grid.cell_run import SWEEP_FILES, run_cell
from evaluation.grid.cells import Cell
from evaluation.grid.presets import preset
from evaluation.grid.spec import GridSpec
from evaluation.plots.sweep import plot_sweep, save_figure
from evaluation.recalibrate import check_recalibratable, recalibrate
from evaluation.sweep import sweep_noise
from evaluation.sweep_result import SweepResult, format_rows
from noise_envs._checks import check_choice, check_positive

__all__ = ["REMEDIES", "REMEDY_SIGMAS", "RemediesResult", "run_remedies"]

REMEDIES = ("fixed", "distribution", "recalibrated")
"""The networks compared for each seed."""
REMEDY_SIGMAS = {
    "function_approx": 0.5,
    "regulator": 0.5,
    "maze": 0.5,
    "path_integration_tanh": 1.0,
    "path_integration_relu": 0.5,
    "feedforward": 0.5,
    "multitask": 0.1,
}
"""The fixed training noise compared on each preset task (one of the preset's own levels)."""
TABLE_FILE, SUMMARY_FILE, FIGURE_FILE = "remedies.csv", "remedies.md", "remedies.png"
COLUMNS = (
    "task",
    "remedy",
    "seed",
    "train_noise",
    "metric",
    "sigma_star",
    "at_zero",
    "at_sigma",
    "at_2sigma",
    "output_bias",
    "kink_occupancy",
    "folder",
)


@dataclasses.dataclass(frozen=True)
class RemediesResult:
    """What :func:`run_remedies` measured.

    Attributes:
        task: the preset's name.
        sigma: the fixed training noise.
        rows: one dict per remedy and seed (:data:`COLUMNS`).
        sweeps: the sweeps by remedy, each seed's episodes pooled.
        files: the table, summary and figure written.
        seconds: wall time.
    """

    task: str
    sigma: float
    rows: list[dict[str, Any]]
    sweeps: dict[str, SweepResult]
    files: list[Path]
    seconds: float

    def table(self) -> str:
        """The remedies averaged over seeds, as text (:func:`summary_rows`)."""
        return format_rows(summary_rows(self.rows))


def run_remedies(
    task: str,
    out_dir: str | Path,
    *,
    scale: str = "quick",
    sigma: float | None = None,
    to_sigma: float = 0.0,
    analyze: bool = True,
    device: torch.device | str = "cpu",
    progress: bool = False,
) -> RemediesResult:
    """Train, recalibrate, sweep and compare the remedies on preset ``task`` into ``out_dir``.

    Args:
        task: a preset of :mod:`evaluation.grid.presets` (its supervised CTRNN or MLP cells).
        out_dir: the folder of the comparison (one subfolder per network).
        scale: the preset's scale, ``quick`` or ``paper``.
        sigma: the fixed training noise (default :data:`REMEDY_SIGMAS`); the distribution is
            ``U(0, 2 sigma)``.
        to_sigma: the noise the recalibration fits the read-out at.
        analyze: add each trained network's output bias and kink occupancy (seed 0).
        device: torch device.
        progress: show progress bars.

    Raises:
        ValueError: for an unknown task or scale, an RL preset, or a non-positive ``sigma``.
    """
    tick = time.perf_counter()
    spec = preset(task, scale)
    if spec.trainer != "supervised":
        raise ValueError(f"remedies compare supervised networks; preset {task!r} trains by RL")
    sigma = float(REMEDY_SIGMAS.get(task, 0.5) if sigma is None else sigma)
    check_positive("sigma", sigma)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rows: list[dict[str, Any]] = []
    pooled: dict[str, list[SweepResult]] = {name: [] for name in REMEDIES}
    for fixed, distribution in _cells(spec, sigma):
        networks = _networks(fixed, distribution, to_sigma, out, device, progress)
        for remedy, (folder, result) in networks.items():
            pooled[remedy].append(result)
            rows.append(_row(task, remedy, fixed.seed, folder, result, sigma))
    if analyze:
        _add_mechanism(rows, out, sigma, device)
    sweeps = {name: _pool(results) for name, results in pooled.items() if results}
    files = _write(out, task, sigma, rows, sweeps)
    return RemediesResult(task, sigma, rows, sweeps, files, time.perf_counter() - tick)


def _cells(spec: GridSpec, sigma: float) -> list[tuple[Cell, Cell]]:
    """Per seed, the preset's noise-in cell at ``sigma`` and at ``U(0, 2 sigma)``.

    Both come from the preset's grid with its training-noise factor set to the two (no
    observation noise), swept at 0, s and 2 s; the fixed cell is the preset's own.
    """
    trained = sorted({c.train_sigma for c in spec.cells()})
    if sigma not in trained:
        raise ValueError(
            f"`sigma` must be one of the preset's training levels {trained}, got {sigma}"
        )
    grid = dataclasses.replace(
        spec,
        placements=("in",),
        train_sigmas=(sigma, NoiseDistribution.uniform(0.0, 2.0 * sigma)),
        train_obs_noise=(0.0,),
    )
    by_noise: dict[bool, dict[int, Cell]] = {True: {}, False: {}}
    for cell in grid.cells():
        levels = sorted({*map(float, cell.sweep["test_sigmas"]), 0.0, sigma, 2 * sigma})
        sweep = {**cell.sweep, "axes": ["model"], "test_sigmas": levels}
        fixed = cell.train_noise.kind == "fixed"
        by_noise[fixed][cell.seed] = dataclasses.replace(cell, sweep=sweep)
    return [(cell, by_noise[False][seed]) for seed, cell in by_noise[True].items()]


def _networks(
    fixed: Cell, distribution: Cell, to_sigma: float, out: Path, device: Any, progress: bool
) -> dict[str, tuple[Path, SweepResult]]:
    """Each remedy's run folder and sweep, for the seed of ``fixed``."""
    networks = {}
    for remedy, cell in (("fixed", fixed), ("distribution", distribution)):
        folder = out / cell.folder_name
        run_cell(cell, folder, device=device, progress=progress)
        networks[remedy] = (folder, SweepResult.from_csv(folder / SWEEP_FILES["model"]))
    source = networks["fixed"][0]
    try:
        check_recalibratable(load_run(source).model)
    except ValueError:
        return networks  # no linear read-out: no recalibrated row
    folder = out / f"{fixed.label}_recal{to_sigma:g}-seed{fixed.seed}-{fixed.key}"
    run = recalibrate(source, folder, to_sigma=to_sigma, seed=fixed.seed, device=device)
    sweep_file = folder / SWEEP_FILES["model"]
    if sweep_file.is_file():
        result = SweepResult.from_csv(sweep_file)
    else:
        spec = fixed.sweep
        result = sweep_noise(
            run.model,
            run.task(),
            spec["test_sigmas"],
            episodes=spec["episodes"],
            seed=spec["seed"],
            device=device,
            progress=progress,
        )
        result.to_csv(sweep_file)
    networks["recalibrated"] = (folder, result)
    return networks


def _row(
    task: str, remedy: str, seed: int, folder: Path, result: SweepResult, sigma: float
) -> dict[str, Any]:
    means = result.summary().mean
    level = {float(x): i for i, x in enumerate(result.levels)}
    noise = {
        "fixed": f"{sigma:g}",
        "distribution": NoiseDistribution.uniform(0.0, 2 * sigma).spec,
        "recalibrated": f"{sigma:g}, read-out at 0",
    }[remedy]
    return {
        "task": task,
        "remedy": remedy,
        "seed": seed,
        "train_noise": noise,
        "metric": result.primary_metric,
        "sigma_star": float(result.best_level()),
        "at_zero": float(means[level[0.0]]),
        "at_sigma": float(means[level[sigma]]),
        "at_2sigma": float(means[level[2 * sigma]]),
        "output_bias": float("nan"),
        "kink_occupancy": float("nan"),
        "folder": folder.name,
    }


def _add_mechanism(rows: list[dict[str, Any]], out: Path, sigma: float, device: Any) -> None:
    """Output bias and kink occupancy at ``sigma`` of the trained CTRNNs of the first seed.

    The output bias is ``E[(ybar_sigma - y_0)^2]``, the squared shift of the mean output at
    ``sigma`` from the noise-free output (:class:`~evaluation.mechanism.shift.OutputBias`): what
    testing without noise costs a network whose read-out is right on average under the noise.
    """
    from agents.ctrnn import CTRNN
    from evaluation.mechanism.analysis import AnalysisConfig, analyze_model

    config = AnalysisConfig(num_levels=3, steps=600, burn_in=200, replicas=8, episodes=64)
    first_seed = min(row["seed"] for row in rows)
    for row in rows:
        if row["seed"] != first_seed or row["remedy"] == "recalibrated":
            continue
        run = load_run(out / row["folder"])
        if not isinstance(run.model, CTRNN):
            continue
        report = analyze_model(
            run.model,
            run.task(),
            train_sigma=sigma,
            config=config,
            device=device,
            train_noise=training_noise(run.train_config),
        )
        row["output_bias"] = float(report.bias.bias[report.bias.level_index(sigma)])
        row["kink_occupancy"] = float(report.kink.share)


def _pool(results: Sequence[SweepResult]) -> SweepResult:
    """One sweep holding every seed's episodes (the same levels)."""
    first = results[0]
    return dataclasses.replace(
        first,
        metrics={
            name: np.concatenate([r.metrics[name] for r in results], axis=1)
            for name in first.metrics
        },
    )


def summary_rows(rows: Sequence[dict[str, Any]]) -> list[list[str]]:
    """Header and one line per task and remedy: sigma* and the metric, mean over seeds."""
    header = [
        "task",
        "remedy",
        "training noise",
        "sigma* (seeds)",
        "at 0",
        "at sigma",
        "at 2 sigma",
        "output bias at sigma",
        "kink share",
    ]
    lines = [header]
    keys = list(dict.fromkeys((row["task"], row["remedy"]) for row in rows))
    for task, remedy in keys:
        group = [row for row in rows if (row["task"], row["remedy"]) == (task, remedy)]
        mean = {k: float(np.mean([row[k] for row in group])) for k in COLUMNS[6:9]}
        mech = [row for row in group if np.isfinite(row["kink_occupancy"])]
        lines.append(
            [
                task,
                remedy,
                group[0]["train_noise"],
                ", ".join(f"{row['sigma_star']:g}" for row in group),
                f"{mean['at_zero']:.4g}",
                f"{mean['at_sigma']:.4g}",
                f"{mean['at_2sigma']:.4g}",
                f"{mech[0]['output_bias']:.3g}" if mech else "-",
                f"{mech[0]['kink_occupancy']:.0%}" if mech else "-",
            ]
        )
    return lines


def _write(
    out: Path,
    task: str,
    sigma: float,
    rows: list[dict[str, Any]],
    sweeps: dict[str, SweepResult],
) -> list[Path]:
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=COLUMNS, lineterminator="\n", extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(out / TABLE_FILE, text.getvalue())
    lines = summary_rows(rows)
    markdown = "\n".join(
        ["| " + " | ".join(lines[0]) + " |", "|" + "---|" * len(lines[0])]
        + ["| " + " | ".join(line) + " |" for line in lines[1:]]
    )
    atomic_write_text(out / SUMMARY_FILE, markdown + "\n")
    labels = {
        "fixed": f"fixed sigma {sigma:g}",
        "distribution": f"sigma ~ U(0, {2 * sigma:g}) per episode",
        "recalibrated": f"fixed {sigma:g}, read-out refitted at 0",
    }
    figure = plot_sweep(
        {labels[name]: result for name, result in sweeps.items()},
        train_sigma={labels[name]: sigma for name in sweeps},
    )
    figure.axes[0].set_title(f"{task}: remedies for noise preference (seeds pooled)")
    figure_path = save_figure(figure, out / FIGURE_FILE)
    atomic_write_text(
        out / "remedies.json", json.dumps({"task": task, "sigma": sigma}, indent=1) + "\n"
    )
    return [out / TABLE_FILE, out / SUMMARY_FILE, Path(figure_path)]


def check_task(task: str) -> str:
    """``task`` if it is a preset the remedies run on, else ValueError naming them."""
    return check_choice("task", task, REMEDY_SIGMAS)
