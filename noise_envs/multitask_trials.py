"""Trial generators of the Yang et al. (2019) multitask suite, vectorised over a batch of rows.

Each row draws one trial of one task from a fixed number of uniform numbers (:data:`NUM_DRAWS`),
so a row's trial depends only on its own draws: the same in a batch and alone. Every fact here
(epochs, strengths, angles, targets) follows the authors' code, ``gyyang/multitask`` ``task.py``;
``/work/shared/YANG19.md`` gives each with its line numbers.
"""

from __future__ import annotations

import dataclasses
import math

import torch

__all__ = [
    "ALIASES",
    "NEVER",
    "NUM_DRAWS",
    "TASK_NAMES",
    "TIMINGS",
    "Timing",
    "Trials",
    "bump",
    "draw_trials",
    "epoch_steps",
    "max_trial_steps",
    "resolve_task_name",
]

TASK_NAMES: tuple[str, ...] = (
    "fdgo",
    "reactgo",
    "delaygo",
    "fdanti",
    "reactanti",
    "delayanti",
    "dm1",
    "dm2",
    "contextdm1",
    "contextdm2",
    "multidm",
    "delaydm1",
    "delaydm2",
    "contextdelaydm1",
    "contextdelaydm2",
    "multidelaydm",
    "dmsgo",
    "dmsnogo",
    "dmcgo",
    "dmcnogo",
)
"""The 20 tasks in Yang's rule order: task ``i`` switches on rule input ``i``."""

ALIASES: dict[str, str] = {
    "go": "fdgo",
    "rtgo": "reactgo",
    "dlygo": "delaygo",
    "anti": "fdanti",
    "rtanti": "reactanti",
    "dlyanti": "delayanti",
    "ctxdm1": "contextdm1",
    "ctxdm2": "contextdm2",
    "dlydm1": "delaydm1",
    "dlydm2": "delaydm2",
    "ctxdlydm1": "contextdelaydm1",
    "ctxdlydm2": "contextdelaydm2",
    "multidlydm": "multidelaydm",
    "dms": "dmsgo",
    "dnms": "dmsnogo",
    "dmc": "dmcgo",
    "dnmc": "dmcnogo",
}
"""neurogym's names (``neurogym.envs.collections.yang19``) of the tasks whose names differ."""

NEVER = 2**40
"""A step no trial reaches: the offset of inputs that stay on to the end."""

BUMP_WIDTH = math.pi / 8
"""Width of the Gaussian tuning of input and output rings (rad), fixed in angle."""
BUMP_HEIGHT = 0.8
"""Peak of an input bump at strength 1, and of the target bump above its 0.05 baseline."""

Epoch = tuple[float, float] | tuple[float, ...]


@dataclasses.dataclass(frozen=True)
class Timing:
    """The epochs of one task family and where its events fall among their boundaries.

    Epoch ``k`` lasts ``floor(ms / dt)`` steps, ``ms`` drawn from ``epochs[k]``: a pair under
    ``uniform`` is U(a, b), otherwise a discrete uniform choice. Boundary ``k`` is the sum of the
    first ``k`` epochs; events name boundaries (None: the input never goes off).
    """

    epochs: tuple[Epoch, ...]
    uniform: tuple[bool, ...]
    stimulus_on: tuple[int, int | None]
    stimulus_off: tuple[int | None, int | None]
    go: int
    fixation_off: int | None


def _timing(epochs, uniform, on, off, go, fixation_off) -> Timing:
    return Timing(tuple(epochs), tuple(map(bool, uniform)), on, off, go, fixation_off)


GO_FIXATION = (300.0, 700.0)
DELAYS = (200.0, 400.0, 800.0, 1600.0)
RESPONSE = (500.0,)
SHORT = (200.0, 400.0, 600.0)
TIMINGS: dict[str, Timing] = {
    "go": _timing(
        [GO_FIXATION, (500.0, 1500.0), RESPONSE], [1, 1, 0], (1, None), (None, None), 2, 2
    ),
    "react": _timing([(500.0, 2500.0), RESPONSE], [1, 0], (1, None), (None, None), 1, None),
    "delaygo": _timing(
        [(300.0, 500.0, 700.0), SHORT, DELAYS, RESPONSE],
        [0, 0, 0, 0],
        (1, None),
        (2, None),
        3,
        3,
    ),
    "dm": _timing(
        [(100.0, 400.0), (400.0, 800.0, 1600.0), RESPONSE], [1, 0, 0], (1, 1), (2, 2), 2, 2
    ),
    "delaydm": _timing(
        [SHORT, SHORT, DELAYS, SHORT, (100.0, 300.0), RESPONSE],
        [0, 0, 0, 0, 1, 0],
        (1, 3),
        (2, 4),
        5,
        5,
    ),
    "dms": _timing([SHORT, SHORT, DELAYS, RESPONSE], [0, 0, 0, 0], (1, 3), (2, None), 3, None),
    "dmc": _timing([SHORT, SHORT, DELAYS, SHORT], [0, 0, 0, 0], (1, 3), (2, None), 3, None),
}
"""Epochs of each timing family ([T] 'random' mode); the last epoch is the response."""

_FAMILY = ["go", "react", "delaygo"] * 2 + ["dm"] * 5 + ["delaydm"] * 5 + ["dms"] * 2 + ["dmc"] * 2
TIMING_OF_TASK: tuple[str, ...] = tuple(_FAMILY)
"""The timing family of each task, in :data:`TASK_NAMES` order."""

MAX_EPOCHS = max(len(timing.epochs) for timing in TIMINGS.values())
# Columns of the per-row uniform draws.
_TIME, _TASK, _ANGLE, _OFFSET, _OFFSET_SIGN, _MATCH, _MOD1, _MOD2 = 0, 6, 7, 8, 9, 10, 11, 12
_STRENGTH = 13  # mean, coherence, sign for ring 1, then for ring 2
_SPLIT = 19  # multisensory split: magnitude and sign for stimulus 1, then stimulus 2
NUM_DRAWS = 23
"""Uniform numbers drawn per row and trial, whatever its task."""

DM_COHERENCES = (0.01, 0.02, 0.04, 0.08)
DELAY_DM_COHERENCES = (0.08, 0.16, 0.32)
DMC_ANGLES = tuple((0.1 + 0.2 * k) * math.pi for k in range(10))


def resolve_task_name(name: str) -> str | None:
    """The canonical name of a task or neurogym alias, or None if neither."""
    if name in TASK_NAMES:
        return name
    return ALIASES.get(name)


def epoch_steps(epoch: Epoch, uniform: bool, dt: float) -> list[int]:
    """Every step count an epoch can last, ascending: ``floor(ms / dt)`` of its possible ``ms``."""
    if uniform:
        low, high = epoch
        return list(range(math.floor(low / dt), math.ceil(high / dt)))
    return sorted({math.floor(ms / dt) for ms in epoch})


def max_trial_steps(task: str, dt: float) -> int:
    """The longest trial of ``task`` at time step ``dt`` (ms), in steps."""
    timing = TIMINGS[TIMING_OF_TASK[TASK_NAMES.index(task)]]
    steps = [max(epoch_steps(e, u, dt)) for e, u in zip(timing.epochs, timing.uniform, strict=True)]
    steps[-1] = max(steps[-1], 1)
    return sum(steps)


def bump(angle: torch.Tensor, ring_size: int) -> torch.Tensor:
    """``0.8 exp(-d^2 / (2 (pi/8)^2))`` for ring units preferring ``2 pi k / ring_size``.

    ``d`` is the circular distance to ``angle`` (rad, any shape ``[...]``); returns ``[..., R]``.
    """
    preferred = torch.arange(ring_size, dtype=angle.dtype, device=angle.device)
    distance = (angle.unsqueeze(-1) - preferred * (2 * math.pi / ring_size)).abs()
    distance = torch.minimum(distance, 2 * math.pi - distance)
    return BUMP_HEIGHT * torch.exp(-0.5 * (distance / BUMP_WIDTH) ** 2)


@dataclasses.dataclass(frozen=True)
class Trials:
    """One trial per row; every tensor is ``[B, ...]`` on the batch's device.

    Attributes:
        task: index into :data:`TASK_NAMES` (int64).
        length: the trial's steps; the row's last step is ``length - 1``.
        go: first response step (fixation-input offset, or stim2 onset in the matching tasks).
        fixation_off: first step without the fixation input (:data:`NEVER` if it stays on).
        stimulus_on / stimulus_off: ``[B, 2]`` on and off steps of stimulus 1 and 2.
        angle: ``[B, 2]`` stimulus directions (rad).
        strength: ``[B, 2, 2]`` strength of stimulus j in ring m (0: not shown there).
        respond: whether the trial asks for a saccade (false on no-go trials).
        response_angle: the saccade's direction (rad); meaningless when ``respond`` is false.
    """

    task: torch.Tensor
    length: torch.Tensor
    go: torch.Tensor
    fixation_off: torch.Tensor
    stimulus_on: torch.Tensor
    stimulus_off: torch.Tensor
    angle: torch.Tensor
    strength: torch.Tensor
    respond: torch.Tensor
    response_angle: torch.Tensor


def draw_trials(
    draws: torch.Tensor, tasks: torch.Tensor, probabilities: torch.Tensor, dt: float
) -> Trials:
    """Trials from uniform draws ``[B, NUM_DRAWS]`` (float64 in [0, 1)).

    Args:
        draws: the rows' uniform numbers.
        tasks: ``[K]`` int64, the task indices to choose from.
        probabilities: ``[K]`` their probabilities (summing to 1).
        dt: time step (ms).
    """
    cumulative = probabilities.to(draws).cumsum(0)
    choice = torch.searchsorted(cumulative, draws[:, _TASK].contiguous(), right=True)
    task = tasks.to(draws.device)[choice.clamp_max(len(tasks) - 1)]
    length, go, fixation_off, stimulus_on, stimulus_off = _timing_of_rows(draws, task, dt)
    angle, respond, response_angle, strength = _stimuli(draws, task)
    return Trials(
        task=task,
        length=length,
        go=go,
        fixation_off=fixation_off,
        stimulus_on=stimulus_on,
        stimulus_off=stimulus_off,
        angle=angle.float(),
        strength=strength.float(),
        respond=respond,
        response_angle=response_angle.float(),
    )


def _in(task: torch.Tensor, names: tuple[str, ...]) -> torch.Tensor:
    """Whether each row's task is one of ``names``, ``[B]`` bool."""
    indices = torch.tensor([TASK_NAMES.index(n) for n in names], device=task.device)
    return torch.isin(task, indices)


def _family_rows(task: torch.Tensor, family: str) -> torch.Tensor:
    names = tuple(n for n, f in zip(TASK_NAMES, TIMING_OF_TASK, strict=True) if f == family)
    return _in(task, names)


def _epoch_durations(draws: torch.Tensor, timing: Timing, dt: float) -> torch.Tensor:
    """``[B, MAX_EPOCHS]`` steps of each epoch of ``timing`` (0 past its last epoch)."""
    columns = []
    for k, (epoch, uniform) in enumerate(zip(timing.epochs, timing.uniform, strict=True)):
        u = draws[:, _TIME + k]
        allowed = epoch_steps(epoch, uniform, dt)
        if uniform:
            low, high = epoch
            steps = torch.floor((low + (high - low) * u) / dt).long()
            steps = steps.clamp(allowed[0], allowed[-1])
        else:
            values = torch.tensor(epoch, dtype=draws.dtype, device=draws.device)
            index = torch.floor(u * len(epoch)).long().clamp_max(len(epoch) - 1)
            steps = torch.floor(values[index] / dt).long()
        columns.append(steps)
    columns[-1] = columns[-1].clamp_min(1)  # every trial has a scored last step
    columns += [torch.zeros_like(columns[0])] * (MAX_EPOCHS - len(columns))
    return torch.stack(columns, dim=1)


def _timing_of_rows(draws: torch.Tensor, task: torch.Tensor, dt: float):
    """Per-row ``length, go, fixation_off [B]`` and ``stimulus_on, stimulus_off [B, 2]``."""
    batch = task.shape[0]
    events = torch.zeros(batch, 7, dtype=torch.long, device=task.device)
    never = torch.full((batch,), NEVER, dtype=torch.long, device=task.device)
    for family, timing in TIMINGS.items():
        rows = _family_rows(task, family)
        if not bool(rows.any()):
            continue
        bounds = torch.cumsum(_epoch_durations(draws, timing, dt), dim=1)
        bounds = torch.cat([torch.zeros_like(bounds[:, :1]), bounds], dim=1)

        def at(index: int | None, bounds=bounds) -> torch.Tensor:
            return never if index is None else bounds[:, index]

        family_events = torch.stack(
            [
                bounds[:, len(timing.epochs)],
                at(timing.go),
                at(timing.fixation_off),
                at(timing.stimulus_on[0]),
                at(timing.stimulus_on[1]),
                at(timing.stimulus_off[0]),
                at(timing.stimulus_off[1]),
            ],
            dim=1,
        )
        events = torch.where(rows.unsqueeze(1), family_events, events)
    length, go, fixation_off = events[:, 0], events[:, 1], events[:, 2]
    return length, go, fixation_off, events[:, 3:5], events[:, 5:7]


def _sign(u: torch.Tensor) -> torch.Tensor:
    return torch.where(u < 0.5, -1.0, 1.0).to(u)


def _choice(u: torch.Tensor, values: tuple[float, ...]) -> torch.Tensor:
    table = torch.tensor(values, dtype=u.dtype, device=u.device)
    return table[torch.floor(u * len(values)).long().clamp_max(len(values) - 1)]


def _stimuli(draws: torch.Tensor, task: torch.Tensor):
    """Angles ``[B, 2]``, respond ``[B]``, response angle ``[B]`` and strengths ``[B, 2, 2]``."""
    two_pi = 2 * math.pi
    first = two_pi * draws[:, _ANGLE]
    sign = _sign(draws[:, _OFFSET_SIGN])
    u_offset = draws[:, _OFFSET]
    dm_second = first + sign * (0.5 + u_offset) * math.pi  # 90 to 270 degrees away
    match = draws[:, _MATCH] < 0.5
    dms_offset = (1.0 / 9.0 + (16.0 / 9.0) * u_offset) * math.pi  # 20 to 340 degrees
    dms_second = torch.where(match, first, first + sign * dms_offset)
    dmc = _in(task, ("dmcgo", "dmcnogo"))
    first = torch.where(dmc, _choice(draws[:, _ANGLE], DMC_ANGLES), first)
    dmc_second = _choice(u_offset, DMC_ANGLES)
    dms = _in(task, ("dmsgo", "dmsnogo"))
    second = torch.where(dms, dms_second, torch.where(dmc, dmc_second, dm_second))
    angle = torch.remainder(torch.stack([first, second], dim=1), two_pi)
    strength, chosen = _strengths(draws, task, angle)
    match = torch.where(dmc, (angle[:, 0] < math.pi) == (angle[:, 1] < math.pi), match)
    nogo_on_match = _in(task, ("dmsnogo", "dmcnogo"))
    matching = dms | dmc
    respond = ~matching | (match ^ nogo_on_match)
    anti = _in(task, ("fdanti", "reactanti", "delayanti"))
    go_family = _in(task, TASK_NAMES[:6])
    response = torch.where(go_family, angle[:, 0] + anti.to(angle) * math.pi, chosen)
    response = torch.where(matching, angle[:, 1], response)
    return angle, respond, torch.remainder(response, two_pi), strength


def _strengths(draws: torch.Tensor, task: torch.Tensor, angle: torch.Tensor):
    """Strengths ``[B, 2, 2]`` (stimulus, ring) and the decision tasks' chosen angle ``[B]``."""
    delayed = _in(task, TASK_NAMES[11:16])
    pairs = []
    for ring in range(2):
        column = _STRENGTH + 3 * ring
        mean = 0.8 + 0.4 * draws[:, column]
        coherence = torch.where(
            delayed,
            _choice(draws[:, column + 1], DELAY_DM_COHERENCES),
            _choice(draws[:, column + 1], DM_COHERENCES),
        )
        offset = _sign(draws[:, column + 2]) * coherence
        pairs.append(torch.stack([mean + offset, mean - offset], dim=1))  # [B, stimulus]
    single, context = pairs[0], torch.stack(pairs, dim=2)  # [B, 2], [B, stimulus, ring]
    split = torch.stack(
        [
            (0.2 + 0.6 * draws[:, _SPLIT + 2 * j]) * _sign(draws[:, _SPLIT + 2 * j + 1]) / 2
            for j in range(2)
        ],
        dim=1,
    )
    multi = torch.stack([single * (1 + split), single * (1 - split)], dim=2)
    zeros = torch.zeros_like(single)
    ring_one = torch.stack([single, zeros], dim=2)
    ring_two = torch.stack([zeros, single], dim=2)
    strength = _per_task_strength(draws, task, ring_one, ring_two, context, multi)
    attended = _attention(task).to(strength)  # [B, ring]
    score = (strength * attended.unsqueeze(1)).sum(-1)  # [B, stimulus]
    chosen = torch.where(score[:, 0] > score[:, 1], angle[:, 0], angle[:, 1])
    return strength, chosen


def _per_task_strength(draws, task, ring_one, ring_two, context, multi) -> torch.Tensor:
    """Pick each row's strengths: one ring, both rings with own draws, or the split."""
    mod_first = torch.where(draws[:, _MOD1] < 0.5, 0, 1)
    mod_second = torch.where(draws[:, _MOD2] < 0.5, 0, 1)
    rings = torch.arange(2, device=task.device)
    one_stimulus = torch.zeros_like(context)
    one_stimulus[:, 0] = (rings == mod_first.unsqueeze(1)).to(context)
    matching = torch.stack(
        [
            (rings == mod_first.unsqueeze(1)).to(context),
            (rings == mod_second.unsqueeze(1)).to(context),
        ],
        dim=1,
    )
    strength = one_stimulus  # the go and anti families
    choices = (
        (("dm1", "delaydm1"), ring_one),
        (("dm2", "delaydm2"), ring_two),
        (("contextdm1", "contextdm2", "contextdelaydm1", "contextdelaydm2"), context),
        (("multidm", "multidelaydm"), multi),
        (("dmsgo", "dmsnogo", "dmcgo", "dmcnogo"), matching),
    )
    for names, value in choices:
        strength = torch.where(_in(task, names).view(-1, 1, 1), value, strength)
    return strength


def _attention(task: torch.Tensor) -> torch.Tensor:
    """``[B, 2]`` weights of each ring in the decision: the attended ring, or both (multi)."""
    first = _in(task, ("dm1", "delaydm1", "contextdm1", "contextdelaydm1"))
    second = _in(task, ("dm2", "delaydm2", "contextdm2", "contextdelaydm2"))
    both = _in(task, ("multidm", "multidelaydm"))
    return torch.stack([first | both, second | both], dim=1)
