"""What the ``noisepref`` commands share: their parsers, common options, path and run checks."""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from agents.errors import CorruptRun, NotARunFolder, RunError
from agents.runs import RUN_FILE, Run, load_run
from evaluation.cli._errors import Parser
from evaluation.cli._types import nonempty_path, nonnegative_int, positive_int, torch_device


def add_command(
    commands: Any, name: str, handler: Callable, help: str, description: str | None = None
) -> Parser:
    """Add sub-command ``name`` (run by ``handler(args)``) with its own ``--debug``."""
    parser = commands.add_parser(name, allow_abbrev=False, help=help, description=description)
    parser.add_argument(
        "--debug", action="store_true", default=argparse.SUPPRESS, help="show the traceback"
    )
    parser.set_defaults(handler=handler, threads=None)
    return parser


def add_common_options(parser: argparse.ArgumentParser) -> None:
    """``--device``, ``--no-progress`` and ``--threads``, read by :func:`run_options`."""
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


def run_options(args: argparse.Namespace) -> dict[str, Any]:
    """The ``device`` and ``progress`` keywords of the library's long-running functions."""
    return {"device": args.device, "progress": not args.no_progress}


def add_seed(parser: argparse.ArgumentParser, of: str) -> None:
    """``--seed`` (an integer >= 0, default 0): the seed ``of`` what."""
    parser.add_argument(
        "--seed", type=nonnegative_int, default=0, help=f"seed of {of} (default: 0)"
    )


def add_figure_out(parser: argparse.ArgumentParser, default: str) -> None:
    """``--out``: the figure to write, ``default`` unless given."""
    parser.add_argument(
        "--out",
        type=nonempty_path,
        default=Path(default),
        help=f"figure to write; its extension names the format (default: {default})",
    )


def add_overwrite(parser: argparse.ArgumentParser, holds: str, then: str = "") -> None:
    """``--overwrite``: move aside what ``--out`` holds (``holds``, e.g. 'anything else')."""
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help=f"if --out holds {holds}, move it aside into OUT/.replaced-* (never deleted){then}",
    )


@contextlib.contextmanager
def command_line_advice() -> Iterator[None]:
    """Re-raise a RunError with the library's advice in the command line's words."""
    try:
        yield
    except RunError as error:
        raise type(error)(str(error).replace("overwrite=True", "--overwrite")) from error


def check_output(path: Path, option: str, *, folder: bool) -> None:
    """Refuse an output path that names the wrong kind of thing (a folder for a file, ...)."""
    if folder and path.exists() and not path.is_dir():
        raise ValueError(f"`{option}` must name a folder, but {path} is a file")
    if not folder and path.is_dir():
        raise ValueError(f"`{option}` must name a file, but {path} is a folder")


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
