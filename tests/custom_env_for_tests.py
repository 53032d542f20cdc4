"""A user's own task env, defined outside metarl: importing this module registers it.

Trained in tests as ``env_id: tests.custom_env_for_tests:Point1D-v0`` (the repository on PYTHONPATH),
the way a user names an env of their own package.
"""

from __future__ import annotations

import os
import signal
from typing import Any

import gymnasium
import numpy as np
from gymnasium import spaces

ENV_ID = "tests.custom_env_for_tests:Point1D-v0"


class Point1DEnv(gymnasium.Env):
    """A point on a line starts at 0 and moves by 0.1·clip(a, −1, 1); reward −|x − goal|, goal ~ U[−1, 1].

    A broken env on request, for the tests of non-finite output: ``nan_reward_at=k`` returns a NaN reward
    from step k, ``inf_observation_at=k`` an infinite observation (steps count from 1 after each reset).
    For the tests of dying workers, ``die_once_at=k`` with ``die_marker=PATH`` ends the process at step k as
    a crash would (``os._exit``, no cleanup), once: the first env to get there creates PATH atomically and
    dies; every env after it, in any process, finds PATH and runs on. ``stop_once_at=k`` with ``stop_marker=PATH``
    does the same with SIGSTOP (a hung worker) and writes the stopped process's id to PATH. ``die_at=k`` with
    ``die_while=PATH`` ends the process at step k of every episode for as long as PATH exists (a machine that
    keeps killing workers, until the test removes PATH).
    """

    def __init__(
        self,
        nan_reward_at: int | None = None,
        inf_observation_at: int | None = None,
        die_once_at: int | None = None,
        die_marker: str | None = None,
        stop_once_at: int | None = None,
        stop_marker: str | None = None,
        die_at: int | None = None,
        die_while: str | None = None,
    ) -> None:
        self.observation_space = spaces.Box(-np.inf, np.inf, shape=(1,), dtype=np.float32)
        self.action_space = spaces.Box(-1.0, 1.0, shape=(1,), dtype=np.float32)
        self.task: dict[str, float] = {"goal": 0.0}
        self._position = 0.0
        self._steps = 0
        self._nan_reward_at = nan_reward_at
        self._inf_observation_at = inf_observation_at
        self._die_once_at = die_once_at
        self._die_marker = die_marker
        self._stop_once_at = stop_once_at
        self._stop_marker = stop_marker
        self._die_at = die_at
        self._die_while = die_while

    def sample_tasks(self, n: int, rng: np.random.Generator) -> list[dict[str, float]]:
        return [{"goal": float(goal)} for goal in rng.uniform(-1.0, 1.0, size=n)]

    def set_task(self, task: dict[str, float]) -> None:
        self.task = task

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        self._position = 0.0
        self._steps = 0
        return np.array([self._position], dtype=np.float32), {}

    def step(self, action):
        self._steps += 1
        if self._steps == self._die_once_at and self._die_marker is not None:
            try:
                os.close(os.open(self._die_marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
            except FileExistsError:
                pass  # another env died here already
            else:
                os._exit(1)
        if self._steps == self._stop_once_at and self._stop_marker is not None:
            try:
                marker = os.open(self._stop_marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            except FileExistsError:
                pass  # another env stopped here already
            else:
                os.write(marker, str(os.getpid()).encode())
                os.close(marker)
                os.kill(os.getpid(), signal.SIGSTOP)
        if self._steps == self._die_at and self._die_while is not None and os.path.exists(self._die_while):
            os._exit(1)
        self._position += 0.1 * float(np.clip(action, -1.0, 1.0)[0])
        reward = np.nan if self._steps == self._nan_reward_at else -abs(self._position - self.task["goal"])
        observation = np.inf if self._steps == self._inf_observation_at else self._position
        return np.array([observation], dtype=np.float32), reward, False, False, {}


if "Point1D-v0" not in gymnasium.registry:
    gymnasium.register("Point1D-v0", entry_point=Point1DEnv, max_episode_steps=20)
