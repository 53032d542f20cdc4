"""A user's env that fails in its own code on request, for the tests of one-line env errors.

``tests.broken_env_for_tests:BrokenPoint-v0``: a point on a line moving towards a goal (as in
``custom_env_for_tests``), with ``fail_in='construction'|'reset'|'step'|'sample_tasks'`` raising
``ValueError('bad goal')`` there (a step from ``at_step`` on). Importing ``tests.broken_env_for_tests_import``
raises, as a user's module with a bug does.
"""

from __future__ import annotations

from typing import Any

import gymnasium
import numpy as np
from gymnasium import spaces

ENV_ID = "tests.broken_env_for_tests:BrokenPoint-v0"


class BrokenPointEnv(gymnasium.Env):
    def __init__(self, fail_in: str | None = None, at_step: int = 1) -> None:
        if fail_in == "construction":
            raise ValueError("bad goal")
        self.observation_space = spaces.Box(-np.inf, np.inf, shape=(1,), dtype=np.float32)
        self.action_space = spaces.Box(-1.0, 1.0, shape=(1,), dtype=np.float32)
        self.task: dict[str, float] = {"goal": 0.0}
        self.fail_in = fail_in
        self.at_step = at_step
        self._position = 0.0
        self._steps = 0

    def sample_tasks(self, n: int, rng: np.random.Generator) -> list[dict[str, float]]:
        if self.fail_in == "sample_tasks":
            raise ValueError("bad goal")
        return [{"goal": float(goal)} for goal in rng.uniform(-1.0, 1.0, size=n)]

    def set_task(self, task: dict[str, float]) -> None:
        self.task = task

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        if self.fail_in == "reset":
            raise ValueError("bad goal")
        super().reset(seed=seed)
        self._position, self._steps = 0.0, 0
        return np.array([self._position], dtype=np.float32), {}

    def step(self, action):
        self._steps += 1
        if self.fail_in == "step" and self._steps >= self.at_step:
            raise ValueError("bad goal")
        self._position += 0.1 * float(np.clip(action, -1.0, 1.0)[0])
        reward = -abs(self._position - self.task["goal"])
        return np.array([self._position], dtype=np.float32), reward, False, False, {}


if "BrokenPoint-v0" not in gymnasium.registry:
    gymnasium.register("BrokenPoint-v0", entry_point=BrokenPointEnv, max_episode_steps=20)
