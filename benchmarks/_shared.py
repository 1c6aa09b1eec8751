"""What every benchmark script shares: the description of the machine, argument types."""

from __future__ import annotations

import argparse
import os
import platform

import torch

__all__ = ["machine_description", "positive_int"]


def machine_description(device: str = "cpu") -> str:
    """CPU model, load, torch version and threads (and the GPU when on CUDA)."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as file:
            names = [
                line.split(":", 1)[1].strip() for line in file if line.startswith("model name")
            ]
        cpu = f"{names[0]} ({len(names)} logical cores)" if names else cpu
    except OSError:
        pass
    text = (
        f"{cpu}, load average {os.getloadavg()[0]:.1f}, torch {torch.__version__} with "
        f"{torch.get_num_threads()} threads, Python {platform.python_version()}, device {device}"
    )
    if torch.device(device).type == "cuda":
        text += f" ({torch.cuda.get_device_name(device)})"
    return text


def positive_int(text: str) -> int:
    """An argparse type: an integer >= 1."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1, got {text}")
    return value
