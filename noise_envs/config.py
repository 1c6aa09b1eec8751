"""JSON round-tripping for the frozen dataclasses that configure tasks, models and training."""

from __future__ import annotations

import dataclasses
import difflib
import json
import math
from typing import Any, TypeVar

__all__ = ["JsonConfig"]

ConfigT = TypeVar("ConfigT", bound="JsonConfig")


class JsonConfig:
    """Mixin for ``@dataclass(frozen=True, kw_only=True, slots=True)`` configs.

    Subclasses validate in ``__post_init__``; this class adds ``to_dict`` / ``from_dict`` and
    ``to_json`` / ``from_json``, with unknown keys rejected by name.
    """

    __slots__ = ()

    def to_dict(self) -> dict[str, Any]:
        """The config as a dict of JSON-compatible values (tuples become lists)."""
        out = {}
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if callable(value):
                raise ValueError(
                    f"`{field.name}` is a callable ({value!r}) and cannot be written to JSON; "
                    "use one of the named choices to save or reproduce this config"
                )
            if isinstance(value, float) and not math.isfinite(value):
                raise ValueError(f"`{field.name}` must be finite to be written, got {value!r}")
            out[field.name] = list(value) if isinstance(value, tuple) else value
        return out

    @classmethod
    def from_dict(cls: type[ConfigT], data: dict[str, Any]) -> ConfigT:
        """Build the config from a dict, rejecting keys it does not know."""
        if not isinstance(data, dict):
            raise ValueError(f"{cls.__name__} expects a JSON object, got {type(data).__name__}")
        names = {field.name: field for field in dataclasses.fields(cls)}
        unknown = [key for key in data if key not in names]
        if unknown:
            hint = difflib.get_close_matches(unknown[0], list(names), n=1)
            suffix = f". Did you mean {hint[0]!r}?" if hint else ""
            raise ValueError(
                f"unknown {cls.__name__} option {unknown[0]!r}; allowed: {sorted(names)}{suffix}"
            )
        values = {
            key: tuple(value) if isinstance(value, list) else value for key, value in data.items()
        }
        return cls(**values)

    def to_json(self) -> str:
        """The config as a JSON string."""
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls: type[ConfigT], text: str) -> ConfigT:
        """Parse a config written by :meth:`to_json`."""
        return cls.from_dict(json.loads(text))

    def replace(self: ConfigT, **changes: Any) -> ConfigT:
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)
