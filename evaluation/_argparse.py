"""Build argparse options from frozen config dataclasses, with each field's docstring as its help."""

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

__all__ = ["add_config_arguments", "config_from_arguments", "field_docs"]


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


def add_config_arguments(
    parser: argparse.ArgumentParser,
    cls: type,
    *,
    exclude: Iterable[str] = (),
    prefix: str = "",
) -> None:
    """Add one ``--option`` per scalar field of ``cls`` (unset options keep the config default)."""
    hints = typing.get_type_hints(cls)
    docs = field_docs(cls)
    group = parser.add_argument_group(f"{cls.__name__} options")
    for field in dataclasses.fields(cls):
        kind = _scalar_type(hints.get(field.name))
        if field.name in exclude or kind is None:
            continue
        flag = "--" + (prefix + field.name).replace("_", "-")
        default = field.default if field.default is not dataclasses.MISSING else None
        help_text = f"{docs.get(field.name, '')} (default: {default})"
        dest = prefix + field.name
        if kind is bool:
            group.add_argument(
                flag, dest=dest, action=argparse.BooleanOptionalAction, default=None, help=help_text
            )
        else:
            group.add_argument(flag, dest=dest, type=kind, default=None, help=help_text)


def config_from_arguments(cls: type, args: argparse.Namespace, *, prefix: str = "", **fixed: Any):
    """Build ``cls`` from the options the user set, plus ``fixed`` values; the rest are defaults."""
    values = dict(fixed)
    for field in dataclasses.fields(cls):
        value = getattr(args, prefix + field.name, None)
        if value is not None and field.name not in fixed:
            values[field.name] = value
    return cls(**values)
