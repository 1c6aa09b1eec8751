"""Figures of the mechanism analysis, drawn on ``matplotlib.figure.Figure`` objects (no pyplot).

The stationary mean against the noise level (simulated and predicted), the output bias against
test noise, and the kink occupancy of noise-in against noise-out networks. Every line style is
explained in the legend; noise levels are per-step standard deviations, as the CTRNN takes them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from noise_envs._checks import check_positive_int

if TYPE_CHECKING:  # annotations only: evaluation.mechanism.analysis imports this module
    from evaluation.mechanism.kink import KinkOccupancy
    from evaluation.mechanism.shift import NoiseShift, OutputBias

__all__ = [
    "plot_kink_distances",
    "plot_kink_occupancy",
    "plot_output_bias",
    "plot_stationary_mean",
]


_NOISE_LABEL = r"noise $\sigma$ (per-step std)"
_TEST_NOISE_LABEL = r"test noise $\sigma$ (per-step std)"


def _axes(ax: Axes | None, width: float = 5.5) -> Axes:
    return Figure(figsize=(width, 3.8), layout="constrained").add_subplot() if ax is None else ax


def _key(ax: Axes, style: str, label: str, color: str = "k", **kwargs: float) -> None:
    """A legend entry for a line style that the plot uses in several colours."""
    ax.plot([], [], style, color=color, label=label, **kwargs)


def plot_stationary_mean(
    shift: NoiseShift,
    *,
    output: int = 0,
    max_inputs: int = 6,
    input_labels: Sequence[str] | None = None,
    train_sigma: float | None = None,
    title: str | None = None,
    ax: Axes | None = None,
) -> Figure:
    """Mean output against the noise level, per input: simulated, and predicted by mean field.

    Simulated means are points with standard-error bars; the linear-response prediction is a solid
    line and the plain mean-field prediction a dashed one, in the same colour. The legend sits
    right of the axes.

    Args:
        shift: the result of :func:`~evaluation.mechanism.shift.noise_shift`.
        output: which output unit to show.
        max_inputs: show at most this many inputs, evenly picked.
        input_labels: a label per input ``[B]`` (default: ``input 1`` .. ``input B``).
        train_sigma: the training noise, marked by a dotted vertical line.
        title: the title (e.g. naming the run).
        ax: axes to draw on; a new figure is made when None.
    """
    check_positive_int("max_inputs", max_inputs)
    ax = _axes(ax, width=7.0)
    levels = shift.levels
    simulated = shift.simulated.output_mean[..., output].numpy()
    sem = shift.simulated.output_sem[..., output].numpy()
    predicted = shift.predicted_output_mean[..., output].numpy()
    plain = shift.plain_output_mean[..., output].numpy()
    batch = simulated.shape[1]
    shown = np.unique(np.linspace(0, batch - 1, min(batch, max_inputs)).round().astype(int))
    for b in shown:
        label = input_labels[b] if input_labels is not None else f"input {b + 1}"
        line = ax.errorbar(levels, simulated[:, b], yerr=sem[:, b], fmt="o", ms=3, label=label)
        color = line[0].get_color()
        ax.plot(levels, predicted[:, b], "-", color=color, linewidth=1)
        ax.plot(levels, plain[:, b], "--", color=color, linewidth=1)
    _key(ax, "o", "points: simulated (+- s.e.m.)", ms=3)
    _key(ax, "-", "solid: mean field + linear response", linewidth=1)
    _key(ax, "--", "dashed: plain mean field", linewidth=1)
    if train_sigma is not None:
        ax.axvline(train_sigma, color="0.4", linestyle=":", linewidth=1, label="training noise")
    ax.set_xlabel(_NOISE_LABEL)
    ax.set_ylabel(f"stationary mean of output {output + 1}")
    ax.set_title(title or "noise-induced shift of the stationary mean", fontsize="medium")
    ax.legend(fontsize="x-small", loc="center left", bbox_to_anchor=(1.02, 0.5))
    return ax.figure


def plot_output_bias(
    biases: Mapping[str, OutputBias],
    *,
    train_sigma: Mapping[str, float] | float | None = None,
    title: str | None = None,
    ax: Axes | None = None,
) -> Figure:
    """The squared output bias ``E[(ybar_sigma - y_0)^2]`` against test noise, per network.

    A dotted horizontal line in the curve's colour marks the network's zero-noise error
    ``E[(y_0 - target)^2]``: where the bias at the training noise reaches it, the shift accounts
    for the zero-noise error. Dashed: the error of the mean output, ``E[(ybar_sigma - target)^2]``.
    For a closed-loop task, where the bias is not defined (see :class:`OutputBias`), the curve is
    the mse, measured as the sweep measures it.

    Args:
        biases: results of :func:`~evaluation.mechanism.shift.output_bias` by label.
        train_sigma: training noise by label, or one level for every curve.
        title: the title (e.g. naming the run).
        ax: axes to draw on; a new figure is made when None.
    """
    if not biases:
        raise ValueError("`biases` must hold at least one OutputBias")
    ax = _axes(ax)
    for label, bias in biases.items():
        if bias.closed_loop:
            mse_label = f"{label}: mse (closed loop: no bias split)"
            (line,) = ax.plot(bias.levels, bias.mse, "o-", ms=3, label=mse_label)
        else:
            (line,) = ax.plot(bias.levels, bias.bias, "o-", ms=3, label=f"{label}: bias$^2$")
            ax.plot(bias.levels, bias.mean_error, "--", color=line.get_color(), label=None)
        color = line.get_color()
        ax.axhline(bias.error_zero, color=color, linestyle=":", linewidth=1)
        if isinstance(train_sigma, Mapping) and label in train_sigma:
            ax.axvline(train_sigma[label], color=color, linestyle="-.", linewidth=0.8)
    if train_sigma is not None and not isinstance(train_sigma, Mapping):
        ax.axvline(float(train_sigma), color="0.4", linestyle="-.", linewidth=0.8)
    if not all(bias.closed_loop for bias in biases.values()):
        _key(ax, "--", r"dashed: error of the mean output $E[(\bar y_\sigma - target)^2]$")
    _key(ax, ":", r"dotted: error at zero noise $E[(y_0 - target)^2]$", linewidth=1)
    if train_sigma is not None:
        _key(ax, "-.", "dash-dot: training noise", linewidth=0.8)
    ax.set_xlabel(_TEST_NOISE_LABEL)
    ax.set_ylabel("squared error (output units$^2$)")
    ax.set_title(title or r"output bias $E[(\bar y_\sigma - y_0)^2]$", fontsize="medium")
    ax.legend(fontsize="x-small")
    return ax.figure


def plot_kink_occupancy(
    occupancy: Mapping[str, Mapping[float, float | Sequence[float]]],
    *,
    title: str | None = None,
    ax: Axes | None = None,
) -> Figure:
    """Kink occupancy against training noise, one curve per kind of network (e.g. noise-in/out).

    Args:
        occupancy: by label, a mapping from training noise to the occupancy (a share), or to the
            shares of several seeds (drawn as points, the curve through their mean).
        title: the title.
        ax: axes to draw on; a new figure is made when None.
    """
    if not occupancy:
        raise ValueError("`occupancy` must hold at least one curve")
    ax = _axes(ax)
    for label, by_sigma in occupancy.items():
        sigmas = sorted(by_sigma)
        values = [np.atleast_1d(np.asarray(by_sigma[s], dtype=float)) for s in sigmas]
        (line,) = ax.plot(sigmas, [v.mean() for v in values], "o-", label=label)
        for s, v in zip(sigmas, values, strict=True):
            ax.plot(np.full(v.shape, s), v, ".", color=line.get_color(), alpha=0.5)
    _key(ax, ".", "small points: single networks (seeds)", alpha=0.5)
    ax.set_xlim(left=0.0)
    ax.set_xlabel(r"training noise $\sigma$ (per-step std)")
    ax.set_ylabel("share of (unit, input) pairs near the kink")
    ax.set_ylim(0.0, 1.0)
    ax.set_title(title or "kink occupancy (knees for tanh and sigmoid)", fontsize="medium")
    ax.legend(fontsize="small")
    return ax.figure


def plot_kink_distances(
    occupancies: Mapping[str, KinkOccupancy],
    *,
    bins: int = 30,
    title: str | None = None,
    ax: Axes | None = None,
) -> Figure:
    """Histogram of each network's distances to the kink (in standard deviations), per label.

    A dashed line marks the threshold ``k``; the share left of it is the kink occupancy. For
    tanh and sigmoid the distance is to the nearer knee (see :mod:`evaluation.mechanism.kink`).
    """
    if not occupancies:
        raise ValueError("`occupancies` must hold at least one KinkOccupancy")
    check_positive_int("bins", bins)
    ax = _axes(ax)
    names = sorted({o.bend_name for o in occupancies.values()})
    bend = names[0] if len(names) == 1 else "kink or knee"
    edges = np.linspace(0.0, 10.0, bins + 1)
    k = next(iter(occupancies.values())).k
    for label, occupancy in occupancies.items():
        values = np.clip(occupancy.distance.ravel(), 0, 10)
        share = f"{occupancy.share:.0%} within {k:g} std"
        ax.hist(values, bins=edges, histtype="step", density=True, label=f"{label} ({share})")
    ax.axvline(k, color="0.4", linestyle="--", linewidth=1, label=f"threshold: {k:g} std")
    ax.set_xlabel(f"|pre-activation mean - nearest {bend}| / its std (clipped at 10)")
    ax.set_ylabel("density over units and inputs")
    ax.set_title(title or f"distance to the {bend}", fontsize="medium")
    ax.legend(fontsize="small")
    return ax.figure
