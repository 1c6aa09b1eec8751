"""A trainer in its own process that stops at a named point, for the kill-and-resume tests.

Usage: ``python run_worker.py TRAINER FOLDER POINT MARKER [ITERATIONS]``. TRAINER is supervised
or rl; POINT is where the process writes MARKER (its pid) and then waits to be killed:

* ``after_checkpoint``: right after the first checkpoint is written;
* ``mid_iteration``: inside the third iteration, after a checkpoint at 2, before the next;
* ``final_write``: while the final weights are written (the temporary file is complete, the
  rename has not happened);
* ``handshake``: right after the first checkpoint, until a file ``MARKER.go`` exists; then
  it trains on to the end;
* ``none``: does not stop.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import torch

torch.set_num_threads(1)

TASK_ID = "NoisyRegulator-v0"
TASK_KWARGS = {"steps": 6, "settle_steps": 2}


def supervised_config(iterations: int = 6):
    from agents import TrainConfig

    return TrainConfig(
        sigma=0.1, iterations=iterations, batch_size=8, learning_rate=3e-2, checkpoint_every=2
    )


def supervised_model():
    from agents import CTRNN, CTRNNConfig

    config = CTRNNConfig(input_size=1, output_size=1, hidden_size=6, dt=20.0)
    return CTRNN(config, generator=torch.Generator().manual_seed(0))


def rl_config(iterations: int = 4):
    from agents.sb3.config import RLTrainConfig

    return RLTrainConfig(
        sigma=0.2,
        iterations=iterations,
        num_envs=2,
        num_steps=6,
        batch_size=6,
        epochs=1,
        checkpoint_every=2,
    )


def rl_policy():
    from agents.sb3.config import CTRNNPolicyConfig

    return CTRNNPolicyConfig(hidden_size=3, dt=20.0)


def train(trainer: str, folder: str | Path, iterations: int | None = None, **options):
    """Train the test run of ``trainer`` into ``folder``; returns what the trainer returns."""
    if trainer == "supervised":
        from agents import train as train_supervised
        from noise_envs import make_task

        config = supervised_config(*([iterations] if iterations else []))
        task = make_task(TASK_ID, **TASK_KWARGS)
        return train_supervised(
            supervised_model(), task, config, run_dir=folder, progress=False, **options
        )
    from agents.sb3.training import train_rl

    config = rl_config(*([iterations] if iterations else []))
    return train_rl(
        TASK_ID,
        rl_policy(),
        config,
        task_kwargs=TASK_KWARGS,
        run_dir=folder,
        progress=False,
        **options,
    )


def _pause(marker: Path) -> None:
    marker.write_text(str(os.getpid()))
    while True:
        time.sleep(60)


def _pause_after_checkpoint(marker: Path) -> None:
    import agents.run_lifecycle

    save = agents.run_lifecycle.RunWriter.save

    def save_then_pause(self, *args, **kwargs):
        save(self, *args, **kwargs)
        _pause(marker)

    agents.run_lifecycle.RunWriter.save = save_then_pause


def _handshake_after_checkpoint(marker: Path) -> None:
    import agents.run_lifecycle

    save, go = agents.run_lifecycle.RunWriter.save, marker.with_name(marker.name + ".go")

    def save_then_wait_once(self, *args, **kwargs):
        save(self, *args, **kwargs)
        if not marker.exists():
            marker.write_text(str(os.getpid()))
            while not go.exists():
                time.sleep(0.01)

    agents.run_lifecycle.RunWriter.save = save_then_wait_once


def _pause_in_final_write(marker: Path) -> None:
    replace = os.replace

    def replace_or_pause(source, destination):
        if Path(destination).name == "weights.safetensors":
            _pause(marker)
        replace(source, destination)

    os.replace = replace_or_pause  # this process only


def _pause_mid_iteration(trainer: str, marker: Path) -> None:
    if trainer == "supervised":
        import agents.supervised

        loss, calls = agents.supervised.teacher_loss, [0]

        def loss_or_pause(*args, **kwargs):
            calls[0] += 1
            if calls[0] == 3:
                _pause(marker)
            return loss(*args, **kwargs)

        agents.supervised.teacher_loss = loss_or_pause
        return
    import agents.sb3.training as training

    iterate = training._iterate

    def iterate_then_pause(algorithm, iteration, *args):
        row = iterate(algorithm, iteration, *args)
        if iteration == 3:  # updated in memory, not yet checkpointed
            _pause(marker)
        return row

    training._iterate = iterate_then_pause


def _install(trainer: str, point: str, marker: Path) -> None:
    if point == "after_checkpoint":
        _pause_after_checkpoint(marker)
    elif point == "handshake":
        _handshake_after_checkpoint(marker)
    elif point == "final_write":
        _pause_in_final_write(marker)
    elif point == "mid_iteration":
        _pause_mid_iteration(trainer, marker)


def main(argv: list[str]) -> None:
    trainer, folder, point, marker = argv[:4]
    iterations = int(argv[4]) if len(argv) > 4 else None
    if point != "none":
        _install(trainer, point, Path(marker))
    train(trainer, folder, iterations)


if __name__ == "__main__":
    main(sys.argv[1:])
