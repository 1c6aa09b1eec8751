"""Atomic file writes: a reader, or a run that was interrupted, sees the old file or the new one.

Every file this project writes (run folders, sweep tables, figures, reports) goes through here.
"""

from __future__ import annotations

import contextlib
import os
import re
import uuid
from collections.abc import Iterable
from pathlib import Path

__all__ = ["atomic_write_bytes", "atomic_write_text", "stale_temp_files", "temp_name"]

_TEMP = re.compile(r"^\.(?P<name>.+)\.(?:(?P<pid>\d+)\.[0-9a-f]{8}|[0-9a-f]{32})\.tmp$")
"""A temporary file of :func:`atomic_write_bytes`: ``.NAME.<pid>.<8 hex>.tmp`` (or, as written
before, ``.NAME.<32 hex>.tmp``)."""


def temp_name(path: str | os.PathLike) -> Path:
    """A fresh temporary path for an atomic write of ``path``: ``.NAME.<pid>.<8 hex>.tmp``.

    The name says which file it was for and which process wrote it, so that a run folder can
    recognise and remove what a killed writer left behind (:func:`stale_temp_files`).
    """
    path = Path(path)
    return path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")


def stale_temp_files(folder: str | os.PathLike, names: Iterable[str]) -> list[Path]:
    """The temporary files in ``folder`` that atomic writes of the files ``names`` left behind.

    Only the caller knows that no writer of these files is alive (a run folder knows it while it
    holds the folder's lock), so this function only finds them.
    """
    wanted = set(names)
    found = []
    for entry in sorted(Path(folder).iterdir()):
        match = _TEMP.match(entry.name)
        if match and match["name"] in wanted and entry.is_file():
            found.append(entry)
    return found


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see the old file or the new one, never half.

    The bytes go to a temporary file in the same folder, are flushed to disk, and the file is
    renamed over ``path``; the temporary file is removed if anything fails. Missing parent
    folders are created.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = temp_name(path)
    try:
        with open(temp, "xb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp)
        raise
    _fsync_folder(path.parent)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically, as :func:`atomic_write_bytes`."""
    atomic_write_bytes(path, text.encode("utf-8"))


def _fsync_folder(folder: Path) -> None:
    # Makes the rename itself durable; POSIX only (Windows cannot open a folder).
    if os.name != "posix":
        return
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
