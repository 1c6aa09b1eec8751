"""Refusing work that cannot fit in memory, before any of it is allocated."""

from __future__ import annotations

import os

__all__ = ["MEMORY_LIMIT_ENV", "check_memory", "memory_limit"]

MEMORY_LIMIT_ENV = "NOISE_ENVS_MEMORY_LIMIT"
"""Environment variable that sets the limit in bytes (default 8 GiB)."""

_DEFAULT_LIMIT = 8 * 2**30


def memory_limit() -> int:
    """The most bytes one task may allocate: ``$NOISE_ENVS_MEMORY_LIMIT``, else 8 GiB."""
    text = os.environ.get(MEMORY_LIMIT_ENV)
    if text is None:
        return _DEFAULT_LIMIT
    try:
        limit = int(float(text))
    except ValueError:
        limit = 0
    if limit <= 0:
        raise ValueError(f"${MEMORY_LIMIT_ENV} must be a positive number of bytes, got {text!r}")
    return limit


def check_memory(name: str, value: object, estimated_bytes: float) -> None:
    """Raise ValueError naming ``name = value`` if ``estimated_bytes`` exceeds the limit."""
    limit = memory_limit()
    if estimated_bytes > limit:
        raise ValueError(
            f"`{name}` = {value!r} would need about {estimated_bytes:,.0f} bytes "
            f"({estimated_bytes / 2**30:,.1f} GiB, estimated), more than the limit of "
            f"{limit:,} bytes ({limit / 2**30:,.1f} GiB); lower it, or raise the limit with "
            f"${MEMORY_LIMIT_ENV}"
        )
