"""Collecting a meta-batch: support episodes before each inner step, query episodes after the last.

Each inner step's batch is a fresh sample with the parameters adapted so far, as in the MAML paper's
Algorithm 3, so support and query data never share episodes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from envs import Task
from metarl.adaptation import InnerStep, adapt
from metarl.episodes import EpisodeBatch, stack_tasks
from metarl.heartbeat import Note, silent
from metarl.policies import Params, detached, for_tasks
from metarl.samplers.base import Sampler, SeedKey
from metarl.samplers.budget import EpisodeBudget


@dataclass(frozen=True)
class MetaBatchTensors:
    """The meta-batch on the learner's device, tasks stacked on a leading axis, advantages computed once."""

    support: tuple[EpisodeBatch, ...]
    """One [K, T, B, ...] batch per inner step."""
    support_advantages: tuple[torch.Tensor, ...]
    query: EpisodeBatch
    query_advantages: torch.Tensor

    @staticmethod
    def from_episodes(
        support: Sequence[Sequence[EpisodeBatch]],
        query: Sequence[EpisodeBatch],
        inner: InnerStep,
        device: torch.device | str,
    ) -> MetaBatchTensors:
        """Stack per-task episodes (``support[i][k]``: task i, inner step k), move them to ``device`` once and
        compute every task's advantages together."""
        support_by_step = tuple(stack_tasks([task[k] for task in support]).to(device) for k in range(len(support[0])))
        stacked_query = stack_tasks(query).to(device)
        return MetaBatchTensors(
            support=support_by_step,
            support_advantages=tuple(inner.advantages(batch) for batch in support_by_step),
            query=stacked_query,
            query_advantages=inner.advantages(stacked_query),
        )

    @property
    def num_tasks(self) -> int:
        return self.query.rewards_TB.shape[0]

    def subsample(self, fraction: float) -> MetaBatchTensors:
        """Every task's evenly spaced ``fraction`` of its episodes (at least one), in every batch."""
        num_episodes = self.query.rewards_TB.shape[-1]
        kept = max(1, round(fraction * num_episodes))
        index = torch.linspace(0, num_episodes - 1, kept, device=self.query.rewards_TB.device).round().long()
        return MetaBatchTensors(
            support=tuple(batch.select_episodes(index) for batch in self.support),
            support_advantages=tuple(advantages.index_select(-1, index) for advantages in self.support_advantages),
            query=self.query.select_episodes(index),
            query_advantages=self.query_advantages.index_select(-1, index),
        )


@dataclass(frozen=True)
class MetaBatch:
    tasks: list[Task]
    support: list[list[EpisodeBatch]]
    """support[i][k]: task i's episodes sampled after k inner steps."""
    query: list[EpisodeBatch]
    """query[i]: task i's episodes sampled with the fully adapted parameters."""
    tensors: MetaBatchTensors
    """The same episodes stacked on the learner's device with their advantages, for the meta-update."""
    adapted: Params
    """Each task's parameters after its inner steps, [tasks, ...], detached: what the query episodes ran."""

    def task_returns(self) -> np.ndarray:
        """Per-task mean return after each number of inner steps, [K + 1, tasks]."""
        steps = [[task[k] for task in self.support] for k in range(len(self.support[0]))] + [self.query]
        return np.array([[batch.mean_return() for batch in batches] for batches in steps])

    def mean_returns(self) -> list[float]:
        """Mean episode return over tasks after 0, 1, ..., K inner steps."""
        return [float(np.mean(returns)) for returns in self.task_returns()]

    @property
    def env_steps(self) -> int:
        return sum(b.num_steps for task in self.support for b in task) + sum(b.num_steps for b in self.query)


def collect_meta_batch(
    sampler: Sampler,
    policy: nn.Module,
    params: Params,
    tasks: Sequence[Task],
    *,
    budget: EpisodeBudget,
    inner: InnerStep,
    seed: SeedKey,
    note: Note = silent,
) -> MetaBatch:
    """Sample, adapt, sample again, ``inner.num_steps`` times, then sample the query episodes; every
    sampling takes ``budget``'s episodes per task. ``note`` hears each sampling as it starts.

    ``params`` (and ``policy``) may live on the GPU; the sampler always gets CPU copies. The stacked
    tensors and advantages the inner steps use are kept for the meta-update, not recomputed.
    """
    device = next(iter(params.values())).device
    task_params = for_tasks(detached(params), len(tasks))  # every task's parameters, [K, ...]
    support: list[list[EpisodeBatch]] = [[] for _ in tasks]
    support_stacked: list[EpisodeBatch] = []
    support_advantages: list[torch.Tensor] = []
    rounds = inner.num_steps + 1
    for step, step_size in enumerate(inner.step_sizes):
        note(f"sampling {len(tasks)} tasks' episodes before inner step {step + 1} (sampling {step + 1}/{rounds})")
        batches = budget.sample(sampler, tasks, per_task_on_cpu(task_params), (*seed, step))
        for task_support, batch in zip(support, batches, strict=True):
            task_support.append(batch)
        stacked = stack_tasks(batches).to(device)
        advantages = inner.advantages(stacked)
        support_stacked.append(stacked)
        support_advantages.append(advantages)
        with torch.enable_grad():  # all tasks' inner steps at once, as the learner takes them
            leaves = {name: value.detach().requires_grad_() for name, value in task_params.items()}
            task_params = detached(adapt(policy, leaves, [stacked], [advantages], [step_size], True, inner.objective))
    note(f"sampling {len(tasks)} tasks' query episodes (sampling {rounds}/{rounds})")
    query = budget.sample(sampler, tasks, per_task_on_cpu(task_params), (*seed, inner.num_steps))
    stacked_query = stack_tasks(query).to(device)
    tensors = MetaBatchTensors(
        tuple(support_stacked), tuple(support_advantages), stacked_query, inner.advantages(stacked_query)
    )
    return MetaBatch(list(tasks), support, query, tensors, task_params)


def per_task_on_cpu(task_params: Params) -> list[Params]:
    """Parameters with a leading task axis as one CPU dict per task, as samplers take them."""
    num_tasks = next(iter(task_params.values())).shape[0]
    return [{name: value[i].detach().cpu() for name, value in task_params.items()} for i in range(num_tasks)]


def to_cpu(params: Params) -> Params:
    return {name: value.detach().cpu() for name, value in params.items()}
