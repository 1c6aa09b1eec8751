"""Figures of the Yang et al. (2019) suite: trials (inputs, targets, outputs) and perf per task.

:func:`plot_trials` draws one trial of each named task side by side, to hold beside the paper's
task diagrams (Fig. 1); :func:`plot_perf_by_task` draws a sweep's ``perf`` against test noise as
small multiples, one panel per task.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from matplotlib.figure import Figure

from agents.policy import Policy
from agents.rollout import rollout
from evaluation.sweep_result import SweepResult, format_rows
from noise_envs._checks import check_choice
from noise_envs.multitask import MultitaskTask
from noise_envs.multitask_trials import ALIASES, TASK_NAMES, resolve_task_name

__all__ = ["FAMILIES", "by_task_table", "perf_by_task", "plot_perf_by_task", "plot_trials"]

FAMILIES: dict[str, tuple[str, ...]] = {
    "go": ("fdgo", "reactgo", "delaygo"),
    "anti": ("fdanti", "reactanti", "delayanti"),
    "dm": ("dm1", "dm2", "contextdm1", "contextdm2", "multidm"),
    "delaydm": ("delaydm1", "delaydm2", "contextdelaydm1", "contextdelaydm2", "multidelaydm"),
    "matching": ("dmsgo", "dmsnogo", "dmcgo", "dmcnogo"),
}
"""The task families of Yang et al. (2019)'s Fig. 1, for one figure each."""

_ROWS = ("fixation", "ring 1", "ring 2", "target ring", "output ring")


def plot_trials(
    names: Sequence[str],
    policy: Policy | None = None,
    *,
    sigma: float = 0.0,
    seed: int = 0,
    dt: float | None = None,
    obs_noise: float = 0.0,
    task_options: Mapping[str, Any] | None = None,
    device: torch.device | str = "cpu",
) -> Figure:
    """One trial of each task in ``names``, a column each: inputs, targets and outputs over time.

    Rows: the fixation input, target and (with ``policy``) output; input rings 1 and 2 and the
    target ring as heat maps (units against time); the policy's ring output. Grey shading marks
    the steps the mask leaves out. Trials are drawn from ``seed`` without input noise by default.

    Args:
        names: task names or neurogym aliases.
        policy: a network for the suite (85 inputs, 33 outputs at the default ring), or None.
        sigma: the policy's noise level.
        seed: seed of the trials and the policy's noise.
        dt: time step (ms); None: ``task_options``' or the default 20 ms.
        obs_noise: input noise of the trials.
        task_options: other :class:`~noise_envs.multitask.MultitaskConfig` options, e.g. a
            run's ``task_kwargs`` (its ``tasks`` and ``task_weights`` are replaced).
        device: where the policy runs.
    """
    names = [_canonical(name) for name in names]
    options = {**(task_options or {}), "obs_noise": obs_noise}
    options.pop("task_weights", None)
    if dt is not None:
        options["dt"] = dt
    dt = float(options.get("dt", 20.0))
    rows = _ROWS if policy is not None else _ROWS[:-1]
    figure = Figure(figsize=(3.2 * len(names), 1.6 * len(rows)), layout="constrained")
    axes = figure.subplots(len(rows), len(names), squeeze=False, sharey="row")
    for column, name in enumerate(names):
        trace = _trace(MultitaskTask(**{**options, "tasks": name}), policy, sigma, seed, device)
        _draw_column(axes[:, column], trace, dt, len(rows))
        axes[0, column].set_title(f"{name} (rule {TASK_NAMES.index(name)})")
    for row, label in enumerate(rows):
        axes[row, 0].set_ylabel(label if row == 0 else f"{label}\nunit")
    for axis in axes[-1]:
        axis.set_xlabel("time (ms)")
    return figure


def perf_by_task(sweep: SweepResult, metric: str = "perf") -> dict[str, np.ndarray]:
    """Mean ``metric`` at each test level ``[L]`` of every task the sweep drew, by task name."""
    for name in (metric, "task"):
        check_choice("sweep metric", name, sweep.metrics)
    perf, task = sweep.values(metric), sweep.values("task").astype(int)
    table = {}
    for index in np.unique(task):
        chosen = task == index
        table[TASK_NAMES[index]] = np.array(
            [perf[level][chosen[level]].mean() for level in range(perf.shape[0])]
        )
    return table


def by_task_table(sweep: SweepResult, metric: str = "perf") -> str:
    """A text table of ``metric``'s mean per task (rows) and test level (columns).

    The last row is the mean over tasks: each task counts once, however often it was drawn.
    """
    table = perf_by_task(sweep, metric)
    mean = np.mean(list(table.values()), axis=0)
    rows = [["task", *(f"{level:g}" for level in sweep.levels)]]
    for name, values in [*table.items(), ("mean over tasks", mean)]:
        rows.append([name, *(f"{value:.3f}" for value in values)])
    return f"{metric} by task (mean per test noise level sigma)\n" + format_rows(rows)


def plot_perf_by_task(
    sweep: SweepResult, train_sigma: float | None = None, metric: str = "perf"
) -> Figure:
    """``metric`` against test noise, one small panel per task, and the mean over tasks."""
    table = perf_by_task(sweep, metric)
    panels = [*table.items(), ("mean over tasks", np.mean(list(table.values()), axis=0))]
    columns = min(5, len(panels))
    rows = math.ceil(len(panels) / columns)
    figure = Figure(figsize=(2.4 * columns, 1.9 * rows), layout="constrained")
    axes = figure.subplots(rows, columns, squeeze=False, sharex=True, sharey=True)
    handles = []
    for axis, (name, values) in zip(axes.flat, panels, strict=False):
        handles = axis.plot(
            sweep.levels,
            values,
            marker="o",
            markersize=3,
            label=f"mean {metric} over the task's trials",
        )
        if train_sigma is not None:
            handles += [
                axis.axvline(
                    train_sigma,
                    color="grey",
                    linestyle=":",
                    linewidth=1,
                    label=f"training noise sigma = {train_sigma:g}",
                )
            ]
        axis.set_title(name, fontsize=9)
        if metric == "perf":
            axis.set_ylim(-0.05, 1.05)
    for axis in axes.flat[len(panels) :]:
        axis.set_visible(False)
    figure.legend(handles=handles, loc="outside upper center", ncols=len(handles), frameon=False)
    figure.supxlabel("test noise sigma (the network's noise level)")
    better = "higher" if sweep.metric_directions.get(metric, True) else "lower"
    figure.supylabel(f"{metric} ({better} is better)")
    return figure


def _canonical(name: str) -> str:
    canonical = resolve_task_name(name)
    if canonical is None:
        check_choice("names", name, (*TASK_NAMES, *ALIASES))
    return canonical


def _trace(task, policy, sigma, seed, device) -> dict[str, np.ndarray]:
    """Observations, targets, masks and outputs ``[T, ...]`` of one trial of ``task``."""
    episode = task.open_loop_episode(1, generator=seed)
    trace = {
        "obs": episode.observations[:, 0].numpy(),
        "target": episode.targets[:, 0].numpy(),
        "mask": episode.masks[:, 0].numpy(),
    }
    if policy is not None:
        with torch.no_grad():
            result = rollout(
                policy,
                task,
                1,
                sigma=sigma,
                env_rng=seed,
                noise=torch.Generator().manual_seed(seed),
                device=device,
                record=True,
            )
        trace["output"] = result.actions[:, 0].cpu().numpy()
    return trace


def _draw_column(axes, trace: dict[str, np.ndarray], dt: float, rows: int) -> None:
    obs, target, mask = trace["obs"], trace["target"], trace["mask"]
    steps, ring = obs.shape[0], target.shape[1] - 1
    time = np.arange(steps) * dt
    extent = (0.0, steps * dt, -0.5, ring - 0.5)
    axes[0].plot(time, obs[:, 0], label="input", color="black")
    axes[0].plot(time, target[:, 0], label="target", color="tab:blue", linestyle="--")
    if "output" in trace:
        axes[0].plot(time, trace["output"][:, 0], label="output", color="tab:orange")
    axes[0].legend(fontsize=6, loc="lower left")
    heat_maps = [obs[:, 1 : 1 + ring], obs[:, 1 + ring : 1 + 2 * ring], target[:, 1:]]
    if "output" in trace:
        heat_maps.append(trace["output"][:, 1:])
    for axis, values in zip(axes[1:rows], heat_maps, strict=True):
        axis.imshow(values.T, aspect="auto", origin="lower", extent=extent, vmin=0, vmax=1)
    for start, stop in _unscored_runs(mask[:, 0]):
        for axis in axes:
            axis.axvspan(start * dt, stop * dt, color="grey", alpha=0.15, linewidth=0)


def _unscored_runs(weights: np.ndarray) -> list[tuple[int, int]]:
    """``(start, stop)`` of every run of steps with weight 0."""
    zero = np.concatenate([[False], weights == 0, [False]])
    edges = np.flatnonzero(np.diff(zero.astype(int)))
    return list(zip(edges[::2].tolist(), edges[1::2].tolist(), strict=True))
