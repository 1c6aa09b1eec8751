"""Place cells: tuning curves of position, the population code of the path-integration target."""

from __future__ import annotations

import math

import torch

__all__ = [
    "PLACE_CELL_TUNINGS",
    "SURROUND_AMPLITUDE",
    "SURROUND_WIDTH",
    "place_cell_activity",
    "tuning_range",
]

PLACE_CELL_TUNINGS = ("gaussian", "difference_of_gaussians")
"""Place-cell tuning curves over the distance to the cell's centre."""
SURROUND_WIDTH = 2.0
"""Width of the inhibitory surround of difference-of-Gaussians cells, in centre widths."""
SURROUND_AMPLITUDE = 0.5
"""Peak of the surround Gaussian relative to the centre Gaussian."""


def place_cell_activity(
    position: torch.Tensor, centres: torch.Tensor, width: float, tuning: str
) -> torch.Tensor:
    """Tuning-curve values ``[B, N]`` of cells centred at ``centres [N, 2]`` at ``position [B, 2]``.

    Gaussian: ``g(d) = exp(-d^2 / 2 w^2)``, peak 1 at the centre. Difference of Gaussians:
    ``(g(d) - A g_s(d)) / (1 - A)`` with a surround ``g_s`` of width ``SURROUND_WIDTH * w`` and
    relative peak ``A = SURROUND_AMPLITUDE``, so the peak is 1 and the surround dips below 0.
    """
    squared = (position.unsqueeze(-2) - centres).square().sum(-1)
    centre = torch.exp(-squared / (2 * width**2))
    if tuning == "gaussian":
        return centre
    surround = torch.exp(-squared / (2 * (SURROUND_WIDTH * width) ** 2))
    return (centre - SURROUND_AMPLITUDE * surround) / (1 - SURROUND_AMPLITUDE)


def tuning_range(tuning: str) -> tuple[float, float]:
    """The lowest and highest values of a tuning curve (peak 1 at distance 0)."""
    if tuning == "gaussian":
        return 0.0, 1.0
    # d/dx [e^-x - A e^(-x/s^2)] = 0 at x* = ln(s^2 / A) / (1 - 1/s^2), with x = d^2 / 2w^2.
    s2, amplitude = SURROUND_WIDTH**2, SURROUND_AMPLITUDE
    x = math.log(s2 / amplitude) / (1 - 1 / s2)
    return (math.exp(-x) - amplitude * math.exp(-x / s2)) / (1 - amplitude), 1.0
