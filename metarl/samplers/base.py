"""The one Sampler protocol, and how episodes get their seeds.

Every random number an episode uses (its reset seed and its action noise) comes from a generator
keyed by (run seed, iteration, inner step, task index, episode index), and the policy's batched forward
rounds a row alike whatever the batch's shape (``rollout.MIN_GROUP_ROWS``), so every backend returns
the same episodes however the work is split between workers.
"""

from __future__ import annotations

import sys
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


class WorkerError(RuntimeError):
    """A sampler worker died or stalled ``max_failures`` times in one sampling call: a fault of the machine (the
    OOM killer, a signal, a hung process), not of the run. Launchers report it in one line with exit 1; the run's
    last checkpoint is intact and ``--resume`` continues it."""


def worker_failure(who: str, failures: int, last: str, stalled: bool) -> WorkerError:
    """The one-line error after a worker's last failure: which worker, how many times, what to look at."""
    if stalled:
        look = (
            "it was stopped (SIGSTOP) or hung, or its share takes longer than sampler.worker_timeout_s "
            "on this machine (then raise that key)"
        )
    else:
        look = "look for its crash message above, or for the OOM killer in the system log (dmesg or journalctl -k)"
    return WorkerError(f"{who} failed {failures} times in one sampling call (last: {last}); {look}")


def report_replaced(message: str) -> None:
    """A replaced worker, as one ``warning:`` line on stderr (a ``UserWarning`` would print two, the second
    a line of this package's source)."""
    print(f"warning: {message}", file=sys.stderr, flush=True)
