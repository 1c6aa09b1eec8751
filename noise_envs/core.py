"""The batched task base class: every task is written once, as a pure PyTorch simulator.

A task follows the functional shape of Gymnasium's ``FuncEnv`` (initial, transition, observation,
reward, terminal), batched over a leading dimension ``B``. The Gymnasium adapters in
:mod:`noise_envs.env` and :mod:`noise_envs.vector_env` only convert types and seed.
"""

from __future__ import annotations

import dataclasses
import math
from abc import ABC, abstractmethod
from typing import ClassVar, Generic, TypeVar

import numpy as np
import torch
from gymnasium import spaces

from noise_envs._checks import check_positive_int, check_shape
from noise_envs._memory import check_memory
from noise_envs.config import JsonConfig
from noise_envs.random import RandomSource, as_random_source

__all__ = [
    "MAX_ACTION_MAGNITUDE",
    "Metric",
    "OpenLoopEpisode",
    "Task",
    "TaskState",
    "repeat_rows",
    "select_rows",
    "where_rows",
]


@dataclasses.dataclass(frozen=True)
class Metric:
    """A per-episode metric, the direction in which it is better and, if bounded, its range."""

    name: str
    higher_is_better: bool
    description: str = ""
    label: bool = False
    """A per-episode label (e.g. which sub-task a trial was), not a score: a sweep keeps it as a
    column to group the scores by; its direction means nothing."""
    bounds: tuple[float, float] | None = None
    """``(low, high)`` if the metric is bounded (a success rate, an efficiency), else None:
    figures draw bounded metrics on a linear axis and unbounded errors on a log one."""

    def best_index(self, values: np.ndarray) -> int:
        """Index of the best entry of ``values``."""
        return int(np.argmax(values) if self.higher_is_better else np.argmin(values))


@dataclasses.dataclass(frozen=True)
class TaskState:
    """What every task's state holds; tasks subclass it with their own tensors.

    Attributes:
        t: steps taken in the episode, ``[B]`` int64.
        done: whether the episode has ended, ``[B]`` bool. Ended rows are frozen.
        truncated: whether it ended by the time limit rather than by the task, ``[B]`` bool.
        error_sum: running sum of mask-weighted squared teacher errors, ``[B]``.
        weight_sum: running sum of teacher mask weights, ``[B]``.
        rng: where observation noise and other per-step randomness come from.
    """

    t: torch.Tensor
    done: torch.Tensor
    truncated: torch.Tensor
    error_sum: torch.Tensor
    weight_sum: torch.Tensor
    rng: RandomSource

    @property
    def batch_size(self) -> int:
        """Number of rows ``B``."""
        return self.t.shape[0]

    @property
    def teacher_mse(self) -> torch.Tensor:
        """Mask-weighted mean squared teacher error so far, ``[B]``."""
        return self.error_sum / self.weight_sum.clamp_min(1e-12)


@dataclasses.dataclass(frozen=True)
class OpenLoopEpisode:
    """Whole episodes of an open-loop task, time-major: what a policy sees and must answer.

    Attributes:
        observations: ``[T, B, O]``, the observation before each step.
        targets: ``[T, B, A]``, the teacher's target for each step's action.
        masks: ``[T, B, A]``, the teacher's weights (0 once a row's episode has ended).
    """

    observations: torch.Tensor
    targets: torch.Tensor
    masks: torch.Tensor

    def teacher_loss(self, actions: torch.Tensor) -> torch.Tensor:
        """Mask-weighted mean squared error of actions ``[T, B, A]`` over the batch (a scalar).

        The loss a closed-loop rollout of the same actions accumulates
        (:attr:`agents.rollout.Rollout.teacher_loss`), computed at once.
        """
        check_shape("actions", actions, tuple(self.targets.shape))
        weighted = self.masks * (actions - self.targets).square()
        return weighted.sum() / self.masks.sum().clamp_min(1e-12)


MAX_ACTION_MAGNITUDE = 1e6
"""Largest |action| entry :meth:`Task.step` accepts: targets lie in [-1, 1], and below it every
squared error, reward and episode sum stays far inside float32's range (3.4e38)."""


def _as_action_tensor(action: object, device: torch.device) -> torch.Tensor:
    try:
        with np.errstate(over="ignore"):  # values beyond float32 become inf, refused by name
            return torch.as_tensor(np.asarray(action, dtype=np.float32), device=device)
    except (TypeError, ValueError):
        raise ValueError(
            f"`action` must be a tensor or an array of numbers, got {action!r}"
        ) from None


StateT = TypeVar("StateT", bound=TaskState)
ConfigT = TypeVar("ConfigT", bound=JsonConfig)


def _tensor_fields(state: TaskState):
    for field in dataclasses.fields(state):
        value = getattr(state, field.name)
        if isinstance(value, torch.Tensor):
            yield field.name, value


def where_rows(mask: torch.Tensor, if_true: StateT, if_false: StateT) -> StateT:
    """Row-wise select between two states of the same type: ``mask`` is ``[B]`` bool."""
    changes = {}
    for name, a in _tensor_fields(if_true):
        b = getattr(if_false, name)
        changes[name] = torch.where(mask.view(-1, *([1] * (a.dim() - 1))), a, b)
    return dataclasses.replace(if_false, **changes)


def select_rows(state: StateT, rows: torch.Tensor) -> StateT:
    """The state of the given rows (an index tensor)."""
    return dataclasses.replace(state, **{n: v[rows] for n, v in _tensor_fields(state)})


def repeat_rows(state: StateT, repeats: int) -> StateT:
    """Tile a state ``repeats`` times along the batch: row ``r * B + i`` is row ``i``."""
    return dataclasses.replace(
        state,
        **{n: v.repeat(repeats, *([1] * (v.dim() - 1))) for n, v in _tensor_fields(state)},
    )


class Task(ABC, Generic[StateT, ConfigT]):
    """A batched, device-aware task simulator.

    Subclasses set the class variables, build ``observation_space`` / ``action_space`` and
    ``horizon`` from their config, and implement ``_initial``, ``_transition``, ``_observe``,
    ``_terminal`` and ``teacher``. This class adds observation noise, freezes ended rows,
    accumulates the teacher error and validates actions, once for every task.
    """

    id: ClassVar[str]
    metrics: ClassVar[tuple[Metric, ...]]
    primary_metric: ClassVar[str]
    config_class: ClassVar[type[JsonConfig]]

    open_loop: ClassVar[bool] = False
    """True when neither observations nor teacher signals depend on the actions: the whole
    episode can then be made before the policy acts (:meth:`open_loop_episode`)."""
    render_modes: ClassVar[tuple[str, ...]] = ()
    """Render modes the task can draw; the Gymnasium adapters list them in ``metadata``."""
    render_fps: ClassVar[float | None] = None
    """Frames per second of rendered episodes; needed once ``render_modes`` is not empty."""

    observation_space: spaces.Box
    action_space: spaces.Box
    horizon: int

    def __init__(self, config: ConfigT | None = None, **options) -> None:
        if config is not None and options:
            raise ValueError("pass either a config or keyword options, not both")
        self.config: ConfigT = (
            config if config is not None else self.config_class.from_dict(options)
        )
        if not isinstance(self.config, self.config_class):
            raise ValueError(
                f"`config` must be a {self.config_class.__name__}, got {type(self.config).__name__}"
            )

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.id}, horizon={self.horizon})"

    @property
    def obs_size(self) -> int:
        """Length of one observation vector."""
        return int(self.observation_space.shape[0])

    @property
    def action_size(self) -> int:
        """Length of one action vector."""
        return int(self.action_space.shape[0])

    @property
    def obs_noise(self) -> float:
        """Standard deviation of the Gaussian observation noise."""
        return float(getattr(self.config, "obs_noise", 0.0))

    def metric(self, name: str | None = None) -> Metric:
        """The metric called ``name`` (the primary one by default)."""
        name = name or self.primary_metric
        for metric in self.metrics:
            if metric.name == name:
                return metric
        raise ValueError(f"`metric` must be one of {[m.name for m in self.metrics]}, got {name!r}")

    def reset(
        self,
        batch_size: int,
        generator: torch.Generator | RandomSource | int | None = None,
        device: torch.device | str = "cpu",
    ) -> tuple[StateT, torch.Tensor]:
        """Start ``batch_size`` episodes; returns the state and the first observations ``[B, O]``."""
        check_positive_int("batch_size", batch_size)
        self._check_batch(batch_size)
        rng = as_random_source(generator, device)
        state = self._initial(batch_size, rng, torch.device(device))
        return state, self.observe(state)

    def step(
        self, state: StateT, action: torch.Tensor, *, validate: bool = True
    ) -> tuple[StateT, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Advance every row by one step: returns ``(state, obs, reward, done)``.

        ``action`` is ``[B, A]``. Rows whose episode already ended keep their state and get
        reward 0. ``reward`` is ``[B]`` float, ``done`` is ``[B]`` bool. ``action`` must be finite
        with entries of magnitude <= ``MAX_ACTION_MAGNITUDE``, so the reward stays finite;
        ``validate=False`` skips that check and the shape check, for trusted inner loops.
        """
        if validate:
            action = self._check_action(state, action)
        target, mask = self.teacher(state)
        difference = action - target
        step_error = torch.linalg.vecdot(difference, mask * difference)
        reward = self._reward(state, action, step_error)
        moved = self._transition(state, action)
        terminated = self._terminal(moved)
        done = terminated | (moved.t >= self.horizon)
        moved = dataclasses.replace(
            moved,
            done=done,
            truncated=done ^ terminated,
            error_sum=state.error_sum + step_error,
            weight_sum=state.weight_sum + mask.sum(-1),
        )
        if bool(state.done.any()):
            moved = where_rows(state.done, state, moved)
            reward = torch.where(state.done, torch.zeros_like(reward), reward)
        return moved, self.observe(moved), reward, moved.done

    def open_loop_episode(
        self,
        batch_size: int,
        generator: torch.Generator | RandomSource | int | None = None,
        device: torch.device | str = "cpu",
    ) -> OpenLoopEpisode:
        """``batch_size`` whole episodes of an open-loop task, drawn as :meth:`reset` draws them.

        The observations, targets and masks are those a closed-loop run from the same generator
        meets, whatever the actions. This default steps the task with zero actions; tasks may
        build the episode at once.

        Raises:
            ValueError: if the task is not open loop (``open_loop`` is false).
        """
        if not self.open_loop:
            raise ValueError(
                f"{self.id} is closed loop: its observations depend on the actions, so its "
                "episodes cannot be made in advance; run it with agents.rollout.rollout"
            )
        state, obs = self.reset(batch_size, generator, device)
        action = torch.zeros(batch_size, self.action_size, device=obs.device)
        observations, targets, masks = [], [], []
        with torch.no_grad():
            for _ in range(self.horizon):
                target, mask = self.teacher(state)
                observations.append(obs)
                targets.append(target)
                masks.append(mask * (~state.done).unsqueeze(-1).to(mask.dtype))
                state, obs, _, _ = self.step(state, action, validate=False)
        return OpenLoopEpisode(torch.stack(observations), torch.stack(targets), torch.stack(masks))

    def _observation_sequence(
        self, state: StateT, first: torch.Tensor, clean: torch.Tensor
    ) -> torch.Tensor:
        """Observations ``[T, B, O]`` of an open-loop episode built at once.

        ``first`` is what :meth:`reset` returned; later steps get the clean observations
        ``clean[1:]`` plus the noise :meth:`observe` would draw at each of them, in the same order.
        The noise of the observation after the last step is drawn too and dropped, as
        :meth:`step` draws it, so the task's generator ends where stepping leaves it.
        """
        later = clean[1:]
        if self.obs_noise > 0:
            noise = state.rng.normal_steps(clean.shape[0], state.batch_size, self.obs_size)[:-1]
            low, high = self._observation_bounds(first.device)
            later = torch.clamp(later + noise.mul_(self.obs_noise), low, high)
        return torch.cat([first.unsqueeze(0), later])

    def observe(self, state: StateT) -> torch.Tensor:
        """Observations ``[B, O]``: the clean observation plus observation noise, kept in bounds.

        Subclasses' clean observations lie inside ``observation_space``; only noise is clipped.
        """
        obs = self._observe(state)
        if self.obs_noise == 0:
            return obs
        obs = obs + state.rng.normal(state.batch_size, self.obs_size).mul_(self.obs_noise)
        low, high = self._observation_bounds(obs.device)
        return torch.clamp(obs, low, high)

    def _observation_bounds(self, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """``observation_space.low`` and ``.high`` as tensors on ``device``, made once per device."""
        space = self.observation_space
        cache = self.__dict__.setdefault("_observation_bounds_cache", {})
        cached = cache.get(device)
        if cached is None or cached[0] is not space.low or cached[1] is not space.high:
            bounds = (
                torch.as_tensor(space.low, device=device),
                torch.as_tensor(space.high, device=device),
            )
            cached = cache[device] = (space.low, space.high, *bounds)
        return cached[2], cached[3]

    @abstractmethod
    def teacher(self, state: StateT) -> tuple[torch.Tensor, torch.Tensor]:
        """The supervised signal for the action taken now: ``target [B, A]`` and ``mask [B, A]``."""

    def render(self, state: StateT, mode: str) -> list:
        """One frame per row of ``state`` in ``mode`` (one of ``render_modes``)."""
        raise NotImplementedError(f"{type(self).__name__} declares no render modes")

    def episode_metrics(self, state: StateT) -> dict[str, torch.Tensor]:
        """Per-episode metrics ``{name: [B]}``; meaningful once ``state.done`` is true."""
        return {"mse": state.teacher_mse}

    def _reward(
        self, state: StateT, action: torch.Tensor, step_error: torch.Tensor
    ) -> torch.Tensor:
        """Minus the step's mask-weighted squared teacher error ``[B]`` by default.

        So RL code can use supervised tasks as they are.
        """
        return -step_error

    def _row_bytes(self) -> int:
        """Estimated bytes one row of a batch needs (state and episode); 0: no estimate."""
        return 0

    def _check_batch(self, batch_size: int) -> None:
        """Refuse a batch whose rows (:meth:`_row_bytes` each) would not fit in memory."""
        check_memory("batch_size", batch_size, batch_size * self._row_bytes())

    def _base_state(self, batch_size: int, rng: RandomSource, device: torch.device) -> dict:
        """The :class:`TaskState` fields of a fresh batch, for subclasses' ``_initial``."""
        zeros = torch.zeros(batch_size, device=device)
        return {
            "t": torch.zeros(batch_size, dtype=torch.long, device=device),
            "done": torch.zeros(batch_size, dtype=torch.bool, device=device),
            "truncated": torch.zeros(batch_size, dtype=torch.bool, device=device),
            "error_sum": zeros,
            "weight_sum": zeros.clone(),
            "rng": rng,
        }

    def _check_action(self, state: StateT, action: torch.Tensor) -> torch.Tensor:
        """``action`` as float32 ``[B, A]``; refuses NaN, infinite and too large entries.

        One reduction, the largest magnitude, catches all three (NaN fails the comparison), so
        bounding actions costs nothing over checking finiteness; checking each reward instead
        would cost a second one. The bound keeps squared errors, rewards and their sums finite.
        """
        if not isinstance(action, torch.Tensor):
            action = _as_action_tensor(action, state.t.device)
        check_shape("action", action, (state.batch_size, self.action_size))
        if action.dtype != torch.float32:
            if action.dtype == torch.bool or action.is_complex():
                raise ValueError(f"`action` must hold real numbers, got dtype {action.dtype}")
            action = action.to(torch.float32)
        # detached: the bound is a number, not part of the graph (float() of a tensor that
        # requires grad warns)
        largest = (
            float(torch.linalg.vector_norm(action.detach(), math.inf)) if action.numel() else 0.0
        )
        if not largest <= MAX_ACTION_MAGNITUDE:
            found = (
                f"max |action| = {largest:g}"
                if math.isfinite(largest)
                else "NaN or infinite entries"
            )
            raise ValueError(
                f"`action` must be finite and at most {MAX_ACTION_MAGNITUDE:g} in magnitude, "
                f"got {found}"
            )
        return action

    @abstractmethod
    def _initial(self, batch_size: int, rng: RandomSource, device: torch.device) -> StateT:
        """A fresh state for ``batch_size`` episodes."""

    @abstractmethod
    def _transition(self, state: StateT, action: torch.Tensor) -> StateT:
        """The next state (``t`` advanced); ``done`` and the error sums are filled in by ``step``."""

    @abstractmethod
    def _observe(self, state: StateT) -> torch.Tensor:
        """The noise-free observation ``[B, O]``."""

    def _terminal(self, state: StateT) -> torch.Tensor:
        """Whether each row's episode ends by the task itself (``[B]`` bool); time limit aside."""
        return torch.zeros_like(state.done)
