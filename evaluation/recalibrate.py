r"""Recalibrate a trained network for another noise level without retraining its recurrent weights.

A noise-in network trained at noise ``sigma`` has learned a read-out that is right *on average
under that noise*; at another test noise its states sit elsewhere and the read-out is biased
(:mod:`evaluation.mechanism.shift`). :func:`recalibrate` fixes the read-out for the noise level
``S`` the network will meet:

1. optionally (``method="bias_shift+readout"``) it moves each unit's bias ``b_i`` by the
   mean-field shift between the source's training noise ``s`` and ``S`` (:func:`bias_shift`);
2. it runs ``episodes`` episodes of the run's own task at noise ``S``, records the states the
   read-out sees at every scored step and the teacher's targets and masks, and refits the linear
   read-out ``y = W_out h + b_out`` by weighted least squares (:func:`fit_readout`): closed form,
   the mask-weighted teacher error of those episodes is minimised exactly. Closed-loop tasks (the
   maze) visit the states of the *old* read-out's actions; the refit is then one step of a
   fixed-point iteration, not the optimum of the new closed loop.

The result is written as a new run folder through the run lifecycle (trainer ``recalibrate``, a
:class:`~agents.recalibration_config.RecalibrationConfig` that names the source run, the noise,
the method, the episodes and the seed) and loads, sweeps and analyses like any run.

Supported models are those with a linear read-out ``W_out h + b_out``: the CTRNN with
``readout="linear"`` and the noisy MLP (its last hidden layer is ``h``). A CTRNN with a sigmoid
read-out and the stable-baselines3 policies are refused.
"""

from __future__ import annotations

import math
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from agents.ctrnn import CTRNN
from agents.errors import NotARunFolder
from agents.mlp import NoisyMLP
from agents.models import build_model, model_kind
from agents.noise import scaled_noise
from agents.noise_distribution import training_noise
from agents.recalibration_config import RECALIBRATION_METHODS, RecalibrationConfig
from agents.run_files import HISTORY_FILE, RUN_FILE
from agents.run_lifecycle import RunRequest, open_run
from agents.runs import Run, load_run
from evaluation.mechanism.gaussian import gaussian_activation_mean
from evaluation.mechanism.mean_field import mean_field_statistics
from noise_envs._checks import check_nonnegative, check_positive_int
from noise_envs.core import Task
from noise_envs.random import RandomSource

__all__ = [
    "ReadoutData",
    "bias_shift",
    "check_recalibratable",
    "collect_readout_data",
    "fit_readout",
    "recalibrate",
]

_BISECTIONS = 80
"""Bisection steps when inverting ``a -> E[f(a + s xi)]`` (the bracket shrinks by 2^-80)."""


class ReadoutData:
    """States the read-out saw and what it should have answered, one row per scored step.

    Attributes:
        features: ``[R, N]`` float64, the read-out's input ``h`` at each step of each episode.
        targets: ``[R, A]`` float64, the teacher's targets.
        masks: ``[R, A]`` float64, the teacher's weights (0 after a row's episode ended).
    """

    def __init__(self, features: torch.Tensor, targets: torch.Tensor, masks: torch.Tensor) -> None:
        self.features, self.targets, self.masks = features, targets, masks

    def mse(self, weight: torch.Tensor, bias: torch.Tensor) -> float:
        """The mask-weighted mean squared error of the read-out ``(weight, bias)`` on this data."""
        outputs = self.features @ weight.double().T + bias.double()
        error = (self.masks * (outputs - self.targets).square()).sum()
        return float(error / self.masks.sum().clamp_min(1e-12))


def check_recalibratable(model: nn.Module, where: object = "the model") -> None:
    """ValueError unless ``model`` has a linear read-out ``W_out h + b_out`` to refit."""
    if isinstance(model, CTRNN):
        if model.config.readout != "linear":
            raise ValueError(
                f"{where} has a {model.config.readout} read-out; recalibration refits a linear "
                "read-out y = W_out h + b_out by least squares (CTRNN readout='linear' or a "
                "noisy MLP)"
            )
        return
    if isinstance(model, NoisyMLP):
        return
    raise ValueError(
        f"{where} holds a {type(model).__name__}; recalibration refits the linear read-out of a "
        "CTRNN (readout='linear') or a noisy MLP, trained with `noisepref train --algo supervised`"
    )


def _step_features(
    model: nn.Module, obs: torch.Tensor, state: torch.Tensor, sigma: float, noise: RandomSource
) -> tuple[torch.Tensor, torch.Tensor]:
    """The read-out's input after one step, and the model's next state."""
    if isinstance(model, CTRNN):
        h = model.hidden_step(obs, state, sigma, noise, validate=False)
        return h, h
    scaled = scaled_noise(sigma, noise, (obs.shape[0], model.config.noise_size), obs.device)
    return model.hidden(obs, scaled), state


@torch.no_grad()
def collect_readout_data(
    model: nn.Module,
    task: Task,
    sigma: float,
    *,
    episodes: int = 512,
    seed: int = 0,
    device: torch.device | str = "cpu",
) -> ReadoutData:
    """Run ``episodes`` episodes of ``task`` at noise ``sigma`` and record what the read-out saw.

    The model acts closed loop (its own read-out chooses the actions), as in a sweep. The task's
    randomness and the model's noise come from two generators derived from ``seed`` with numpy's
    ``SeedSequence`` (as the trainer derives its own), so the same seed gives the same data.

    Returns:
        Features, targets and masks of every step of every episode (masks are 0 once a row's
        episode has ended, so those steps do not count).
    """
    check_recalibratable(model)
    check_nonnegative("sigma", sigma)
    check_positive_int("episodes", episodes)
    env_seed, noise_seed = np.random.SeedSequence(seed).generate_state(2, dtype=np.uint64)
    env_rng = RandomSource.from_seed(int(env_seed), device=device)
    noise = RandomSource.from_seed(int(noise_seed), device=device)
    model = model.to(device)
    state, obs = task.reset(episodes, env_rng, device)
    hidden = model.initial_state(episodes, device)
    features, targets, masks = [], [], []
    for _ in range(task.horizon):
        target, mask = task.teacher(state)
        alive = (~state.done).unsqueeze(-1).to(mask.dtype)
        h, hidden = _step_features(model, obs, hidden, sigma, noise)
        features.append(h.double())
        targets.append(target.double())
        masks.append((mask * alive).double())
        action = torch.addmm(model.b_out, h, model.W_out.T)
        state, obs, _, done = task.step(state, action, validate=False)
        if bool(done.all()):
            break
    return ReadoutData(torch.cat(features).cpu(), torch.cat(targets).cpu(), torch.cat(masks).cpu())


def fit_readout(data: ReadoutData, ridge: float = 1e-8) -> tuple[torch.Tensor, torch.Tensor]:
    r"""The read-out ``(W_out [A, N], b_out [A])`` minimising the mask-weighted squared error.

    For each output ``a`` it solves, in float64,

    .. math::
        \min_{w, c}\ \frac{\sum_r m_{ra} (w \cdot h_r + c - y_{ra})^2}{\sum_r m_{ra}}
        + \lambda \lVert w \rVert^2

    as the least-squares problem of the rows ``sqrt(m_ra) [h_r, 1]`` (plus ``sqrt(lambda sum m)``
    times the identity on ``w``, not on the bias ``c``), by ``torch.linalg.lstsq`` (minimum-norm
    for rank-deficient states, such as units that never fire).

    Raises:
        ValueError: for a negative ``ridge`` or an output that no step scores.
    """
    check_nonnegative("ridge", ridge)
    features, targets, masks = data.features, data.targets, data.masks
    rows, size = features.shape
    design = torch.cat([features, torch.ones(rows, 1, dtype=features.dtype)], dim=1)
    weights, biases = [], []
    for a in range(targets.shape[1]):
        mask = masks[:, a]
        total = float(mask.sum())
        if total <= 0:
            raise ValueError(f"no step scores output {a}: there is nothing to fit it to")
        scale = mask.sqrt().unsqueeze(1)
        lhs, rhs = design * scale, targets[:, a : a + 1] * scale
        if ridge > 0:
            penalty = torch.zeros(size, size + 1, dtype=features.dtype)
            penalty[:, :size] = math.sqrt(ridge * total) * torch.eye(size, dtype=features.dtype)
            lhs = torch.cat([lhs, penalty])
            rhs = torch.cat([rhs, torch.zeros(size, 1, dtype=features.dtype)])
        solution = torch.linalg.lstsq(lhs, rhs, driver="gelsd").solution[:, 0]
        weights.append(solution[:size])
        biases.append(solution[size])
    return torch.stack(weights), torch.stack(biases)


@torch.no_grad()
def bias_shift(
    model: CTRNN, inputs: torch.Tensor, from_sigma: float, to_sigma: float
) -> torch.Tensor:
    r"""The change of each unit's bias that keeps its mean-field mean rate when the noise changes.

    With noise inside ``f`` a unit's mean rate is ``G_s(mu) = E[f(mu + s xi)]``, ``mu`` its mean
    pre-activation ``W h + U u + b`` and ``s`` the effective noise (``sigma`` times the model's
    noise gain). The network was trained at ``s``; its plain mean-field stationary state
    (:func:`~evaluation.mechanism.mean_field.mean_field_statistics` without linear response) gives
    ``mu_k`` for each constant input ``u_k``. At the new noise ``S`` the rate ``G_S(mu_k)`` differs
    (for relu at ``S = 0`` it drops by the noise-induced shift ``G_s(mu) - relu(mu)``); the
    pre-activation ``a_k = G_S^{-1}(G_s(mu_k))`` restores it, and the bias moves by the mean
    over inputs

    .. math::
        \delta_i = \frac{1}{K} \sum_k \left(G_S^{-1}\!\left(G_s(\mu_{ki})\right) - \mu_{ki}\right),

    so that, to first order, every unit's mean rate, hence the stationary state and the mean
    output, is what the read-out was trained on. ``G`` is increasing in ``mu``, so the inverse is
    found by bisection. With noise outside ``f`` the noise has zero mean after ``f``: the
    mean-field shift is zero and so is ``delta``.

    Args:
        model: a CTRNN.
        inputs: constant inputs ``[K, I]`` (e.g. the task's first observations).
        from_sigma: the noise the network was trained at.
        to_sigma: the noise it will meet.

    Returns:
        ``delta`` ``[N]`` (float64).

    Raises:
        ValueError: if the mean-field state cannot be found (an unstable network).
    """
    check_nonnegative("from_sigma", from_sigma)
    check_nonnegative("to_sigma", to_sigma)
    if model.config.placement != "in":
        return torch.zeros(model.config.hidden_size, dtype=torch.float64)
    try:
        stats = mean_field_statistics(model, inputs, from_sigma, linear_response=False)
    except RuntimeError as error:
        raise ValueError(
            f"the bias shift needs the mean-field state, which failed: {error}"
        ) from None
    gain = model.config.noise_gain
    mu = stats.pre_mean
    activation = model.config.activation
    wanted = gaussian_activation_mean(activation, mu, from_sigma * gain)
    width = 10.0 * (from_sigma + to_sigma) * gain + 10.0
    low, high = mu - width, mu + width
    for _ in range(_BISECTIONS):
        middle = 0.5 * (low + high)
        below = gaussian_activation_mean(activation, middle, to_sigma * gain) < wanted
        low, high = torch.where(below, middle, low), torch.where(below, high, middle)
    return (0.5 * (low + high) - mu).mean(0)


def recalibrate(
    source: str | os.PathLike,
    out: str | os.PathLike,
    *,
    to_sigma: float,
    method: str = "readout",
    episodes: int = 512,
    seed: int = 0,
    ridge: float = 1e-8,
    num_inputs: int = 12,
    device: torch.device | str = "cpu",
    overwrite: bool = False,
) -> Run:
    """Recalibrate the run ``source`` for noise ``to_sigma`` into the new run folder ``out``.

    Args:
        source: a complete run folder of a model with a linear read-out.
        out: the new run folder (not ``source``).
        to_sigma: the noise level the network will meet.
        method: ``readout`` or ``bias_shift+readout`` (see the module docstring).
        episodes: episodes at ``to_sigma`` the read-out is fitted on.
        seed: seed of those episodes (and of the bias shift's inputs).
        ridge: ridge penalty of the fit (see :func:`fit_readout`).
        num_inputs: constant inputs (first observations of episodes) the bias shift averages over.
        device: where to simulate.
        overwrite: move whatever ``out`` holds aside first (nothing is deleted).

    Returns:
        The new run, loaded back.

    Raises:
        ValueError: for a negative ``to_sigma``, an unknown method, ``out`` being ``source``, a
            source that is still running, a model without a linear read-out, or the bias
            shift asked of a model that is not a CTRNN.
        NotARunFolder: if ``source`` is not a run folder, or ``out`` holds something else.
        RunMismatch: if ``out`` holds another recalibration.
    """
    check_nonnegative("to_sigma", to_sigma)
    if method not in RECALIBRATION_METHODS:
        raise ValueError(f"`method` must be one of {list(RECALIBRATION_METHODS)}, got {method!r}")
    source_path, out_path = Path(source), Path(out)
    if not (source_path / RUN_FILE).is_file():
        raise NotARunFolder(f"{source_path} is not a run folder: it has no {RUN_FILE}")
    if out_path.resolve() == source_path.resolve():
        raise ValueError(
            f"the output folder {str(out)!r} is the source run itself; recalibration writes a "
            "new run folder beside it"
        )
    run = load_run(source_path, device=device)
    check_recalibratable(run.model, f"{source_path} ({run.model_kind} run)")
    if method == "bias_shift+readout" and not isinstance(run.model, CTRNN):
        raise ValueError(
            f"the bias shift applies to CTRNNs (the mean field of their recurrent state); "
            f"{source_path} holds a {run.model_kind}: recalibrate it with method='readout'"
        )
    if run.status != "complete":
        raise ValueError(f"{source_path} is still training ({run.status}); recalibrate it later")
    config = RecalibrationConfig(
        to_sigma=float(to_sigma),
        method=method,
        episodes=episodes,
        seed=seed,
        ridge=ridge,
        source=str(source_path.resolve()),
        source_trainer=run.trainer,
        source_train=run.train_config.to_dict(),
    )
    task = run.task()
    model = _copy_model(run)
    tick = time.perf_counter()
    if config.bias_shift:
        _, obs = task.reset(num_inputs, generator=seed, device=device)
        delta = bias_shift(model, obs, training_noise(run.train_config).mean, config.to_sigma)
        with torch.no_grad():
            model.b.add_(delta.to(model.b))
    data = collect_readout_data(
        model, task, config.to_sigma, episodes=episodes, seed=seed, device=device
    )
    weight, bias = fit_readout(data, ridge)
    with torch.no_grad():
        model.W_out.copy_(weight.to(model.W_out))
        model.b_out.copy_(bias.to(model.b_out))
    row = {
        "iteration": 1,
        "loss": data.mse(model.W_out.detach().cpu(), model.b_out.detach().cpu()),
        "grad_norm": 0.0,
        "learning_rate": 0.0,
        "seconds": time.perf_counter() - tick,
    }
    _write(out_path, task, model, config, row, overwrite)
    return load_run(out_path, device=device)


def _copy_model(run: Run) -> nn.Module:
    model = build_model(run.model_kind, run.model_config)
    model.load_state_dict(run.model.state_dict())
    return model.to(next(run.model.parameters()).device)


def _write(
    out: Path,
    task: Task,
    model: nn.Module,
    config: RecalibrationConfig,
    row: dict[str, Any],
    overwrite: bool,
) -> None:
    """Write the recalibrated model as a one-step run through the run lifecycle."""
    model_kind(model)  # registered, so the run can be loaded back
    optimizer = torch.optim.SGD(model.parameters(), lr=0.0)  # the lifecycle checks one; unused
    checkpoint = {
        "iteration": 1,
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "rng": {},
    }
    request = RunRequest(
        task=task,
        model=model,
        trainer="recalibrate",
        config=config,
        template={**checkpoint, "iteration": 0},
        optimizer=optimizer,
    )
    with open_run(out, request, resume=True, overwrite=overwrite) as writer:
        if writer.start == 0:
            writer.save(1, checkpoint, {HISTORY_FILE: [row]})
        writer.finish(model)
