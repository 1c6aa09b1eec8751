"""Train noisy policies with (Recurrent)PPO into the same run folders as the supervised trainer.

``train_rl`` runs :class:`~agents.sb3.recurrent.NoisyRecurrentPPO` (a CTRNN core) or
:class:`~agents.sb3.feedforward.NoisyPPO` (a noisy MLP) on ``num_envs`` batched copies of a task.
It writes through the one run lifecycle (:mod:`agents.run_lifecycle`): ``run.json`` with
``trainer: rl`` and the :class:`RLTrainConfig` itself as its ``train`` section, the policy's model
kind and config (the policy options and its spaces), the weights, checkpoints, ``history.csv``
(PPO's loss per iteration) and ``rl_history.csv`` (steps, episodes, mean episode reward and mean
primary metric per iteration). A non-finite loss or parameter stops training with
:class:`~agents.errors.TrainingDiverged` before the next checkpoint.

stable-baselines3 draws its action samples, minibatch order and head initialisation from the
global generators; training seeds them from ``config.seed`` and restores their previous state
when it returns, so runs are reproducible without leaving global state changed.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import random
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.logger import Logger
from stable_baselines3.common.vec_env import VecMonitor
from tqdm import tqdm

from agents.errors import CorruptRun, TrainingDiverged
from agents.run_files import HISTORY_FILE, RL_HISTORY_FILE, RL_TRAIN_FILE
from agents.run_lifecycle import RunRequest, RunWriter, open_run
from agents.runs import RL_HISTORY_COLUMNS, Run, load_run
from agents.sb3.config import CTRNNPolicyConfig, MLPPolicyConfig, RLTrainConfig
from agents.sb3.feedforward import NoisyActorCriticPolicy, NoisyPPO
from agents.sb3.model import SB3Policy, policy_model
from agents.sb3.recurrent import CTRNNRecurrentPolicy, NoisyRecurrentPPO
from agents.sb3.vec_env import make_sb3_vec_env
from noise_envs.registration import make_task

__all__ = [
    "RL_HISTORY_COLUMNS",
    "RL_HISTORY_FILE",
    "RL_TRAIN_FILE",
    "RLTrainResult",
    "train_rl",
    "train_rl_run",
]

PolicyConfig = CTRNNPolicyConfig | MLPPolicyConfig


@dataclasses.dataclass(frozen=True)
class RLTrainResult:
    """What :func:`train_rl` returns.

    Attributes:
        algorithm: the trained stable-baselines3 algorithm (``algorithm.policy`` is the policy).
        policy: the trained policy as a :class:`~agents.policy.Policy` (shares its weights).
        history: one row per iteration with the columns of ``rl_history.csv`` and ``loss``.
        run_dir: the run folder, or None if nothing was saved.
    """

    algorithm: Any
    policy: SB3Policy
    history: list[dict[str, float]]
    run_dir: Path | None


def train_rl(
    task_id: str,
    policy_config: PolicyConfig,
    config: RLTrainConfig,
    *,
    task_kwargs: dict[str, Any] | None = None,
    run_dir: str | Path | None = None,
    device: torch.device | str = "cpu",
    progress: bool = True,
    resume: bool = True,
    overwrite: bool = False,
) -> RLTrainResult:
    """Train a noisy policy on ``task_id`` with PPO or RecurrentPPO at noise ``config.sigma``.

    The policy's noise level and seed are the training config's (``policy_config.sigma`` and
    ``.seed`` are replaced). With ``run_dir`` the run is saved as a run folder and resumed from its
    checkpoint if one of the same run is there (the environments restart, so a resumed run is not
    bit-identical to an uninterrupted one); the folder rules are those of
    :func:`agents.supervised.train`.

    Args:
        task_id: the environment id.
        policy_config: the policy's options; its type picks the policy (see Raises).
        config: the training options.
        task_kwargs: the task's options.
        run_dir: where to save the run, or None to keep it in memory.
        device: where the policy trains (the environments run on the CPU).
        progress: show a progress bar.
        resume: continue from ``run_dir``'s checkpoint if there is one (False: move the old
            run aside and start over).
        overwrite: move whatever ``run_dir`` holds aside and start a new run there.

    Returns:
        The trained algorithm, its policy as a Policy, and the history.

    Raises:
        ValueError: if the policy config does not fit ``config.algo`` (recurrent_ppo takes a
            CTRNNPolicyConfig, ppo an MLPPolicyConfig), or ``run_dir`` is empty or ``.``.
        TrainingDiverged: if the loss or a parameter becomes NaN or infinite.
        RunError: NotARunFolder, RunLocked, RunMismatch or CorruptRun, as for
            :func:`agents.supervised.train`.
    """
    policy_config = _check_policy_config(policy_config, config)
    task_kwargs = dict(task_kwargs or {})
    task = make_task(task_id, **task_kwargs)
    with _seeded_global_generators(config.seed):
        algorithm = _build_algorithm(task_id, task_kwargs, policy_config, config, device)
        run_model = policy_model(algorithm.policy)
        if run_dir is None:
            history = _train_loop(algorithm, config, task.primary_metric, progress, None)
        else:
            opened = _open_run(run_dir, task, run_model, algorithm, config, resume, overwrite)
            with opened as run:
                history = _train_loop(algorithm, config, task.primary_metric, progress, run)
                _sync(run_model, algorithm)
                run.finish(run_model)
    return RLTrainResult(
        algorithm=algorithm,
        policy=SB3Policy(algorithm.policy),
        history=history,
        run_dir=None if run_dir is None else run.path,
    )


def _train_loop(
    algorithm: Any, config: RLTrainConfig, metric: str, progress: bool, run: RunWriter | None
) -> list[dict[str, float]]:
    """Run PPO iterations from the run's checkpoint (or from scratch); the history."""
    start, history = (0, []) if run is None else (run.start, _merged_history(run))
    run_model = None if run is None else run.request.model
    with tqdm(
        total=config.iterations, initial=start, disable=None if progress else True, desc="train rl"
    ) as bar:
        for iteration in range(start + 1, config.iterations + 1):
            rate = config.learning_rate_at(iteration)
            _draw_noise_level(algorithm.policy, config, iteration)
            try:
                history.append(_iterate(algorithm, iteration, rate, metric))
            except ValueError as error:  # torch.distributions refuses NaN parameters
                _check_finite(algorithm, iteration, float("nan"), error)
                raise
            _check_finite(algorithm, iteration, history[-1]["loss"])
            bar.update()
            bar.set_postfix(metric=f"{history[-1]['metric']:.4g}")
            if run is not None and (
                iteration % config.checkpoint_every == 0 or iteration == config.iterations
            ):
                _sync(run_model, algorithm)
                tables = {HISTORY_FILE: _loss_rows(history), RL_HISTORY_FILE: history}
                run.save(iteration, _checkpoint(iteration, algorithm, run_model), tables)
    return history


def _check_finite(
    algorithm: Any, iteration: int, loss: float, error: BaseException | None = None
) -> None:
    """TrainingDiverged if the loss or a parameter of the policy is NaN or infinite."""
    bad = [
        name
        for name, param in algorithm.policy.named_parameters()
        if not bool(torch.isfinite(param).all())
    ]
    if bad or (error is None and not math.isfinite(loss)):
        raise TrainingDiverged(
            f"training diverged at iteration {iteration}: loss {loss}, non-finite parameters "
            f"{bad[:4]}; the last checkpoint is left as it was (try a lower learning_rate)"
        ) from error


def train_rl_run(
    run_dir: str | Path,
    task_id: str,
    policy_config: PolicyConfig,
    train_config: RLTrainConfig,
    *,
    task_kwargs: dict[str, Any] | None = None,
    device: torch.device | str = "cpu",
    progress: bool = True,
    overwrite: bool = False,
) -> Run:
    """Train into ``run_dir`` (resuming if possible) and load the run back."""
    train_rl(
        task_id,
        policy_config,
        train_config,
        task_kwargs=task_kwargs,
        run_dir=run_dir,
        device=device,
        progress=progress,
        overwrite=overwrite,
    )
    return load_run(run_dir, device=device)


def _check_policy_config(policy_config: PolicyConfig, config: RLTrainConfig) -> PolicyConfig:
    if not isinstance(config, RLTrainConfig):
        raise ValueError(f"`config` must be an RLTrainConfig, got {type(config).__name__}")
    wanted = CTRNNPolicyConfig if config.algo == "recurrent_ppo" else MLPPolicyConfig
    if type(policy_config) is not wanted:
        raise ValueError(
            f"algo {config.algo!r} needs a {wanted.__name__}, got {type(policy_config).__name__}"
        )
    return policy_config.replace(sigma=config.noise.high, seed=config.seed)


def _draw_noise_level(policy: Any, config: RLTrainConfig, iteration: int) -> None:
    """Set this iteration's training noise level on the policy's noisy actor (and noisy critic).

    With ``config.sigma_dist`` one level is drawn per PPO iteration from a generator seeded by
    ``(seed, iteration)``, so a resumed run draws the same levels; the rollout and the update of
    the iteration use it, so the update replays the rollout's noise exactly. Without it nothing
    changes (the level is ``config.sigma``, set when the policy was built).
    """
    if config.sigma_dist is None:
        return
    state = np.random.SeedSequence([config.seed, iteration]).generate_state(1, dtype=np.uint64)
    level = float(config.sigma_dist.sample(1, torch.Generator().manual_seed(int(state[0])))[0])
    actor = getattr(policy, "lstm_actor", None)
    if actor is not None:
        actor.sigma = level
        if policy.config.noisy_critic:
            policy.lstm_critic.sigma = level
        return
    extractor = policy.mlp_extractor
    extractor.sigma = level
    if extractor.config.noisy_critic:
        extractor.critic_sigma = level


@contextlib.contextmanager
def _seeded_global_generators(seed: int) -> Iterator[None]:
    """Seed Python's, numpy's and torch's (CPU and CUDA) global generators; restore them after."""
    # stable-baselines3 draws from the legacy global generators, so those are what we seed.
    python_state, numpy_state = random.getstate(), np.random.get_state()  # noqa: NPY002
    cuda_states = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None
    with torch.random.fork_rng(devices=[]):
        random.seed(seed)
        np.random.seed(seed)  # noqa: NPY002
        torch.manual_seed(seed)  # seeds every CUDA device as well
        try:
            yield
        finally:
            random.setstate(python_state)
            np.random.set_state(numpy_state)  # noqa: NPY002
            if cuda_states is not None:
                torch.cuda.set_rng_state_all(cuda_states)


def _build_algorithm(
    task_id: str,
    task_kwargs: dict[str, Any],
    policy_config: PolicyConfig,
    config: RLTrainConfig,
    device: torch.device | str,
) -> Any:
    envs = VecMonitor(make_sb3_vec_env(task_id, config.num_envs, **task_kwargs))
    envs.seed(config.seed)
    recurrent = config.algo == "recurrent_ppo"
    algorithm_class = NoisyRecurrentPPO if recurrent else NoisyPPO
    algorithm = algorithm_class(
        CTRNNRecurrentPolicy if recurrent else NoisyActorCriticPolicy,
        envs,
        learning_rate=config.learning_rate,
        n_steps=config.num_steps,
        batch_size=config.batch_size,
        n_epochs=config.epochs,
        gamma=config.discount,
        gae_lambda=config.gae_lambda,
        clip_range=config.clip_range,
        ent_coef=config.ent_coef,
        vf_coef=config.vf_coef,
        max_grad_norm=config.grad_clip,
        policy_kwargs=policy_config.to_dict(),
        device=device,
    )
    # The run folder's history is the log. Without a logger of its own, SB3 makes an empty
    # SB3-<date> folder in the system's temporary folder at every learn() call.
    algorithm.set_logger(Logger(folder=None, output_formats=[]))
    return algorithm


class _EpisodeLog(BaseCallback):
    """Collects the reward and one metric of every episode that ends."""

    def __init__(self, metric: str) -> None:
        super().__init__()
        self.metric = metric
        self.rewards: list[float] = []
        self.metrics: list[float] = []

    def _on_step(self) -> bool:
        for info in self.locals["infos"]:
            if "episode" in info:
                self.rewards.append(float(info["episode"]["r"]))
            if self.metric in info.get("episode_metrics", {}):
                self.metrics.append(info["episode_metrics"][self.metric])
        return True


def _iterate(algorithm: Any, iteration: int, learning_rate: float, metric: str) -> dict[str, float]:
    """One PPO iteration (a rollout, then the update) at ``learning_rate``; its history row."""
    algorithm.lr_schedule = lambda _: learning_rate  # SB3 reads it at each update
    log, tick = _EpisodeLog(metric), time.perf_counter()
    steps = algorithm.n_steps * algorithm.n_envs
    algorithm.learn(steps, callback=log, reset_num_timesteps=False, log_interval=None)
    values = algorithm.logger.name_to_value
    return {
        "iteration": iteration,
        "timesteps": algorithm.num_timesteps,
        "episodes": len(log.rewards),
        "episode_reward": float(np.mean(log.rewards)) if log.rewards else float("nan"),
        "metric": float(np.mean(log.metrics)) if log.metrics else float("nan"),
        "loss": float(values.get("train/loss", float("nan"))),
        "learning_rate": learning_rate,
        "seconds": time.perf_counter() - tick,
    }


def _sync(run_model: SB3Policy, algorithm: Any) -> None:
    run_model.policy.load_state_dict(algorithm.policy.state_dict())


def _open_run(
    folder: str | Path,
    task: Any,
    run_model: SB3Policy,
    algorithm: Any,
    config: RLTrainConfig,
    resume: bool,
    overwrite: bool,
) -> RunWriter:
    """Open the run in ``folder`` and restore its checkpoint, if any, into the algorithm."""
    request = RunRequest(
        task=task,
        model=run_model,
        trainer="rl",
        config=config,
        template=_checkpoint(0, algorithm, run_model),
        optimizer=algorithm.policy.optimizer,
        check_checkpoint=lambda file, checkpoint: _check_counters(file, checkpoint, config),
    )
    run = open_run(folder, request, resume=resume, overwrite=overwrite)
    if run.checkpoint is not None:
        checkpoint = run.checkpoint
        state = {k.removeprefix("policy."): v for k, v in checkpoint["model"].items()}
        algorithm.policy.load_state_dict(state)
        algorithm.policy.optimizer.load_state_dict(checkpoint["optimizer"])
        algorithm.num_timesteps = checkpoint["rng"]["num_timesteps"]
        algorithm.noise_rollouts = checkpoint["rng"]["noise_rollouts"]
        _sync(run_model, algorithm)
    return run


def _check_counters(file: Path, checkpoint: dict[str, Any], config: RLTrainConfig) -> None:
    """CorruptRun unless the step and rollout counters are those of ``iteration`` iterations."""
    iteration, counters = checkpoint["iteration"], checkpoint["rng"]
    expected = {
        "num_timesteps": iteration * config.num_envs * config.num_steps,
        "noise_rollouts": iteration,
    }
    for name, value in expected.items():
        if counters[name] != value:
            raise CorruptRun(
                f"{file}: `rng.{name}` is {counters[name]}, but `iteration` {iteration} of "
                f"this config needs {value}"
            )


def _checkpoint(iteration: int, algorithm: Any, run_model: SB3Policy) -> dict[str, Any]:
    return {
        "iteration": iteration,
        "model": run_model.state_dict(),
        "optimizer": algorithm.policy.optimizer.state_dict(),
        "rng": {
            "num_timesteps": algorithm.num_timesteps,
            "noise_rollouts": algorithm.noise_rollouts,
        },
    }


def _loss_rows(history: list[dict[str, float]]) -> list[dict[str, float]]:
    """The rows of ``history.csv``: stable-baselines3 does not report the gradient norm."""
    return [{**row, "grad_norm": float("nan")} for row in history]


def _merged_history(run: RunWriter) -> list[dict[str, float]]:
    """The RL history up to the checkpoint: ``rl_history.csv`` rows with their loss rows."""
    keep = ("loss", "learning_rate", "seconds")
    return [
        {**steps, **{key: losses[key] for key in keep}}
        for steps, losses in zip(run.tables[RL_HISTORY_FILE], run.tables[HISTORY_FILE], strict=True)
    ]
