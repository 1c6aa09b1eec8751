"""Rollouts of a policy in a batched task: closed loop for sweeps, and the trainer's teacher loss."""

from __future__ import annotations

import dataclasses

import torch

from agents.noise import NoiseLike
from agents.policy import Policy, SequencePolicy
from noise_envs.core import Task, TaskState
from noise_envs.random import RandomSource

__all__ = ["Rollout", "rollout", "teacher_loss", "unroll"]


@dataclasses.dataclass(frozen=True)
class Rollout:
    """The outcome of :func:`rollout`.

    Attributes:
        state: the task's final state (its ``error_sum`` / ``weight_sum`` carry gradients).
        metrics: per-episode metrics ``{name: [B]}``.
        steps: steps run (the longest episode).
        observations: ``[T, B, O]`` if recorded, else None.
        actions: ``[T, B, A]`` if recorded, else None.
        policy_states: the policy's state after each step, stacked ``[T, B, ...]``, if recorded.
        alive: ``[T, B]`` bool, whether each row's episode was running at each step, if recorded.
        targets: the teacher's targets ``[T, B, A]`` for each step's action, if recorded.
        masks: the teacher's weights ``[T, B, A]``, 0 once a row's episode has ended, if recorded.
    """

    state: TaskState
    metrics: dict[str, torch.Tensor]
    steps: int
    observations: torch.Tensor | None = None
    actions: torch.Tensor | None = None
    policy_states: torch.Tensor | None = None
    alive: torch.Tensor | None = None
    targets: torch.Tensor | None = None
    masks: torch.Tensor | None = None

    @property
    def teacher_loss(self) -> torch.Tensor:
        """Mask-weighted mean squared teacher error over the whole batch (a scalar)."""
        return self.state.error_sum.sum() / self.state.weight_sum.sum().clamp_min(1e-12)


def rollout(
    policy: Policy,
    task: Task,
    batch_size: int,
    *,
    sigma: float | torch.Tensor = 0.0,
    env_rng: RandomSource | torch.Generator | int | None = None,
    noise: NoiseLike = None,
    device: torch.device | str = "cpu",
    record: bool = False,
) -> Rollout:
    """Run ``batch_size`` episodes of ``task`` with ``policy`` acting closed-loop at noise ``sigma``.

    The policy sees each observation, acts, and the task advances on that action, so the same code
    serves open-loop tasks and closed-loop ones. Gradients flow unless the caller disables them.

    Args:
        policy: anything speaking the :class:`~agents.policy.Policy` protocol.
        task: the batched simulator.
        batch_size: number of episodes B.
        sigma: the policy's noise level, a float or ``[B]``.
        env_rng: randomness of the task (trial conditions, observation noise).
        noise: randomness of the policy (a generator or source).
        device: where to run.
        record: keep observations, actions, policy states and teacher signals of every step.
    """
    state, obs = task.reset(batch_size, env_rng, device)
    policy_state = policy.initial_state(batch_size, device)
    trace: dict[str, list[torch.Tensor]] = {
        key: [] for key in ("obs", "actions", "states", "alive", "targets", "masks")
    }
    steps = 0
    while steps < task.horizon:
        steps += 1
        action, policy_state = policy.step(obs, policy_state, sigma, noise)
        if record:
            alive = ~state.done
            target, mask = task.teacher(state)
            mask = mask * alive.unsqueeze(-1)
            values = (obs, action, policy_state, alive, target, mask)
            for key, value in zip(trace, values, strict=True):
                trace[key].append(value.detach() if isinstance(value, torch.Tensor) else value)
        state, obs, _, done = task.step(state, action, validate=False)
        if bool(done.all()):
            break
    recorded = {key: torch.stack(values) for key, values in trace.items()} if record else {}
    return Rollout(
        state=state,
        metrics=task.episode_metrics(state),
        steps=steps,
        observations=recorded.get("obs"),
        actions=recorded.get("actions"),
        policy_states=recorded.get("states"),
        alive=recorded.get("alive"),
        targets=recorded.get("targets"),
        masks=recorded.get("masks"),
    )


def unroll(
    policy: Policy,
    inputs: torch.Tensor,
    sigma: float | torch.Tensor = 0.0,
    noise: NoiseLike = None,
) -> torch.Tensor:
    """Actions ``[T, B, A]`` of ``policy`` on the input sequence ``[T, B, O]`` from its initial state.

    Uses the policy's own :meth:`~agents.policy.SequencePolicy.unroll` where it has one, and steps
    it through the inputs otherwise.
    """
    if isinstance(policy, SequencePolicy):
        return policy.unroll(inputs, sigma, noise)
    state = policy.initial_state(inputs.shape[1], inputs.device)
    actions = []
    for obs in inputs:
        action, state = policy.step(obs, state, sigma, noise)
        actions.append(action)
    return torch.stack(actions)


def teacher_loss(
    policy: Policy,
    task: Task,
    batch_size: int,
    *,
    sigma: float | torch.Tensor = 0.0,
    env_rng: RandomSource | torch.Generator | int | None = None,
    noise: NoiseLike = None,
    device: torch.device | str = "cpu",
) -> torch.Tensor:
    """The mask-weighted mean squared teacher error of ``batch_size`` fresh episodes (a scalar).

    What :attr:`Rollout.teacher_loss` of :func:`rollout` with the same arguments gives, and
    both random sources end where :func:`rollout` leaves them. An open-loop task
    (:attr:`~noise_envs.core.Task.open_loop`) makes its episodes first and the policy runs them
    as one sequence (:func:`unroll`): the same observations, noise and actions up to float
    rounding, without a task step between policy steps. A closed-loop task runs :func:`rollout`,
    and so does any task when ``env_rng`` and ``noise`` are one source: the closed loop
    interleaves their draws, which a sequence cannot. The open-loop path runs every episode for
    the whole horizon; for tasks whose episodes may all end early, the noise source then advances
    further than in :func:`rollout` (no registered task ends early).
    """
    if not task.open_loop or (env_rng is not None and env_rng is noise):
        return rollout(
            policy,
            task,
            batch_size,
            sigma=sigma,
            env_rng=env_rng,
            noise=noise,
            device=device,
        ).teacher_loss
    episode = task.open_loop_episode(batch_size, env_rng, device)
    return episode.teacher_loss(unroll(policy, episode.observations, sigma, noise))
