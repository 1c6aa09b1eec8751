"""The errors of runs and training, so callers (the CLI, the grid) can tell them apart.

Bad arguments stay ``ValueError`` / ``TypeError`` (the caller's mistake, exit code 2 from the CLI);
the classes here are runtime failures of a run folder or of training (exit code 1).
"""

from __future__ import annotations

__all__ = [
    "CorruptRun",
    "NotARunFolder",
    "RunError",
    "RunLocked",
    "RunMismatch",
    "TrainingDiverged",
]


class RunError(Exception):
    """A run folder cannot be used as asked; the message names the folder, the file and why."""


class NotARunFolder(RunError):
    """The folder holds files that are not a run of this kind; nothing in it was touched."""


class RunLocked(RunError):
    """Another process (named by its pid) is writing this run folder."""


class RunMismatch(RunError):
    """The run folder's stored configuration differs from the one requested."""


class CorruptRun(RunError):
    """A file of the run folder is unreadable, or disagrees with the others or with the model."""


class TrainingDiverged(RuntimeError):
    """The loss or the gradient became NaN or infinite; the last checkpoint is left as it was."""
