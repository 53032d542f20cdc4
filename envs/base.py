"""The task interface every metarl environment offers, and a vector env base for batched stepping.

A *task* is a small picklable mapping (e.g. ``{"goal": (0.1, -0.3)}``) so that it can be shipped to
rollout workers and stored in checkpoints. A task distribution samples tasks from an explicit
``numpy.random.Generator``: no hidden global random state.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

import gymnasium
import numpy as np
from gymnasium.vector import AutoresetMode

Task = Mapping[str, Any]


class EnvOptionError(TypeError, ValueError):
    """An env's option (a constructor keyword: a config's ``env_kwargs``) out of its range. A ``ValueError``;
    also a ``TypeError``, which is what Python raises for a constructor argument that does not fit, so
    callers that turn a bad env kwarg into a one-line message (``metarl.parts.make_task_env``) do so for
    this too."""


@runtime_checkable
class TaskDistribution(Protocol):
    """Something that draws tasks; every task-distributed env is one."""

    def sample_tasks(self, n: int, rng: np.random.Generator) -> list[Task]: ...


class TaskVectorEnv(gymnasium.vector.VectorEnv):
    """A vector env whose sub-environments each carry their own task.

    Autoreset is disabled: an episode that has ended stays ended (its rewards are zero and it is not
    stepped again) until the next ``reset``, so a sampler can run every sub-environment to its own
    end without wasting simulation on finished ones. Tasks are set like any vector attribute,
    ``env.set_attr("task", tasks)``, which also works for Gymnasium's Sync/AsyncVectorEnv.
    """

    metadata = {"autoreset_mode": AutoresetMode.DISABLED}

    def __init__(self, num_envs: int, max_episode_steps: int | None):
        self.num_envs = num_envs
        self.max_episode_steps = max_episode_steps
        self.tasks: list[Task] | None = None
        self.elapsed_steps = np.zeros(num_envs, dtype=np.int64)
        self.done = np.ones(num_envs, dtype=bool)

    def set_attr(self, name: str, values: Any) -> None:
        if name != "task":
            raise AttributeError(f"{type(self).__name__} only sets 'task', not {name!r}")
        values = list(values) if isinstance(values, (list, tuple)) else [values] * self.num_envs
        if len(values) != self.num_envs:
            raise ValueError(f"expected {self.num_envs} tasks, got {len(values)}")
        self.tasks = values

    def _require_tasks(self) -> list[Task]:
        if self.tasks is None:
            raise RuntimeError("set the tasks first: env.set_attr('task', tasks)")
        return self.tasks

    def _advance_clock(self, terminated: np.ndarray) -> np.ndarray:
        """Count a step for every running env; mark ended ones done. Returns the truncations."""
        running = ~self.done
        self.elapsed_steps[running] += 1
        truncated = np.zeros(self.num_envs, dtype=bool)
        if self.max_episode_steps is not None:
            truncated = running & ~terminated & (self.elapsed_steps >= self.max_episode_steps)
        self.done |= running & (terminated | truncated)
        return truncated


def seeds_for(seed: int | Sequence[int] | None, num_envs: int) -> list[int | None]:
    """Per-sub-env seeds from the ``seed`` argument of a vector ``reset``, as Gymnasium defines it."""
    if seed is None:
        return [None] * num_envs
    if isinstance(seed, (int, np.integer)):
        return [int(seed) + i for i in range(num_envs)]
    seeds: list[int | None] = list(seed)
    if len(seeds) != num_envs:
        raise ValueError(f"expected {num_envs} seeds, got {len(seeds)}")
    return seeds


def registry_id(env_id: str) -> str:
    """The Gymnasium registry id of ``env_id``. A ``module:EnvId`` imports ``module`` first, as
    ``gymnasium.make`` does but ``gymnasium.spec`` does not; in a sampler worker that import registers a
    user's env."""
    module, _, name = env_id.rpartition(":")
    if module:
        importlib.import_module(module)
    return name


def make_task_vector_env(env_id: str, num_envs: int, **env_kwargs: Any) -> gymnasium.vector.VectorEnv:
    """A vector env of ``num_envs`` copies of ``env_id`` (a registry id or ``module:EnvId``) with autoreset
    disabled.

    Uses the env's own batched implementation (its Gymnasium ``vector_entry_point``) where it has
    one, and Gymnasium's SyncVectorEnv over single envs otherwise.
    """
    env_id = registry_id(env_id)
    spec = gymnasium.spec(env_id)
    if spec.vector_entry_point is not None:
        return gymnasium.make_vec(env_id, num_envs=num_envs, vectorization_mode="vector_entry_point", **env_kwargs)
    return gymnasium.make_vec(
        env_id,
        num_envs=num_envs,
        vectorization_mode="sync",
        vector_kwargs={"autoreset_mode": AutoresetMode.DISABLED},
        **env_kwargs,
    )
