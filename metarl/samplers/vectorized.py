"""In-process backend: every environment of every task in one vector env, stepped together."""

from __future__ import annotations

from typing import Any

from torch import nn

from metarl.samplers.rollout import RolloutArrays
from metarl.samplers.worker import RolloutWorker, ShardedSampler, ShareRequest, WorkerSpec, torch_threads


class VectorizedSampler(ShardedSampler):
    """One ``RolloutWorker`` in this process owning every environment of the call (one share)."""

    num_workers = 1

    def __init__(self, env_id: str, env_kwargs: dict[str, Any], policy: nn.Module, horizon: int):
        self.worker = RolloutWorker(WorkerSpec(env_id, dict(env_kwargs), policy, horizon))

    def run_shares(self, requests: list[ShareRequest]) -> list[RolloutArrays]:
        with torch_threads(1):
            return [self.worker.run(request) for request in requests]

    def describe(self) -> str:
        return "vectorized sampler: in this process, one batched vector env"

    def close(self) -> None:
        self.worker.close()
