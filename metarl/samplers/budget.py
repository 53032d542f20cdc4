"""How much data one task's batch holds: a number of episodes, or enough whole episodes for a number of steps.

The MAML paper's text says K trajectories per task, but its code (rllab's ``batch_maml_polopt.py`` with
the vectorized sampler) collected ``fast_batch_size × max_path_length`` env steps per task in whole
episodes. The two agree where episodes never end early (2D navigation mostly, HalfCheetah always) and
differ where they do: an Ant that falls or jumps ends its episode, and a task's batch then holds more,
shorter episodes. ``EpisodeBudget`` does either, on top of any Sampler backend: the first round samples
``episodes`` per task as usual; tasks still short of ``min_steps`` sample further rounds, each keyed by
its own seeds, so every backend still returns the same episodes.

One bound the paper's code did not need: a task holds at most ``MAX_EPISODES_FACTOR`` × K episodes.
Its flat arrays cost nothing per episode, but here a meta-batch pads every task to the task with most
episodes and every episode to the horizon, so one task whose adapted policy falls over in five steps
(hundreds of episodes) would multiply the whole meta-update's memory and time; an AntGoal run was
killed for memory that way. Only tasks whose episodes average under horizon / MAX_EPISODES_FACTOR steps
get fewer steps than the paper's budget.
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

MAX_EPISODES_FACTOR = 2


@dataclass(frozen=True)
class EpisodeBudget:
    """``episodes`` episodes per task; with ``min_steps`` > 0, whole episodes until they hold that many steps
    or number ``max_episodes``."""

    episodes: int
    min_steps: int = 0
    max_episodes: int | None = None
    """The most episodes a task holds (None: as many as ``min_steps`` takes)."""

    @staticmethod
    def of(unit: str, episodes: int, horizon: int) -> EpisodeBudget:
        """The budget of a config's ``batch_unit``: 'episodes', or 'transitions' (episodes × horizon steps, at
        most MAX_EPISODES_FACTOR × episodes episodes)."""
        if unit == "transitions":
            return EpisodeBudget(episodes, episodes * horizon, MAX_EPISODES_FACTOR * episodes)
        return EpisodeBudget(episodes)

    @property
    def most_episodes(self) -> int:
        """The most episodes a task's batch can hold (for memory estimates)."""
        return self.episodes if self.min_steps == 0 else self.max_episodes or self.episodes

    def sample(
        self, sampler: Sampler, tasks: Sequence[Task], params: Sequence[Params], seed: SeedKey
    ) -> list[EpisodeBatch]:
        """One batch per task, task i acting with ``params[i]``."""
        batches = sampler.sample(tasks, params, self.episodes, seed)
        if self.min_steps == 0:
            return batches
        parts = [[batch] for batch in batches]
        round_index = 0
        while short := [i for i, task_parts in enumerate(parts) if self.wants_more(task_parts)]:
            round_index += 1
            episodes = max(self.episodes_still_needed(parts[i]) for i in short)
            extra = sampler.sample(
                [tasks[i] for i in short], [params[i] for i in short], episodes, (*seed, EXTRA_ROUND, round_index)
            )
            for i, batch in zip(short, extra, strict=True):
                parts[i].append(batch)
        return [
            first_episodes_with_steps(concat_episodes(task_parts), self.min_steps, self.max_episodes)
            for task_parts in parts
        ]

    def wants_more(self, parts: Sequence[EpisodeBatch]) -> bool:
        return steps_of(parts) < self.min_steps and (
            self.max_episodes is None or episodes_of(parts) < self.max_episodes
        )

    def episodes_still_needed(self, parts: Sequence[EpisodeBatch]) -> int:
        """Episodes of the task's mean length so far that would fill the rest of its budget (within its bound)."""
        steps, episodes = steps_of(parts), episodes_of(parts)
        needed = max(1, math.ceil((self.min_steps - steps) * episodes / steps))
        return needed if self.max_episodes is None else min(needed, self.max_episodes - episodes)


def steps_of(parts: Sequence[EpisodeBatch]) -> int:
    return sum(batch.num_steps for batch in parts)


def episodes_of(parts: Sequence[EpisodeBatch]) -> int:
    return sum(batch.num_episodes for batch in parts)
