r"""Kink occupancy: how many units operate near the activation's nonlinearity.

Noise inside ``f`` shifts a unit's mean only where ``f`` bends within reach of the noise (for relu:
:math:`E[\mathrm{relu}(a + s\xi)] - \mathrm{relu}(a)` is ``0.399 s`` at ``a = 0`` and vanishes
for ``|a| >> s``). A unit *occupies the kink* at an input when its pre-activation mean lies
within ``k`` standard deviations of a kink: :math:`|a - \kappa| < k s`.

One definition serves every activation: the *bend points* are where ``f``'s curvature peaks. For
relu that is its kink at 0, for softplus (a smoothed relu) also 0. tanh and sigmoid have no kink;
their bend points are the two *knees* where saturation sets in
(:math:`\pm \operatorname{atanh}(1/\sqrt 3) \approx \pm 0.658` and
:math:`\pm \ln(2 + \sqrt 3) \approx \pm 1.317`), and reports call the measure *knee occupancy*
there. Beyond the knees a tanh or sigmoid unit is saturated; above relu's kink it is on.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import torch

from agents.ctrnn import CTRNN
from agents.noise import ACTIVATIONS
from evaluation.mechanism.stationary import stationary_statistics
from noise_envs._checks import check_choice, check_positive, check_shape

__all__ = ["BEND_NAMES", "KINKS", "KinkOccupancy", "kink_occupancy", "measure_kink_occupancy"]

KINKS: dict[str, tuple[float, ...]] = {
    "relu": (0.0,),
    "softplus": (0.0,),
    "tanh": (-math.atanh(1.0 / math.sqrt(3.0)), math.atanh(1.0 / math.sqrt(3.0))),
    "sigmoid": (-math.log(2.0 + math.sqrt(3.0)), math.log(2.0 + math.sqrt(3.0))),
}
"""Where each activation bends: its points of largest curvature (relu's kink, tanh's knees)."""

BEND_NAMES: dict[str, str] = {"relu": "kink", "softplus": "kink", "tanh": "knee", "sigmoid": "knee"}
"""What each activation's bend points are called in reports: a kink, or a knee into saturation."""


@dataclasses.dataclass(frozen=True, eq=False)
class KinkOccupancy:
    """Which units sit near the kink, at each input."""

    k: float
    """The threshold in standard deviations."""
    distance: np.ndarray
    """``|a - kink| / s`` per input and unit ``[B, N]`` (distance to the nearest kink)."""
    above: np.ndarray
    """Whether the pre-activation mean is above the (largest) kink ``[B, N]``: relu units on."""
    below: np.ndarray
    """Whether it is below the (smallest) kink ``[B, N]``: relu units off."""
    activation: str
    """The activation the bend points belong to."""

    @property
    def bend_name(self) -> str:
        """The bend points' name: kink (relu, softplus) or knee (tanh, sigmoid)."""
        return BEND_NAMES[self.activation]

    @property
    def bend_description(self) -> str:
        """The bend points in words, e.g. "tanh's knees at +-0.658 (no kink; curvature peaks)"."""
        points = KINKS[self.activation]
        if len(points) == 1:
            return f"{self.activation}'s kink at {points[0]:g}"
        return (
            f"{self.activation}'s knees at +-{points[-1]:.3g} "
            "(it has no kink: its curvature peaks there, where saturation sets in)"
        )

    @property
    def near(self) -> np.ndarray:
        """Whether each unit is within ``k`` standard deviations of a kink, ``[B, N]``."""
        return self.distance < self.k

    @property
    def share(self) -> float:
        """The share of (input, unit) pairs near a kink: the network's kink occupancy."""
        return float(self.near.mean())

    @property
    def unit_share(self) -> np.ndarray:
        """Per unit, the share of inputs at which it is near a kink ``[N]``."""
        return self.near.mean(0)

    @property
    def active_share(self) -> float:
        """The share of pairs above the kink (for relu: units that are on at the mean)."""
        return float(self.above.mean())

    @property
    def saturated_share(self) -> float:
        """The share of pairs beyond the knees on either side (for tanh and sigmoid: saturated).

        For one-bend activations (relu, softplus) every pair off the kink counts; read
        :attr:`active_share` there instead.
        """
        return float((self.above | self.below).mean())


def kink_occupancy(
    pre_mean: torch.Tensor,
    scale: torch.Tensor | float,
    activation: str,
    *,
    k: float = 1.0,
) -> KinkOccupancy:
    """Kink occupancy from pre-activation means and the noise scale they are measured against.

    Args:
        pre_mean: means of the argument of ``f`` ``[B, N]``.
        scale: standard deviations ``[B, N]`` (e.g. the measured ``pre_std``), or one number
            (e.g. the training noise) for every unit.
        activation: relu, softplus, tanh or sigmoid.
        k: the threshold in standard deviations.

    Returns:
        The occupancy.

    Example:
        >>> occupancy = kink_occupancy(torch.tensor([[0.1, -2.0, 0.5]]), 0.3, "relu")
        >>> occupancy.near.tolist(), round(occupancy.share, 3)
        ([[True, False, False]], 0.333)
    """
    check_choice("activation", activation, ACTIVATIONS)
    check_positive("k", k)
    check_shape("pre_mean", pre_mean, (None, None))
    pre_mean = pre_mean.detach().to(torch.float64).cpu()
    scale = torch.as_tensor(scale, dtype=torch.float64).cpu()
    if bool((scale <= 0).any()):
        raise ValueError(f"`scale` must be > 0, got min {float(scale.min())}")
    kinks = torch.tensor(KINKS[activation], dtype=torch.float64)
    gap = (pre_mean.unsqueeze(-1) - kinks).abs().amin(-1)
    return KinkOccupancy(
        k=float(k),
        distance=(gap / scale).expand_as(pre_mean).numpy(),
        above=(pre_mean > kinks.max()).numpy(),
        below=(pre_mean < kinks.min()).numpy(),
        activation=activation,
    )


def measure_kink_occupancy(
    model: CTRNN,
    inputs: torch.Tensor,
    sigma: float,
    *,
    k: float = 1.0,
    steps: int = 1000,
    burn_in: int = 300,
    replicas: int = 8,
    seed: int = 0,
) -> KinkOccupancy:
    """Simulate at noise ``sigma`` and measure the kink occupancy against the measured spread.

    The standard deviation of each unit's pre-activation includes its state's fluctuations and,
    for noise "in", the noise itself; a unit whose spread is zero counts as far from the kink.
    """
    check_positive("sigma", sigma)
    stats = stationary_statistics(
        model, inputs, [sigma], steps=steps, burn_in=burn_in, replicas=replicas, seed=seed
    )
    scale = stats.pre_std[0].clamp_min(1e-12)
    return kink_occupancy(stats.pre_mean[0], scale, model.config.activation, k=k)
