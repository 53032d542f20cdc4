"""2D navigation (MAML paper, section 5.3): a point moves to an unknown goal in the plane.

Follows the paper's code (cbfinn/maml_rl, ``maml_examples/point_env_randgoal.py`` wrapped in rllab's
``normalize``): the policy acts in [−1, 1]², the point moves by 0.1·clip(a, −1, 1), the reward is
minus the distance to the goal after the move and the episode ends once the point is within 0.01 of
the goal on both axes. Acting in [−1, 1]² matters: with the initial std of 1, a policy that acted in
±0.1 directly would saturate almost every action, and its mean would barely change the behaviour.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import gymnasium
import numpy as np
from gymnasium import spaces

from envs.base import Task, TaskVectorEnv

GOAL_LOW, GOAL_HIGH = -0.5, 0.5
STEP_SCALE = 0.1
"""The largest move per axis: rllab's ``normalize`` maps a ∈ [−1, 1] to the point env's [−0.1, 0.1]."""
GOAL_TOLERANCE = 0.01
"""The episode ends once |x − goal_x| and |y − goal_y| are both below this (the paper's code)."""


def sample_goals(n: int, rng: np.random.Generator) -> list[Task]:
    goals = rng.uniform(GOAL_LOW, GOAL_HIGH, size=(n, 2))
    return [{"goal": (float(x), float(y))} for x, y in goals]


def _move(position: np.ndarray, action: np.ndarray, goal: np.ndarray):
    """One step for any batch shape: the new position, the reward and whether the goal is reached."""
    position = position + STEP_SCALE * np.clip(action, -1.0, 1.0)
    offset = position - goal
    distance = np.linalg.norm(offset, axis=-1)
    return position, -distance, np.all(np.abs(offset) < GOAL_TOLERANCE, axis=-1)


def _spaces() -> tuple[spaces.Box, spaces.Box]:
    observation = spaces.Box(-np.inf, np.inf, shape=(2,), dtype=np.float32)
    action = spaces.Box(-1.0, 1.0, shape=(2,), dtype=np.float32)
    return observation, action


class Navigation2DEnv(gymnasium.Env):
    """The point starts at the origin; the reward is minus its distance to the goal after each move.

    An action a moves the point by 0.1·clip(a, −1, 1); the episode ends within 0.01 of the goal on
    both axes. The goal is not observed: it is what adaptation must discover.
    """

    def __init__(self, task: Task | None = None):
        self.observation_space, self.action_space = _spaces()
        self.task = task if task is not None else {"goal": (0.0, 0.0)}
        self._position = np.zeros(2)

    def sample_tasks(self, n: int, rng: np.random.Generator) -> list[Task]:
        return sample_goals(n, rng)

    def set_task(self, task: Task) -> None:
        self.task = task

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        self._position = np.zeros(2)
        return self._position.astype(np.float32), {}

    def step(self, action):
        goal = np.asarray(self.task["goal"], dtype=np.float64)
        self._position, reward, reached = _move(self._position, np.asarray(action, dtype=np.float64), goal)
        return self._position.astype(np.float32), float(reward), bool(reached), False, {}


class Navigation2DVectorEnv(TaskVectorEnv):
    """Many navigation tasks stepped together as arrays, so the env costs next to nothing."""

    def __init__(self, num_envs: int, max_episode_steps: int | None = 100):
        super().__init__(num_envs, max_episode_steps)
        self.single_observation_space, self.single_action_space = _spaces()
        self.observation_space = spaces.Box(-np.inf, np.inf, shape=(num_envs, 2), dtype=np.float32)
        self.action_space = spaces.Box(-1.0, 1.0, shape=(num_envs, 2), dtype=np.float32)
        self._position = np.zeros((num_envs, 2))
        self._goal = np.zeros((num_envs, 2))

    def sample_tasks(self, n: int, rng: np.random.Generator) -> list[Task]:
        return sample_goals(n, rng)

    def reset(self, *, seed: int | Sequence[int] | None = None, options: dict[str, Any] | None = None):
        self._goal = np.array([task["goal"] for task in self._require_tasks()], dtype=np.float64)
        self._position = np.zeros((self.num_envs, 2))
        self.elapsed_steps[:] = 0
        self.done[:] = False
        return self._position.astype(np.float32), {}

    def step(self, actions):
        running = ~self.done
        position, reward, reached = _move(self._position, np.asarray(actions, dtype=np.float64), self._goal)
        self._position = np.where(running[:, None], position, self._position)
        reward = np.where(running, reward, 0.0)
        terminated = running & reached
        truncated = self._advance_clock(terminated)
        return self._position.astype(np.float32), reward, terminated, truncated, {}
