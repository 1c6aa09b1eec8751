"""The mechanism analysis of one trained CTRNN: fixed points, shift, bias, kink occupancy.

:func:`analyze_model` runs every part of the account of noise preference on a network and its
task, and returns a :class:`MechanismReport` that prints as text and draws its figures;
``noisepref analyze RUN`` is a thin shell over :func:`analyze_run`.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch
from matplotlib.figure import Figure

from agents.atomic import atomic_write_text
from agents.ctrnn import CTRNN
from agents.noise_distribution import NoiseDistribution, training_noise
from agents.runs import load_run
from evaluation.mechanism.fixed_points import FixedPoint, find_fixed_points, sample_states
from evaluation.mechanism.kink import KinkOccupancy, kink_occupancy
from evaluation.mechanism.shift import NoiseShift, OutputBias, noise_shift, output_bias
from evaluation.plots.mechanism import (
    plot_kink_distances,
    plot_kink_occupancy,
    plot_output_bias,
    plot_stationary_mean,
)
from evaluation.plots.sweep import save_figure
from evaluation.sweep_result import format_rows
from noise_envs._checks import check_nonnegative, check_positive, check_positive_int
from noise_envs.config import JsonConfig
from noise_envs.core import Task

__all__ = [
    "AnalysisConfig",
    "MechanismReport",
    "analyze_model",
    "analyze_run",
    "kink_table",
    "write_reports",
]


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class AnalysisConfig(JsonConfig):
    """Options of :func:`analyze_model`."""

    num_inputs: int = 12
    """Constant inputs analysed: the first observations of this many of the task's episodes."""
    num_levels: int = 9
    """Noise levels, evenly spaced from 0 to max_level_factor x the training noise."""
    max_level_factor: float = 2.0
    """The largest noise level as a multiple of the training noise (of 1 if it was 0)."""
    steps: int = 1500
    """Simulation steps averaged per replica for the stationary statistics."""
    burn_in: int = 300
    """Simulation steps discarded first."""
    replicas: int = 16
    """Noise replicas per input and level in the stationary simulation."""
    episodes: int = 64
    """Task episodes per level for the output bias."""
    bias_replicas: int = 32
    """Noise replicas per episode for the output bias."""
    k: float = 1.0
    """A unit is near the kink when its pre-activation mean is within k standard deviations of it."""
    num_initial: int = 32
    """Initial states per input for the fixed-point solver (visited under the training noise)."""
    seed: int = 0
    """Seed of the inputs, the noise and the initial states."""

    def __post_init__(self) -> None:
        for name in ("num_inputs", "num_levels", "steps", "replicas", "episodes", "num_initial"):
            check_positive_int(name, getattr(self, name))
        if check_positive_int("bias_replicas", self.bias_replicas) < 2:
            raise ValueError(f"`bias_replicas` must be >= 2, got {self.bias_replicas}")
        check_nonnegative("burn_in", self.burn_in)
        check_positive("max_level_factor", self.max_level_factor)
        check_positive("k", self.k)
        check_nonnegative("seed", self.seed)

    def levels(self, train_sigma: float) -> np.ndarray:
        """The noise levels for a network trained at ``train_sigma``."""
        top = self.max_level_factor * (train_sigma if train_sigma > 0 else 1.0)
        return np.linspace(0.0, top, self.num_levels)


@dataclasses.dataclass(frozen=True, eq=False)
class MechanismReport:
    """Everything :func:`analyze_model` measured on one network."""

    label: str
    """Name of the network (e.g. the run folder's name)."""
    model: CTRNN
    """The network."""
    train_sigma: float
    """Its training noise."""
    inputs: torch.Tensor
    """The constant inputs analysed ``[B, I]``, sorted by their first entry."""
    fixed_points: tuple[tuple[FixedPoint, ...], ...]
    """The noise-free fixed points at each input."""
    shift: NoiseShift
    """Stationary means across noise levels, simulated and predicted."""
    bias: OutputBias
    """Output bias and error decomposition on the task across test noise."""
    kink: KinkOccupancy
    """Kink occupancy at the training noise (against each unit's measured spread)."""
    train_noise: NoiseDistribution | None = None
    """The distribution it was trained across, if any (``train_sigma`` is then where the
    analysis centres, usually its mean)."""

    def summary(self) -> str:
        """A plain-text report of the analysis."""
        config = self.model.config
        lines = [
            f"{self.label}: {config.activation}, noise {config.placement}, "
            f"gamma {config.gamma:g}, {self.training_summary()}",
            self.fixed_point_summary(),
            self.shift_summary(),
            self.bias_summary(),
            self.kink_summary(),
            "",
            self._bias_table(),
        ]
        return "\n".join(lines)

    def training_summary(self) -> str:
        """How it was trained and where the analysis centres, e.g. ``trained at sigma 0.5``."""
        noise = self.train_noise
        if noise is None or noise.is_fixed:
            return f"trained at sigma {self.train_sigma:g}"
        at = "its mean" if math.isclose(self.train_sigma, noise.mean) else "sigma"
        return f"trained across {noise.describe()}, analysed at {at} {self.train_sigma:g}"

    def fixed_point_summary(self) -> str:
        """One line: how many fixed points, stable and unstable, over the inputs."""
        stable = [sum(p.stable for p in points) for points in self.fixed_points]
        unstable = [sum(not p.stable for p in points) for points in self.fixed_points]
        return (
            f"noise-free fixed points over {len(self.fixed_points)} inputs: "
            f"{sum(stable)} stable, {sum(unstable)} unstable; "
            f"{sum(s > 1 for s in stable)} inputs multistable, {sum(s == 0 for s in stable)} "
            "without a stable one"
        )

    def kink_summary(self) -> str:
        """One line: the kink occupancy at the training noise (knee occupancy for tanh, sigmoid)."""
        kink, bend = self.kink, self.kink.bend_name
        if bend == "kink":
            where = f"{kink.active_share:.1%} above the kink (on)"
        else:
            where = f"{kink.saturated_share:.1%} beyond the knees (saturated)"
        return (
            f"{bend} occupancy (|mean - {bend}| < {kink.k:g} std at the training noise; "
            f"{kink.bend_description}): {kink.share:.1%} of units x inputs; {where}"
        )

    def _train_index(self) -> int:
        return int(np.argmin(np.abs(self.shift.levels - self.train_sigma)))

    def shift_summary(self) -> str:
        """One line: the output shift at the training noise, measured and predicted."""
        index = self._train_index()
        measured = self.shift.output_shift()[index]
        zero = self.shift.simulated.output_mean[0]
        predicted = self.shift.predicted_output_mean[index] - zero
        plain = self.shift.plain_output_mean[index] - zero

        def rms(x: torch.Tensor) -> float:
            return float(x.pow(2).mean().sqrt())

        return (
            f"stationary output shift at sigma {self.shift.levels[index]:.3g} (rms over inputs): "
            f"measured {rms(measured):.4g}, mean field + linear response {rms(predicted):.4g}, "
            f"plain mean field {rms(plain):.4g}"
        )

    def bias_summary(self) -> str:
        """One line: the output bias at the training noise against the zero-noise error.

        On a closed-loop task, where the bias is not defined, the mse at the training noise and
        at zero instead (the sweep's per-episode teacher error).
        """
        index = self.bias.level_index(self.train_sigma)
        if self.bias.closed_loop:
            return (
                f"output bias: not defined on a closed-loop task (each noise replica walks its "
                f"own path and meets its own targets); teacher mse per episode, as the sweep's: "
                f"{self.bias.mse[index]:.4g} at sigma {self.bias.levels[index]:.3g}, "
                f"{self.bias.error_zero:.4g} at zero noise"
            )
        bias = self.bias.bias[index]
        ratio = self.bias.error_zero / bias if bias > 0 else float("inf")
        return (
            f"output bias at sigma {self.bias.levels[index]:.3g}: E[(ybar - y0)^2] = {bias:.4g}; "
            f"zero-noise error E[(y0 - target)^2] = {self.bias.error_zero:.4g} "
            f"(ratio {ratio:.3g}); mse there {self.bias.mse[index]:.4g}"
        )

    def _bias_table(self) -> str:
        header = ("sigma", "bias^2", "mean error", "variance", "mse (per episode, as the sweep)")
        values = (self.bias.bias, self.bias.mean_error, self.bias.variance, self.bias.mse)
        if self.bias.closed_loop:
            header, values = (header[0], header[-1]), values[-1:]
        rows = [header]
        for i, level in enumerate(self.bias.levels):
            rows.append((f"{level:.3g}", *(f"{v[i]:.4g}" for v in values)))
        return format_rows(rows)

    def figures(self) -> dict[str, Figure]:
        """The figures by file stem: stationary mean, output bias, kink distances.

        Each is titled by the network's label; the stationary mean's inputs are numbered
        ``input 1..B`` in the order of :attr:`inputs` (sorted by their first entry).
        """
        return {
            "stationary_mean": plot_stationary_mean(
                self.shift,
                train_sigma=self.train_sigma,
                title=f"{self.label}: noise-induced shift of the stationary mean",
            ),
            "output_bias": plot_output_bias(
                {self.label: self.bias},
                train_sigma=self.train_sigma,
                title=f"{self.label}: {'mse' if self.bias.closed_loop else 'output bias'} "
                "across test noise",
            ),
            "kink_distances": plot_kink_distances(
                {self.label: self.kink},
                title=f"{self.label}: distance to the {self.kink.bend_name} at the training noise",
            ),
        }


def analyze_model(
    model: CTRNN,
    task: Task,
    *,
    train_sigma: float,
    config: AnalysisConfig | None = None,
    label: str = "network",
    device: torch.device | str = "cpu",
    train_noise: NoiseDistribution | None = None,
) -> MechanismReport:
    """Run the whole mechanism analysis on ``model`` and its ``task``.

    Args:
        model: a trained CTRNN.
        task: the task it was trained on.
        train_sigma: its training noise (the noise the analysis centres on; for a network
            trained across a distribution, usually the distribution's mean).
        config: analysis options (defaults if None).
        label: the network's name in the report.
        device: where to simulate.
        train_noise: the distribution it was trained across, if any; the report names it.

    Raises:
        ValueError: if ``model`` is not a CTRNN, ``train_sigma`` is negative or
            ``train_noise`` is not a NoiseDistribution.

    Returns:
        The report.
    """
    if not isinstance(model, CTRNN):
        raise ValueError(f"`model` must be a CTRNN, got {type(model).__name__}")
    check_nonnegative("train_sigma", train_sigma)
    if train_noise is not None and not isinstance(train_noise, NoiseDistribution):
        raise ValueError(
            f"`train_noise` must be a NoiseDistribution or None, got {type(train_noise).__name__}"
        )
    config = config or AnalysisConfig()
    _, obs = task.reset(config.num_inputs, generator=config.seed, device=device)
    inputs = obs[obs[:, 0].argsort()]
    levels = config.levels(train_sigma)
    shift = noise_shift(
        model,
        inputs,
        levels,
        steps=config.steps,
        burn_in=config.burn_in,
        replicas=config.replicas,
        seed=config.seed,
    )
    bias = output_bias(
        model,
        task,
        levels,
        episodes=config.episodes,
        replicas=config.bias_replicas,
        seed=config.seed,
        device=device,
    )
    return MechanismReport(
        label=label,
        model=model,
        train_sigma=float(train_sigma),
        inputs=inputs.cpu(),
        fixed_points=_fixed_points(model, inputs, train_sigma, config),
        shift=shift,
        bias=bias,
        kink=_kink(model, shift, train_sigma, config.k),
        train_noise=train_noise,
    )


def _fixed_points(
    model: CTRNN, inputs: torch.Tensor, sigma: float, config: AnalysisConfig
) -> tuple[tuple[FixedPoint, ...], ...]:
    found, seed = [], config.seed
    for u in inputs:
        # States visited under the training noise, and along the noise-free trajectory.
        noisy = sample_states(
            model, u, sigma, num_states=config.num_initial, steps=config.burn_in + 1, seed=seed
        )
        clean = sample_states(model, u, 0.0, num_states=4, steps=config.burn_in + config.steps)
        starts = torch.cat([noisy, clean])
        found.append(find_fixed_points(model, u, initial_states=starts))
    return tuple(found)


def _kink(model: CTRNN, shift: NoiseShift, sigma: float, k: float) -> KinkOccupancy:
    index = shift.simulated.level_index(sigma)
    stats = shift.simulated
    return kink_occupancy(
        stats.pre_mean[index], stats.pre_std[index].clamp_min(1e-12), model.config.activation, k=k
    )


def analyze_run(
    path: str | os.PathLike,
    config: AnalysisConfig | None = None,
    *,
    device: torch.device | str = "cpu",
) -> MechanismReport:
    """Load a run folder and analyse its network at its training noise.

    A network trained across a noise distribution is analysed at the distribution's mean, and
    its report names the distribution.
    """
    run = load_run(path, device=device)
    noise = training_noise(run.train_config)
    return analyze_model(
        run.model,
        run.task(),
        train_sigma=noise.mean,
        config=config,
        label=run.path.name,
        device=device,
        train_noise=noise,
    )


def kink_table(reports: Mapping[str, MechanismReport]) -> dict[str, dict[float, list[float]]]:
    """Kink occupancy by placement and training noise, for :func:`plot_kink_occupancy`."""
    table: dict[str, dict[float, list[float]]] = {}
    for report in reports.values():
        curve = table.setdefault(f"noise-{report.model.config.placement}", {})
        curve.setdefault(report.train_sigma, []).append(report.kink.share)
    return table


def write_reports(
    reports: Mapping[str, MechanismReport],
    folders: Mapping[str, str | os.PathLike],
    *,
    summary_folder: str | os.PathLike | None = None,
) -> list[Path]:
    """Write each report's text and figures into its folder, and the kink plot of all of them.

    Report ``label`` goes to ``folders[label]`` as ``mechanism.txt`` and
    ``mechanism_<figure>.png``; with ``summary_folder`` and more than one report,
    ``kink_occupancy.png`` compares them there.

    Returns:
        The paths written.
    """
    written = []
    for label, report in reports.items():
        folder = Path(folders[label])
        folder.mkdir(parents=True, exist_ok=True)
        atomic_write_text(folder / "mechanism.txt", report.summary() + "\n")
        written.append(folder / "mechanism.txt")
        for stem, figure in report.figures().items():
            written.append(save_figure(figure, folder / f"mechanism_{stem}.png"))
    if summary_folder is not None and len(reports) > 1:
        Path(summary_folder).mkdir(parents=True, exist_ok=True)
        figure = plot_kink_occupancy(kink_table(reports))
        written.append(save_figure(figure, Path(summary_folder) / "kink_occupancy.png"))
    return written
