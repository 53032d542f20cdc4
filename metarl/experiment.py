"""A training run's objects, from its config: the parts every run builds (``metarl.parts``) and a meta-learner."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from envs import TaskDistribution
from metarl.adaptation import InnerStep
from metarl.algos.base import MetaLearner
from metarl.algos.maml_ppo import MAMLPPO
from metarl.algos.maml_trpo import MAMLTRPO
from metarl.algos.promp import ProMP
from metarl.config import TrainConfig
from metarl.memory import TRAINING, MemoryEstimate, MemoryWording, iteration_memory
from metarl.parts import (
    MemoryNeed,
    build_inner_step,
    build_policy,
    build_sampler,
    compute_device,
    open_task_env,
    resolve_device,
)
from metarl.policies import GaussianMLPPolicy
from metarl.samplers import Sampler
from metarl.samplers.budget import EpisodeBudget

__all__ = ["Experiment", "build_experiment", "build_learner", "resolve_device", "training_memory"]
"""``resolve_device`` stays importable from here for the supervised runs, which import it from this module."""


@dataclass
class Experiment:
    config: TrainConfig
    tasks: TaskDistribution
    policy: GaussianMLPPolicy
    """The meta-parameters θ, on the learner's device."""
    sampler: Sampler
    learner: MetaLearner
    horizon: int
    """The longest episode: the config's horizon, or the env's registered max_episode_steps."""

    def budget(self, episodes: int) -> EpisodeBudget:
        """Each task's batch for ``episodes`` (K) in the config's batch_unit."""
        return EpisodeBudget.of(self.config.batch_unit, episodes, self.horizon)

    def close(self) -> None:
        self.sampler.close()


def build_learner(
    config: TrainConfig, policy: GaussianMLPPolicy, inner: InnerStep, device: torch.device
) -> MetaLearner:
    """The meta-learner ``config.algo`` names, with its section of the config."""
    if config.algo == "maml_ppo":
        return MAMLPPO(policy, inner, config.ppo, device)
    if config.algo == "promp":
        return ProMP(policy, inner, config.promp, device)
    return MAMLTRPO(policy, inner, config.trpo, device)  # validate() admits no other name


def training_memory(config: TrainConfig) -> MemoryNeed:
    """An RL training iteration's memory. A transition budget may hold up to MAX_EPISODES_FACTOR × K padded
    episodes per task: the worst case is checked."""

    def need(horizon: int, observation_dim: int, action_dim: int) -> tuple[MemoryEstimate, MemoryWording]:
        episodes = EpisodeBudget.of(config.batch_unit, config.episodes_per_task, horizon).most_episodes
        return iteration_memory(
            config.meta_batch_size,
            episodes,
            horizon,
            config.num_steps,
            observation_dim,
            action_dim,
            config.hidden_sizes,
        ), TRAINING

    return need


def build_experiment(config: TrainConfig, memory: MemoryNeed | None = None) -> Experiment:
    """Everything a run needs, or a ConfigError before anything is written. ``memory``: what the work to be
    done needs (default an RL training iteration), refused up front where it cannot fit."""
    device = compute_device(config)
    task_env = open_task_env(config, device, memory or training_memory(config))
    policy = build_policy(config, task_env, device)
    sampler = build_sampler(config, policy, task_env.horizon)
    learner = build_learner(config, policy, build_inner_step(config), device)
    return Experiment(config, task_env.tasks, policy, sampler, learner, task_env.horizon)


def divergence_hint(config: TrainConfig) -> str:
    """What to lower when an RL training run's policy diverged: its inner step size and its meta-step's size."""
    meta_step = {"maml_ppo": "ppo.lr", "promp": "promp.lr"}.get(config.algo, "trpo.max_kl")
    return f"try a smaller inner_lr or {meta_step}"
