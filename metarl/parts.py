"""The parts a run is built from, each on its own from the config: device, task env, policy, sampler, inner step.

Training (``metarl.experiment``) takes all of them and adds a meta-learner; evaluation (``metarl.evaluation_run``)
takes the task env, its policies and a sampler. Neither builds what it does not use, and each checks memory for
the sizes of its own work before anything is sampled.
"""

from __future__ import annotations

import copy
import difflib
import typing
from collections.abc import Callable
from dataclasses import dataclass

import gymnasium
import torch

import envs
from envs import TaskDistribution
from metarl.adaptation import InnerStep
from metarl.config import ConfigError, TrainConfig
from metarl.memory import MemoryEstimate, MemoryWording, require_memory
from metarl.policies import GaussianMLPPolicy
from metarl.samplers import Sampler, make_sampler
from metarl.seeding import POLICY_INIT, torch_generator
from metarl.user_env import GuardedTasks, env_code, is_user_env

MemoryNeed = Callable[[int, int, int], tuple[MemoryEstimate, MemoryWording]]
"""What a kind of work needs in memory, from the horizon and the policy's input and output sizes."""

CONFIG_FIX = "fix it in the config file or with --set device=cpu"


def resolve_device(name: str, fix: str = CONFIG_FIX) -> torch.device:
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


def compute_device(config: TrainConfig, fix: str = CONFIG_FIX) -> torch.device:
    """The validated config's device, with torch's threads fixed by the config: a run's numbers depend on them, so
    the machine's core count must not choose them."""
    config.validate()
    device = resolve_device(config.device, fix)
    torch.set_num_threads(config.num_threads)
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


@dataclass(frozen=True)
class TaskEnv:
    """One env of the config's env_id, made once: the distribution tasks are drawn from, the horizon episodes
    stop at, and the sizes of a policy for it."""

    tasks: TaskDistribution
    horizon: int
    """The longest episode: the config's horizon, or the env's registered max_episode_steps."""
    observation_dim: int
    action_dim: int


def open_task_env(config: TrainConfig, device: torch.device, memory: MemoryNeed) -> TaskEnv:
    """The config's task env, once the work ``memory`` describes (at this env's horizon and sizes) was found to fit
    ``device``: a ConfigError otherwise, before anything is sampled or written."""
    env = make_task_env(config.env_id, config.env_kwargs)
    try:
        assert env.spec is not None  # gymnasium.make always sets it
        horizon = config.horizon or env.spec.max_episode_steps
        if horizon is None:
            raise ConfigError(f"{config.env_id} registers no max_episode_steps; set horizon")
        estimate, wording = memory(horizon, *policy_dims(env))
        require_memory(estimate, device, wording)
    except ConfigError:
        env.close()
        raise
    # make_task_env checked that it is one; a user's sample_tasks goes through env_code
    tasks = GuardedTasks(env.unwrapped, config.env_id) if is_user_env(config.env_id) else env.unwrapped
    return TaskEnv(typing.cast(TaskDistribution, tasks), horizon, *policy_dims(env))


def build_policy(
    config: TrainConfig, task_env: TaskEnv, device: torch.device, stream: int = POLICY_INIT
) -> GaussianMLPPolicy:
    """A freshly initialised policy for ``task_env``; ``stream`` picks the seed stream of its initial weights."""
    policy = GaussianMLPPolicy(
        task_env.observation_dim,
        task_env.action_dim,
        config.hidden_sizes,
        config.nonlinearity,
        config.init_std,
        generator=torch_generator(config.seed, stream),
    )
    return policy.to(device)


def build_sampler(config: TrainConfig, policy: torch.nn.Module, horizon: int) -> Sampler:
    """The config's sampler backend, with a CPU copy of ``policy`` as the template whose parameters each call
    supplies. The env id goes as configured: a ``module:EnvId`` makes every worker process or Ray actor import the
    user's module too (``envs.make_task_vector_env`` imports it), so custom envs run with every backend."""
    return make_sampler(config.sampler, config.env_id, config.env_kwargs, copy.deepcopy(policy).cpu(), horizon)


def build_inner_step(config: TrainConfig) -> InnerStep:
    """The inner step training samples and meta-learns with: ``num_steps`` steps of size ``inner_lr``."""
    return InnerStep.repeated(
        config.inner_lr,
        config.num_steps,
        gamma=config.gamma,
        gae_lambda=config.gae_lambda,
        first_order=config.first_order,
        objective=config.inner_objective,
    )
