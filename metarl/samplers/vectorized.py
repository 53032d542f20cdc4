"""In-process backend: every environment of every task in one vector env, stepped together."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn

from envs import Task
from metarl.episodes import EpisodeBatch
from metarl.policies import Params
from metarl.samplers.base import SeedKey
from metarl.samplers.rollout import slots_for, to_episode_batches
from metarl.samplers.worker import RolloutWorker, WorkerSpec, share_request


@contextmanager
def torch_threads(num_threads: int) -> Iterator[None]:
    """Run a block with ``num_threads`` torch threads, then restore the previous count.

    Sampling makes many small forwards, for which extra threads only add synchronisation (measured
    2-5× slower with two threads on two cores); the meta-update's large products still get them all.
    """
    previous = torch.get_num_threads()
    torch.set_num_threads(num_threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


class VectorizedSampler:
    """One ``RolloutWorker`` in this process owning every environment of the call."""

    def __init__(self, env_id: str, env_kwargs: dict[str, Any], policy: nn.Module, horizon: int):
        self.worker = RolloutWorker(WorkerSpec(env_id, dict(env_kwargs), policy, horizon))

    def sample(
        self, tasks: Sequence[Task], params: Sequence[Params], episodes_per_task: int, seed: SeedKey
    ) -> list[EpisodeBatch]:
        slots = slots_for(len(tasks), episodes_per_task)
        with torch_threads(1):
            arrays = self.worker.run(share_request(slots, tasks, params, seed))
        return to_episode_batches(arrays, slots, len(tasks))

    def close(self) -> None:
        self.worker.close()
