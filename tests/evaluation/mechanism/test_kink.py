"""Tests of the kink occupancy."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from agents import CTRNN, CTRNNConfig
from evaluation.mechanism.kink import KINKS, kink_occupancy, measure_kink_occupancy


def test_units_within_k_std_of_zero_are_near():
    """relu, scale 0.5, k = 1: |a| < 0.5 is near; the share counts units x inputs."""
    pre = torch.tensor([[0.0, 0.4, -0.6, 2.0], [-0.1, 0.6, -3.0, 0.49]])
    occupancy = kink_occupancy(pre, 0.5, "relu")
    assert occupancy.near.tolist() == [[True, True, False, False], [True, False, False, True]]
    assert occupancy.share == pytest.approx(4 / 8)
    assert occupancy.unit_share.tolist() == [1.0, 0.5, 0.0, 0.5]
    assert occupancy.active_share == pytest.approx(4 / 8)
    assert np.allclose(occupancy.distance[0], [0.0, 0.8, 1.2, 4.0])


def test_per_unit_scale_and_threshold():
    """Each unit is measured against its own spread; a larger k admits more units."""
    pre = torch.tensor([[1.0, 1.0]])
    scale = torch.tensor([[0.5, 2.0]])
    assert kink_occupancy(pre, scale, "softplus").near.tolist() == [[False, True]]
    assert kink_occupancy(pre, scale, "softplus", k=2.5).near.tolist() == [[True, True]]


def test_tanh_kinks_are_the_points_of_largest_curvature():
    """|tanh''| peaks at +-atanh(1/sqrt(3)); a unit at either point is at distance 0."""
    x = torch.linspace(0, 2, 20001, dtype=torch.float64)
    curvature = (2 * torch.tanh(x) * (1 - torch.tanh(x) ** 2)).abs()
    assert KINKS["tanh"][1] == pytest.approx(float(x[curvature.argmax()]), abs=1e-3)
    sigmoid = torch.sigmoid(x * 2)
    sigmoid_curvature = (sigmoid * (1 - sigmoid) * (1 - 2 * sigmoid)).abs()
    assert KINKS["sigmoid"][1] == pytest.approx(float(2 * x[sigmoid_curvature.argmax()]), abs=2e-3)
    occupancy = kink_occupancy(torch.tensor([[-0.6585, 0.6585, 0.0]]), 0.1, "tanh")
    assert occupancy.near.tolist() == [[True, True, False]]
    assert occupancy.distance[0, 2] == pytest.approx(math.atanh(1 / math.sqrt(3)) / 0.1)


def test_measured_occupancy_of_a_hand_made_network():
    """Uncoupled noise-in units with drive 0, 3 and -3 at sigma 0.5: only the first is near."""
    model = CTRNN(CTRNNConfig(input_size=1, output_size=1, hidden_size=3, dt=50.0))
    with torch.no_grad():
        model.W.zero_()
        model.U.zero_()
        model.b.copy_(torch.tensor([0.0, 3.0, -3.0]))
    occupancy = measure_kink_occupancy(
        model, torch.zeros(2, 1), 0.5, steps=20, burn_in=5, replicas=2
    )
    assert occupancy.near.tolist() == [[True, False, False]] * 2
    assert np.allclose(occupancy.distance[:, 1], 6.0)


def test_validation():
    with pytest.raises(ValueError, match="`activation` must be one of"):
        kink_occupancy(torch.zeros(1, 2), 1.0, "elu")
    with pytest.raises(ValueError, match="`k` must be > 0, got 0"):
        kink_occupancy(torch.zeros(1, 2), 1.0, "relu", k=0)
    with pytest.raises(ValueError, match="`scale` must be > 0"):
        kink_occupancy(torch.zeros(1, 2), torch.tensor([[1.0, 0.0]]), "relu")
    with pytest.raises(ValueError, match=r"Expected `pre_mean` of shape \[\*, \*\]"):
        kink_occupancy(torch.zeros(3), 1.0, "relu")


def test_tanh_reports_knees_and_saturation_not_a_kink():
    """tanh has no kink: its bend points are knees, and units beyond them are saturated."""
    pre = torch.tensor([[-2.0, -0.6, 0.0, 0.5, 3.0]])
    occupancy = kink_occupancy(pre, 0.1, "tanh")
    assert occupancy.bend_name == "knee"
    assert "no kink" in occupancy.bend_description
    assert "0.658" in occupancy.bend_description
    assert occupancy.saturated_share == pytest.approx(2 / 5)  # -2 and 3 lie beyond +-0.658
    relu = kink_occupancy(pre, 0.1, "relu")
    assert relu.bend_name == "kink"
    assert relu.bend_description == "relu's kink at 0"
    assert relu.active_share == pytest.approx(2 / 5)  # 0.5 and 3 are on
