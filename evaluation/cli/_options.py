"""Command-line options from frozen config dataclasses, with each field's docstring as its help.

Python keeps no docstrings of dataclass fields at run time, so :func:`field_docs` reads them from
the class's source (the string literal written under ``x: int = 1``).
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import inspect
import itertools
import textwrap
import types
import typing
from collections.abc import Iterable
from functools import cache
from typing import Any

__all__ = ["ConfigOptions", "add_config_arguments", "field_docs", "flag"]


@cache
def field_docs(cls: type) -> dict[str, str]:
    """The docstring written under each dataclass field (``x: int = 1`` then ``\"\"\"...\"\"\"``)."""
    docs: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        try:
            tree = ast.parse(textwrap.dedent(inspect.getsource(klass)))
        except (OSError, TypeError):
            continue
        body = tree.body[0].body if tree.body and isinstance(tree.body[0], ast.ClassDef) else []
        for node, following in itertools.pairwise(body):
            if (
                isinstance(node, ast.AnnAssign)
                and isinstance(node.target, ast.Name)
                and isinstance(following, ast.Expr)
                and isinstance(following.value, ast.Constant)
                and isinstance(following.value.value, str)
            ):
                docs[node.target.id] = " ".join(following.value.value.split())
    return docs


def flag(name: str) -> str:
    """The command-line flag of a field: ``learning_rate`` -> ``--learning-rate``."""
    return "--" + name.replace("_", "-")


def _scalar_type(annotation: Any) -> type | None:
    """The argparse type of a field: int, float, str, bool, or None for unsupported types."""
    if isinstance(annotation, str):
        annotation = {"int": int, "float": float, "str": str, "bool": bool}.get(annotation)
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        options = [a for a in typing.get_args(annotation) if a is not type(None)]
        scalars = [a for a in options if a in (int, float, str, bool)]
        return scalars[0] if scalars else None
    return annotation if annotation in (int, float, str, bool) else None


@dataclasses.dataclass(frozen=True)
class ConfigOptions:
    """The options that one config class added to a parser, and how to build it back from them."""

    cls: type
    names: tuple[str, ...]
    """The fields that are options."""
    flags: tuple[str, ...]
    """Their flags, e.g. ``("--hidden-size", "--learn-initial-state", "--no-learn-initial-state")``."""

    def build(self, args: argparse.Namespace, **fixed: Any) -> Any:
        """The config from the options the user set, plus ``fixed``; the rest keep the defaults."""
        values = {name: getattr(args, name) for name in self.names}
        values = {name: value for name, value in values.items() if value is not None}
        return self.cls(**values, **fixed)


def add_config_arguments(
    parser: argparse.ArgumentParser,
    cls: type,
    *,
    exclude: Iterable[str] = (),
    title: str | None = None,
    many: Iterable[str] = (),
) -> ConfigOptions:
    """Add one ``--option`` per scalar field of ``cls`` (help: its docstring and its default).

    Unset options stay ``None`` in the namespace, so :meth:`ConfigOptions.build` leaves the
    config's own default in place. The fields in ``many`` take one or more values (a list in
    the namespace, to be made one value before :meth:`ConfigOptions.build`).
    """
    hints = typing.get_type_hints(cls)
    docs = field_docs(cls)
    exclude, many = set(exclude), set(many)
    group = parser.add_argument_group(title or f"{cls.__name__} options")
    names, flags = [], []
    for field in dataclasses.fields(cls):
        kind = _scalar_type(hints.get(field.name))
        if field.name in exclude or kind is None:
            continue
        default = field.default if field.default is not dataclasses.MISSING else None
        help_text = f"{docs.get(field.name, '')} (default: {default})"
        if kind is bool:
            action: Any = argparse.BooleanOptionalAction
            added = group.add_argument(
                flag(field.name), dest=field.name, action=action, help=help_text
            )
        else:
            nargs = "+" if field.name in many else None
            added = group.add_argument(
                flag(field.name), dest=field.name, type=kind, nargs=nargs, help=help_text
            )
        names.append(field.name)
        flags.extend(added.option_strings)
    return ConfigOptions(cls, tuple(names), tuple(flags))
