"""The grid's summary: one row per cell and sweep axis, and the per-setting verdicts over seeds.

The table is written as CSV (floats written to round-trip exactly) and, when pyarrow is
installed, also as Parquet. :func:`settings_table` groups the rows by task, placement, training
noise and axis and says whether the setting shows noise preference over its seeds.

The training noise is two columns: ``train_noise`` names it (``0.5``, or a distribution's spec
such as ``uniform:0,1``) and ``train_sigma`` is its level (a distribution's mean). Tables written
before distributions have no ``train_noise``; :func:`read_table` fills it from ``train_sigma``.
"""

from __future__ import annotations

import csv
import io
import itertools
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from agents.atomic import atomic_write_bytes, atomic_write_text
from evaluation.sweep_result import format_rows

__all__ = [
    "COLUMNS",
    "Setting",
    "read_table",
    "settings",
    "settings_table",
    "write_table",
]

_STATISTICS = (
    "sigma_star",
    "sigma_star_low",
    "sigma_star_high",
    "metric_at_zero",
    "metric_at_sigma_star",
    "ratio",
    "ratio_low",
    "ratio_high",
)
"""The preference statistics, all floats."""
COLUMNS = (
    "cell",
    "task",
    "task_id",
    "model_kind",
    "activation",
    "placement",
    "train_sigma",
    "train_noise",
    "train_obs_noise",
    "seed",
    "axis",
    "metric",
    "higher_is_better",
    *_STATISTICS,
    "significant",
    "folder",
)
"""The summary's columns: the cell's factors, then its preference statistics."""
_FLOATS = {"train_sigma", "train_obs_noise", *_STATISTICS}
_BOOLS = {"higher_is_better", "significant"}


def write_table(rows: Sequence[dict[str, Any]], path: str | Path) -> list[Path]:
    """Write ``rows`` to ``path`` (CSV) and, with pyarrow, beside it as ``.parquet``; the paths."""
    path = Path(path)
    rows = [_with_noise(row) for row in rows]  # rows of cells recorded before the column
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(COLUMNS)
    for row in rows:
        writer.writerow([_cell_text(row[name]) for name in COLUMNS])
    atomic_write_text(path, buffer.getvalue())
    written = [path]
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ModuleNotFoundError:
        return written
    table = pa.Table.from_pylist([{name: row[name] for name in COLUMNS} for row in rows])
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink)
    parquet = path.with_suffix(".parquet")
    atomic_write_bytes(parquet, sink.getvalue().to_pybytes())
    return [*written, parquet]


def read_table(path: str | Path) -> list[dict[str, Any]]:
    """The rows of a summary CSV written by :func:`write_table`, with their types."""
    with Path(path).open(encoding="utf-8", newline="") as stream:
        return [_with_noise(_typed(row)) for row in csv.DictReader(stream)]


def _with_noise(row: dict[str, Any]) -> dict[str, Any]:
    """``row`` with a ``train_noise`` (a fixed level's, for rows written before the column)."""
    if "train_noise" in row or "train_sigma" not in row:
        return row
    return {**row, "train_noise": f"{row['train_sigma']:g}"}


def _cell_text(value: Any) -> str:
    return repr(float(value)) if isinstance(value, float) else str(value)


def _typed(row: dict[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, text in row.items():
        if name in _FLOATS:
            out[name] = float(text)
        elif name in _BOOLS:
            out[name] = text == "True"
        elif name == "seed":
            out[name] = int(text)
        else:
            out[name] = text
    return out


class Setting(dict):
    """One task x placement x training noise x axis over its seeds (a dict of its columns)."""


def settings(rows: Sequence[dict[str, Any]]) -> list[Setting]:
    """The rows grouped over seeds: mean sigma* and ratio, how many seeds are significant.

    ``verdict`` is ``preference`` when sigma* > 0 is significant in more than half the seeds,
    ``zero`` when sigma* is 0 in more than half, else ``mixed``.
    """
    factors = (
        "task",
        "activation",
        "placement",
        "train_obs_noise",
        "train_sigma",
        "train_noise",
        "axis",
    )
    rows = [_with_noise(row) for row in rows]
    groups = itertools.groupby(
        sorted(rows, key=lambda row: [str(row[f]) for f in factors]),
        key=lambda row: tuple(row[f] for f in factors),
    )
    out = []
    for key, members in groups:
        members = list(members)
        count = len(members)
        significant = sum(bool(row["significant"]) for row in members)
        at_zero = sum(row["sigma_star"] == 0 for row in members)
        verdict = (
            "preference" if 2 * significant > count else "zero" if 2 * at_zero > count else "mixed"
        )
        out.append(
            Setting(
                dict(zip(factors, key, strict=True)),
                metric=members[0]["metric"],
                seeds=count,
                sigma_star_mean=_mean([row["sigma_star"] for row in members]),
                sigma_star_min=min(row["sigma_star"] for row in members),
                sigma_star_max=max(row["sigma_star"] for row in members),
                ratio_mean=_mean([row["ratio"] for row in members]),
                significant=significant,
                verdict=verdict,
            )
        )
    return sorted(
        out,
        key=lambda s: (s["task"], s["axis"], s["placement"], s["train_sigma"], s["train_noise"]),
    )


def settings_table(rows: Sequence[dict[str, Any]]) -> str:
    """A fixed-width text table of :func:`settings`: one line per setting."""
    lines = [
        [
            "task",
            "axis",
            "placement",
            "train noise",
            "obs noise",
            "seeds",
            "sigma* mean [min, max]",
            "ratio @0/@sigma*",
            "significant",
            "verdict",
        ]
    ]
    for s in settings(rows):
        lines.append(
            [
                s["task"],
                s["axis"],
                f"noise-{s['placement']}",
                _noise_text(s),
                f"{s['train_obs_noise']:g}",
                str(s["seeds"]),
                f"{s['sigma_star_mean']:.3g} [{s['sigma_star_min']:g}, {s['sigma_star_max']:g}]",
                f"{s['ratio_mean']:.3g}",
                f"{s['significant']}/{s['seeds']}",
                s["verdict"],
            ]
        )
    return format_rows(lines)


def _noise_text(setting: dict[str, Any]) -> str:
    """The training noise of a setting: ``0.5``, or ``uniform:0,1 (mean 0.5)``."""
    label, level = setting["train_noise"], setting["train_sigma"]
    return label if label == f"{level:g}" else f"{label} (mean {level:.3g})"


def _mean(values: Sequence[float]) -> float:
    finite = [value for value in values if math.isfinite(value)]
    return sum(finite) / len(finite) if finite else math.inf
