# A single-file PPO on NoisyMaze-v0 the way CleanRL writes it (cleanrl/ppo_continuous_action.py):
# no library code of this project, only Gymnasium, numpy and torch, to show the environment works
# in any RL codebase. `gymnasium.make_vec(..., vectorization_mode="vector_entry_point")` runs all
# environments as one batched tensor program; it resets an ended environment on the *next* step
# (Gymnasium 1.x's default), so that step is no transition and is masked out of the update.
#
#     python examples/cleanrl_ppo_maze.py --total-timesteps 500000
"""CleanRL-style PPO (continuous actions) on NoisyMaze-v0, in one file."""

from __future__ import annotations

import argparse
import dataclasses
import time

import gymnasium as gym
import numpy as np
import torch
from torch import nn
from torch.distributions.normal import Normal


@dataclasses.dataclass
class Args:
    """The experiment's options; each docstring is its help."""

    env_id: str = "noise_envs:NoisyMaze-v0"
    """the id of the environment (the `noise_envs:` prefix imports the package)"""
    total_timesteps: int = 500_000
    """total timesteps of the experiment"""
    learning_rate: float = 3e-4
    """the learning rate of the optimizer"""
    num_envs: int = 32
    """the number of parallel game environments"""
    num_steps: int = 128
    """the number of steps to run in each environment per policy rollout"""
    anneal_lr: bool = True
    """toggle learning rate annealing"""
    gamma: float = 0.99
    """the discount factor gamma"""
    gae_lambda: float = 0.95
    """the lambda for the general advantage estimation"""
    num_minibatches: int = 4
    """the number of mini-batches"""
    update_epochs: int = 10
    """the K epochs to update the policy"""
    clip_coef: float = 0.2
    """the surrogate clipping coefficient"""
    ent_coef: float = 0.0
    """coefficient of the entropy"""
    vf_coef: float = 0.5
    """coefficient of the value function"""
    max_grad_norm: float = 0.5
    """the maximum norm for the gradient clipping"""
    seed: int = 1
    """seed of the experiment"""


def parse_args() -> Args:
    parser = argparse.ArgumentParser(description=__doc__)
    for field in dataclasses.fields(Args):
        flag = "--" + field.name.replace("_", "-")
        kind = type(field.default)
        if kind is bool:
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=field.default)
        else:
            parser.add_argument(flag, type=kind, default=field.default)
    return Args(**vars(parser.parse_args()))


def layer_init(layer: nn.Linear, std: float = np.sqrt(2), bias_const: float = 0.0) -> nn.Linear:
    torch.nn.init.orthogonal_(layer.weight, std)
    torch.nn.init.constant_(layer.bias, bias_const)
    return layer


class Agent(nn.Module):
    """Separate tanh MLPs for the critic and the Gaussian policy's mean; a learned log std."""

    def __init__(self, envs: gym.vector.VectorEnv) -> None:
        super().__init__()
        obs_size = int(np.prod(envs.single_observation_space.shape))
        action_size = int(np.prod(envs.single_action_space.shape))
        self.critic = nn.Sequential(
            layer_init(nn.Linear(obs_size, 64)),
            nn.Tanh(),
            layer_init(nn.Linear(64, 64)),
            nn.Tanh(),
            layer_init(nn.Linear(64, 1), std=1.0),
        )
        self.actor_mean = nn.Sequential(
            layer_init(nn.Linear(obs_size, 64)),
            nn.Tanh(),
            layer_init(nn.Linear(64, 64)),
            nn.Tanh(),
            layer_init(nn.Linear(64, action_size), std=0.01),
        )
        self.actor_logstd = nn.Parameter(torch.zeros(1, action_size))

    def get_value(self, x: torch.Tensor) -> torch.Tensor:
        """The critic's value of observations ``x``."""
        return self.critic(x)

    def get_action_and_value(self, x: torch.Tensor, action: torch.Tensor | None = None):
        """A sampled (or the given) action, its log-probability, the entropy and the value."""
        action_mean = self.actor_mean(x)
        probs = Normal(action_mean, self.actor_logstd.expand_as(action_mean).exp())
        if action is None:
            action = probs.sample()
        return action, probs.log_prob(action).sum(1), probs.entropy().sum(1), self.critic(x)


def main() -> None:
    args = parse_args()
    batch_size = args.num_envs * args.num_steps
    minibatch_size = batch_size // args.num_minibatches
    num_iterations = args.total_timesteps // batch_size
    torch.manual_seed(args.seed)  # a script, so global seeding is fine here
    rng = np.random.default_rng(args.seed)
    torch.set_num_threads(1)

    envs = gym.make_vec(
        args.env_id, num_envs=args.num_envs, vectorization_mode="vector_entry_point"
    )
    low, high = envs.single_action_space.low, envs.single_action_space.high
    agent = Agent(envs)
    optimizer = torch.optim.Adam(agent.parameters(), lr=args.learning_rate, eps=1e-5)

    # storage setup: [num_steps, num_envs, ...]
    obs = torch.zeros((args.num_steps, args.num_envs, *envs.single_observation_space.shape))
    actions = torch.zeros((args.num_steps, args.num_envs, *envs.single_action_space.shape))
    logprobs = torch.zeros((args.num_steps, args.num_envs))
    rewards = torch.zeros((args.num_steps, args.num_envs))
    ends = torch.zeros((args.num_steps, args.num_envs))  # the episode ended after this step
    valid = torch.zeros((args.num_steps, args.num_envs))  # 0 on next-step autoreset steps
    values = torch.zeros((args.num_steps, args.num_envs))

    global_step, start_time = 0, time.time()
    next_obs, _ = envs.reset(seed=args.seed)
    next_obs = torch.as_tensor(next_obs)
    autoreset = torch.zeros(args.num_envs)  # the env resets on the next step
    successes: list[float] = []

    for iteration in range(1, num_iterations + 1):
        if args.anneal_lr:
            frac = 1.0 - (iteration - 1.0) / num_iterations
            optimizer.param_groups[0]["lr"] = frac * args.learning_rate

        for step in range(args.num_steps):
            global_step += args.num_envs
            obs[step] = next_obs
            valid[step] = 1.0 - autoreset
            with torch.no_grad():
                action, logprob, _, value = agent.get_action_and_value(next_obs)
                values[step] = value.flatten()
            actions[step] = action
            logprobs[step] = logprob

            next_obs, reward, terminations, truncations, infos = envs.step(
                np.clip(action.numpy(), low, high)
            )
            done = np.logical_or(terminations, truncations)
            rewards[step] = torch.as_tensor(reward, dtype=torch.float32)
            ends[step] = torch.as_tensor(done, dtype=torch.float32)
            next_obs, autoreset = torch.as_tensor(next_obs), ends[step]
            if "episode_metrics" in infos:
                ended = infos["episode_metrics"]["_success"]
                successes.extend(infos["episode_metrics"]["success"][ended].tolist())

        # bootstrap value if not done
        with torch.no_grad():
            next_value = agent.get_value(next_obs).reshape(1, -1)
            advantages = torch.zeros_like(rewards)
            lastgaelam = 0
            for t in reversed(range(args.num_steps)):
                nextvalues = next_value if t == args.num_steps - 1 else values[t + 1]
                nextnonterminal = 1.0 - ends[t]
                delta = rewards[t] + args.gamma * nextvalues * nextnonterminal - values[t]
                lastgaelam = delta + args.gamma * args.gae_lambda * nextnonterminal * lastgaelam
                advantages[t] = lastgaelam
            returns = advantages + values

        # flatten the batch
        b_obs = obs.reshape((-1, *envs.single_observation_space.shape))
        b_logprobs = logprobs.reshape(-1)
        b_actions = actions.reshape((-1, *envs.single_action_space.shape))
        b_advantages = advantages.reshape(-1)
        b_returns = returns.reshape(-1)
        b_valid = valid.reshape(-1)
        mean = (b_advantages * b_valid).sum() / b_valid.sum()
        std = (((b_advantages - mean) * b_valid).square().sum() / b_valid.sum()).sqrt()
        b_advantages = (b_advantages - mean) / (std + 1e-8)

        # optimizing the policy and value network
        b_inds = np.arange(batch_size)
        for _ in range(args.update_epochs):
            rng.shuffle(b_inds)
            for start in range(0, batch_size, minibatch_size):
                mb_inds = b_inds[start : start + minibatch_size]
                mb_valid = b_valid[mb_inds]
                _, newlogprob, entropy, newvalue = agent.get_action_and_value(
                    b_obs[mb_inds], b_actions[mb_inds]
                )
                ratio = (newlogprob - b_logprobs[mb_inds]).exp()
                mb_advantages = b_advantages[mb_inds]
                pg_loss1 = -mb_advantages * ratio
                pg_loss2 = -mb_advantages * torch.clamp(
                    ratio, 1 - args.clip_coef, 1 + args.clip_coef
                )
                pg_loss = (torch.max(pg_loss1, pg_loss2) * mb_valid).sum() / mb_valid.sum()
                v_loss = 0.5 * ((newvalue.view(-1) - b_returns[mb_inds]).square() * mb_valid).sum()
                v_loss = v_loss / mb_valid.sum()
                entropy_loss = (entropy * mb_valid).sum() / mb_valid.sum()
                loss = pg_loss - args.ent_coef * entropy_loss + v_loss * args.vf_coef

                optimizer.zero_grad()
                loss.backward()
                nn.utils.clip_grad_norm_(agent.parameters(), args.max_grad_norm)
                optimizer.step()

        recent = successes[-200:]
        print(
            f"iteration {iteration}/{num_iterations}, global_step={global_step}, "
            f"success rate (last {len(recent)} episodes)={np.mean(recent) if recent else 0:.3f}, "
            f"SPS={int(global_step / (time.time() - start_time))}"
        )
    envs.close()


if __name__ == "__main__":
    main()
