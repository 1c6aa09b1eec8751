"""Train noisy policies with (Recurrent)PPO into the same run folders as the supervised trainer.

``train_rl`` runs :class:`~agents.sb3.recurrent.NoisyRecurrentPPO` (a CTRNN core) or
:class:`~agents.sb3.feedforward.NoisyPPO` (a noisy MLP) on ``num_envs`` batched copies of a task.
A run folder (:mod:`agents.runs`) gets the model kind and config, a ``train`` section that
:func:`~agents.runs.load_run` reads (:meth:`RLTrainConfig.summary`), the whole training config in
``rl_train.json``, the weights, checkpoints, ``history.csv`` (PPO's loss per iteration) and
``rl_history.csv`` (steps, episodes, mean episode reward and mean primary metric per iteration).

stable-baselines3 draws its action samples, minibatch order and head initialisation from the
global generators; training seeds them from ``config.seed`` and restores their previous state
when it returns, so runs are reproducible without leaving global state changed.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import io
import json
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

from agents.runs import (
    CHECKPOINT_FILE,
    RUN_FILE,
    Run,
    atomic_write_text,
    load_checkpoint,
    load_run,
    read_run_record,
    run_record,
    save_checkpoint,
    save_weights,
    update_run_record,
    write_history,
    write_run_record,
)
from agents.sb3.config import CTRNNPolicyConfig, MLPPolicyConfig, RLTrainConfig
from agents.sb3.feedforward import NoisyActorCriticPolicy, NoisyPPO
from agents.sb3.model import SB3Policy, policy_model
from agents.sb3.recurrent import CTRNNRecurrentPolicy, NoisyRecurrentPPO
from agents.sb3.vec_env import make_sb3_vec_env
from noise_envs.registration import make_task

__all__ = ["RL_HISTORY_FILE", "RL_TRAIN_FILE", "RLTrainResult", "train_rl", "train_rl_run"]

RL_TRAIN_FILE = "rl_train.json"
RL_HISTORY_FILE = "rl_history.csv"
RL_HISTORY_COLUMNS = ("iteration", "timesteps", "episodes", "episode_reward", "metric")
"""Columns of ``rl_history.csv``; ``metric`` is the mean of the task's primary metric."""

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
) -> RLTrainResult:
    """Train a noisy policy on ``task_id`` with PPO or RecurrentPPO at noise ``config.sigma``.

    The policy's noise level and seed are the training config's (``policy_config.sigma`` and
    ``.seed`` are replaced). With ``run_dir`` the run is saved as a run folder and resumed from its
    checkpoint if one of the same run is there (the environments restart, so a resumed run is not
    bit-identical to an uninterrupted one).

    Args:
        task_id: the environment id.
        policy_config: the policy's options; its type picks the policy (see Raises).
        config: the training options.
        task_kwargs: the task's options.
        run_dir: where to save the run, or None to keep it in memory.
        device: where the policy trains (the environments run on the CPU).
        progress: show a progress bar.

    Returns:
        The trained algorithm, its policy as a Policy, and the history.

    Raises:
        ValueError: if the policy config does not fit ``config.algo`` (recurrent_ppo takes a
            CTRNNPolicyConfig, ppo an MLPPolicyConfig) or ``run_dir`` holds another run.
    """
    policy_config = _check_policy_config(policy_config, config)
    task_kwargs = dict(task_kwargs or {})
    task = make_task(task_id, **task_kwargs)
    folder = None if run_dir is None else Path(run_dir)
    with _seeded_global_generators(config.seed):
        algorithm = _build_algorithm(task_id, task_kwargs, policy_config, config, device)
        run_model = policy_model(algorithm.policy)
        start, history = 0, []
        if folder is not None:
            start, history = _open_run(folder, task, run_model, algorithm, config)
        bar = tqdm(
            total=config.iterations,
            initial=start,
            disable=None if progress else True,
            desc="train rl",
        )
        with bar:
            for iteration in range(start + 1, config.iterations + 1):
                rate = config.learning_rate_at(iteration)
                history.append(_iterate(algorithm, iteration, rate, task.primary_metric))
                bar.update()
                bar.set_postfix(metric=f"{history[-1]['metric']:.4g}")
                if folder is not None and (
                    iteration % config.checkpoint_every == 0 or iteration == config.iterations
                ):
                    _save_checkpoint(folder, iteration, algorithm, run_model, history)
    if folder is not None:
        _sync(run_model, algorithm)
        save_weights(folder, run_model)
        update_run_record(folder, status="complete")
    return RLTrainResult(
        algorithm=algorithm, policy=SB3Policy(algorithm.policy), history=history, run_dir=folder
    )


def train_rl_run(
    run_dir: str | Path,
    task_id: str,
    policy_config: PolicyConfig,
    train_config: RLTrainConfig,
    *,
    task_kwargs: dict[str, Any] | None = None,
    device: torch.device | str = "cpu",
    progress: bool = True,
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
    return policy_config.replace(sigma=config.sigma, seed=config.seed)


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
    folder: Path, task: Any, run_model: SB3Policy, algorithm: Any, config: RLTrainConfig
) -> tuple[int, list[dict[str, float]]]:
    """Start the run in ``folder``, or resume it; returns the iterations done and their history."""
    record = run_record(task, run_model, config.summary(), status="running", iterations_done=0)
    rl_config = config.to_dict()
    if (folder / RUN_FILE).is_file():
        _check_same_run(folder, read_run_record(folder), record, rl_config)
        if (folder / CHECKPOINT_FILE).is_file():
            return _resume(folder, algorithm, config)
    folder.mkdir(parents=True, exist_ok=True)
    for name in (CHECKPOINT_FILE, RL_HISTORY_FILE):
        (folder / name).unlink(missing_ok=True)
    atomic_write_text(folder / RL_TRAIN_FILE, json.dumps(rl_config, indent=2) + "\n")
    write_run_record(folder, record)
    return 0, []


def _check_same_run(
    folder: Path, old: dict[str, Any], new: dict[str, Any], rl_config: dict[str, Any]
) -> None:
    saved = folder / RL_TRAIN_FILE
    before = json.loads(saved.read_text(encoding="utf-8")) if saved.is_file() else None
    after = json.loads(json.dumps(rl_config))
    if before is not None:
        before.pop("iterations", None)
    after.pop("iterations", None)
    same = all(
        json.loads(json.dumps(old[key])) == json.loads(json.dumps(new[key]))
        for key in ("task", "model")
    )
    if not same or before != after:
        raise ValueError(
            f"{folder} holds a different run (task, model or training config); train into "
            "another run_dir or delete this one"
        )


def _resume(
    folder: Path, algorithm: Any, config: RLTrainConfig
) -> tuple[int, list[dict[str, float]]]:
    checkpoint = load_checkpoint(folder)
    start = int(checkpoint["iteration"])
    if start > config.iterations:
        raise ValueError(
            f"{folder} has already trained {start} iterations, more than "
            f"`iterations` = {config.iterations}"
        )
    state = {k.removeprefix("policy."): v for k, v in checkpoint["model"].items()}
    algorithm.policy.load_state_dict(state)
    algorithm.policy.optimizer.load_state_dict(checkpoint["optimizer"])
    algorithm.num_timesteps = int(checkpoint["rng"]["num_timesteps"])
    algorithm.noise_rollouts = int(checkpoint["rng"]["noise_rollouts"])
    history = [row for row in _read_rl_history(folder) if row["iteration"] <= start]
    return start, history


def _save_checkpoint(
    folder: Path,
    iteration: int,
    algorithm: Any,
    run_model: SB3Policy,
    history: list[dict[str, float]],
) -> None:
    # History first: if we stop in between, it runs ahead of the checkpoint and resume trims it.
    _write_histories(folder, history)
    _sync(run_model, algorithm)
    save_checkpoint(
        folder,
        {
            "iteration": iteration,
            "model": run_model.state_dict(),
            "optimizer": algorithm.policy.optimizer.state_dict(),
            "rng": {
                "num_timesteps": algorithm.num_timesteps,
                "noise_rollouts": algorithm.noise_rollouts,
            },
        },
    )
    update_run_record(folder, iterations_done=iteration)


def _write_histories(folder: Path, history: list[dict[str, float]]) -> None:
    write_history(
        folder,
        [
            {
                "iteration": row["iteration"],
                "loss": row["loss"],
                "grad_norm": float("nan"),  # stable-baselines3 does not report it
                "learning_rate": row["learning_rate"],
                "seconds": row["seconds"],
            }
            for row in history
        ],
    )
    text = io.StringIO()
    writer = csv.DictWriter(
        text, fieldnames=RL_HISTORY_COLUMNS, lineterminator="\n", extrasaction="ignore"
    )
    writer.writeheader()
    writer.writerows(history)
    atomic_write_text(folder / RL_HISTORY_FILE, text.getvalue())


def _read_rl_history(folder: Path) -> list[dict[str, float]]:
    """The rows of ``rl_history.csv`` merged with ``history.csv`` (empty if there are none)."""
    from agents.runs import read_history

    file = folder / RL_HISTORY_FILE
    if not file.is_file():
        return []
    with open(file, newline="", encoding="utf-8") as handle:
        rows = [
            {
                key: int(value) if key in ("iteration", "timesteps", "episodes") else float(value)
                for key, value in row.items()
            }
            for row in csv.DictReader(handle)
        ]
    losses = {row["iteration"]: row for row in read_history(folder)}
    for row in rows:
        extra = losses.get(row["iteration"], {})
        row["loss"] = extra.get("loss", float("nan"))
        row["learning_rate"] = extra.get("learning_rate", float("nan"))
        row["seconds"] = extra.get("seconds", float("nan"))
    return rows
