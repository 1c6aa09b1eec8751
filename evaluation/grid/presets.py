"""The grids of ``noisepref reproduce``: one per task (or setting), at a quick and a paper scale.

``quick`` is sized for a laptop: each grid finishes in minutes on 2 CPU cores (two seeds, two or
three training sigmas, the budgets of the scientific regression tests). ``paper`` is sized for a
GPU or a cluster: five seeds, more training sigmas, longer training and more test episodes.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from evaluation.grid.spec import GridSpec, SweepSpec, TaskSpec
from noise_envs._checks import check_choice
from noise_envs.multitask import YANG_INPUT_NOISE

__all__ = ["PRESETS", "SCALES", "preset", "preset_names"]

SCALES = ("quick", "paper")
_LEVELS_2X = (0.0, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 2.0)
_LEVELS_SPARSE = (0.0, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0)
_PAPER_SIGMAS = (0.25, 0.5, 1.0, 2.0)
"""The training sigmas of most tasks' paper scale."""


def _scaled(spec: GridSpec, scale: str, paper_sigmas: tuple[float, ...]) -> GridSpec:
    """``spec`` as it is (quick), or with 5 seeds, ``paper_sigmas``, 5x training, 512 episodes."""
    if scale == "quick":
        return spec
    training = dict(spec.training)
    training["iterations"] = 5 * int(training.get("iterations", 1000))
    top = 2.0 * max(paper_sigmas)
    levels = tuple(sorted({0.0, *(round(top * i / 16, 6) for i in range(1, 17))}))
    return dataclasses.replace(
        spec,
        seeds=(0, 1, 2, 3, 4),
        train_sigmas=paper_sigmas,
        training=training,
        sweep=dataclasses.replace(spec.sweep, test_sigmas=levels, episodes=512),
    )


def _one_task(task: TaskSpec, model: dict, training: dict, **grid) -> GridSpec:
    """A grid of one task, named after the task's label."""
    return GridSpec(
        tasks=(task,), name=task.label or task.id, model=model, training=training, **grid
    )


def function_approx(scale: str) -> GridSpec:
    """Function approximation (the demo's task): 32 relu units, 400 iterations (quick)."""
    spec = _one_task(
        TaskSpec(id="NoisyFunctionApprox-v0", label="function_approx"),
        {"hidden_size": 32, "activation": "relu", "dt": 20.0, "tau": 100.0},
        {"iterations": 400, "batch_size": 64},
        train_sigmas=(0.25, 0.5, 1.0),
        seeds=(0, 1),
        sweep=SweepSpec(test_sigmas=_LEVELS_2X, episodes=128),
    )
    return _scaled(spec, scale, (0.1, 0.25, 0.5, 1.0, 2.0))


def function_approx_obs_noise(scale: str) -> GridSpec:
    """Environment noise as a factor: observation noise 0, 0.1 or 0.2 in training, sigma 0.5.

    Each cell is swept along the network's noise and along the observation noise.
    """
    spec = dataclasses.replace(
        function_approx("quick"),
        name="function_approx_obs_noise",
        tasks=(TaskSpec(id="NoisyFunctionApprox-v0", label="function_approx_obs_noise"),),
        train_sigmas=(0.5,),
        train_obs_noise=(0.0, 0.1, 0.2),
        sweep=SweepSpec(
            axes=("model", "env"),
            test_sigmas=_LEVELS_2X,
            test_obs_noise=(0.0, 0.05, 0.1, 0.15, 0.2, 0.3, 0.4),
            episodes=128,
        ),
    )
    if scale == "quick":
        return spec
    paper = _scaled(spec, scale, (0.5,))
    return dataclasses.replace(paper, train_obs_noise=(0.0, 0.05, 0.1, 0.2, 0.4))


def regulator(scale: str) -> GridSpec:
    """The regulator: 16 relu units, dt 20 ms, Adam 1e-2 for 1000 iterations (quick).

    Measured: at 300 iterations noise-in's preference was significant in 1 of 2 seeds at sigma
    0.5 and 1; at 1000 in both (ratio 2.0 and 5.7).
    """
    spec = _one_task(
        TaskSpec(id="NoisyRegulator-v0", label="regulator"),
        {"hidden_size": 16, "dt": 20.0},
        {"iterations": 1000, "batch_size": 64, "learning_rate": 1e-2},
        train_sigmas=(0.5, 1.0),
        seeds=(0, 1),
        sweep=SweepSpec(test_sigmas=_LEVELS_2X, episodes=128),
    )
    return _scaled(spec, scale, _PAPER_SIGMAS)


def maze(scale: str) -> GridSpec:
    """The 3 x 3 maze (closed loop): 128 units, 150 iterations; sigma 0.5 and 1 (quick, 1 seed)."""
    spec = _one_task(
        TaskSpec(
            id="NoisyMaze-v0",
            label="maze",
            options={"size": 3, "max_speed": 0.25, "horizon_factor": 2.0},
        ),
        {"hidden_size": 128, "dt": 20.0, "tau": 100.0},
        {"iterations": 150, "batch_size": 64},
        train_sigmas=(0.5, 1.0),
        seeds=(0,),
        sweep=SweepSpec(test_sigmas=_LEVELS_SPARSE, episodes=128),
    )
    return _scaled(spec, scale, _PAPER_SIGMAS)


def _path_integration(activation: str, scale: str) -> GridSpec:
    spec = _one_task(
        TaskSpec(
            id="NoisyPathIntegration-v0",
            label=f"path_integration_{activation}",
            options={"steps": 20},
        ),
        {"hidden_size": 32, "activation": activation, "dt": 20.0, "tau": 100.0},
        {"iterations": 400, "batch_size": 64},
        train_sigmas=(0.5, 1.0),
        seeds=(0, 1),
        sweep=SweepSpec(test_sigmas=_LEVELS_SPARSE, episodes=128),
    )
    return _scaled(spec, scale, _PAPER_SIGMAS)


def path_integration_relu(scale: str) -> GridSpec:
    """Path integration with relu units (no preference at sigma 0.5 and 1, as measured)."""
    return _path_integration("relu", scale)


def path_integration_tanh(scale: str) -> GridSpec:
    """Path integration with tanh units (noise-in prefers sigma 1)."""
    return _path_integration("tanh", scale)


def feedforward(scale: str) -> GridSpec:
    """Feedforward networks: a noisy 2-layer MLP on one-step function approximation."""
    spec = _one_task(
        TaskSpec(
            id="NoisyFunctionApprox-v0",
            label="feedforward",
            options={"steps": 1, "response_steps": 1},
        ),
        {"hidden_size": 32, "num_layers": 2, "activation": "relu"},
        {"iterations": 400, "batch_size": 64},
        model_kind="noisy_mlp",
        train_sigmas=(0.5, 1.0),
        seeds=(0, 1),
        sweep=SweepSpec(test_sigmas=_LEVELS_2X, episodes=256),
    )
    return _scaled(spec, scale, _PAPER_SIGMAS)


def rl_regulator(scale: str) -> GridSpec:
    """The regulator trained by RecurrentPPO with a CTRNN core (the ``rl`` extra)."""
    spec = _one_task(
        TaskSpec(
            id="NoisyRegulator-v0",
            label="rl_regulator",
            options={"steps": 30, "settle_steps": 15},
        ),
        {"hidden_size": 16, "dt": 20.0, "log_std_init": -1.0},
        {
            "iterations": 40,
            "num_envs": 16,
            "num_steps": 60,
            "batch_size": 480,
            "epochs": 10,
            "learning_rate": 2e-3,
            "discount": 0.0,
        },
        trainer="rl",
        train_sigmas=(0.5,),
        seeds=(0,),
        sweep=SweepSpec(test_sigmas=(0.0, 0.25, 0.5, 0.75, 1.0), episodes=256),
    )
    return _scaled(spec, scale, (0.25, 0.5, 1.0))


def multitask(scale: str) -> GridSpec:
    """Yang et al. 2019's suite: fdgo, reactgo and fdanti at quick scale, all 20 at paper scale.

    64 softplus units with Yang's sigmoid read-out and ``0.5 I`` start, per-step sigma (the
    paper's convention), judged on ``mse``: ``perf`` sits at its ceiling up to the training noise.
    """
    subset = ("fdgo", "reactgo", "fdanti")
    spec = _one_task(
        TaskSpec(id="NoisyMultitask-v0", label="multitask", options={"tasks": subset}),
        {
            "hidden_size": 64,
            "activation": "softplus",
            "dt": 20.0,
            "tau": 100.0,
            "readout": "sigmoid",
            "recurrent_init": "identity",
        },
        {"iterations": 400, "batch_size": 64, "learning_rate": 3e-3},
        train_sigmas=(1.0, 2.0),
        seeds=(0,),
        train_obs_noise=(YANG_INPUT_NOISE,),  # the suite's own input noise
        sweep=SweepSpec(
            test_sigmas=(0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 4.0), episodes=128, metric="mse"
        ),
    )
    if scale == "paper":
        task = dataclasses.replace(spec.tasks[0], options={})
        spec = dataclasses.replace(spec, tasks=(task,), model=dict(spec.model, hidden_size=256))
    return _scaled(spec, scale, (0.5, 1.0, 2.0, 4.0))


PRESETS: dict[str, Callable[[str], GridSpec]] = {
    "function_approx": function_approx,
    "function_approx_obs_noise": function_approx_obs_noise,
    "regulator": regulator,
    "maze": maze,
    "path_integration_relu": path_integration_relu,
    "path_integration_tanh": path_integration_tanh,
    "feedforward": feedforward,
    "rl_regulator": rl_regulator,
    "multitask": multitask,
}
"""Each preset's grid, by name, as a function of the scale."""


def preset_names() -> list[str]:
    """The preset names, in the order ``reproduce all`` runs them."""
    return list(PRESETS)


def preset(name: str, scale: str = "quick") -> GridSpec:
    """The grid of preset ``name`` at ``scale`` (``quick`` or ``paper``)."""
    check_choice("task", name, PRESETS)
    check_choice("scale", scale, SCALES)
    return PRESETS[name](scale)
