"""The main job: train a noise-in and a noise-out CTRNN at the same noise, sweep, compare."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from agents.atomic import atomic_write_text
from agents.ctrnn import CTRNN, CTRNNConfig
from agents.runs import load_run
from agents.supervised import TrainConfig, train
from evaluation.grid.cell_run import SWEEP_FILES, run_cell
from evaluation.grid.spec import PLACEMENTS, GridSpec, SweepSpec, TaskSpec
from evaluation.plots.sweep import plot_sweep, save_figure
from evaluation.stats import Preference, preference, preference_table
from evaluation.sweep import sweep_noise
from evaluation.sweep_result import SweepResult
from noise_envs._checks import check_nonnegative, check_positive, check_positive_int
from noise_envs.config import JsonConfig
from noise_envs.registration import make_task

__all__ = [
    "LABELS",
    "PlacementComparison",
    "PlacementConfig",
    "compare_placements",
    "demo_verdicts",
    "placement_grid",
    "write_demo_outputs",
]

LABELS = {"in": "noise-in", "out": "noise-out"}
"""The label of each noise placement in tables and figures."""


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class PlacementConfig(JsonConfig):
    """A noise-in versus noise-out experiment: same task, size and training noise."""

    task: str = "NoisyFunctionApprox-v0"
    """Environment id of the task."""
    sigma: float = 0.5
    """Training noise of both networks."""
    hidden_size: int = 32
    """Recurrent units per network."""
    activation: str = "relu"
    """Activation of both networks."""
    dt: float = 20.0
    """Time step in ms."""
    tau: float = 100.0
    """Time constant in ms."""
    iterations: int = 600
    """Training iterations per network."""
    batch_size: int = 64
    """Episodes per training iteration."""
    learning_rate: float = 3e-3
    """Adam learning rate."""
    episodes: int = 256
    """Episodes per test noise level in the sweep."""
    num_levels: int = 17
    """Test noise levels, evenly spaced from 0 to max_level_factor * sigma."""
    max_level_factor: float = 2.0
    """The largest test noise as a multiple of the training noise."""
    seed: int = 0
    """Seed of the initial weights, the training data and noise, and the sweep."""

    def __post_init__(self) -> None:
        make_task(self.task)
        check_positive("sigma", self.sigma)
        check_positive_int("num_levels", self.num_levels)
        check_positive("max_level_factor", self.max_level_factor)
        check_positive_int("episodes", self.episodes)
        check_nonnegative("seed", self.seed)

    @property
    def tag(self) -> str:
        """The name of this config's outputs: ``sigma0.5``, plus every changed training option.

        For example ``sigma1-hidden-size16-iterations300``: another training config is another
        pair of run folders, never a resumed or refused one.
        """
        parts = [f"sigma{self.sigma:g}"]
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if field.name in _TRAINING_FIELDS and value != field.default:
                text = f"{value:g}" if isinstance(value, float) else str(value)
                parts.append(field.name.replace("_", "-") + text)
        return "-".join(parts)

    def run_name(self, placement: str) -> str:
        """The run folder of the network with noise ``placement``, e.g. ``noise-in-sigma0.5``."""
        return f"{LABELS[placement]}-{self.tag}"

    @property
    def levels(self) -> np.ndarray:
        """The test noise levels of the sweep."""
        return np.linspace(0.0, self.max_level_factor * self.sigma, self.num_levels)

    def model_config(self, placement: str) -> CTRNNConfig:
        """The CTRNN config of the network with noise ``placement``."""
        task = make_task(self.task)
        return CTRNNConfig(
            input_size=task.obs_size,
            output_size=task.action_size,
            hidden_size=self.hidden_size,
            activation=self.activation,
            placement=placement,
            dt=self.dt,
            tau=self.tau,
        )

    def grid_spec(self) -> GridSpec:
        """This comparison as an experiment grid: one task, both placements, one sigma and seed.

        Its two cells train and sweep exactly the networks of :meth:`model_config` and
        :meth:`train_config` at :attr:`levels`.
        """
        return placement_grid(self.tag, TaskSpec(id=self.task), self, self.levels)

    def train_config(self) -> TrainConfig:
        """The training config shared by both networks."""
        return TrainConfig(
            sigma=self.sigma,
            iterations=self.iterations,
            batch_size=self.batch_size,
            learning_rate=self.learning_rate,
            seed=self.seed,
        )


_TRAINING_FIELDS = (
    "task",
    "hidden_size",
    "activation",
    "dt",
    "tau",
    "iterations",
    "batch_size",
    "learning_rate",
    "seed",
)
"""The fields besides ``sigma`` that change the trained networks (the rest change the sweep)."""


def placement_grid(
    name: str,
    task: TaskSpec,
    settings: Any,
    levels: Sequence[float] | np.ndarray,
    placements: Sequence[str] = PLACEMENTS,
) -> GridSpec:
    """A placement comparison as a grid: one task, one sigma and seed, one cell per placement.

    Args:
        name: the grid's name.
        task: the task and its options.
        settings: a :class:`PlacementConfig`, or anything with its training attributes
            (``sigma``, ``seed``, ``hidden_size``, ``activation``, ``dt``, ``tau``,
            ``iterations``, ``batch_size``, ``learning_rate``, ``episodes``), e.g. an
            example's parsed arguments.
        levels: the sweep's test noise levels.
        placements: the noise placements compared.
    """
    return GridSpec(
        tasks=(task,),
        name=name,
        placements=tuple(placements),
        train_sigmas=(float(settings.sigma),),
        seeds=(settings.seed,),
        model={
            "hidden_size": settings.hidden_size,
            "activation": settings.activation,
            "dt": settings.dt,
            "tau": settings.tau,
        },
        training={
            "iterations": settings.iterations,
            "batch_size": settings.batch_size,
            "learning_rate": settings.learning_rate,
        },
        sweep=SweepSpec(
            test_sigmas=tuple(float(level) for level in levels),
            episodes=settings.episodes,
            seed=settings.seed,
        ),
    )


@dataclasses.dataclass(frozen=True)
class PlacementComparison:
    """Sweeps and preference statistics of the two networks, keyed ``noise-in`` / ``noise-out``."""

    config: PlacementConfig
    models: dict[str, CTRNN]
    sweeps: dict[str, SweepResult]
    preferences: dict[str, Preference]

    def table(self) -> str:
        """The preference table, one row per network."""
        return preference_table(
            self.preferences, {label: self.config.sigma for label in self.sweeps}
        )


def compare_placements(
    config: PlacementConfig,
    *,
    out_dir: str | Path | None = None,
    device: torch.device | str = "cpu",
    progress: bool = True,
) -> PlacementComparison:
    """Train both networks, sweep their test noise and measure their preference.

    With ``out_dir`` the networks are the cells of :meth:`PlacementConfig.grid_spec`, run by the
    grid's cell runner into ``out_dir/noise-in-<tag>`` and ``out_dir/noise-out-<tag>``
    (:attr:`PlacementConfig.tag`; an interrupted demo resumes, a finished one is checked and
    reused, a corrupt one redone), each holding its ``sweep.csv``.
    """
    if out_dir is not None:
        return _compare_in_grid(config, Path(out_dir), device, progress)
    task = make_task(config.task)
    models, sweeps, preferences = {}, {}, {}
    for placement, label in LABELS.items():
        model = _trained_model(config, placement, device, progress)
        sweeps[label] = sweep_noise(
            model, task, config.levels, episodes=config.episodes, seed=config.seed, device=device
        )
        models[label] = model
        preferences[label] = preference(sweeps[label], seed=config.seed)
    return PlacementComparison(config, models, sweeps, preferences)


def _compare_in_grid(
    config: PlacementConfig, out_dir: Path, device: torch.device | str, progress: bool
) -> PlacementComparison:
    cells = {cell.placement: cell for cell in config.grid_spec().cells()}
    models, sweeps, preferences = {}, {}, {}
    for placement, label in LABELS.items():
        folder = out_dir / config.run_name(placement)
        run_cell(cells[placement], folder, device=device, progress=progress)
        sweeps[label] = SweepResult.from_csv(folder / SWEEP_FILES["model"])
        sweeps[label].to_csv(folder / "sweep.csv")
        models[label] = load_run(folder, device=device).model
        preferences[label] = preference(sweeps[label], seed=config.seed)
    return PlacementComparison(config, models, sweeps, preferences)


def _trained_model(
    config: PlacementConfig,
    placement: str,
    device: torch.device | str,
    progress: bool,
) -> CTRNN:
    model_config, train_config = config.model_config(placement), config.train_config()
    model = CTRNN(model_config, generator=torch.Generator().manual_seed(config.seed))
    train(model, make_task(config.task), train_config, device=device, progress=progress)
    return model


def demo_verdicts(comparison: PlacementComparison) -> list[tuple[str, bool]]:
    """The paper's claims checked on a comparison, each with whether it holds.

    Noise-in prefers about its training noise and is at least twice as bad at zero; noise-out
    prefers (nearly) zero.
    """
    sigma = comparison.config.sigma
    noise_in, noise_out = comparison.preferences["noise-in"], comparison.preferences["noise-out"]
    return [
        (
            f"noise-in best test noise {noise_in.sigma_star:.3g} within [0.5, 1.5] x {sigma:g}",
            0.5 * sigma <= noise_in.sigma_star <= 1.5 * sigma,
        ),
        (
            f"noise-in at zero noise {noise_in.ratio:.2f}x worse than at its best (>= 2)",
            noise_in.ratio >= 2.0,
        ),
        (
            f"noise-out best test noise {noise_out.sigma_star:.3g} <= 0.25 x {sigma:g}",
            noise_out.sigma_star <= 0.25 * sigma,
        ),
    ]


def write_demo_outputs(comparison: PlacementComparison, out_dir: str | Path) -> dict[str, Path]:
    """Write the preference table and the noise-preference plot into ``out_dir``.

    They are ``preference-<tag>.txt`` and ``noise_preference-<tag>.png``
    (:attr:`PlacementConfig.tag`), so demos of other configs keep theirs.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    tag = comparison.config.tag
    table_path = out_dir / f"preference-{tag}.txt"
    lines = [comparison.table(), ""] + [
        f"[{'PASS' if ok else 'FAIL'}] {claim}" for claim, ok in demo_verdicts(comparison)
    ]
    atomic_write_text(table_path, "\n".join(lines) + "\n")
    figure = plot_sweep(comparison.sweeps, train_sigma=comparison.config.sigma)
    figure_path = out_dir / f"noise_preference-{tag}.png"
    save_figure(figure, figure_path)
    return {"table": table_path, "figure": figure_path}
