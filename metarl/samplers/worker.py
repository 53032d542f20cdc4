"""The worker side shared by the ``process`` and ``ray`` backends, and how a sampling call is split.

A ``RolloutWorker`` owns one vector env and runs ``run_episodes`` on the slots it is given; a worker
process's loop and a Ray actor both just wrap it. Requests carry only the tasks and parameters of
the worker's own slots, as numpy arrays (plain pickles: no torch shared-memory file descriptors
that would tie the message's lifetime to the sender). Episodes are keyed by (seed, task index,
episode index), so a share re-run on a fresh worker after a crash gives the same episodes.
"""

from __future__ import annotations

import contextlib
import os
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import gymnasium
import numpy as np
import torch
from torch import nn

from envs import Task, make_task_vector_env
from metarl.episodes import EpisodeBatch
from metarl.policies import Params
from metarl.samplers.base import SeedKey
from metarl.samplers.rollout import EpisodeSlot, RolloutArrays, run_episodes, slots_for, to_episode_batches
from metarl.user_env import env_code, guarded_vector_env

NumpyParams = dict[str, np.ndarray]


@dataclass(frozen=True)
class WorkerSpec:
    """What every worker needs once, at start: shipped with cloudpickle (spawn-safe)."""

    env_id: str
    env_kwargs: dict[str, Any]
    policy: nn.Module
    horizon: int


@dataclass(frozen=True)
class ShareRequest:
    """One worker's part of one sampling call.

    ``tasks`` and ``params`` are keyed by the *global* task index, which the episode seeds use.
    """

    slots: tuple[EpisodeSlot, ...]
    tasks: dict[int, Task]
    params: dict[int, NumpyParams]
    seed: SeedKey


def limit_threads(num_threads: int | None = 1) -> None:
    """One torch thread per worker: N workers × default threads oversubscribe the cores (4-5× slower).

    ``None`` keeps torch's default (one thread per core), only to measure that effect.
    """
    if num_threads is None:
        return
    torch.set_num_threads(num_threads)
    try:
        torch.set_num_interop_threads(num_threads)
    except RuntimeError:  # already set, or parallel work already ran in this process
        pass
    os.environ["OMP_NUM_THREADS"] = str(num_threads)


@contextlib.contextmanager
def torch_threads(num_threads: int) -> Iterator[None]:
    """Run a block with ``num_threads`` torch threads, then restore the previous count: ``limit_threads``
    for the sampling done inside a process that does other work (the learner's products want every core).

    Sampling makes many small forwards, for which extra threads only add synchronisation (measured
    2-5× slower with two threads on two cores).
    """
    previous = torch.get_num_threads()
    torch.set_num_threads(num_threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


class RolloutWorker:
    """Owns a vector env sized to its share and runs episodes on it; reused across calls."""

    def __init__(self, spec: WorkerSpec):
        self.spec = spec
        self.policy = spec.policy.cpu()
        self._env: gymnasium.vector.VectorEnv | None = None

    def _env_for(self, num_envs: int) -> gymnasium.vector.VectorEnv:
        if self._env is None or self._env.num_envs != num_envs:
            self.close()
            with env_code(self.spec.env_id, "construction"):  # a user's env: one line, not a traceback
                env = make_task_vector_env(
                    self.spec.env_id, num_envs, max_episode_steps=self.spec.horizon, **self.spec.env_kwargs
                )
            self._env = guarded_vector_env(env, self.spec.env_id)
        return self._env

    def run(self, request: ShareRequest) -> RolloutArrays:
        params = {i: {name: torch.tensor(value) for name, value in p.items()} for i, p in request.params.items()}
        env = self._env_for(len(request.slots))
        # Mappings keyed by global task index stand in for the full task/params sequences.
        arrays = run_episodes(
            env, self.policy, request.tasks, params, request.slots, request.seed, self.spec.horizon, self.spec.env_id
        )
        return trim(arrays)

    def close(self) -> None:
        if self._env is not None:
            self._env.close()
            self._env = None


def trim(arrays: RolloutArrays) -> RolloutArrays:
    """Drop the all-padding steps after the longest episode, so less travels back to the parent."""
    steps = max(int(arrays.lengths_N.max(initial=0)), 1)
    return RolloutArrays(
        np.ascontiguousarray(arrays.observations_TNO[:steps]),
        np.ascontiguousarray(arrays.actions_TNA[:steps]),
        np.ascontiguousarray(arrays.rewards_TN[:steps]),
        arrays.lengths_N,
    )


def split_slots(slots: Sequence[EpisodeSlot], num_workers: int) -> list[tuple[EpisodeSlot, ...]]:
    """Contiguous, even shares (sizes differ by at most one); empty shares are dropped."""
    bounds = np.linspace(0, len(slots), num_workers + 1).round().astype(int)
    shares = [tuple(slots[a:b]) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
    return [share for share in shares if share]


def share_request(
    share: Sequence[EpisodeSlot], tasks: Sequence[Task], params: Sequence[Params], seed: SeedKey
) -> ShareRequest:
    """The request for one share: only the tasks and parameters its slots use."""
    used = sorted({slot.task_index for slot in share})
    return ShareRequest(
        slots=tuple(share),
        tasks={i: tasks[i] for i in used},
        params={i: {name: value.detach().cpu().numpy() for name, value in params[i].items()} for i in used},
        seed=tuple(seed),
    )


def merge(results: Sequence[RolloutArrays]) -> RolloutArrays:
    """Shares' arrays side by side along the environment axis, in share order, padded to a common length."""
    steps = max(r.rewards_TN.shape[0] for r in results)

    def pad_cat(arrays: list[np.ndarray]) -> np.ndarray:
        padded = [np.pad(a, [(0, steps - a.shape[0])] + [(0, 0)] * (a.ndim - 1)) for a in arrays]
        return np.concatenate(padded, axis=1)

    return RolloutArrays(
        pad_cat([r.observations_TNO for r in results]),
        pad_cat([r.actions_TNA for r in results]),
        pad_cat([r.rewards_TN for r in results]),
        np.concatenate([r.lengths_N for r in results]),
    )


class ShardedSampler(ABC):
    """What every backend does the same way: split a call's episodes into ``num_workers`` contiguous shares,
    hand each share to a worker, and put the workers' arrays back together as per-task batches. A backend
    is only its transport (``run_shares``) and how it describes itself."""

    num_workers: int

    def sample(
        self, tasks: Sequence[Task], params: Sequence[Params], episodes_per_task: int, seed: SeedKey
    ) -> list[EpisodeBatch]:
        slots = slots_for(len(tasks), episodes_per_task)
        requests = [share_request(share, tasks, params, seed) for share in split_slots(slots, self.num_workers)]
        return to_episode_batches(merge(self.run_shares(requests)), slots, len(tasks))

    @abstractmethod
    def run_shares(self, requests: list[ShareRequest]) -> list[RolloutArrays]:
        """Worker i runs ``requests[i]``; the arrays come back in request order."""

    @abstractmethod
    def describe(self) -> str: ...

    @abstractmethod
    def close(self) -> None: ...
