"""Supervised training by backpropagation through time inside a batched task.

The model acts in the task at the training noise level, the task scores every action against its
teacher signal, and Adam minimises the mask-weighted mean squared teacher error
(:func:`~agents.rollout.teacher_loss`). Closed-loop tasks run the model step by step inside the
task; open-loop tasks hand over their whole episodes first and the model runs them as one
sequence, which gives the same loss faster.
"""

from __future__ import annotations

import dataclasses
import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from agents.errors import TrainingDiverged
from agents.models import build_model
from agents.rollout import teacher_loss
from agents.run_files import HISTORY_FILE
from agents.run_lifecycle import RunRequest, RunWriter, open_run
from agents.runs import Run, load_run
from agents.train_config import TrainConfig
from noise_envs._memory import check_memory
from noise_envs.config import JsonConfig
from noise_envs.core import Task
from noise_envs.random import RandomSource
from noise_envs.registration import make_task

__all__ = [
    "TrainConfig",
    "TrainResult",
    "TrainingDiverged",
    "bptt_bytes",
    "check_model_fits",
    "open_supervised_run",
    "train",
    "train_run",
    "training_sigma",
    "training_sources",
]


BPTT_BYTES_PER_UNIT = 16
"""Bytes per hidden unit, batch row and step that backpropagation through time keeps (float32):
measured 8.0 to 8.7 (the tensors autograd saves for a CTRNN step: its state and pre-activation,
H = 16 to 1024, inside the maze's closed loop); twice that, to be safe."""
BPTT_BYTES_PER_IO = 16
"""Bytes per observation and action entry, batch row and step: the observation, the action, the
teacher target and mask kept for the loss (float32; measured with the units above, then doubled)."""
BPTT_STEP_BYTES = 64
"""Bytes per batch row and step besides: the loss terms, the end flags and the task's step."""


@dataclasses.dataclass(frozen=True)
class TrainResult:
    """What :func:`train` returns.

    Attributes:
        model: the trained model (the one passed in, trained in place).
        history: one dict per iteration with the columns of ``history.csv``.
        iterations_done: iterations the model has been trained for.
        run_dir: the run folder, or None if nothing was saved.
    """

    model: nn.Module
    history: list[dict[str, float]]
    iterations_done: int
    run_dir: Path | None


def train(
    model: nn.Module,
    task: Task,
    config: TrainConfig,
    *,
    run_dir: str | Path | None = None,
    device: torch.device | str = "cpu",
    progress: bool = True,
    resume: bool = True,
    overwrite: bool = False,
) -> TrainResult:
    """Train ``model`` on ``task`` by BPTT through its episodes at noise ``config.sigma``.

    With ``config.sigma_dist`` the noise level is drawn every iteration instead, per batch row
    (episode) or per batch, from the model's seeded noise generator (:func:`training_sigma`).

    Each iteration runs ``config.batch_size`` episodes, backpropagates the teacher loss, clips the
    gradient norm and takes an Adam step. With ``run_dir`` the run is saved as a run folder
    through the run lifecycle (:mod:`agents.run_lifecycle`: one locked writer, every file read
    back checked): checkpoints every ``config.checkpoint_every`` iterations and at the end, then
    the final weights. If ``run_dir`` holds a checkpoint of the same run and ``resume`` is true,
    training continues from it and ends with the weights an uninterrupted run gives; with
    ``resume=False`` the old run is moved aside and training starts again from ``model``'s
    weights. A folder holding anything else is refused unless ``overwrite`` moves it aside.

    Args:
        model: a registered model kind (see :mod:`agents.models`); trained in place.
        task: the batched task.
        config: the training options.
        run_dir: where to save the run, or None to keep it in memory.
        device: where to train.
        progress: show a progress bar.
        resume: continue from ``run_dir``'s checkpoint if there is one.
        overwrite: move whatever ``run_dir`` holds into ``run_dir/.replaced-<time>-<pid>/`` and
            start a new run there (nothing is deleted).

    Raises:
        TrainingDiverged: if the loss or gradient norm is not finite; the message names the
            iteration, and the last checkpoint is left as it was.
        ValueError: if the model does not fit the task, a config cannot be saved, or
            ``run_dir`` is empty or the current folder.
        NotARunFolder: if ``run_dir`` holds anything but a supervised run.
        RunLocked: if another process is writing ``run_dir``.
        RunMismatch: if ``run_dir`` holds a run with another task, model or training config.
        CorruptRun: if a file of ``run_dir`` is unreadable or disagrees with the others.
    """
    if not isinstance(config, TrainConfig):
        raise ValueError(f"`config` must be a TrainConfig, got {type(config).__name__}")
    device = torch.device(device)
    check_model_fits(model, task)
    _check_bptt_memory(model, task, config.batch_size)
    model.to(device)
    params = [param for param in model.parameters() if param.requires_grad]
    optimizer = torch.optim.Adam(params, lr=config.learning_rate)
    sources = training_sources(config.seed, device)
    if run_dir is None:
        history = _train_loop(model, task, config, optimizer, sources, device, progress, None)
        return TrainResult(
            model=model, history=history, iterations_done=config.iterations, run_dir=None
        )
    with open_supervised_run(
        run_dir, model, task, config, optimizer, sources, resume, overwrite
    ) as run:
        history = _train_loop(model, task, config, optimizer, sources, device, progress, run)
        run.finish(model)
    return TrainResult(
        model=model, history=history, iterations_done=config.iterations, run_dir=run.path
    )


def _train_loop(
    model: nn.Module,
    task: Task,
    config: TrainConfig,
    optimizer: torch.optim.Optimizer,
    sources: tuple[RandomSource, RandomSource],
    device: torch.device,
    progress: bool,
    run: RunWriter | None,
) -> list[dict[str, float]]:
    """Train from the run's checkpoint (or from scratch) to ``config.iterations``; the history."""
    params = [param for group in optimizer.param_groups for param in group["params"]]
    start, history = (0, []) if run is None else (run.start, list(run.tables[HISTORY_FILE]))
    with tqdm(
        total=config.iterations, initial=start, disable=None if progress else True, desc="train"
    ) as bar:
        for iteration in range(start + 1, config.iterations + 1):
            tick = time.perf_counter()
            loss = _teacher_loss(model, task, config, sources, device)
            grad_norm = _backward(loss, optimizer, params, config.grad_clip)
            loss_value = loss.item()
            _check_finite(loss_value, grad_norm, iteration)
            optimizer.step()
            history.append(_history_row(iteration, loss_value, grad_norm, optimizer, tick))
            bar.update()
            bar.set_postfix(loss=f"{loss_value:.4g}", grad_norm=f"{grad_norm:.3g}")
            if run is not None and (
                iteration % config.checkpoint_every == 0 or iteration == config.iterations
            ):
                checkpoint = _checkpoint(iteration, model, optimizer, sources)
                run.save(iteration, checkpoint, {HISTORY_FILE: history})
    return history


def train_run(
    run_dir: str | Path,
    task_id: str,
    model_config: JsonConfig | dict[str, Any],
    train_config: TrainConfig,
    *,
    model_kind: str = "ctrnn",
    task_kwargs: dict[str, Any] | None = None,
    device: torch.device | str = "cpu",
    progress: bool = True,
    overwrite: bool = False,
) -> Run:
    """Build the task and the model, train them into ``run_dir`` (resuming if possible), load it.

    The initial weights come from a generator seeded with ``train_config.seed``, so the same
    arguments give the same run.

    Example:
        >>> import tempfile
        >>> from agents.ctrnn import CTRNNConfig
        >>> config = CTRNNConfig(input_size=1, output_size=1, hidden_size=4)
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     run = train_run(
        ...         folder, "NoisyRegulator-v0", config, TrainConfig(iterations=2, batch_size=4),
        ...         task_kwargs={"steps": 5, "settle_steps": 2}, progress=False,
        ...     )
        ...     (run.status, run.iterations_done, len(run.history))
        ('complete', 2, 2)
    """
    task = make_task(task_id, **(task_kwargs or {}))
    generator = torch.Generator().manual_seed(train_config.seed)
    model = build_model(model_kind, model_config, generator=generator)
    train(
        model,
        task,
        train_config,
        run_dir=run_dir,
        device=device,
        progress=progress,
        overwrite=overwrite,
    )
    return load_run(run_dir, device=device)


def training_sources(seed: int, device: torch.device) -> tuple[RandomSource, RandomSource]:
    """The task's and the model's random sources: two independent streams derived from ``seed``.

    Shared with :mod:`agents.ensemble_training`, whose members draw what a lone run draws.
    """
    env_seed, noise_seed = np.random.SeedSequence(seed).generate_state(2, dtype=np.uint64)
    return (
        RandomSource.from_seed(int(env_seed), device=device),
        RandomSource.from_seed(int(noise_seed), device=device),
    )


def _teacher_loss(
    model: nn.Module,
    task: Task,
    config: TrainConfig,
    sources: tuple[RandomSource, RandomSource],
    device: torch.device,
) -> torch.Tensor:
    env_rng, noise = sources
    return teacher_loss(
        model,
        task,
        config.batch_size,
        sigma=training_sigma(config, noise, device),
        env_rng=env_rng,
        noise=noise,
        device=device,
    )


def training_sigma(
    config: TrainConfig, noise: RandomSource, device: torch.device | str
) -> float | torch.Tensor:
    """This iteration's training noise: ``config.sigma``, or ``[B]`` levels from ``sigma_dist``.

    The levels are drawn with the model's noise generator, before that iteration's noise samples.

    Drawing from the noise generator keeps a resumed run bit-identical: the checkpoint already
    holds that generator's state.
    """
    if config.sigma_dist is None:
        return config.sigma
    return config.sigma_dist.sample(config.batch_size, noise.generator, device)


def _backward(
    loss: torch.Tensor,
    optimizer: torch.optim.Optimizer,
    params: list[nn.Parameter],
    grad_clip: float,
) -> float:
    """Backpropagate, clip the gradient and return its norm before clipping."""
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    max_norm = grad_clip if grad_clip > 0 else math.inf
    return float(torch.nn.utils.clip_grad_norm_(params, max_norm))


def _check_finite(loss: float, grad_norm: float, iteration: int) -> None:
    if not (math.isfinite(loss) and math.isfinite(grad_norm)):
        raise TrainingDiverged(
            f"training diverged at iteration {iteration}: loss {loss}, gradient norm "
            f"{grad_norm}; no update was made and the last checkpoint is left as it was "
            "(try a lower learning_rate or a grad_clip)"
        )


def _history_row(
    iteration: int,
    loss: float,
    grad_norm: float,
    optimizer: torch.optim.Optimizer,
    tick: float,
) -> dict[str, float]:
    return {
        "iteration": iteration,
        "loss": loss,
        "grad_norm": grad_norm,
        "learning_rate": float(optimizer.param_groups[0]["lr"]),
        "seconds": time.perf_counter() - tick,
    }


def bptt_bytes(model: nn.Module, task: Task, batch_size: int) -> int:
    """An upper estimate of the memory one training iteration keeps for backpropagation.

    Backpropagation through time keeps every step of every episode until the backward pass:
    ``batch_size x task.horizon x`` the bytes of one step (:data:`BPTT_BYTES_PER_UNIT` per
    hidden unit, :data:`BPTT_BYTES_PER_IO` per observation and action entry, and
    :data:`BPTT_STEP_BYTES`), about twice what was measured. The parameters are not counted.
    """
    config = getattr(model, "config", None)
    units = getattr(config, "noise_size", None) or getattr(config, "hidden_size", 0)
    per_step = (
        BPTT_BYTES_PER_UNIT * int(units)
        + BPTT_BYTES_PER_IO * (task.obs_size + task.action_size)
        + BPTT_STEP_BYTES
    )
    return int(batch_size) * int(task.horizon) * per_step


def _check_bptt_memory(model: nn.Module, task: Task, batch_size: int) -> None:
    """Refuse, before anything is written, an iteration whose graph would not fit in memory."""
    try:
        check_memory("batch_size", batch_size, bptt_bytes(model, task, batch_size))
    except ValueError as error:
        loop = "open" if task.open_loop else "closed"
        raise ValueError(
            f"{loop}-loop BPTT keeps batch_size x horizon steps: {task.id}'s horizon is "
            f"{task.horizon:,} steps; {error}; or shorten the task's horizon (its "
            "options, e.g. a smaller maze `size` or `max_steps`), or lower `hidden_size`"
        ) from None


def check_model_fits(model: nn.Module, task: Task, what: str = "model") -> None:
    """ValueError unless the sizes of ``model.config`` (else of ``model``) are the task's."""
    config = getattr(model, "config", model)  # an ensemble holds its sizes itself
    for name, needed in (("input_size", task.obs_size), ("output_size", task.action_size)):
        size = getattr(config, name, needed)
        if size != needed:
            raise ValueError(f"the {what}'s `{name}` is {size}, but {task.id} needs {needed}")


def open_supervised_run(
    folder: str | Path,
    model: nn.Module,
    task: Task,
    config: TrainConfig,
    optimizer: torch.optim.Optimizer,
    sources: tuple[RandomSource, RandomSource],
    resume: bool,
    overwrite: bool,
) -> RunWriter:
    """Open the supervised run in ``folder``; restore its checkpoint, if any, into the state.

    The one way a supervised run folder is opened: :func:`train` and each ensemble member
    (:mod:`agents.ensemble_runs`) use it, so a member's folder is a lone run's.
    """
    request = RunRequest(
        task=task,
        model=model,
        trainer="supervised",
        config=config,
        template=_checkpoint(0, model, optimizer, sources),
        optimizer=optimizer,
    )
    run = open_run(folder, request, resume=resume, overwrite=overwrite)
    if run.checkpoint is not None:
        model.load_state_dict(run.checkpoint["model"])
        optimizer.load_state_dict(run.checkpoint["optimizer"])
        for source, name in zip(sources, ("env", "noise"), strict=True):
            source.generator.set_state(run.checkpoint["rng"][name])
    return run


def _checkpoint(
    iteration: int,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    sources: tuple[RandomSource, RandomSource],
) -> dict[str, Any]:
    env_rng, noise = sources
    return {
        "iteration": iteration,
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "rng": {"env": env_rng.generator.get_state(), "noise": noise.generator.get_state()},
    }
