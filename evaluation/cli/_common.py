"""What every ``noisepref`` command shares: sub-command parsers, device/thread options, path checks."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any

from agents.errors import CorruptRun, NotARunFolder, RunError
from agents.runs import RUN_FILE, Run, load_run
from evaluation.cli._errors import (
    Parser,
)
from evaluation.cli._types import (
    positive_int,
    torch_device,
)


def add_command(commands: Any, name: str, handler: Callable, **kwargs: Any) -> Parser:
    parser = commands.add_parser(name, allow_abbrev=False, **kwargs)
    parser.add_argument(
        "--debug", action="store_true", default=argparse.SUPPRESS, help="show the traceback"
    )
    parser.set_defaults(handler=handler, threads=None)
    return parser


def check_output(path: Path, option: str, *, folder: bool) -> None:
    """Refuse an output path that names the wrong kind of thing (a folder for a file, ...)."""
    if folder and path.exists() and not path.is_dir():
        raise ValueError(f"`{option}` must name a folder, but {path} is a file")
    if not folder and path.is_dir():
        raise ValueError(f"`{option}` must name a file, but {path} is a folder")


def add_common_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--device",
        type=torch_device,
        default="cpu",
        help="torch device: cpu, cuda, cuda:N or mps, where available (default: cpu)",
    )
    parser.add_argument(
        "--no-progress",
        action="store_true",
        help="hide progress bars (they are shown only when stderr is a terminal)",
    )
    parser.add_argument(
        "--threads",
        type=positive_int,
        default=None,
        help="torch CPU threads (default: torch's choice); 1 is best for small networks on a "
        "machine that is busy with other work",
    )


def check_run_folder(path: Path) -> None:
    """Refuse a path that is not a run folder (missing, a file, or without ``run.json``)."""
    if not path.exists():
        raise ValueError(f"{path} is not a run folder: it does not exist")
    if not path.is_dir():
        raise ValueError(f"{path} is not a run folder: it is a file")
    if not (path / RUN_FILE).is_file():
        raise NotARunFolder(f"{path} is not a run folder: it has no {RUN_FILE}")


def load_run_folder(path: Path, device: str) -> Run:
    """Load a run folder; a path that is not one is refused before anything is computed."""
    check_run_folder(path)
    try:
        return load_run(path, device=device)
    except RunError:
        raise
    except ValueError as error:
        raise CorruptRun(str(error)) from error
