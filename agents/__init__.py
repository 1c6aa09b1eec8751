"""Noisy recurrent models and how they are trained: CTRNN, the Policy protocol, rollouts."""

from agents.ctrnn import CTRNN, CTRNNConfig, ctrnn_step
from agents.models import MODEL_KINDS, build_model, model_kind
from agents.noise import ACTIVATIONS, NOISE_SCALINGS, PLACEMENTS, draw_noise, noisy_activation
from agents.policy import Policy
from agents.rollout import Rollout, rollout
from agents.runs import Run, load_run
from agents.supervised import TrainConfig, TrainingDiverged, TrainResult, train, train_run

__all__ = [
    "ACTIVATIONS",
    "CTRNN",
    "MODEL_KINDS",
    "NOISE_SCALINGS",
    "PLACEMENTS",
    "CTRNNConfig",
    "Policy",
    "Rollout",
    "Run",
    "TrainConfig",
    "TrainResult",
    "TrainingDiverged",
    "build_model",
    "ctrnn_step",
    "draw_noise",
    "load_run",
    "model_kind",
    "noisy_activation",
    "rollout",
    "train",
    "train_run",
]
