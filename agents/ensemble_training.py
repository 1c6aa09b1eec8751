"""Supervised training of an ensemble: K CTRNNs trained as one program, each as it would be alone.

Every member gets what :func:`agents.supervised.train` would give it: its own episodes and noise
(generators seeded from its own ``TrainConfig.seed``, drawn block by block, see
:class:`~agents.ensemble.BlockRandomSource`), its own loss (the members' losses are summed for one
backward pass; the members share no weights, so each gets its own gradient), its own gradient
clipping (the global norm of its own gradients) and its own Adam state (Adam is elementwise, so
stacked state is exact). A member whose loss or gradient norm is not finite stops: its weights
and Adam state stay at their last good values, it is reported, and the others go on. On an
open-loop task the iteration can run as one fixed program (``capture=True``, see
:mod:`agents.captured_step`): a CUDA graph replayed every iteration on a GPU.
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn
from tqdm import tqdm

from agents.captured_step import (
    StaticTrainStep,
    StepOutcome,
    clip_member_grad_norms,
    member_teacher_losses,
)
from agents.ctrnn import CTRNNConfig
from agents.ensemble import BlockRandomSource, CTRNNEnsemble, member_sigma
from agents.ensemble_runs import EnsembleRuns, check_run_folders
from agents.recurrence import SequenceBuffers
from agents.rollout import rollout
from agents.run_lifecycle import RunWriter
from agents.runs import Run, load_run
from agents.supervised import TrainConfig, check_model_fits, training_sigma, training_sources
from noise_envs.core import Task
from noise_envs.random import RandomSource
from noise_envs.registration import make_task

_logger = logging.getLogger(__name__)

__all__ = [
    "SHARED_OPTIONS",
    "EnsembleTrainResult",
    "clip_member_grad_norms",
    "member_losses",
    "member_run_name",
    "member_train_configs",
    "train_ensemble",
    "train_ensemble_runs",
]

SHARED_OPTIONS = ("iterations", "batch_size", "learning_rate", "grad_clip", "checkpoint_every")
"""Training options every member must share: the members take their gradient steps together."""


@dataclasses.dataclass(frozen=True)
class EnsembleTrainResult:
    """What :func:`train_ensemble` returns.

    Attributes:
        ensemble: the trained ensemble (the one passed in, trained in place).
        histories: per member, one dict per iteration it completed (``history.csv``'s columns).
        iterations_done: iterations the ensemble has been trained for.
        diverged: ``{member: iteration}`` for members whose loss or gradient norm was not
            finite at that iteration; their weights are those after the iteration before.
        run_dirs: the members' run folders, or None if nothing was saved.
    """

    ensemble: CTRNNEnsemble
    histories: list[list[dict[str, float]]]
    iterations_done: int
    diverged: dict[int, int]
    run_dirs: list[Path] | None = None


def member_train_configs(
    base: TrainConfig,
    *,
    sigmas: Sequence[float] | None = None,
    seeds: Sequence[int] | None = None,
) -> list[TrainConfig]:
    """One training config per member: ``base`` with member ``k``'s sigma and seed.

    Args:
        base: the options every member shares.
        sigmas: per-member training noise levels, or None for ``base.sigma``.
        seeds: per-member seeds, or None for ``base.seed``.

    Raises:
        ValueError: if both are None or their lengths differ.
    """
    if not isinstance(base, TrainConfig):
        raise ValueError(f"`base` must be a TrainConfig, got {type(base).__name__}")
    if sigmas is None and seeds is None:
        raise ValueError("give per-member `sigmas`, `seeds` or both (one entry per member)")
    sigmas = list(sigmas) if sigmas is not None else None
    seeds = list(seeds) if seeds is not None else None
    if sigmas is not None and seeds is not None and len(sigmas) != len(seeds):
        raise ValueError(
            f"`sigmas` and `seeds` must have the same length (one per member), got "
            f"{len(sigmas)} sigmas and {len(seeds)} seeds"
        )
    count = len(sigmas) if sigmas is not None else len(seeds)
    if count == 0:
        raise ValueError("an ensemble needs at least one member (K >= 1); got empty lists")
    return [
        dataclasses.replace(
            base,
            sigma=base.sigma if sigmas is None else sigmas[k],
            seed=base.seed if seeds is None else seeds[k],
        )
        for k in range(count)
    ]


def train_ensemble(
    ensemble: CTRNNEnsemble,
    task: Task,
    configs: TrainConfig | Sequence[TrainConfig],
    *,
    sigmas: Sequence[float] | None = None,
    seeds: Sequence[int] | None = None,
    run_dirs: Sequence[str | Path] | None = None,
    device: torch.device | str = "cpu",
    progress: bool = True,
    resume: bool = True,
    overwrite: bool = False,
    capture: bool = False,
) -> EnsembleTrainResult:
    """Train every member of ``ensemble`` on ``task`` as :func:`~agents.supervised.train` would.

    Member ``k`` trained here ends with the weights (up to float rounding; the tests hold it to
    ``rtol=1e-5, atol=1e-6`` after 20 iterations) that ``train(ensemble.member(k), task,
    configs[k])`` gives on an open-loop task. On a closed-loop task whose episodes may end early
    the step loop runs until every member's episodes have ended, so a member's noise stream can
    run ahead of its lone run (no registered task ends early).

    With ``run_dirs`` each member is written to its own run folder through the run lifecycle
    (:func:`agents.run_lifecycle.open_run`): the files, ``run.json`` and checkpoint a lone
    ``train`` writes, so ``load_run`` and the sweeps read it like any run (and ``train`` can
    resume it alone). The ensemble resumes as a whole: every member's folder must be at the
    same checkpoint. A member that diverges keeps its folder at its last checkpoint, as a lone
    run that raises TrainingDiverged does; the others finish.

    With ``capture`` each iteration runs as one fixed program over static buffers
    (:class:`~agents.captured_step.StaticTrainStep`): on CUDA a CUDA graph captured at the first
    iteration and replayed (Adam is then built with ``capturable=True``), elsewhere the same
    step eagerly, which gives the numbers of ``capture=False`` bit for bit on the CPU. The
    episodes and the noise are still drawn from each member's generators, so members still
    equal their lone runs and the run folders are the same.

    Args:
        ensemble: the members; trained in place.
        task: the batched task.
        configs: one :class:`~agents.supervised.TrainConfig` per member, or a base config with
            per-member ``sigmas`` and/or ``seeds`` (see :func:`member_train_configs`).
        sigmas: per-member training noise levels (with a base config).
        seeds: per-member seeds of the task's randomness and the noise (with a base config).
        run_dirs: one run folder per member, or None to keep the runs in memory.
        device: where to train.
        progress: show a progress bar.
        resume: continue from the folders' checkpoints if they have them.
        overwrite: move whatever the folders hold aside and start new runs there.
        capture: run each iteration as one captured program (open-loop tasks whose episodes
            keep one shape only): a CUDA graph on a GPU, where it saves the launch of every
            operation. Elsewhere the same step runs eagerly, with the same numbers and no gain
            (it is slightly slower: its masked Adam step copies the state every iteration).

    Raises:
        ValueError: for configs or folders of another number of members, members that
            disagree on a :data:`SHARED_OPTIONS` option, or an ensemble that does not fit the task;
            with ``capture``, for a closed-loop task, or episodes that change shape.
        RunMismatch: if the members' folders are at different checkpoints, or one holds another
            run; NotARunFolder, RunLocked, CorruptRun as :func:`agents.run_lifecycle.open_run`.
    """
    configs = _member_configs(ensemble, configs, sigmas, seeds)
    folders = check_run_folders(run_dirs, ensemble.num_members)
    _check_capture(capture, task)
    device = torch.device(device)
    ensemble.to(device)
    check_model_fits(ensemble, task, "ensemble")
    params = [param for param in ensemble.parameters() if param.requires_grad]
    # a captured Adam step keeps its step count on the GPU; torch allows that on CUDA only
    capturable = capture and device.type == "cuda"
    trainer = _Trainer(
        ensemble=ensemble,
        task=task,
        configs=configs,
        optimizer=torch.optim.Adam(params, lr=configs[0].learning_rate, capturable=capturable),
        sources=[training_sources(config.seed, device) for config in configs],
        device=device,
    )
    if folders is None:
        histories: list[list[dict[str, float]]] = [[] for _ in configs]
        diverged = trainer.run(0, histories, None, progress, capture)
        return EnsembleTrainResult(ensemble, histories, configs[0].iterations, diverged)
    with contextlib.ExitStack() as stack:
        writers = [
            stack.enter_context(trainer.open_member_run(k, folder, resume, overwrite))
            for k, folder in enumerate(folders)
        ]
        start, histories = trainer.restore(writers)
        diverged = trainer.run(start, histories, writers, progress, capture)
        for k, writer in enumerate(writers):
            if k not in diverged:
                writer.finish(ensemble.member(k))
    if diverged:
        _logger.warning(
            "ensemble members diverged and stopped (member: iteration): %s; their run folders "
            "are left at their last checkpoints",
            diverged,
        )
    return EnsembleTrainResult(
        ensemble, histories, configs[0].iterations, diverged, [w.path for w in writers]
    )


def _check_capture(capture: bool, task: Task) -> None:
    if not isinstance(capture, bool):
        raise ValueError(f"`capture` must be True or False, got {capture!r}")
    if capture and not task.open_loop:
        raise ValueError(
            f"`capture=True` needs an open-loop task (whole episodes made before the step), but "
            f"{task.id} is closed loop: its observations depend on the actions, step by step, "
            "so an iteration is no fixed program; pass capture=False"
        )


def member_run_name(placement: str, sigma: float, seed: int) -> str:
    """The run folder name of one member, e.g. ``noise-in-sigma0.5-seed0``."""
    return f"noise-{placement}-sigma{sigma:g}-seed{seed}"


def train_ensemble_runs(
    out_dir: str | Path,
    task_id: str,
    model_config: CTRNNConfig | dict[str, Any],
    train_config: TrainConfig,
    *,
    sigmas: Sequence[float] | None = None,
    placements: Sequence[str] | None = None,
    seeds: Sequence[int] | None = None,
    task_kwargs: dict[str, Any] | None = None,
    device: torch.device | str = "cpu",
    progress: bool = True,
    resume: bool = True,
    overwrite: bool = False,
    capture: bool = False,
) -> list[Run]:
    """Train every placement x sigma x seed as one ensemble, one run folder each; load them.

    Member (placement, sigma, seed) starts as ``train_run`` would start it (initial weights
    seeded with ``seed``), trains with ``train_config`` at that sigma and seed, and is written to
    ``out_dir / member_run_name(placement, sigma, seed)``, so each folder is the run that
    ``train_run(folder, task_id, ...)`` of that member would write (up to float rounding).

    Args:
        out_dir: the folder that receives the members' run folders.
        task_id: the environment id.
        model_config: the shared architecture (a CTRNNConfig or its dict); its placement is
            the default of ``placements``.
        train_config: the shared training options; its sigma and seed are the defaults of
            ``sigmas`` and ``seeds``.
        sigmas: training noise levels.
        placements: noise placements, "in" and/or "out".
        seeds: seeds (initial weights, episodes and noise).
        task_kwargs: the task's options.
        device: where to train.
        progress: show a progress bar.
        resume: continue from the folders' checkpoints.
        overwrite: move what the folders hold aside and start again.
        capture: run each iteration as one captured program (see :func:`train_ensemble`).

    Returns:
        The members' runs, placement-major, then sigma, then seed.
    """
    if isinstance(model_config, dict):
        model_config = CTRNNConfig.from_dict(model_config)
    if not isinstance(model_config, CTRNNConfig):
        raise ValueError(f"`model_config` must be a CTRNNConfig, got {type(model_config).__name__}")
    if not isinstance(train_config, TrainConfig):
        raise ValueError(f"`train_config` must be a TrainConfig, got {type(train_config).__name__}")
    grid = list(
        itertools.product(
            _listed("placements", placements, model_config.placement),
            _listed("sigmas", sigmas, train_config.sigma),
            _listed("seeds", seeds, train_config.seed),
        )
    )
    task = make_task(task_id, **(task_kwargs or {}))
    ensemble = CTRNNEnsemble.from_seeds(
        model_config, [seed for _, _, seed in grid], [placement for placement, _, _ in grid]
    )
    folders = [Path(out_dir) / member_run_name(*member) for member in grid]
    train_ensemble(
        ensemble,
        task,
        member_train_configs(
            train_config, sigmas=[s for _, s, _ in grid], seeds=[z for _, _, z in grid]
        ),
        run_dirs=folders,
        device=device,
        progress=progress,
        resume=resume,
        overwrite=overwrite,
        capture=capture,
    )
    return [load_run(folder, device=device) for folder in folders]


def _listed(name: str, values: Sequence[Any] | None, default: Any) -> list[Any]:
    if values is None:
        return [default]
    values = list(values)
    if not values:
        raise ValueError(f"`{name}` must hold at least one value (K >= 1), got none")
    if len(set(values)) != len(values):
        raise ValueError(f"`{name}` must not repeat a value, got {values}")
    return values


@dataclasses.dataclass(eq=False)
class _Trainer(EnsembleRuns):
    """The training loop of an ensemble, over the state that its member run folders hold."""

    def run(
        self,
        start: int,
        histories: list[list[dict[str, float]]],
        writers: list[RunWriter] | None,
        progress: bool,
        capture: bool = False,
    ) -> dict[int, int]:
        """Train from iteration ``start`` to the end, appending to ``histories``.

        ``capture``: run each iteration as a :class:`~agents.captured_step.StaticTrainStep`.
        Returns ``{member: iteration}`` for the members that diverged.
        """
        shared = self.configs[0]
        iterate = self._captured_iterations() if capture else self._eager_iterations()
        active = [True] * self.ensemble.num_members
        diverged: dict[int, int] = {}
        with tqdm(
            total=shared.iterations,
            initial=start,
            disable=None if progress else True,
            desc="train ensemble",
        ) as bar:
            for iteration in range(start + 1, shared.iterations + 1):
                tick = time.perf_counter()
                outcome = iterate()
                for member, (was, alive) in enumerate(zip(active, outcome.active, strict=True)):
                    if was and not alive:
                        diverged[member] = iteration
                active = outcome.active
                if not any(active):
                    break
                _log(histories, iteration, outcome, self.optimizer, tick)
                bar.update()
                if writers is not None and (
                    iteration % shared.checkpoint_every == 0 or iteration == shared.iterations
                ):
                    self.save(writers, iteration, active, histories)
        return diverged

    def _eager_iterations(self) -> Callable[[], StepOutcome]:
        """Each call trains one iteration op by op (any task) and reads its outcome."""
        shared, ensemble, optimizer = self.configs[0], self.ensemble, self.optimizer
        params = [param for group in optimizer.param_groups for param in group["params"]]
        env_rng, noise = self._block_sources()
        levels = self._levels(self.device)
        active = torch.ones(ensemble.num_members, dtype=torch.bool, device=self.device)
        buffers = ensemble.training_buffers  # each iteration's backward pass ends before the next

        def iterate() -> StepOutcome:
            sigma = levels()
            losses = member_losses(
                ensemble,
                self.task,
                shared.batch_size,
                sigma,
                env_rng,
                noise,
                self.device,
                buffers=buffers,
            )
            optimizer.zero_grad(set_to_none=True)
            torch.where(active, losses, torch.zeros_like(losses)).sum().backward()
            norms = clip_member_grad_norms(params, shared.grad_clip)
            active.logical_and_(torch.isfinite(losses) & torch.isfinite(norms))
            if bool(active.any()):
                masked_step(optimizer, params, active)
            return StepOutcome.read(losses, norms, active)

        return iterate

    def _captured_iterations(self) -> Callable[[], StepOutcome]:
        """Each call draws one iteration's episodes and noise, runs the static step, reads it.

        The draws are those of :meth:`_eager_iterations`, in the same order (the levels, the
        episodes, then the noise); the step is built from the first episodes.
        """
        shared = self.configs[0]
        env_rng, noise = self._block_sources()
        levels = self._levels(torch.device("cpu"))  # read on the host to decide on drawing
        rows = self.ensemble.num_members * shared.batch_size
        step: StaticTrainStep | None = None

        def iterate() -> StepOutcome:
            nonlocal step
            sigma = levels()
            episode = self.task.open_loop_episode(rows, env_rng, self.device)
            if step is None:
                step = StaticTrainStep(
                    self.ensemble, self.optimizer, episode, grad_clip=shared.grad_clip
                )
            step.load(episode, sigma, noise.blocks, noise.draw_at_zero)
            step.run()
            return step.read()

        return iterate

    def _block_sources(self) -> tuple[BlockRandomSource, BlockRandomSource]:
        """The members' task and noise sources, each member's rows drawn from its own."""
        return (
            BlockRandomSource([env for env, _ in self.sources], self.device),
            BlockRandomSource(
                [noise for _, noise in self.sources],
                self.device,
                draw_at_zero=[config.sigma_dist is not None for config in self.configs],
            ),
        )

    def _levels(self, device: torch.device) -> Callable[[], torch.Tensor]:
        """Each call gives one iteration's per-row noise levels ``[K * B]`` on ``device``.

        With a ``sigma_dist`` each member's levels are drawn from its own noise stream, as
        :func:`~agents.supervised.train` draws them; else they are the members' sigmas.
        """
        batch_size = self.configs[0].batch_size
        if all(config.sigma_dist is None for config in self.configs):
            fixed = member_sigma([c.sigma for c in self.configs], batch_size, device)
            return lambda: fixed

        def draw() -> torch.Tensor:
            return torch.cat(
                [
                    torch.as_tensor(training_sigma(config, source, device), device=device).expand(
                        batch_size
                    )
                    for config, (_, source) in zip(self.configs, self.sources, strict=True)
                ]
            ).float()

        return draw


def member_losses(
    ensemble: CTRNNEnsemble,
    task: Task,
    batch_size: int,
    sigma: torch.Tensor,
    env_rng: RandomSource,
    noise: RandomSource,
    device: torch.device,
    *,
    buffers: SequenceBuffers | None = None,
) -> torch.Tensor:
    """Each member's mask-weighted mean squared teacher error over its own ``batch_size`` episodes.

    Returns ``[K]``: what :func:`agents.rollout.teacher_loss` gives each member alone with its
    block of ``env_rng`` and ``noise`` (open-loop tasks run as one sequence, others closed loop).
    ``buffers`` is lent to :meth:`~agents.ensemble.CTRNNEnsemble.unroll` (run the loss's
    backward pass before the next call).
    """
    k = ensemble.num_members
    rows = k * batch_size
    if not task.open_loop:
        state = rollout(
            ensemble, task, rows, sigma=sigma, env_rng=env_rng, noise=noise, device=device
        ).state
        errors = state.error_sum.reshape(k, -1).sum(1)
        return errors / state.weight_sum.reshape(k, -1).sum(1).clamp_min(1e-12)
    episode = task.open_loop_episode(rows, env_rng, device)
    actions = ensemble.unroll(episode.observations, sigma, noise, buffers=buffers)
    return member_teacher_losses(actions, episode.targets, episode.masks, k)


def masked_step(
    optimizer: torch.optim.Optimizer, params: Sequence[nn.Parameter], active: torch.Tensor
) -> None:
    """An optimizer step that leaves inactive members' weights and state exactly as they were."""
    if bool(active.all()):
        optimizer.step()
        return
    frozen = torch.nonzero(~active).flatten()
    saved = []
    with torch.no_grad():
        for param in params:
            state = optimizer.state.get(param, {})
            tensors = [param, *(value for key, value in state.items() if key != "step")]
            saved.extend((tensor, tensor[frozen].clone()) for tensor in tensors)
            if param.grad is not None:
                param.grad[frozen] = 0.0  # a diverged member's gradient is not finite
        optimizer.step()
        for tensor, old in saved:
            tensor[frozen] = old
    # A member frozen before Adam's first step gets zero moments there (its gradient is zeroed).


def _log(
    histories: list[list[dict[str, float]]],
    iteration: int,
    outcome: StepOutcome,
    optimizer: torch.optim.Optimizer,
    tick: float,
) -> None:
    seconds = time.perf_counter() - tick
    rate = float(optimizer.param_groups[0]["lr"])
    rows = zip(outcome.losses, outcome.grad_norms, outcome.active, strict=True)
    for member, (loss, norm, alive) in enumerate(rows):
        if alive:
            histories[member].append(
                {
                    "iteration": iteration,
                    "loss": loss,
                    "grad_norm": norm,
                    "learning_rate": rate,
                    "seconds": seconds,
                }
            )


def _member_configs(
    ensemble: CTRNNEnsemble,
    configs: TrainConfig | Sequence[TrainConfig],
    sigmas: Sequence[float] | None,
    seeds: Sequence[int] | None,
) -> list[TrainConfig]:
    if not isinstance(ensemble, CTRNNEnsemble):
        raise ValueError(f"`ensemble` must be a CTRNNEnsemble, got {type(ensemble).__name__}")
    if isinstance(configs, TrainConfig):
        configs = member_train_configs(configs, sigmas=sigmas, seeds=seeds)
    elif sigmas is not None or seeds is not None:
        raise ValueError("give `sigmas` / `seeds` with one base TrainConfig, not with a list")
    configs = list(configs)
    if len(configs) != ensemble.num_members:
        raise ValueError(
            f"`configs` must have one TrainConfig per member ({ensemble.num_members}), "
            f"got {len(configs)}"
        )
    for index, config in enumerate(configs):
        if not isinstance(config, TrainConfig):
            raise ValueError(
                f"`configs[{index}]` must be a TrainConfig, got {type(config).__name__}"
            )
        for option in SHARED_OPTIONS:
            if getattr(config, option) != getattr(configs[0], option):
                raise ValueError(
                    f"every member must share `{option}` (they step together): member {index} "
                    f"has {getattr(config, option)!r}, member 0 has {getattr(configs[0], option)!r}"
                )
    return configs
