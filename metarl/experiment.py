"""Turning a config into the objects a run needs: task distribution, policy, sampler, meta-learner."""

from __future__ import annotations

import copy
import dataclasses
import difflib
from dataclasses import dataclass

import gymnasium
import numpy as np
import torch

import envs
from envs import TaskDistribution
from metarl.config import ConfigError, TrainConfig
from metarl.maml_trpo import MAMLTRPO, TRPOSettings
from metarl.policies import GaussianMLPPolicy
from metarl.samplers import Sampler, make_sampler
from metarl.seeding import POLICY_INIT, torch_generator


@dataclass
class Experiment:
    config: TrainConfig
    tasks: TaskDistribution
    policy: GaussianMLPPolicy
    """The meta-parameters θ, on the learner's device."""
    sampler: Sampler
    learner: MAMLTRPO
    horizon: int

    def close(self) -> None:
        self.sampler.close()


def resolve_device(name: str, fix: str = "fix it in the config file or with --set device=cpu") -> torch.device:
    """The torch device ``name`` if this machine has it; ``fix`` tells the user how to ask for another,
    since a launcher's flag (evaluate's ``--device``) and a config key are changed differently."""
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device '{name}' was asked for but CUDA is not available here; {fix}")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise ConfigError(f"device '{name}' was asked for but this machine has {torch.cuda.device_count()} "
                          f"CUDA device(s), cuda:0 to cuda:{torch.cuda.device_count() - 1}; {fix}")
    return device


def make_task_env(env_id: str, env_kwargs: dict) -> gymnasium.Env:
    if env_id not in gymnasium.registry:
        close = difflib.get_close_matches(env_id, list(envs.ENV_IDS) + list(gymnasium.registry), n=1)
        hint = f"did you mean '{close[0]}'?" if close else f"metarl envs: {', '.join(envs.ENV_IDS)}"
        raise ConfigError(f"unknown env_id '{env_id}': {hint}")
    try:
        env = gymnasium.make(env_id, **env_kwargs)
    except TypeError as error:
        raise ConfigError(f"env_kwargs do not fit {env_id}: {error}") from None
    if not isinstance(env.unwrapped, TaskDistribution):
        raise ConfigError(f"env_id '{env_id}' has no task distribution (sample_tasks/set_task); use a metarl env")
    return env


def build_policy(
    config: TrainConfig, env: gymnasium.Env, device: torch.device, stream: int = POLICY_INIT
) -> GaussianMLPPolicy:
    """A freshly initialised policy for ``env``; ``stream`` picks the seed stream of its initial weights."""
    policy = GaussianMLPPolicy(
        int(np.prod(env.observation_space.shape)),
        int(np.prod(env.action_space.shape)),
        config.hidden_sizes,
        config.nonlinearity,
        config.init_std,
        generator=torch_generator(config.seed, stream),
    )
    return policy.to(device)


def build_experiment(config: TrainConfig) -> Experiment:
    """Everything a run needs, or a ConfigError before anything is written."""
    config.validate()
    device = resolve_device(config.device)
    env = make_task_env(config.env_id, config.env_kwargs)
    horizon = config.horizon or env.spec.max_episode_steps
    if horizon is None:
        raise ConfigError(f"{config.env_id} registers no max_episode_steps; set horizon")
    policy = build_policy(config, env, device)
    sampler = make_sampler(config.sampler, config.env_id, config.env_kwargs, copy.deepcopy(policy).cpu(), horizon)
    # The config carries every TRPO setting under the same name (documented there): copy by name.
    trpo = TRPOSettings(**{field.name: getattr(config, field.name) for field in dataclasses.fields(TRPOSettings)})
    learner = MAMLTRPO(policy, config.fast_lr, config.first_order, config.gamma, config.gae_lambda, trpo, device)
    return Experiment(config, env.unwrapped, policy, sampler, learner, horizon)
