"""Turning a config into the objects a run needs: task distribution, policy, sampler, meta-learner."""

from __future__ import annotations

import copy
import difflib
import typing
from collections.abc import Callable, Iterator
from contextlib import contextmanager
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
from metarl.memory import TRAINING, MemoryEstimate, MemoryWording, iteration_memory, require_memory
from metarl.policies import GaussianMLPPolicy
from metarl.samplers import Sampler, make_sampler
from metarl.samplers.budget import EpisodeBudget
from metarl.samplers.rollout import DivergedPolicyError
from metarl.seeding import POLICY_INIT, torch_generator
from metarl.user_env import GuardedTasks, env_code, is_user_env


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
        with env_code(env_id, f"module's import ('{module}')", keep=(ImportError,)):
            name = envs.registry_id(env_id)
    except ImportError as error:
        raise ConfigError(
            f"env_id '{env_id}': module '{module}' cannot be imported ({error}); put its directory on PYTHONPATH"
        ) from None
    if name not in gymnasium.registry:
        close = difflib.get_close_matches(name, list(envs.ENV_IDS) + list(gymnasium.registry), n=1)
        shipped = close and str(gymnasium.registry[close[0]].entry_point).startswith(("gymnasium.", "envs."))
        prefix = f"{module}:" if module and not shipped else ""  # a built-in id needs no module
        hint = f"did you mean '{prefix}{close[0]}'?" if close else f"metarl envs: {', '.join(envs.ENV_IDS)}"
        where = f"module '{module}' registers no env '{name}'" if module else f"unknown env_id '{env_id}'"
        raise ConfigError(f"{where}: {hint}")
    return name


def make_task_env(env_id: str, env_kwargs: dict) -> gymnasium.Env:
    """A single env of ``env_id`` (registry id or ``module:EnvId``), checked to offer metarl's task interface."""
    name = registered_env_id(env_id)
    try:
        with env_code(env_id, "construction", keep=(TypeError,)):
            env = gymnasium.make(name, **env_kwargs)
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


MemoryNeed = Callable[[int, int, int], tuple[MemoryEstimate, MemoryWording]]
"""What a kind of work needs in memory, from the horizon and the policy's input and output sizes."""


def training_memory(config: TrainConfig) -> MemoryNeed:
    """An RL training iteration's memory. A transition budget may hold up to MAX_EPISODES_FACTOR × K padded
    episodes per task: the worst case is checked."""

    def need(horizon: int, observation_dim: int, action_dim: int) -> tuple[MemoryEstimate, MemoryWording]:
        episodes = EpisodeBudget.of(config.batch_unit, config.fast_batch_size, horizon).most_episodes
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
    config.validate()
    device = resolve_device(config.device)
    torch.set_num_threads(config.num_threads)  # the run's numbers depend on it: fixed by the config, not the machine
    env = make_task_env(config.env_id, config.env_kwargs)
    assert env.spec is not None  # gymnasium.make always sets it
    horizon = config.horizon or env.spec.max_episode_steps
    if horizon is None:
        raise ConfigError(f"{config.env_id} registers no max_episode_steps; set horizon")
    try:
        estimate, wording = (memory or training_memory(config))(horizon, *policy_dims(env))
        require_memory(estimate, device, wording)
    except ConfigError:
        env.close()
        raise
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
    # make_task_env checked that it is one; a user's sample_tasks goes through env_code
    tasks = GuardedTasks(env.unwrapped, config.env_id) if is_user_env(config.env_id) else env.unwrapped
    return Experiment(config, typing.cast(TaskDistribution, tasks), policy, sampler, learner, horizon)


def divergence_hint(config: TrainConfig) -> str:
    """What to lower when an RL training run's policy diverged: its inner step size and its meta-step's size."""
    meta_step = {"maml_ppo": "ppo.lr", "promp": "promp.lr"}.get(config.algo, "trpo.max_kl")
    return f"try a smaller fast_lr or {meta_step}"


@contextmanager
def hinted_divergence(hint: str) -> Iterator[None]:
    """Add ``hint`` (the settings of the run at hand that set the policy's steps) to a ``DivergedPolicyError``."""
    try:
        yield
    except DivergedPolicyError as error:
        raise DivergedPolicyError(f"{error}; {hint}") from None
