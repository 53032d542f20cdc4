"""Task envs that each break one promise metarl relies on, for the env checker's tests (``module:EnvId`` ids)."""

from __future__ import annotations

import gymnasium
import numpy as np
from gymnasium import spaces

from tests.custom_env_for_tests import Point1DEnv


class TaskIgnored(Point1DEnv):
    """Its reward never reads the task (set_task stores it where step does not look)."""

    def step(self, action):
        observation, _, terminated, truncated, info = super().step(action)
        return observation, -abs(self._position), terminated, truncated, info


class GlobalRandomness(Point1DEnv):
    """Draws its tasks and its start from numpy's global generator, not from the rng and seed it is given."""

    def sample_tasks(self, n, rng):
        return [{"goal": float(goal)} for goal in np.random.uniform(-1.0, 1.0, size=n)]

    def reset(self, *, seed=None, options=None):
        observation, info = super().reset(seed=seed, options=options)
        self._position = float(np.random.uniform(-0.1, 0.1))
        return np.array([self._position], dtype=np.float32), info


class TaskElsewhere(Point1DEnv):
    """set_task keeps the task in a private field: a vector env's set_attr('task', ...) never reaches the reward."""

    def set_task(self, task):
        self._goal = task["goal"]

    def step(self, action):
        observation, _, terminated, truncated, info = super().step(action)
        return observation, -abs(self._position - getattr(self, "_goal", 0.0)), terminated, truncated, info


class DiscreteActions(Point1DEnv):
    def __init__(self):
        super().__init__()
        self.action_space = spaces.Discrete(3)


BROKEN = {
    "TaskIgnored-v0": TaskIgnored,
    "GlobalRandomness-v0": GlobalRandomness,
    "TaskElsewhere-v0": TaskElsewhere,
    "DiscreteActions-v0": DiscreteActions,
}
for name, entry_point in BROKEN.items():
    if name not in gymnasium.registry:
        gymnasium.register(name, entry_point=entry_point, max_episode_steps=20)
if "NoHorizon-v0" not in gymnasium.registry:
    gymnasium.register("NoHorizon-v0", entry_point=Point1DEnv)
