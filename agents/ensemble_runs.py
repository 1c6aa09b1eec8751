"""An ensemble's training state and its members' run folders, each written as a lone run's.

Member ``k``'s folder gets exactly what :func:`agents.supervised.train` of that member writes
through the run lifecycle (:mod:`agents.run_lifecycle`): its ``run.json``, its history, its
weights and a checkpoint holding its own slice of the stacked weights, of the stacked Adam state
and its own generators' states. So ``load_run`` and the sweeps read it like any run, a lone
``train`` resumes it, and the ensemble resumes from its members' checkpoints, stacked again.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from agents.ensemble import CTRNNEnsemble
from agents.errors import RunMismatch
from agents.run_lifecycle import RunWriter
from agents.runs import HISTORY_FILE
from agents.supervised import open_supervised_run
from agents.train_config import TrainConfig
from noise_envs.core import Task
from noise_envs.random import RandomSource

__all__ = ["EnsembleRuns", "check_run_folders"]


@dataclasses.dataclass(eq=False)
class EnsembleRuns:
    """What training an ensemble holds, and how it moves to and from the members' run folders.

    Attributes:
        ensemble: the members.
        task: the task they train on.
        configs: each member's training config.
        optimizer: Adam over the stacked parameters.
        sources: each member's (task, noise) random sources.
        device: where training runs.
    """

    ensemble: CTRNNEnsemble
    task: Task
    configs: list[TrainConfig]
    optimizer: torch.optim.Optimizer
    sources: list[tuple[RandomSource, RandomSource]]
    device: torch.device

    def open_member_run(self, k: int, folder: Path, resume: bool, overwrite: bool) -> RunWriter:
        """Open member ``k``'s run folder as a lone ``train`` of it does (restoring its sources)."""
        member = self.ensemble.member(k)
        optimizer = torch.optim.Adam(
            [p for p in member.parameters() if p.requires_grad], lr=self.configs[k].learning_rate
        )
        config, sources = self.configs[k], self.sources[k]
        return open_supervised_run(
            folder, member, self.task, config, optimizer, sources, resume, overwrite
        )

    def restore(self, writers: list[RunWriter]) -> tuple[int, list[list[dict[str, float]]]]:
        """Load the members' checkpoints into the ensemble; the start and the histories."""
        starts = {writer.start for writer in writers}
        if len(starts) > 1:
            at = ", ".join(f"{writer.path}: {writer.start}" for writer in writers)
            raise RunMismatch(
                f"the members' run folders are at different iterations ({at}); an ensemble "
                "resumes as a whole: resume them one by one with agents.supervised.train, or "
                "pass resume=False to start them all again"
            )
        histories = [list(writer.tables[HISTORY_FILE]) for writer in writers]
        if starts == {0}:
            return 0, histories
        checkpoints = [writer.checkpoint for writer in writers]
        for k, checkpoint in enumerate(checkpoints):
            member = self.ensemble.member(k)
            member.load_state_dict(checkpoint["model"])
            self.ensemble.set_member(k, member)  # the sources were restored on opening
        self.optimizer.load_state_dict(
            _stacked_optimizer_state(self.optimizer, [c["optimizer"] for c in checkpoints])
        )
        return starts.pop(), histories

    def save(
        self,
        writers: list[RunWriter],
        iteration: int,
        active: Sequence[bool],
        histories: list[list[dict[str, float]]],
    ) -> None:
        """Checkpoint every active member into its folder, as a lone ``train`` would."""
        state = self.optimizer.state_dict()
        # A lone run's Adam is not capturable and keeps its step count on the CPU; a captured
        # ensemble's keeps it on the GPU. The member's checkpoint holds what a lone run's holds.
        groups = [{**group, "capturable": False} for group in state["param_groups"]]
        for k, writer in enumerate(writers):
            if not active[k]:
                continue
            checkpoint = {
                "iteration": iteration,
                "model": self.ensemble.member(k).state_dict(),
                "optimizer": {
                    "state": {
                        index: {
                            key: value.to("cpu", copy=True) if key == "step" else value[k].clone()
                            for key, value in entry.items()
                        }
                        for index, entry in state["state"].items()
                    },
                    "param_groups": groups,
                },
                "rng": self._rng_states(k),
            }
            writer.save(iteration, checkpoint, {HISTORY_FILE: histories[k]})

    def _rng_states(self, k: int) -> dict[str, torch.Tensor]:
        env, noise = self.sources[k]
        return {"env": env.generator.get_state(), "noise": noise.generator.get_state()}


def _stacked_optimizer_state(
    optimizer: torch.optim.Optimizer, members: list[dict[str, Any]]
) -> dict[str, Any]:
    """The ensemble optimizer's state dict stacked from the members' (same step count each)."""
    state = {}
    for index in members[0]["state"]:
        entries = [member["state"][index] for member in members]
        steps = {float(entry["step"]) for entry in entries}
        if len(steps) > 1:
            raise RunMismatch(
                f"the members' checkpoints hold Adam states of different step counts "
                f"{sorted(steps)}; an ensemble resumes only members trained together"
            )
        state[index] = {
            key: entries[0][key].clone()
            if key == "step"
            else torch.stack([e[key] for e in entries])
            for key in entries[0]
        }
    return {"state": state, "param_groups": optimizer.state_dict()["param_groups"]}


def check_run_folders(run_dirs: Sequence[str | Path] | None, members: int) -> list[Path] | None:
    """``run_dirs`` as K distinct folders (None stays None); ValueError otherwise."""
    if run_dirs is None:
        return None
    if isinstance(run_dirs, (str, Path)):
        raise ValueError(
            f"`run_dirs` must be one folder per member ({members}), got one path {str(run_dirs)!r}"
        )
    folders = [Path(folder) for folder in run_dirs]
    if len(folders) != members:
        raise ValueError(
            f"`run_dirs` must be one folder per member ({members}), got {len(folders)}"
        )
    resolved = [folder.resolve() for folder in folders]
    if len(set(resolved)) != len(resolved):
        raise ValueError(f"`run_dirs` must be distinct folders, got {[str(f) for f in folders]}")
    return folders
