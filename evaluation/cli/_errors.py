"""One-line errors: the exit codes of ``noisepref`` and the parser whose usage errors are one line."""

from __future__ import annotations

import argparse
import sys
from typing import NoReturn

from agents.errors import RunError, TrainingDiverged

USAGE_ERRORS = (ValueError, TypeError)
RUNTIME_ERRORS = (RunError, TrainingDiverged, OSError)
RL_MODULES = ("stable_baselines3", "sb3_contrib")
"""The packages of the ``rl`` extra: a run that needs them says so in one line."""


class Parser(argparse.ArgumentParser):
    """An argument parser whose usage errors are one line (and exit code 2)."""

    def error(self, message: str) -> NoReturn:
        """Print ``PROG: error: MESSAGE`` on one line and exit with code 2."""
        self.exit(2, f"{self.prog}: error: {one_line(message)} (see `{self.prog} --help`)\n")


def one_line(text: object) -> str:
    return " ".join(str(text).split())


def fail(args: argparse.Namespace, message: str, code: int) -> int:
    print(f"noisepref {args.command}: error: {one_line(message)}", file=sys.stderr)
    return code


def message(error: BaseException) -> str:
    if isinstance(error, OSError) and error.strerror and error.filename:
        return f"{error.strerror}: {error.filename}"
    return str(error) or type(error).__name__


def warn(command: str, message: str) -> None:
    print(f"noisepref {command}: warning: {one_line(message)}", file=sys.stderr)


def run_handler(args: argparse.Namespace) -> int:
    """Run the command's handler; an error is one line and an exit code (--debug: a traceback)."""
    try:
        return args.handler(args)
    except KeyboardInterrupt:
        if args.debug:
            raise
        return fail(args, "interrupted", 130)
    except ModuleNotFoundError as error:
        package = (error.name or "").split(".")[0]
        if args.debug or package not in (*RL_MODULES, "ray"):
            raise
        extra = "ray" if package == "ray" else "rl"
        return fail(args, f"this needs {package}: pip install 'noise-preference[{extra}]'", 1)
    except (*RUNTIME_ERRORS, *USAGE_ERRORS) as error:
        if args.debug:
            raise
        code = 1 if isinstance(error, RUNTIME_ERRORS) else 2
        return fail(args, message(error), code)
