"""Experiment grids: task x placement x training sigma x seed (x environment noise), resumable.

:class:`GridSpec` (from TOML with :func:`load_spec`) -> :func:`run_grid` -> one run folder per
cell, a summary table and per-task figures; :mod:`evaluation.grid.presets` holds the grids of
``noisepref reproduce``.
"""

from evaluation.grid.cells import Cell
from evaluation.grid.runner import GridResult, run_grid
from evaluation.grid.spec import GridSpec, SweepSpec, TaskSpec, load_spec, spec_from_dict

__all__ = [
    "Cell",
    "GridResult",
    "GridSpec",
    "SweepSpec",
    "TaskSpec",
    "load_spec",
    "run_grid",
    "spec_from_dict",
]
