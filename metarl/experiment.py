"""Turning a config into the objects a run needs: task distribution, policy, sampler, meta-learner."""

from __future__ import annotations

import copy
import difflib
import typing
from dataclasses import dataclass

import gymnasium
import torch

import envs
from envs import TaskDistribution
from metarl.adaptation import InnerStep
from metarl.algos.base import MetaLearner
from metarl.algos.maml_ppo import MAMLPPO
from metarl.algos.maml_trpo import MAMLTRPO
from metarl.algos.promp import ProMP
from metarl.config import ConfigError, TrainConfig
from metarl.memory import iteration_memory, require_memory
from metarl.policies import GaussianMLPPolicy
from metarl.samplers import Sampler, make_sampler
from metarl.samplers.budget import EpisodeBudget
from metarl.seeding import POLICY_INIT, torch_generator


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


def resolve_device(name: str, fix: str = "fix it in the config file or with --set device=cpu") -> torch.device:
    """The torch device ``name`` if this machine has it; ``fix`` tells the user how to ask for another,
    since a launcher's flag (evaluate's ``--device``) and a config key are changed differently."""
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device '{name}' was asked for but CUDA is not available here; {fix}")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise ConfigError(
            f"device '{name}' was asked for but this machine has {torch.cuda.device_count()} "
            f"CUDA device(s), cuda:0 to cuda:{torch.cuda.device_count() - 1}; {fix}"
        )
    return device


# What metarl calls on an env: tasks are drawn with sample_tasks and reach the envs a sampler steps
# through vector ``set_attr("task", ...)``; an env without a ``task`` attribute would silently keep its
# default task, because Gymnasium then sets the attribute on the outermost wrapper instead.
TASK_INTERFACE = {
    "sample_tasks": "a sample_tasks(n, rng) method",
    "set_task": "a set_task(task) method",
    "task": "a task attribute",
}


def registered_env_id(env_id: str) -> str:
    """The registry id of ``env_id``. ``module:EnvId`` imports ``module`` first, as ``gymnasium.make``
    does, so a user's own env needs only a ``gymnasium.register`` call in a module on the path."""
    module = env_id.rpartition(":")[0]
    try:
        name = envs.registry_id(env_id)
    except ImportError as error:
        raise ConfigError(
            f"env_id '{env_id}': module '{module}' cannot be imported ({error}); put its directory on PYTHONPATH"
        ) from None
    if name not in gymnasium.registry:
        close = difflib.get_close_matches(name, list(envs.ENV_IDS) + list(gymnasium.registry), n=1)
        prefix = f"{module}:" if module else ""
        hint = f"did you mean '{prefix}{close[0]}'?" if close else f"metarl envs: {', '.join(envs.ENV_IDS)}"
        where = f"module '{module}' registers no env '{name}'" if module else f"unknown env_id '{env_id}'"
        raise ConfigError(f"{where}: {hint}")
    return name


def make_task_env(env_id: str, env_kwargs: dict) -> gymnasium.Env:
    """A single env of ``env_id`` (registry id or ``module:EnvId``), checked to offer metarl's task interface."""
    try:
        env = gymnasium.make(registered_env_id(env_id), **env_kwargs)
    except TypeError as error:
        raise ConfigError(f"env_kwargs do not fit {env_id}: {error}") from None
    missing = [what for name, what in TASK_INTERFACE.items() if not hasattr(env.unwrapped, name)]
    if missing:
        env.close()
        raise ConfigError(
            f"env_id '{env_id}' is not a task distribution: it lacks {', '.join(missing)} "
            "(see README's Environments section)"
        )
    return env


def policy_dims(env: gymnasium.Env) -> tuple[int, int]:
    """The policy's input and output sizes: the env's flattened observation and action."""
    return gymnasium.spaces.flatdim(env.observation_space), gymnasium.spaces.flatdim(env.action_space)


def build_policy(
    config: TrainConfig, env: gymnasium.Env, device: torch.device, stream: int = POLICY_INIT
) -> GaussianMLPPolicy:
    """A freshly initialised policy for ``env``; ``stream`` picks the seed stream of its initial weights."""
    policy = GaussianMLPPolicy(
        *policy_dims(env),
        config.hidden_sizes,
        config.nonlinearity,
        config.init_std,
        generator=torch_generator(config.seed, stream),
    )
    return policy.to(device)


def build_learner(
    config: TrainConfig, policy: GaussianMLPPolicy, inner: InnerStep, device: torch.device
) -> MetaLearner:
    """The meta-learner ``config.algo`` names, with its section of the config."""
    if config.algo == "maml_ppo":
        return MAMLPPO(policy, inner, config.ppo, device)
    if config.algo == "promp":
        return ProMP(policy, inner, config.promp, device)
    return MAMLTRPO(policy, inner, config.trpo, device)  # validate() admits no other name


def build_experiment(config: TrainConfig) -> Experiment:
    """Everything a run needs, or a ConfigError before anything is written."""
    config.validate()
    device = resolve_device(config.device)
    env = make_task_env(config.env_id, config.env_kwargs)
    assert env.spec is not None  # gymnasium.make always sets it
    horizon = config.horizon or env.spec.max_episode_steps
    if horizon is None:
        raise ConfigError(f"{config.env_id} registers no max_episode_steps; set horizon")
    # A transition budget may hold up to MAX_EPISODES_FACTOR × K padded episodes per task: check the worst case.
    require_memory(
        iteration_memory(
            config.meta_batch_size,
            EpisodeBudget.of(config.batch_unit, config.fast_batch_size, horizon).most_episodes,
            horizon,
            config.num_steps,
            *policy_dims(env),
            config.hidden_sizes,
        ),
        device,
    )
    policy = build_policy(config, env, device)
    # The id as configured: a module:EnvId makes every worker process or Ray actor import the user's module too
    # (envs.make_task_vector_env imports it), so custom envs run with every backend.
    sampler = make_sampler(config.sampler, config.env_id, config.env_kwargs, copy.deepcopy(policy).cpu(), horizon)
    inner = InnerStep.repeated(
        config.fast_lr,
        config.num_steps,
        gamma=config.gamma,
        gae_lambda=config.gae_lambda,
        first_order=config.first_order,
        objective=config.inner_objective,
    )
    learner = build_learner(config, policy, inner, device)
    tasks = typing.cast(TaskDistribution, env.unwrapped)  # make_task_env checked that it is one
    return Experiment(config, tasks, policy, sampler, learner, horizon)
