"""Networks shared by the scientific regression tests, trained once per test session."""

import pytest
import torch

from agents import CTRNN, train
from evaluation.demo import PlacementConfig
from noise_envs import make_task


def function_approx_config(seed: int, iterations: int = 400) -> PlacementConfig:
    """The small noise-in / noise-out experiment the science tests share (sigma = 0.5)."""
    return PlacementConfig(
        hidden_size=32, iterations=iterations, batch_size=64, episodes=128, seed=seed
    )


@pytest.fixture(scope="session")
def trained_function_approx():
    """``get(placement, seed, iterations=400)``: a function-approximation CTRNN trained at sigma
    0.5, cached."""
    cache: dict[tuple[str, int, int], CTRNN] = {}

    def get(placement: str, seed: int, iterations: int = 400) -> CTRNN:
        key = (placement, seed, iterations)
        if key not in cache:
            config = function_approx_config(seed, iterations)
            model = CTRNN(
                config.model_config(placement), generator=torch.Generator().manual_seed(seed)
            )
            train(model, make_task(config.task), config.train_config(), progress=False)
            cache[key] = model
        return cache[key]

    return get
