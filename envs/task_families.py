"""The task distributions of the MAML locomotion experiments, shared by the cheetah and the ant.

A family turns tasks (small dicts of Python floats) into a parameter array and computes its task
term of the reward from the torso's x-velocity and xy position, for a whole batch at once. The
single envs call the same code with a batch of one, so both paths compute identical rewards.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from envs.base import EnvOptionError, Task


class TaskFamily(Protocol):
    """A task distribution plus the task term of the reward."""

    def sample_tasks(self, n: int, rng: np.random.Generator) -> list[Task]: ...

    def default_task(self) -> Task: ...

    def params(self, tasks: Sequence[Task]) -> np.ndarray: ...

    def reward(self, params_NK: np.ndarray, x_velocity_N: np.ndarray, xy_N2: np.ndarray) -> np.ndarray: ...


@dataclass(frozen=True)
class VelocityTasks:
    """Run at a goal velocity v* ~ U[low, high]; task term −|v_x − v*| + offset."""

    low: float
    high: float
    offset: float = 0.0

    def sample_tasks(self, n: int, rng: np.random.Generator) -> list[Task]:
        return [{"velocity": float(v)} for v in rng.uniform(self.low, self.high, size=n)]

    def default_task(self) -> Task:
        return {"velocity": 0.5 * (self.low + self.high)}

    def params(self, tasks: Sequence[Task]) -> np.ndarray:
        return np.array([[float(task["velocity"])] for task in tasks], dtype=np.float64).reshape(len(tasks), 1)

    def reward(self, params_NK: np.ndarray, x_velocity_N: np.ndarray, xy_N2: np.ndarray) -> np.ndarray:
        return -np.abs(x_velocity_N - params_NK[:, 0]) + self.offset


PAPER_CODE_BACKWARD_PROBABILITY = 3 / 7
"""P(backward) of the direction tasks in the MAML paper's code at the ICML deadline (cbfinn/maml_rl 7fe27d7):
training goals U(0.1, 0.8) (``sandbox/rocky/tf/algos/batch_sensitive_polopt.py`` line 180), backward where
below 0.4 (``rllab/envs/mujoco/half_cheetah_env_rand_direc.py`` line 37, ``ant_env_rand_direc.py`` line 35)."""


@dataclass(frozen=True)
class DirectionTasks:
    """Run forward (d = +1) or backward (d = −1); task term d·v_x.

    Backward with probability ``backward_probability``: 1/2 by default, 3/7 in the paper's code at the
    ICML deadline (``PAPER_CODE_BACKWARD_PROBABILITY``; docs/RESULTS.md, *HalfCheetah direction*).
    """

    backward_probability: float = 0.5

    def __post_init__(self) -> None:
        p = self.backward_probability
        if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0.0 <= p <= 1.0:
            raise EnvOptionError(
                f"backward_probability is the probability of a backward direction task, a number in [0, 1]; got {p!r}"
            )

    def sample_tasks(self, n: int, rng: np.random.Generator) -> list[Task]:
        forward = rng.binomial(1, 1.0 - self.backward_probability, size=n)  # at 1/2: the draws of Bernoulli(1/2)
        return [{"direction": float(d)} for d in 2 * forward - 1]

    def default_task(self) -> Task:
        return {"direction": 1.0}

    def params(self, tasks: Sequence[Task]) -> np.ndarray:
        directions = np.array([float(task["direction"]) for task in tasks], dtype=np.float64)
        if not np.all(np.abs(directions) == 1.0):
            raise ValueError(f"a direction task is -1.0 or +1.0, got {directions.tolist()}")
        return directions.reshape(len(tasks), 1)

    def reward(self, params_NK: np.ndarray, x_velocity_N: np.ndarray, xy_N2: np.ndarray) -> np.ndarray:
        return params_NK[:, 0] * x_velocity_N


@dataclass(frozen=True)
class GoalTasks:
    """Reach a goal position g ~ U[low, high]² in the plane; task term −‖xy − g‖₁ + offset."""

    low: float
    high: float
    offset: float = 0.0

    def sample_tasks(self, n: int, rng: np.random.Generator) -> list[Task]:
        return [{"goal": (float(x), float(y))} for x, y in rng.uniform(self.low, self.high, size=(n, 2))]

    def default_task(self) -> Task:
        middle = 0.5 * (self.low + self.high)
        return {"goal": (middle, middle)}

    def params(self, tasks: Sequence[Task]) -> np.ndarray:
        return np.array([[float(v) for v in task["goal"]] for task in tasks], dtype=np.float64).reshape(len(tasks), 2)

    def reward(self, params_NK: np.ndarray, x_velocity_N: np.ndarray, xy_N2: np.ndarray) -> np.ndarray:
        return -np.sum(np.abs(xy_N2 - params_NK), axis=-1) + self.offset
