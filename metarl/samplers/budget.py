"""How much data one task's batch holds: a number of episodes, or enough whole episodes for a number of steps.

The MAML paper's text says K trajectories per task, but its code (rllab's ``batch_maml_polopt.py`` with
the vectorized sampler) collected ``fast_batch_size × max_path_length`` env steps per task in whole
episodes. The two agree where episodes never end early (2D navigation mostly, HalfCheetah always) and
differ where they do: an Ant that falls or jumps ends its episode, and a task's batch then holds more,
shorter episodes. ``EpisodeBudget`` does either, on top of any Sampler backend: the first round samples
``episodes`` per task as usual; tasks still short of ``min_steps`` sample further rounds, each keyed by
its own seeds, so every backend still returns the same episodes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from envs import Task
from metarl.episodes import EpisodeBatch, concat_episodes, first_episodes_with_steps
from metarl.policies import Params
from metarl.samplers.base import Sampler, SeedKey
from metarl.seeding import EXTRA_ROUND


@dataclass(frozen=True)
class EpisodeBudget:
    """``episodes`` episodes per task; with ``min_steps`` > 0, whole episodes until they hold that many steps."""

    episodes: int
    min_steps: int = 0

    @staticmethod
    def of(unit: str, episodes: int, horizon: int) -> EpisodeBudget:
        """The budget of a config's ``batch_unit``: 'episodes', or 'transitions' (episodes × horizon steps)."""
        return EpisodeBudget(episodes, episodes * horizon if unit == "transitions" else 0)

    def sample(
        self, sampler: Sampler, tasks: Sequence[Task], params: Sequence[Params], seed: SeedKey
    ) -> list[EpisodeBatch]:
        """One batch per task, task i acting with ``params[i]``."""
        batches = sampler.sample(tasks, params, self.episodes, seed)
        if self.min_steps == 0:
            return batches
        parts = [[batch] for batch in batches]
        round_index = 0
        while short := [i for i, task_parts in enumerate(parts) if steps_of(task_parts) < self.min_steps]:
            round_index += 1
            episodes = max(self.episodes_still_needed(parts[i]) for i in short)
            extra = sampler.sample(
                [tasks[i] for i in short], [params[i] for i in short], episodes, (*seed, EXTRA_ROUND, round_index)
            )
            for i, batch in zip(short, extra, strict=True):
                parts[i].append(batch)
        return [first_episodes_with_steps(concat_episodes(task_parts), self.min_steps) for task_parts in parts]

    def episodes_still_needed(self, parts: Sequence[EpisodeBatch]) -> int:
        """Episodes of the task's mean length so far that would fill the rest of its budget."""
        steps = steps_of(parts)
        episodes = sum(batch.num_episodes for batch in parts)
        return max(1, math.ceil((self.min_steps - steps) * episodes / steps))


def steps_of(parts: Sequence[EpisodeBatch]) -> int:
    return sum(batch.num_steps for batch in parts)
