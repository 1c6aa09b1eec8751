"""The result of a noise sweep: per-episode metrics over (level, episode), its summary and its CSV.

:func:`evaluation.sweep.sweep_noise` makes a :class:`SweepResult`; :mod:`evaluation.stats` and
:mod:`evaluation.plots.sweep` read it; :meth:`SweepResult.to_csv` / :meth:`SweepResult.from_csv` keep it
on disk as a tidy table.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from statistics import NormalDist

import numpy as np
import torch

from agents.atomic import atomic_write_text
from noise_envs._checks import MAX_NOISE, check_choice, check_in_range

__all__ = [
    "LevelSummary",
    "SweepResult",
    "best_level_index",
    "check_confidence",
    "check_levels",
    "check_seed",
    "format_rows",
    "summary_table",
]

_CSV_FORMAT = "noise-preference sweep"
_CSV_VERSION = 1


@dataclasses.dataclass(frozen=True, kw_only=True, eq=False)
class LevelSummary:
    """Per-level statistics of one metric of a sweep; every array is ``[L]``.

    The confidence interval is the normal approximation ``mean +- z * sem`` with
    ``z = Phi^-1((1 + confidence) / 2)``; for few episodes (``n`` below about 30) it is slightly
    narrower than the t interval.
    """

    metric: str
    """Name of the summarised metric."""
    confidence: float
    """Coverage of the interval [ci_low, ci_high]."""
    levels: np.ndarray
    """Test noise levels."""
    mean: np.ndarray
    """Mean over episodes."""
    sem: np.ndarray
    """Standard error of the mean, ``std(ddof=1) / sqrt(n)`` (NaN when n < 2)."""
    ci_low: np.ndarray
    """Lower end of the confidence interval of the mean."""
    ci_high: np.ndarray
    """Upper end of the confidence interval of the mean."""
    n: np.ndarray
    """Number of episodes per level."""


@dataclasses.dataclass(frozen=True, kw_only=True, eq=False)
class SweepResult:
    """Per-episode metrics of a noise sweep: a tidy table over (level, episode).

    The arrays are stored as read-only float64 copies. Episode ``e`` of every level shares its
    random numbers with episode ``e`` of every other level (common random numbers), so the
    columns of ``metrics[name]`` are paired samples.
    """

    task_id: str
    """Environment id of the swept task."""
    levels: np.ndarray
    """Test noise levels, ``[L]``, ascending."""
    metrics: dict[str, np.ndarray]
    """Per-episode metrics ``{name: [L, E]}``."""
    metric_directions: dict[str, bool]
    """Whether higher is better, for each metric."""
    primary_metric: str
    """The metric used when none is named."""
    seed: int
    """Seed the sweep's random numbers were derived from."""

    def __post_init__(self) -> None:
        levels = _frozen_array(check_levels(self.levels))
        if not np.array_equal(levels, np.asarray(self.levels, dtype=np.float64)):
            raise ValueError(f"`levels` must be ascending, got {np.asarray(self.levels).tolist()}")
        if not self.metrics:
            raise ValueError("`metrics` must hold at least one metric")
        metrics = {name: _frozen_array(values) for name, values in self.metrics.items()}
        episodes = next(iter(metrics.values())).shape[-1]
        for name, values in metrics.items():
            if values.shape != (levels.size, episodes) or episodes == 0:
                raise ValueError(
                    f"Expected metric {name!r} of shape [{levels.size}, E] with the same E >= 1 "
                    f"for every metric, got {values.shape}"
                )
        if set(self.metric_directions) != set(metrics):
            raise ValueError(
                f"`metric_directions` must name exactly the metrics {sorted(metrics)}, "
                f"got {sorted(self.metric_directions)}"
            )
        check_choice("primary_metric", self.primary_metric, metrics)
        object.__setattr__(self, "levels", levels)
        object.__setattr__(self, "metrics", metrics)
        object.__setattr__(self, "metric_directions", dict(self.metric_directions))
        object.__setattr__(self, "seed", check_seed(self.seed))

    def __repr__(self) -> str:
        shown = ", ".join(f"{x:g}" for x in self.levels[:8])
        if self.levels.size > 8:
            shown += f", ... ({self.levels.size} levels)"
        return (
            f"SweepResult(task_id={self.task_id!r}, levels=[{shown}], "
            f"episodes={self.num_episodes}, metrics={list(self.metrics)}, "
            f"primary_metric={self.primary_metric!r}, seed={self.seed})"
        )

    @property
    def num_levels(self) -> int:
        """Number of test noise levels L."""
        return int(self.levels.size)

    @property
    def num_episodes(self) -> int:
        """Number of episodes per level E."""
        return int(next(iter(self.metrics.values())).shape[1])

    def resolve_metric(self, metric: str | None = None) -> str:
        """The metric's name (the primary one for None), checked against the stored metrics."""
        return (
            self.primary_metric if metric is None else check_choice("metric", metric, self.metrics)
        )

    def values(self, metric: str | None = None) -> np.ndarray:
        """Per-episode values ``[L, E]`` of ``metric`` (the primary one by default)."""
        return self.metrics[self.resolve_metric(metric)]

    def higher_is_better(self, metric: str | None = None) -> bool:
        """Whether larger values of ``metric`` are better."""
        return self.metric_directions[self.resolve_metric(metric)]

    def best_index(self, metric: str | None = None) -> int:
        """Index of the level with the best mean (the lowest such level on ties)."""
        return int(
            best_level_index(self.values(metric).mean(axis=1), self.higher_is_better(metric))
        )

    def best_level(self, metric: str | None = None) -> float:
        """The test noise level with the best mean, sigma*."""
        return float(self.levels[self.best_index(metric)])

    def summary(self, metric: str | None = None, confidence: float = 0.95) -> LevelSummary:
        """Mean, standard error and normal-approximation confidence interval per level."""
        check_confidence(confidence)
        name = self.resolve_metric(metric)
        values = self.metrics[name]
        count = values.shape[1]
        mean = values.mean(axis=1)
        if count > 1:
            sem = values.std(axis=1, ddof=1) / math.sqrt(count)
        else:
            sem = np.full_like(mean, np.nan)
        half_width = NormalDist().inv_cdf(0.5 + confidence / 2) * sem
        return LevelSummary(
            metric=name,
            confidence=confidence,
            levels=self.levels.copy(),
            mean=mean,
            sem=sem,
            ci_low=mean - half_width,
            ci_high=mean + half_width,
            n=np.full(self.num_levels, count),
        )

    def to_csv(self, path: str | os.PathLike) -> Path:
        """Write the tidy table atomically; returns the path.

        The first line is a ``#`` comment holding the metadata as JSON (task id, primary metric,
        metric directions, seed); then a header ``level,episode,<metrics...>`` and one row per
        level and episode, level-major, with floats written to round-trip exactly. Read it back
        with :meth:`from_csv` (or any CSV reader that skips ``#`` comments).
        """
        meta = {
            "format": _CSV_FORMAT,
            "version": _CSV_VERSION,
            "task_id": self.task_id,
            "primary_metric": self.primary_metric,
            "metric_directions": self.metric_directions,
            "seed": self.seed,
        }
        buffer = io.StringIO()
        buffer.write(f"# {json.dumps(meta, sort_keys=True)}\n")
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(["level", "episode", *self.metrics])
        columns = list(self.metrics.values())
        for level_index, level in enumerate(self.levels):
            for episode in range(self.num_episodes):
                cells = [repr(float(column[level_index, episode])) for column in columns]
                writer.writerow([repr(float(level)), episode, *cells])
        atomic_write_text(path, buffer.getvalue())
        return Path(path)

    @classmethod
    def from_csv(
        cls,
        path: str | os.PathLike,
        *,
        metric_directions: Mapping[str, bool] | None = None,
        primary_metric: str | None = None,
        task_id: str | None = None,
        seed: int | None = None,
    ) -> SweepResult:
        """Read a table written by :meth:`to_csv`.

        Keyword arguments override the metadata comment, or supply it for a CSV that has none
        (then ``metric_directions`` is required). Rows must be level-major, as :meth:`to_csv`
        writes them: each level's episodes ``0..E-1`` in consecutive rows.
        """
        meta, body = _split_metadata(_read_text(path), path)
        rows = list(csv.reader(io.StringIO(body)))
        header, rows = rows[0] if rows else [], [row for row in rows[1:] if row]
        if header[:2] != ["level", "episode"] or len(header) < 3:
            raise ValueError(
                f"{path}: expected a header 'level,episode,<metric>,...', got {','.join(header)!r}"
            )
        levels, metrics = _table_to_arrays(header, rows, path)
        directions = (
            metric_directions if metric_directions is not None else meta.get("metric_directions")
        )
        if directions is None:
            raise ValueError(
                f"{path} has no metadata comment: pass `metric_directions` (higher is better, "
                "per metric) to read it"
            )
        return cls(
            task_id=task_id if task_id is not None else meta.get("task_id", "unknown"),
            levels=levels,
            metrics=metrics,
            metric_directions={name: bool(value) for name, value in directions.items()},
            primary_metric=primary_metric or meta.get("primary_metric", header[2]),
            seed=seed if seed is not None else int(meta.get("seed", 0)),
        )


def check_levels(levels: Sequence[float] | np.ndarray | torch.Tensor) -> np.ndarray:
    """Validate test noise levels and return them as a sorted float64 array ``[L]``.

    Raises:
        ValueError: if ``levels`` is not a non-empty 1-D sequence of finite numbers in
            ``[0, MAX_NOISE]``.
    """
    if isinstance(levels, torch.Tensor):
        levels = levels.detach().cpu().numpy()
    try:
        array = np.asarray(levels, dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise ValueError(f"`levels` must be a 1-D sequence of numbers, got {levels!r}") from error
    if array.ndim != 1 or array.size == 0:
        raise ValueError(f"`levels` must be a non-empty 1-D sequence, got shape {array.shape}")
    if not np.isfinite(array).all():
        raise ValueError(f"`levels` must be finite, got {array.tolist()}")
    if (array < 0).any():
        raise ValueError(f"`levels` must be >= 0, got {array.tolist()}")
    if (array > MAX_NOISE).any():
        too_large = array[array > MAX_NOISE].tolist()
        raise ValueError(
            f"`levels` must be <= {MAX_NOISE:g} (the largest noise level), got {too_large}"
        )
    return np.sort(array, kind="stable")


def summary_table(
    results: Mapping[str, SweepResult],
    metric: str | None = None,
    *,
    precision: int = 4,
) -> str:
    """A fixed-width text table of mean +/- standard error per level, one column per result.

    ``metric`` defaults to the first result's primary metric; levels missing from a result are
    left blank.
    """
    if not results:
        raise ValueError("`results` must hold at least one SweepResult")
    first = next(iter(results.values()))
    name = first.resolve_metric(metric)
    summaries = {label: result.summary(name) for label, result in results.items()}
    levels = sorted({float(x) for s in summaries.values() for x in s.levels})
    rows = [["sigma", *summaries]]
    for level in levels:
        cells = [f"{level:g}"]
        for summary in summaries.values():
            hits = np.flatnonzero(summary.levels == level)
            cells.append(
                f"{summary.mean[hits[0]]:.{precision}g} +/- {summary.sem[hits[0]]:.2g}"
                if hits.size
                else ""
            )
        rows.append(cells)
    return f"{name} (mean +/- sem)\n" + format_rows(rows)


def best_level_index(means: np.ndarray, higher_is_better: bool) -> np.ndarray:
    """Index of the best entry along the last axis of ``means``.

    Entries within a relative 1e-10 of the best count as tied (sums of identical values can differ
    in the last bits), and ties go to the first entry: the lowest level, since levels ascend.
    """
    best = means.max(axis=-1) if higher_is_better else means.min(axis=-1)
    tied = np.isclose(means, np.expand_dims(best, -1), rtol=1e-10, atol=0.0)
    return np.argmax(tied, axis=-1)


def format_rows(rows: Sequence[Sequence[str]]) -> str:
    """Left-aligned fixed-width columns, a rule under the first row (the header)."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)


def check_seed(seed: int) -> int:
    """Return ``seed`` as an int if it is an integer >= 0, else raise ValueError."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"`seed` must be an integer >= 0, got {seed!r}")
    return int(seed)


def check_confidence(confidence: float) -> float:
    """Return ``confidence`` if it lies strictly between 0 and 1, else raise ValueError."""
    check_in_range("confidence", confidence, 0.0, 1.0)
    if confidence in (0.0, 1.0):
        raise ValueError(f"`confidence` must be strictly between 0 and 1, got {confidence!r}")
    return confidence


def _frozen_array(values: np.ndarray | Sequence[float]) -> np.ndarray:
    array = np.array(values, dtype=np.float64)
    array.setflags(write=False)
    return array


def _read_text(path: str | os.PathLike) -> str:
    """The file's text; ValueError naming the file if it is binary (NUL bytes or not UTF-8)."""
    data = Path(path).read_bytes()
    try:
        if b"\0" in data:
            raise UnicodeError("NUL byte")
        return data.decode("utf-8")
    except UnicodeError:
        raise ValueError(f"{path}: it is a binary file, not a CSV text table (UTF-8)") from None


def _split_metadata(text: str, path: str | os.PathLike) -> tuple[dict, str]:
    """The JSON metadata of the leading ``#`` comment (empty if none) and the CSV body."""
    if not text.startswith("#"):
        return {}, text
    first, _, body = text.partition("\n")
    try:
        meta = json.loads(first.lstrip("#").strip())
    except json.JSONDecodeError as error:
        raise ValueError(f"{path}: the first-line comment is not JSON metadata: {error}") from error
    if not isinstance(meta, dict) or meta.get("format") != _CSV_FORMAT:
        raise ValueError(f"{path}: the first-line comment is not {_CSV_FORMAT!r} metadata")
    return meta, body


def _table_to_arrays(
    header: list[str], rows: list[list[str]], path: str | os.PathLike
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Levels ``[L]`` and metrics ``{name: [L, E]}`` from level-major tidy rows."""
    try:
        table = np.array([[float(cell) for cell in row] for row in rows], dtype=np.float64)
    except ValueError as error:
        raise ValueError(f"{path}: every cell must be a number ({error})") from error
    if table.ndim != 2 or table.shape[1] != len(header):
        raise ValueError(f"{path}: expected {len(header)} numeric columns in each of its rows")
    episode = table[:, 1]
    num_episodes = int(episode.max()) + 1
    blocks = (
        table.reshape(-1, num_episodes, len(header)) if len(table) % num_episodes == 0 else None
    )
    if (
        blocks is None
        or (blocks[:, :, 1] != np.arange(num_episodes)).any()
        or (blocks[:, :, 0] != blocks[:, :1, 0]).any()
    ):
        raise ValueError(
            f"{path}: rows must be level-major, each level's episodes 0..E-1 in consecutive rows "
            "(as SweepResult.to_csv writes them)"
        )
    levels = blocks[:, 0, 0]
    return levels, {name: blocks[:, :, 2 + i] for i, name in enumerate(header[2:])}
