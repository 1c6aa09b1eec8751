"""Noisy recurrent models and how they are trained: CTRNN, the Policy protocol, rollouts."""

from agents.ctrnn import CTRNN, CTRNNConfig, ctrnn_step
from agents.noise import ACTIVATIONS, NOISE_SCALINGS, PLACEMENTS, draw_noise, noisy_activation
from agents.policy import Policy
from agents.rollout import Rollout, rollout

__all__ = [
    "ACTIVATIONS",
    "CTRNN",
    "NOISE_SCALINGS",
    "PLACEMENTS",
    "CTRNNConfig",
    "Policy",
    "Rollout",
    "ctrnn_step",
    "draw_noise",
    "noisy_activation",
    "rollout",
]
