"""The one Sampler protocol, and how episodes get their seeds.

Every random number an episode uses (its reset seed and its action noise) comes from a generator
keyed by (run seed, iteration, inner step, task index, episode index), and the policy's batched forward
rounds a row alike whatever the batch's shape (``rollout.MIN_GROUP_ROWS``), so every backend returns
the same episodes however the work is split between workers.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np

from envs import Task
from metarl.episodes import EpisodeBatch
from metarl.policies import Params

SeedKey = tuple[int, ...]


class Sampler(Protocol):
    """Samples ``episodes_per_task`` episodes for each task, task i acting with ``params[i]``."""

    def sample(
        self, tasks: Sequence[Task], params: Sequence[Params], episodes_per_task: int, seed: SeedKey
    ) -> list[EpisodeBatch]: ...

    def describe(self) -> str:
        """One console line: which backend samples where (e.g. a Ray cluster's placement of its actors)."""
        ...

    def close(self) -> None: ...


def episode_rng(seed: SeedKey, task_index: int, episode_index: int) -> np.random.Generator:
    return np.random.default_rng([*seed, task_index, episode_index])
