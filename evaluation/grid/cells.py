"""One cell of an experiment grid: the full config of one network, trained then swept.

A :class:`Cell` holds plain JSON (the task, the model, the trainer's config and the sweep), so it
crosses process and machine boundaries (local workers, Ray) as text, and its content hash names
its run folder: the same config always lands in the same folder, another config never does.

The hash leaves out every config field (task option, model or training option) that holds its
class's default value (:meth:`Cell.hashed`), so adding a field whose default keeps the old
behaviour does not rename, and so retrain, every cell of every grid. The price: changing a
field's *default* would silently keep the old folders for a new behaviour, so whoever changes a
default bumps :data:`HASH_VERSION`, which renames every cell.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Sequence
from typing import Any

from agents.noise_distribution import NoiseDistribution, as_noise_distribution
from noise_envs._checks import check_choice

__all__ = ["AXES", "TRAINERS", "Cell", "canonical_json", "ensemble_chunks"]

AXES = ("model", "env")
"""What a sweep varies: the model's noise sigma, or the environment's observation noise."""
TRAINERS = ("supervised", "rl")
"""How a cell's network is trained: BPTT on the teacher loss, or stable-baselines3."""
HASH_LENGTH = 12
"""Hex digits of the content hash in a cell's folder name (48 bits)."""
HASH_VERSION = 1
"""Bump when a config field's default value changes (the hash leaves defaults out)."""


def canonical_json(value: Any) -> str:
    """``value`` as JSON with sorted keys and no spaces: equal configs give equal text."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), allow_nan=False)


@dataclasses.dataclass(frozen=True, eq=False)
class Cell:
    """The full config of one grid cell, as JSON-compatible values.

    Attributes:
        label: the task's short name in tables and figures (e.g. ``function_approx``).
        task_id: the environment id.
        task_kwargs: the task's options, the training ``obs_noise`` included.
        model_kind: a :data:`~agents.models.MODEL_KINDS` name (``ctrnn``, ``noisy_mlp``), or the
            policy config class of an RL cell (``CTRNNPolicyConfig``, ``MLPPolicyConfig``).
        model: the model's (or policy's) config as a dict.
        trainer: ``supervised`` or ``rl``.
        train: the trainer's config as a dict (TrainConfig or RLTrainConfig).
        sweep: ``axes``, ``test_sigmas``, ``test_obs_noise``, ``episodes`` and ``seed``.
    """

    label: str
    task_id: str
    task_kwargs: dict[str, Any]
    model_kind: str
    model: dict[str, Any]
    trainer: str
    train: dict[str, Any]
    sweep: dict[str, Any]

    def __post_init__(self) -> None:
        check_choice("trainer", self.trainer, TRAINERS)
        for axis in self.sweep["axes"]:
            check_choice("sweep axis", axis, AXES)

    def to_dict(self) -> dict[str, Any]:
        """The cell as a JSON-compatible dict (round-trips through :meth:`from_dict`)."""
        return json.loads(canonical_json(dataclasses.asdict(self)))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Cell:
        """The cell written by :meth:`to_dict`."""
        return cls(**data)

    def hashed(self) -> dict[str, Any]:
        """:meth:`to_dict` without the config fields that hold their class's default value.

        Task options, model and training options are compared with the defaults of the task's,
        the model's and the trainer's config classes; the label and the sweep are kept whole.
        """
        data = self.to_dict()
        data["task_kwargs"] = _without_defaults(data["task_kwargs"], _task_config(self.task_id))
        data["model"] = _without_defaults(data["model"], _model_config(self))
        data["train"] = _without_defaults(data["train"], _train_config(self.trainer))
        return data

    @property
    def key(self) -> str:
        """The content hash of the config (first 12 hex digits of its SHA-256).

        Of :meth:`hashed` (defaulted fields left out) and, from version 2 on,
        :data:`HASH_VERSION`.
        """
        hashed: Any = self.hashed()
        if HASH_VERSION > 1:
            hashed = [HASH_VERSION, hashed]
        digest = hashlib.sha256(canonical_json(hashed).encode("utf-8"))
        return digest.hexdigest()[:HASH_LENGTH]

    @property
    def full_key(self) -> str:
        """The hash of the full config, defaults included: the folder names before this version."""
        digest = hashlib.sha256(canonical_json(self.to_dict()).encode("utf-8"))
        return digest.hexdigest()[:HASH_LENGTH]

    def same_config(self, data: Any) -> bool:
        """Whether ``data`` (a cell's dict, as ``cell.json`` stores it) is this cell's config.

        Fields at their defaults aside: a cell recorded before a defaulted field existed is
        still this cell.
        """
        try:
            other = Cell.from_dict(data)
        except (TypeError, ValueError, KeyError):
            return False
        return canonical_json(other.hashed()) == canonical_json(self.hashed())

    @property
    def placement(self) -> str:
        """Where the noise enters: ``in`` or ``out``."""
        return str(self.model["placement"])

    @property
    def train_sigma(self) -> float:
        """The training noise level; a distribution's mean (its reference level)."""
        return self.train_noise.mean

    @property
    def train_noise(self) -> NoiseDistribution:
        """The training noise: the cell's ``sigma_dist``, else its fixed ``sigma``."""
        dist = as_noise_distribution(self.train.get("sigma_dist"))
        return dist if dist is not None else NoiseDistribution.fixed(float(self.train["sigma"]))

    @property
    def train_noise_label(self) -> str:
        """The training noise in tables and figures.

        ``0.5`` for a fixed level, ``uniform:0,1`` (drawn per episode), ``uniform:0,1 per batch``.
        """
        noise = self.train_noise
        if noise.kind == "fixed":
            return f"{noise.levels[0]:g}"
        return noise.spec if noise.per == "row" else noise.describe()

    @property
    def seed(self) -> int:
        """The training seed."""
        return int(self.train["seed"])

    @property
    def train_obs_noise(self) -> float:
        """The environment's observation noise during training."""
        return float(self.task_kwargs.get("obs_noise", 0.0))

    @property
    def folder_name(self) -> str:
        """The run folder's name: readable factors, then the content hash.

        For example ``function_approx-in-sigma0.5-obs0-seed1-3f2a9c01b7de``.
        """
        return f"{self._factors}-{self.key}"

    @property
    def full_folder_name(self) -> str:
        """The folder name the cell had when the hash covered every field (before version 1)."""
        return f"{self._factors}-{self.full_key}"

    @property
    def _noise_factor(self) -> str:
        """The training noise in a folder name.

        ``sigma0.5`` for a fixed level; a distribution's spec without ``:``, ``,``, ``@``
        (``uniform0_1``, ``discrete0_0.5_1w1_2_1``), ``-batch`` added when drawn per batch.
        """
        noise = self.train_noise
        if noise.kind == "fixed":
            return f"sigma{noise.levels[0]:g}"
        slug = noise.spec.replace(":", "").replace(",", "_").replace("@", "w")
        return slug + ("-batch" if noise.per == "batch" else "")

    @property
    def _factors(self) -> str:
        return (
            f"{self.label}-{self.placement}-{self._noise_factor}-obs{self.train_obs_noise:g}"
            f"-seed{self.seed}"
        )

    @property
    def group(self) -> str:
        """Cells with the same group share task and architecture (an ensemble could train them).

        Everything but the placement, the training sigma and the seed.
        """
        model = {k: v for k, v in self.model.items() if k != "placement"}
        train = {k: v for k, v in self.train.items() if k not in ("sigma", "seed")}
        shared = [self.task_id, self.task_kwargs, self.model_kind, model, self.trainer, train]
        return hashlib.sha256(canonical_json(shared).encode("utf-8")).hexdigest()[:HASH_LENGTH]

    @property
    def ensemble_ok(self) -> bool:
        """Whether the cell can train as an ensemble member (a supervised CTRNN)."""
        return self.trainer == "supervised" and self.model_kind == "ctrnn"


def _without_defaults(values: dict[str, Any], config_class: type | None) -> dict[str, Any]:
    """``values`` less the entries equal (as JSON) to ``config_class``'s field defaults."""
    if config_class is None or not dataclasses.is_dataclass(config_class):
        return values
    defaults = {}
    for field in dataclasses.fields(config_class):
        if field.default is not dataclasses.MISSING:
            defaults[field.name] = field.default
        elif field.default_factory is not dataclasses.MISSING:
            defaults[field.name] = field.default_factory()
    kept = {}
    for name, value in values.items():
        if name in defaults and _json_equal(value, defaults[name]):
            continue
        kept[name] = value
    return kept


def _json_equal(value: Any, default: Any) -> bool:
    try:
        default = default.to_dict() if hasattr(default, "to_dict") else default
        return canonical_json(value) == canonical_json(default)
    except (TypeError, ValueError):  # a default JSON cannot hold: the field is kept
        return False


def _task_config(task_id: str) -> type | None:
    from noise_envs.registration import task_class

    try:
        return task_class(task_id).config_class
    except (ValueError, AttributeError):
        return None


def _model_config(cell: Cell) -> type | None:
    if cell.trainer == "rl":
        from agents.sb3 import config as sb3_config  # configs only: no stable-baselines3 import

        return getattr(sb3_config, cell.model_kind, None)
    from agents.models import MODEL_KINDS

    return MODEL_KINDS[cell.model_kind][0] if cell.model_kind in MODEL_KINDS else None


def _train_config(trainer: str) -> type:
    if trainer == "rl":
        from agents.sb3.config import RLTrainConfig

        return RLTrainConfig
    from agents.train_config import TrainConfig

    return TrainConfig


def ensemble_chunks(cells: Sequence[Cell], size: int) -> list[list[Cell]]:
    """The cells as training jobs: each group's cells in spec order, ``size`` at a time.

    Cells that cannot train as ensemble members (feedforward, RL) are jobs of one. The chunks
    depend on the spec alone, so a rerun after a stop meets the ensembles it left.
    """
    groups: dict[str, list[Cell]] = {}
    for cell in cells:
        key = cell.group if cell.ensemble_ok and size > 1 else cell.key
        groups.setdefault(key, []).append(cell)
    return [
        members[start : start + size]
        for members in groups.values()
        for start in range(0, len(members), size)
    ]
