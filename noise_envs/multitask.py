"""NoisyMultitask-v0: the 20 cognitive tasks of Yang et al. (2019) as one batched simulator."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import torch
from gymnasium import spaces

from noise_envs._checks import (
    check_choice,
    check_noise_level,
    check_nonnegative,
    check_positive,
    check_positive_int,
)
from noise_envs.config import JsonConfig
from noise_envs.core import Metric, OpenLoopEpisode, Task, TaskState
from noise_envs.multitask_trials import (
    ALIASES,
    NUM_DRAWS,
    TASK_NAMES,
    Trials,
    bump,
    draw_trials,
    max_trial_steps,
    resolve_task_name,
)
from noise_envs.random import RandomSource

__all__ = ["MultitaskConfig", "MultitaskState", "MultitaskTask", "population_vector"]

YANG_INPUT_NOISE = math.sqrt(2 / 0.2) * 0.01
"""Yang's input noise per step: sqrt(2 / alpha) sigma_in with alpha = 0.2, sigma_in = 0.01."""
BASELINE = 0.05
"""Target of every output that should be silent."""
RING_WEIGHTS = (1.0, 25.0)
"""Loss weights of the ring outputs before the response and after its grace period (5^2)."""
FIXATION_WEIGHTS = (4.0, 100.0)
"""The same for the fixation output ((2 * 1)^2 and (2 * 5)^2)."""
UNSCORED_MS = 100.0
"""The first 100 ms and the 100 ms after the response cue are not scored."""


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class MultitaskConfig(JsonConfig):
    """Options of :class:`MultitaskTask`."""

    tasks: str | tuple[str, ...] = "all"
    """The tasks to draw trials from: "all", one name, or a list (neurogym names are aliases)."""
    task_weights: tuple[float, ...] | None = None
    """Relative probability of each task in `tasks` (None: uniform); Yang's run weights ctx DM x5."""
    dt: float = 20.0
    """Time step in ms; epoch lengths are floor(ms / dt) steps, as in Yang's code."""
    ring_size: int = 32
    """Units per ring (each of the two input rings and the output ring)."""
    fixation_target: float = 0.8
    """Fixation-output target while fixating: 0.8 in Yang's code, 0.85 in the paper."""
    obs_noise: float = YANG_INPUT_NOISE
    """Std of Gaussian noise on every input at every step (Yang's sqrt(2/0.2) * 0.01; 0 = off)."""

    def __post_init__(self) -> None:
        if isinstance(self.tasks, list):
            object.__setattr__(self, "tasks", tuple(self.tasks))
        if isinstance(self.task_weights, list):
            object.__setattr__(self, "task_weights", tuple(self.task_weights))
        _check_tasks(self.tasks)
        if self.task_weights is not None:
            _check_weights(self.task_weights, len(self.task_names))
        check_positive("dt", self.dt)
        if self.dt > 500:
            raise ValueError(f"`dt` must be <= 500 ms (the response epoch), got {self.dt!r}")
        check_positive_int("ring_size", self.ring_size)
        check_positive("fixation_target", self.fixation_target)
        check_noise_level("obs_noise", self.obs_noise)

    @property
    def task_names(self) -> tuple[str, ...]:
        """The chosen tasks' canonical names, in the order given."""
        if self.tasks == "all":
            return TASK_NAMES
        names = (self.tasks,) if isinstance(self.tasks, str) else self.tasks
        return tuple(resolve_task_name(name) for name in names)

    @property
    def probabilities(self) -> tuple[float, ...]:
        """Probability of each task of :attr:`task_names`."""
        weights = self.task_weights or (1.0,) * len(self.task_names)
        total = sum(weights)
        return tuple(w / total for w in weights)


def _check_tasks(tasks: object) -> None:
    if isinstance(tasks, str):
        if tasks != "all":
            _check_task_name("tasks", tasks)
        return
    if not isinstance(tasks, tuple) or not tasks:
        raise ValueError(f"`tasks` must be 'all', a task name or a non-empty list, got {tasks!r}")
    canonical = [_check_task_name(f"tasks[{i}]", name) for i, name in enumerate(tasks)]
    if len(set(canonical)) != len(canonical):
        raise ValueError(f"`tasks` must not name a task twice, got {tasks!r}")


def _check_task_name(name: str, value: object) -> str:
    if not isinstance(value, str) or resolve_task_name(value) is None:
        check_choice(name, str(value), (*TASK_NAMES, *ALIASES))
    return resolve_task_name(value)


def _check_weights(weights: object, count: int) -> None:
    if not isinstance(weights, tuple) or len(weights) != count:
        raise ValueError(f"`task_weights` must give one weight per task ({count}), got {weights!r}")
    for i, weight in enumerate(weights):
        check_nonnegative(f"task_weights[{i}]", weight)
    if sum(weights) <= 0:
        raise ValueError(f"`task_weights` must not all be 0, got {weights!r}")


@dataclasses.dataclass(frozen=True)
class MultitaskState(Trials, TaskState):
    """Adds each row's trial and the output at the row's last step.

    The trial fields are inherited from :class:`~noise_envs.multitask_trials.Trials` (after
    :class:`TaskState`'s); ``last_output [B, A]`` is the action taken at step ``length - 1``,
    which ``perf`` reads.
    """

    last_output: torch.Tensor


def population_vector(ring: torch.Tensor) -> torch.Tensor:
    """Yang's read-out direction of ring outputs ``[..., R]``, in [0, 2 pi).

    The angle of ``sum_k y_k e^{i theta_k} / sum_k y_k`` (NaN where the ring sums to 0; a
    negative sum turns it by pi, as in Yang's ``popvec``).
    """
    size = ring.shape[-1]
    preferred = torch.arange(size, dtype=ring.dtype, device=ring.device) * (2 * math.pi / size)
    total = ring.sum(-1)
    cosine = (ring * torch.cos(preferred)).sum(-1) / total
    sine = (ring * torch.sin(preferred)).sum(-1) / total
    return torch.remainder(torch.atan2(sine, cosine), 2 * math.pi)


class MultitaskTask(Task[MultitaskState, MultitaskConfig]):
    """The cognitive multitask suite of Yang et al. (2019): 20 tasks, one network.

    ## Description
    Each episode is one trial of one task, drawn per row with probabilities ``task_weights``:
    fdgo, reactgo, delaygo, fdanti, reactanti, delayanti (saccade to a stimulus, or opposite it,
    after the fixation cue goes off, at once, or after a delay), dm1, dm2, contextdm1/2, multidm
    (saccade to the stronger of two stimuli in ring 1, ring 2, the attended ring, or summed),
    their delayed versions delaydm1/2, contextdelaydm1/2, multidelaydm (stimuli one after the
    other), and dmsgo, dmsnogo, dmcgo, dmcnogo (delayed match to sample or to category: saccade
    to the second stimulus on match, or on non-match, and keep fixating otherwise). neurogym's
    names (go, rtgo, dlygo, anti, rtanti, dlyanti, ctxdm1, ctxdm2, dlydm1, dlydm2, ctxdlydm1,
    ctxdlydm2, multidlydm, dms, dnms, dmc, dnmc) are accepted as aliases. Epochs, stimulus
    strengths and angles follow the authors' code (``gyyang/multitask`` ``task.py``, 'random'
    mode); ``YANG19.md`` in the project's shared notes lists them with line numbers.

    Departures from the original, all from batching: timings, modalities and match draws are
    made **per trial**, not once per batch, and a batch mixes tasks (Yang trained one task per
    batch). Trials in a batch therefore differ in length: rows are padded to the batch's longest
    trial with mask 0, each row ends (``done``) at its own last step, and ``horizon`` is the
    longest trial the options allow. When ``dt > 200`` ms a response epoch could floor to 0
    steps; it lasts at least one step.

    ## Observation Space
    ``Box(-b, b, (1 + 2R + 20,))`` with ``R = ring_size`` (85 at the default 32) and
    ``b = 3 + 10 * obs_noise``, wide enough that noise is never clipped in practice:
    index 0 is the fixation input (1 while the network must fixate), then ring 1 and ring 2
    (stimulus j adds ``0.8 exp(-d^2 / (2 (pi/8)^2)) * strength`` to the unit preferring
    ``2 pi k / R``, ``d`` the circular distance), then 20 one-hot rule inputs (Yang's rule order,
    on for the whole trial), whatever subset of tasks is drawn.

    ## Action Space
    ``Box(-1, 1, (1 + R,))``: fixation output, then the output ring. Actions are scored, not
    clipped; a sigmoid read-out (Yang's) keeps them in (0, 1).

    ## Rewards
    Minus the step's mask-weighted squared teacher error (the supervised tasks' default).

    ## Episode End
    Terminates at the trial's last step (trials last 0.8 to 4.2 s at the default timings).

    ## Arguments
    See :class:`MultitaskConfig`: ``tasks``, ``task_weights``, ``dt``, ``ring_size``,
    ``fixation_target``, ``obs_noise``.

    ## Noise options
    ``obs_noise`` is Yang's input noise, added to all inputs at every step; its default
    ``sqrt(2 / 0.2) * 0.01`` is Yang's (0 turns it off). Yang's recurrent noise is the model's:
    a CTRNN with ``noise_scaling="sqrt_2_over_gamma"`` and sigma 0.05.

    ## Teacher signal
    Targets: 0.05 everywhere except the fixation output, ``fixation_target`` until the response
    cue (the whole trial on no-go trials), and the ring, ``0.05 + 0.8 exp(-d^2 / (2 (pi/8)^2))``
    around the response direction from the cue on. Mask: Yang's effective weights (his loss
    squares the masked error, so his mask 1 / 5, fixation x2, becomes 1 / 25 and 4 / 100): 0 in
    the first 100 ms, 1 (fixation output 4) until the cue, 0 for 100 ms, then 25 (100) to the
    end; 0 on padded steps. The trainers divide by the weights' sum where Yang's mean divides by
    the number of entries: within a batch the loss differs by a positive factor, not in shape.

    ## Metrics
    ``perf`` (primary, higher is better): Yang's rule at the trial's last step. A no-go trial
    is correct if the fixation output is above 0.5; a go trial if it is at most 0.5 and the
    population vector of the ring is within 0.2 pi of the response direction. ``mse`` (lower is
    better): the mask-weighted mean squared error. ``task`` (a label, not a score): the trial's
    task index in Yang's rule order, so a sweep reports ``perf`` per task.

    Paper-versus-code choices (YANG19.md section 6), all the code's: fixation target 0.8 (option);
    squared mask weights; decision-task stimuli off at the response cue; delayed-DM stimuli of
    200/400/600 ms and a U(100, 300) ms delay before the cue; DMS non-match offsets of 20 to 340
    degrees; DMS match with probability 0.5 per trial, DMC from independent angle draws; only the
    last step scored; RT Go's U(500, 2500) ms is the fixation before the stimulus.

    ## Version History
    * v0: initial version.

    Example:
        >>> task = MultitaskTask(tasks=["fdgo", "dms"], obs_noise=0.0)
        >>> state, obs = task.reset(4, generator=0)
        >>> tuple(obs.shape), task.action_size, task.horizon
        ((4, 85), 33, 165)
        >>> float(obs[0, 0])  # fixate
        1.0
    """

    id = "NoisyMultitask-v0"
    config_class = MultitaskConfig
    metrics = (
        Metric(
            "perf",
            higher_is_better=True,
            description="Yang's rule at the last step",
            bounds=(0.0, 1.0),
        ),
        Metric("mse", higher_is_better=False, description="mask-weighted mean squared error"),
        Metric("task", higher_is_better=False, description="the trial's task index", label=True),
    )
    primary_metric = "perf"
    open_loop = True

    def __init__(self, config: MultitaskConfig | None = None, **options) -> None:
        super().__init__(config, **options)
        ring = self.config.ring_size
        bound = 3.0 + 10.0 * self.config.obs_noise
        size = 1 + 2 * ring + len(TASK_NAMES)
        self.observation_space = spaces.Box(-bound, bound, shape=(size,), dtype=np.float32)
        self.action_space = spaces.Box(-1.0, 1.0, shape=(1 + ring,), dtype=np.float32)
        self.horizon = max(max_trial_steps(name, self.config.dt) for name in self.task_names)
        self._tasks = torch.tensor([TASK_NAMES.index(n) for n in self.task_names])
        self._probabilities = torch.tensor(self.config.probabilities, dtype=torch.float64)
        self._unscored = math.floor(UNSCORED_MS / self.config.dt)

    @property
    def task_names(self) -> tuple[str, ...]:
        """The canonical names of the tasks this simulator draws."""
        return self.config.task_names

    def teacher(self, state: MultitaskState) -> tuple[torch.Tensor, torch.Tensor]:
        """Target and mask ``[B, A]`` for the current step (see the class docstring)."""
        target, mask = self._teacher_at(state, state.t.unsqueeze(0))
        return target[0], mask[0]

    def episode_metrics(self, state: MultitaskState) -> dict[str, torch.Tensor]:
        """``perf``, ``mse`` and ``task`` per row, ``[B]``."""
        output = state.last_output
        fixating = output[:, 0] > 0.5
        direction = population_vector(output[:, 1:])
        distance = (direction - state.response_angle).abs()
        distance = torch.minimum(distance, 2 * math.pi - distance)
        correct = torch.where(state.respond, (distance < 0.2 * math.pi) & ~fixating, fixating)
        return {
            "perf": correct.to(output.dtype),
            "mse": state.teacher_mse,
            "task": state.task.to(output.dtype),
        }

    def open_loop_episode(
        self,
        batch_size: int,
        generator: torch.Generator | RandomSource | int | None = None,
        device: torch.device | str = "cpu",
    ) -> OpenLoopEpisode:
        """The batch's episodes at once, ``[T, B, ...]`` with ``T`` its longest trial.

        The same observations (noise included), targets and masks as stepping until every row
        has ended, and the generator ends where that stepping leaves it.
        """
        state, first = self.reset(batch_size, generator, device)
        steps = int(state.length.max())
        t = torch.arange(steps, device=first.device).unsqueeze(1).expand(-1, batch_size)
        t = torch.minimum(t, state.length)  # an ended row stays at its end
        observations = self._observation_sequence(state, first, self._observe_at(state, t))
        targets, masks = self._teacher_at(state, t)
        return OpenLoopEpisode(observations, targets, masks)

    def _row_bytes(self) -> int:
        """float32 bytes of a row's episode as a trainer makes it, and of ``_observe_at``.

        Observations, targets and masks per step, plus the [T, stimulus, ring, R] intermediate.
        """
        return 4 * self.horizon * (self.obs_size + 2 * self.action_size + 4 * self.config.ring_size)

    def _initial(self, batch_size: int, rng: RandomSource, device: torch.device) -> MultitaskState:
        draws = rng.uniform(batch_size, NUM_DRAWS, dtype=torch.float64).to(device)
        trials = draw_trials(draws, self._tasks, self._probabilities, self.config.dt)
        return MultitaskState(
            **self._base_state(batch_size, rng, device),
            **{f.name: getattr(trials, f.name) for f in dataclasses.fields(trials)},
            last_output=torch.zeros(batch_size, self.action_size, device=device),
        )

    def _transition(self, state: MultitaskState, action: torch.Tensor) -> MultitaskState:
        last = (state.t == state.length - 1).unsqueeze(1)
        return dataclasses.replace(
            state, t=state.t + 1, last_output=torch.where(last, action, state.last_output)
        )

    def _terminal(self, state: MultitaskState) -> torch.Tensor:
        return state.t >= state.length

    def _observe(self, state: MultitaskState) -> torch.Tensor:
        return self._observe_at(state, state.t.unsqueeze(0))[0]

    def _observe_at(self, state: MultitaskState, t: torch.Tensor) -> torch.Tensor:
        """Clean observations ``[T, B, O]`` at steps ``t`` ``[T, B]``."""
        fixation = (t < state.fixation_off).float().unsqueeze(-1)
        shown = (t.unsqueeze(-1) >= state.stimulus_on) & (t.unsqueeze(-1) < state.stimulus_off)
        drive = shown.float().unsqueeze(-1) * state.strength  # [T, B, stimulus, ring]
        bumps = bump(state.angle, self.config.ring_size)  # [B, stimulus, R]
        # Elementwise, not einsum: the same sum whatever T, so stepping equals the whole episode.
        per_stimulus = drive.unsqueeze(-1) * bumps.unsqueeze(-2)  # [T, B, stimulus, ring, R]
        rings = (per_stimulus[:, :, 0] + per_stimulus[:, :, 1]).flatten(2)
        rule = torch.nn.functional.one_hot(state.task, len(TASK_NAMES)).float()
        rule = rule.expand(t.shape[0], -1, -1)
        return torch.cat([fixation, rings, rule], dim=-1)

    def _teacher_at(
        self, state: MultitaskState, t: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Targets and masks ``[T, B, A]`` at steps ``t`` ``[T, B]``."""
        responding = state.respond & (t >= state.go)  # [T, B]
        ring = BASELINE + responding.float().unsqueeze(-1) * bump(
            state.response_angle, self.config.ring_size
        )
        fixating = ~state.respond | (t < state.go)
        fixation = torch.where(fixating, self.config.fixation_target, BASELINE).unsqueeze(-1)
        target = torch.cat([fixation, ring], dim=-1)
        before = (t >= self._unscored) & (t < state.go)
        after = (t >= state.go + self._unscored) & (t < state.length)
        weights = []
        for early, late in (FIXATION_WEIGHTS, RING_WEIGHTS):
            weights.append(torch.where(before, early, torch.where(after, late, 0.0)))
        mask = torch.cat(
            [weights[0].unsqueeze(-1), weights[1].unsqueeze(-1).expand_as(ring)], dim=-1
        )
        return target, mask
