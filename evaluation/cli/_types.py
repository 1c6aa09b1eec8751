"""Argument types of ``noisepref``: each refuses a bad value with one line naming what is allowed."""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import torch


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1, got {text!r}")
    return value


def nonnegative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be an integer >= 0, got {text!r}")
    return value


def available_devices() -> list[str]:
    devices = ["cpu"] + [f"cuda:{index}" for index in range(torch.cuda.device_count())]
    if torch.backends.mps.is_available():
        devices.append("mps")
    return devices


def torch_device(text: str) -> str:
    """A torch device that exists on this machine (cpu, cuda, cuda:N or mps)."""
    available = ", ".join(available_devices())
    try:
        device = torch.device(text)
    except (RuntimeError, ValueError):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a device; available here: {available}"
        ) from None
    index = 0 if device.index is None else device.index
    usable = {
        "cpu": True,
        "cuda": index < torch.cuda.device_count(),
        "mps": torch.backends.mps.is_available(),
    }
    if not usable.get(device.type, False):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not available on this machine; available here: {available}"
        )
    return text


def nonempty_path(text: str) -> Path:
    """A non-empty path (``''`` would mean the current folder)."""
    if not text.strip():
        raise argparse.ArgumentTypeError("must name a file or folder, got ''")
    return Path(text)


def json_object(text: str) -> dict[str, Any]:
    shown = repr(text) if len(text) <= 80 else f"{text[:60]!r}... ({len(text)} characters)"
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise argparse.ArgumentTypeError(
            f"must be a JSON object such as '{{\"steps\": 30}}', got {shown} ({error})"
        ) from None
    except RecursionError:  # nesting deeper than the parser's recursion limit
        raise argparse.ArgumentTypeError(
            f"must be a JSON object such as '{{\"steps\": 30}}', got {shown}, nested too deep"
        ) from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(
            f"must be a JSON object such as '{{\"steps\": 30}}', got {shown}"
        )
    return value


def noise_levels(text: str) -> np.ndarray:
    """Comma-separated test noise levels, each finite and >= 0."""
    try:
        levels = [float(item) for item in text.split(",") if item.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"must be comma-separated numbers such as 0,0.25,0.5, got {text!r}"
        ) from None
    bad = [level for level in levels if not (math.isfinite(level) and level >= 0)]
    if not levels or bad:
        raise argparse.ArgumentTypeError(f"test noise levels must be finite and >= 0, got {text!r}")
    return np.array(levels)


def join_negative_values(argv: list[str]) -> list[str]:
    """``--levels -1,0.5`` -> ``--levels=-1,0.5``: argparse takes ``-1,0.5`` for an option."""
    joined: list[str] = []
    for token in argv:
        if joined and joined[-1] == "--levels" and token[:2] not in ("--", "-h"):
            joined[-1] = f"--levels={token}"
        else:
            joined.append(token)
    return joined
