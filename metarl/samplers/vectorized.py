"""In-process backend: every environment of every task in one vector env, stepped together."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import gymnasium
from torch import nn

from envs import Task, make_task_vector_env
from metarl.episodes import EpisodeBatch
from metarl.policies import Params
from metarl.samplers.base import SeedKey
from metarl.samplers.rollout import run_episodes, slots_for, to_episode_batches


class VectorizedSampler:
    def __init__(self, env_id: str, env_kwargs: dict[str, Any], policy: nn.Module, horizon: int):
        self.env_id = env_id
        self.env_kwargs = dict(env_kwargs)
        self.policy = policy
        self.horizon = horizon
        self._env: gymnasium.vector.VectorEnv | None = None

    def _env_for(self, num_envs: int) -> gymnasium.vector.VectorEnv:
        if self._env is None or self._env.num_envs != num_envs:
            if self._env is not None:
                self._env.close()
            self._env = make_task_vector_env(
                self.env_id, num_envs, max_episode_steps=self.horizon, **self.env_kwargs
            )
        return self._env

    def sample(
        self, tasks: Sequence[Task], params: Sequence[Params], episodes_per_task: int, seed: SeedKey
    ) -> list[EpisodeBatch]:
        slots = slots_for(len(tasks), episodes_per_task)
        arrays = run_episodes(self._env_for(len(slots)), self.policy, tasks, params, slots, seed, self.horizon)
        return to_episode_batches(arrays, slots, len(tasks))

    def close(self) -> None:
        if self._env is not None:
            self._env.close()
            self._env = None
