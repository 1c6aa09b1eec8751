"""The grid spec: which tasks, models, placements, noise levels and seeds to train and sweep.

A :class:`GridSpec` is built in Python or read from TOML (:func:`load_spec`); :meth:`GridSpec.cells`
validates the whole spec before anything trains and expands it into one :class:`~evaluation.grid.
cells.Cell` per task x training ``obs_noise`` x placement x training noise x seed. A bad entry
(unknown task or option, an empty list, a negative sigma, a bad distribution, two entries giving
the same cell) is a ``ValueError`` that names it, e.g. ``grid spec: tasks[1].options: unknown
FunctionApproxConfig option 'stepz' ...``.

The training noise (``train_sigmas``) is a factor of fixed levels and distributions
(:class:`~agents.noise_distribution.NoiseDistribution`): a number is a fixed level, a string is a
distribution spec drawn per episode (``"uniform:0,1"``, ``"log_uniform:0.05,1"``,
``"discrete:0,0.5,1@1,2,1"``), a table ``{ dist = "uniform:0,1", per = "batch" }`` draws one
level per batch. A fixed-level cell's config (and hash) is what it was before distributions.

TOML layout (every table but ``[[tasks]]`` optional)::

    name = "function_approx"
    placements = ["in", "out"]
    train_sigmas = [0.25, 0.5, 1.0, "uniform:0,1"]   # fixed levels and distributions
    seeds = [0, 1]
    train_obs_noise = [0.0]          # the environment noise the networks train with
    model_kind = "ctrnn"             # or "noisy_mlp"; trainer = "rl" trains with stable-baselines3
    [model]                          # CTRNNConfig / NoisyMLPConfig options (sizes come from the task)
    hidden_size = 32
    [training]                       # TrainConfig (or RLTrainConfig) options but sigma and seed
    iterations = 400
    [sweep]
    axes = ["model"]                 # "model": the network's noise; "env": the observation noise
    test_sigmas = [0, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0]
    test_obs_noise = [0, 0.1, 0.2]   # the env axis's levels
    episodes = 128
    seed = 0
    [[tasks]]
    id = "NoisyFunctionApprox-v0"
    label = "function_approx"        # default: derived from the id
    options = { steps = 50 }         # plus optional model / training / sweep overrides
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from agents.noise_distribution import SPEC_EXAMPLES, NoiseDistribution
from evaluation.grid.cells import AXES, TRAINERS, Cell
from noise_envs._checks import MAX_NOISE
from noise_envs.registration import task_class

try:  # Python >= 3.11
    import tomllib
except ModuleNotFoundError:  # pragma: no cover - Python 3.10: the tomli backport (a dependency)
    import tomli as tomllib

__all__ = ["GridSpec", "SweepSpec", "TaskSpec", "load_spec", "spec_from_dict"]

PLACEMENTS = ("in", "out")
RESERVED_TRAINING = ("sigma", "sigma_dist", "seed")
"""Training options that are grid factors, not ``[training]`` entries."""
RESERVED_MODEL = ("input_size", "output_size", "placement")
"""Model options the grid sets itself: sizes from the task, placement from the factor."""
SUPERVISED_KINDS = ("ctrnn", "noisy_mlp")
NOISE_TABLE_KEYS = ("dist", "per")
"""The keys of a ``train_sigmas`` table entry: the distribution's spec and how it is drawn."""
RL_KINDS = {"ctrnn": "CTRNNPolicyConfig", "noisy_mlp": "MLPPolicyConfig"}


@dataclasses.dataclass(frozen=True, kw_only=True)
class SweepSpec:
    """What each cell's sweep varies and how many episodes it runs."""

    axes: tuple[str, ...] = ("model",)
    """``model`` sweeps the network's noise (environment at its training ``obs_noise``); ``env``
    sweeps the observation noise (network at its training sigma)."""
    test_sigmas: tuple[float, ...] = (0.0, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0)
    """Test levels of the network's noise; must include 0."""
    test_obs_noise: tuple[float, ...] = (0.0, 0.05, 0.1, 0.2, 0.4)
    """Test levels of the observation noise (the ``env`` axis); must include 0."""
    episodes: int = 128
    """Episodes per test level."""
    seed: int = 0
    """Seed of the sweep's random numbers (common across levels)."""
    metric: str | None = None
    """The metric sigma* is judged on (default: the task's primary metric)."""


@dataclasses.dataclass(frozen=True, kw_only=True)
class TaskSpec:
    """One task of the grid, with its options and overrides of the grid's model, training, sweep."""

    id: str
    """Environment id, e.g. ``NoisyFunctionApprox-v0``."""
    options: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    """The task's options (``obs_noise`` comes from the grid's ``train_obs_noise``)."""
    label: str | None = None
    """Short name in tables, figures and folder names; default derived from the id."""
    model: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    """Model options for this task, over the grid's."""
    training: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    """Training options for this task, over the grid's."""
    sweep: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    """Sweep options for this task, over the grid's."""

    @property
    def name(self) -> str:
        """The label, or the id in snake case without ``Noisy`` and the version."""
        if self.label:
            return self.label
        stem = self.id.split("/")[-1].split(":")[-1].removeprefix("Noisy").split("-v")[0]
        return re.sub(r"(?<!^)(?=[A-Z])", "_", stem).lower()


@dataclasses.dataclass(frozen=True, kw_only=True)
class GridSpec:
    """An experiment grid: tasks x training obs_noise x placements x training noise x seeds."""

    tasks: tuple[TaskSpec, ...]
    """The tasks, each with its options."""
    name: str = "grid"
    """The grid's name (in the summary's file names)."""
    placements: tuple[str, ...] = PLACEMENTS
    """Noise placements: ``in`` and/or ``out``."""
    train_sigmas: tuple[float | str | Mapping[str, str] | NoiseDistribution, ...] = (0.5,)
    """Training noise of the networks: fixed levels (numbers) and distributions (a spec string
    such as ``"uniform:0,1"`` drawn per episode, a ``{"dist": ..., "per": "batch"}`` table, or a
    :class:`~agents.noise_distribution.NoiseDistribution`)."""
    seeds: tuple[int, ...] = (0,)
    """Training seeds (initial weights, episodes, noise)."""
    train_obs_noise: tuple[float, ...] = (0.0,)
    """Observation noise of the environment during training."""
    model_kind: str = "ctrnn"
    """``ctrnn`` or ``noisy_mlp`` (the feedforward variant)."""
    trainer: str = "supervised"
    """``supervised`` (BPTT) or ``rl`` (stable-baselines3, the ``rl`` extra)."""
    model: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    """Model options shared by every task (the task's own override them)."""
    training: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    """Training options shared by every task, without ``sigma``, ``sigma_dist`` and ``seed``."""
    sweep: SweepSpec = dataclasses.field(default_factory=SweepSpec)
    """The sweep of every cell (a task's ``sweep`` overrides it)."""
    ensemble_size: int = 1
    """Cells that share task and architecture (supervised CTRNNs differing in placement, sigma
    and seed) train together as one ensemble, this many at a time; 1 trains each alone."""

    def train_noises(self) -> list[NoiseDistribution]:
        """The ``train_sigmas`` entries as distributions (a fixed one for a number), in order.

        Raises:
            ValueError: naming the first bad entry (``train_sigmas[i]``) or a duplicate.
        """
        if not isinstance(self.train_sigmas, (tuple, list)) or len(self.train_sigmas) == 0:
            raise ValueError(
                f"grid spec: `train_sigmas` must be a non-empty list, got {self.train_sigmas!r}"
            )
        noises: list[NoiseDistribution] = []
        for index, value in enumerate(self.train_sigmas):
            noise = _train_noise(value, index)
            if noise in noises:
                raise ValueError(
                    f"grid spec: `train_sigmas[{index}]` ({value!r}) is the same training noise as "
                    f"`train_sigmas[{noises.index(noise)}]`; list each value once"
                )
            noises.append(noise)
        return noises

    def cells(self) -> list[Cell]:
        """Validate the whole spec and expand it into its cells, in a fixed order.

        Raises:
            ValueError: naming the first bad entry; nothing has been trained.
        """
        _check_factors(self)
        cells: list[Cell] = []
        origin: dict[str, str] = {}
        for index, task in enumerate(self.tasks):
            entry = f"tasks[{index}]"
            for cell in _task_cells(self, task, entry):
                if cell.key in origin:
                    raise ValueError(
                        f"grid spec: {entry} ({task.id}) gives the same cell as {origin[cell.key]} "
                        f"({cell.folder_name}); remove the duplicate entry"
                    )
                origin[cell.key] = entry
                cells.append(cell)
        return cells


def load_spec(path: str | Path) -> GridSpec:
    """Read a grid spec from a TOML file (see the module docstring); not yet validated.

    Raises:
        ValueError: if the file is not TOML or has unknown keys (named).
    """
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as error:
        raise ValueError(f"grid spec {path} is not valid TOML: {error}") from error
    return spec_from_dict(data, source=str(path))


def spec_from_dict(data: Mapping[str, Any], *, source: str = "grid spec") -> GridSpec:
    """A :class:`GridSpec` from a dict shaped like the TOML file; unknown keys are refused."""
    data = dict(data)
    _check_keys(data, GridSpec, source)
    if "tasks" not in data or not isinstance(data["tasks"], list):
        raise ValueError(f"{source}: `tasks` must be a list of [[tasks]] tables with an `id`")
    tasks = []
    for index, entry in enumerate(data.pop("tasks")):
        if not isinstance(entry, Mapping) or "id" not in entry:
            raise ValueError(f"{source}: tasks[{index}] must be a table with an `id`")
        _check_keys(entry, TaskSpec, f"{source}: tasks[{index}]")
        tasks.append(TaskSpec(**entry))
    sweep = data.pop("sweep", {})
    _check_keys(sweep, SweepSpec, f"{source}: sweep")
    sweep = SweepSpec(**{k: tuple(v) if isinstance(v, list) else v for k, v in sweep.items()})
    values = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}
    return GridSpec(tasks=tuple(tasks), sweep=sweep, **values)


def _check_keys(data: Mapping[str, Any], cls: type, where: str) -> None:
    allowed = [field.name for field in dataclasses.fields(cls)]
    unknown = [key for key in data if key not in allowed]
    if unknown:
        raise ValueError(f"{where}: unknown key {unknown[0]!r}; allowed: {sorted(allowed)}")


def _check_factors(spec: GridSpec) -> None:
    """The grid-level factors: non-empty, no duplicates, in range."""
    if not spec.tasks:
        raise ValueError("grid spec: `tasks` is empty; list at least one [[tasks]] entry")
    if spec.trainer not in TRAINERS:
        raise ValueError(f"grid spec: `trainer` is {spec.trainer!r}; allowed: {list(TRAINERS)}")
    if spec.model_kind not in SUPERVISED_KINDS:
        raise ValueError(
            f"grid spec: `model_kind` is {spec.model_kind!r}; allowed: {list(SUPERVISED_KINDS)}"
        )
    _check_values(spec)
    for name, mapping, reserved in (
        ("model", spec.model, RESERVED_MODEL),
        ("training", spec.training, RESERVED_TRAINING),
    ):
        _check_reserved(name, mapping, reserved)


def _check_values(spec: GridSpec) -> None:
    for name in ("placements", "seeds", "train_obs_noise"):
        _check_list(name, getattr(spec, name))
    spec.train_noises()
    for placement in spec.placements:
        if placement not in PLACEMENTS:
            raise ValueError(
                f"grid spec: `placements` has {placement!r}; allowed: {list(PLACEMENTS)}"
            )
    for value in spec.train_obs_noise:
        _check_level("train_obs_noise", value)
    for seed in spec.seeds:
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise ValueError(f"grid spec: `seeds` has {seed!r}; seeds are integers >= 0")
    size = spec.ensemble_size
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise ValueError(f"grid spec: `ensemble_size` must be an integer >= 1, got {size!r}")


def _check_list(name: str, values: Sequence[Any]) -> None:
    if not isinstance(values, (tuple, list)) or len(values) == 0:
        raise ValueError(f"grid spec: `{name}` must be a non-empty list, got {values!r}")
    seen = set()
    for value in values:
        if value in seen:
            raise ValueError(f"grid spec: `{name}` lists {value!r} twice; list each value once")
        seen.add(value)


def _check_level(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"grid spec: `{name}` has {value!r}; noise levels are numbers >= 0")
    if not math.isfinite(value) or value < 0 or value > MAX_NOISE:
        raise ValueError(
            f"grid spec: `{name}` has {value!r}; noise levels must be finite, >= 0 and "
            f"<= {MAX_NOISE:g}"
        )


def _train_noise(value: Any, index: int) -> NoiseDistribution:
    """One ``train_sigmas`` entry as a distribution; a ValueError names the entry."""
    where = f"grid spec: `train_sigmas[{index}]` is {value!r}"
    if isinstance(value, NoiseDistribution):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        _check_level("train_sigmas", value)
        return NoiseDistribution.fixed(float(value))
    if isinstance(value, Mapping):
        unknown = [key for key in value if key not in NOISE_TABLE_KEYS]
        if unknown or not isinstance(value.get("dist"), str):
            raise ValueError(
                f"{where}; a table entry needs `dist` (a spec string) and optionally `per` "
                f"(row or batch), keys {list(NOISE_TABLE_KEYS)}"
            )
        text, per = value["dist"], value.get("per", "row")
    elif isinstance(value, str):
        text, per = value, "row"
    else:
        raise ValueError(
            f"{where}; entries are noise levels >= 0 or distribution specs such as {SPEC_EXAMPLES}"
        )
    try:
        return NoiseDistribution.parse(text, per=per)
    except ValueError as error:
        raise ValueError(f"{where}: {error}") from None


def _check_reserved(name: str, mapping: Mapping[str, Any], reserved: Sequence[str]) -> None:
    if not isinstance(mapping, Mapping):
        raise ValueError(f"grid spec: `{name}` must be a table of options, got {mapping!r}")
    taken = [key for key in mapping if key in reserved]
    if taken:
        raise ValueError(
            f"grid spec: `{name}.{taken[0]}` is set by the grid itself (its factors or the task); "
            "remove it"
            + (" and list the distribution in `train_sigmas`" if "dist" in taken[0] else "")
        )


def _check_sweep(sweep: SweepSpec, entry: str) -> None:
    _check_list(f"{entry}.sweep.axes", sweep.axes)
    for axis in sweep.axes:
        if axis not in AXES:
            raise ValueError(f"grid spec: `{entry}.sweep.axes` has {axis!r}; allowed: {list(AXES)}")
    for name in ("test_sigmas", "test_obs_noise"):
        levels = getattr(sweep, name)
        _check_list(f"{entry}.sweep.{name}", levels)
        for level in levels:
            _check_level(f"{entry}.sweep.{name}", level)
        if 0 not in levels:
            raise ValueError(
                f"grid spec: `{entry}.sweep.{name}` must include 0 (sigma* is compared with zero "
                f"noise), got {list(levels)}"
            )
    for name in ("episodes", "seed"):
        value = getattr(sweep, name)
        low = 1 if name == "episodes" else 0
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ValueError(f"grid spec: `{entry}.sweep.{name}` must be an integer >= {low}")


def _task_cells(spec: GridSpec, task: TaskSpec, entry: str) -> list[Cell]:
    """The cells of one task entry, every option checked by building its config once."""
    try:
        cls = task_class(task.id)
    except ValueError as error:
        raise ValueError(f"grid spec: {entry}.id: {error}") from None
    if "obs_noise" in task.options:
        raise ValueError(
            f"grid spec: `{entry}.options.obs_noise` is a grid factor; set `train_obs_noise`"
        )
    _check_reserved(f"{entry}.model", task.model, RESERVED_MODEL)
    _check_reserved(f"{entry}.training", task.training, RESERVED_TRAINING)
    sweep = _task_sweep(spec.sweep, task, entry)
    metrics = [metric.name for metric in cls.metrics if not getattr(metric, "label", False)]
    if sweep.metric is not None and sweep.metric not in metrics:
        raise ValueError(
            f"grid spec: `{entry}.sweep.metric` is {sweep.metric!r}; {cls.id} reports {metrics}"
        )
    task_kwargs = {}
    for obs_noise in spec.train_obs_noise:
        options = dict(task.options) | {"obs_noise": obs_noise}
        task_kwargs[obs_noise] = _checked(f"{entry}.options", lambda o=options: cls(**o)).config
    model_options = dict(spec.model) | dict(task.model)
    training = dict(spec.training) | dict(task.training)
    cells = []
    for obs_noise, placement, noise, seed in itertools.product(
        spec.train_obs_noise, spec.placements, spec.train_noises(), spec.seeds
    ):
        config = task_kwargs[obs_noise]
        example = cls(**config.to_dict())
        kind, model = _model_config(spec, example, model_options, placement, entry)
        train = _train_config(spec.trainer, training, noise, seed, entry)
        cells.append(
            Cell(
                label=task.name,
                task_id=cls.id,
                task_kwargs=config.to_dict(),
                model_kind=kind,
                model=model,
                trainer=spec.trainer,
                train=train,
                sweep=_sweep_dict(sweep),
            )
        )
    return cells


def _sweep_dict(sweep: SweepSpec) -> dict[str, Any]:
    """The sweep as a cell holds it; no ``metric`` key for the default (older cells' hashes)."""
    values = dataclasses.asdict(sweep)
    if values["metric"] is None:
        del values["metric"]
    return values


def _task_sweep(base: SweepSpec, task: TaskSpec, entry: str) -> SweepSpec:
    _check_keys(task.sweep, SweepSpec, f"grid spec: {entry}.sweep")
    overrides = {k: tuple(v) if isinstance(v, list) else v for k, v in task.sweep.items()}
    sweep = dataclasses.replace(base, **overrides)
    _check_sweep(sweep, entry)
    return dataclasses.replace(
        sweep,
        axes=tuple(sweep.axes),
        test_sigmas=tuple(sorted(float(x) for x in sweep.test_sigmas)),
        test_obs_noise=tuple(sorted(float(x) for x in sweep.test_obs_noise)),
    )


def _checked(where: str, build: Any) -> Any:
    """``build()``, its ValueError / TypeError reworded to name the spec's entry."""
    try:
        return build()
    except (ValueError, TypeError) as error:
        raise ValueError(f"grid spec: {where}: {error}") from None


def _model_config(
    spec: GridSpec, task: Any, options: dict[str, Any], placement: str, entry: str
) -> tuple[str, dict[str, Any]]:
    """The model kind and its config dict for one cell (sizes from the task)."""
    if spec.trainer == "rl":
        from agents.sb3 import config as sb3_config  # configs only: no stable-baselines3 import

        kind = RL_KINDS[spec.model_kind]
        cls = getattr(sb3_config, kind)
        config = _checked(f"{entry}.model", lambda: cls(placement=placement, **options))
        return kind, config.to_dict()
    from agents.models import MODEL_KINDS

    cls = MODEL_KINDS[spec.model_kind][0]
    sizes = {"input_size": task.obs_size, "output_size": task.action_size}
    config = _checked(f"{entry}.model", lambda: cls(placement=placement, **sizes, **options))
    return spec.model_kind, config.to_dict()


def _train_config(
    trainer: str, options: dict[str, Any], noise: NoiseDistribution, seed: int, entry: str
) -> dict[str, Any]:
    """The trainer's config dict: ``sigma`` for a fixed level, ``sigma_dist`` for a distribution.

    A fixed level gives the dict it gave before distributions existed (so the same hash).
    """
    if trainer == "rl":
        from agents.sb3.config import RLTrainConfig as cls
    else:
        from agents.train_config import TrainConfig as cls
    values = {k: tuple(v) if isinstance(v, list) else v for k, v in options.items()}
    if noise.kind == "fixed":
        values["sigma"] = float(noise.levels[0])
        where = f"{entry}.training"
    else:
        values["sigma_dist"] = noise
        where = f"{entry}.training with train_sigmas entry {noise.describe()!r}"
    config = _checked(where, lambda: cls(seed=seed, **values))
    return config.to_dict()
