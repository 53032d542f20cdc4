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
from metarl.adaptation import adapt
from metarl.advantages import estimate_advantages
from metarl.episodes import EpisodeBatch, stack_tasks
from metarl.policies import Params, detached, for_tasks
from metarl.samplers.base import Sampler, SeedKey


@dataclass(frozen=True)
class MetaBatch:
    tasks: list[Task]
    support: list[list[EpisodeBatch]]
    """support[i][k]: task i's episodes sampled after k inner steps."""
    query: list[EpisodeBatch]
    """query[i]: task i's episodes sampled with the fully adapted parameters."""

    def mean_returns(self) -> list[float]:
        """Mean episode return over tasks after 0, 1, ..., K inner steps."""
        steps = [[task[k] for task in self.support] for k in range(len(self.support[0]))] + [self.query]
        return [float(np.mean([batch.mean_return() for batch in batches])) for batches in steps]

    def task_returns(self) -> np.ndarray:
        """Per-task mean return after each number of inner steps, [K + 1, tasks]."""
        steps = [[task[k] for task in self.support] for k in range(len(self.support[0]))] + [self.query]
        return np.array([[batch.mean_return() for batch in batches] for batches in steps])

    @property
    def env_steps(self) -> int:
        return sum(b.num_steps for task in self.support for b in task) + sum(b.num_steps for b in self.query)


def collect_meta_batch(
    sampler: Sampler,
    policy: nn.Module,
    params: Params,
    tasks: Sequence[Task],
    episodes_per_task: int,
    step_sizes: Sequence[float],
    gamma: float,
    gae_lambda: float,
    seed: SeedKey,
) -> MetaBatch:
    """Sample, adapt, sample again, ``len(step_sizes)`` times; inner step k uses ``step_sizes[k]``.

    ``params`` (and ``policy``) may live on the GPU; the sampler always gets CPU copies.
    """
    device = next(iter(params.values())).device
    task_params = for_tasks(detached(params), len(tasks))  # every task's parameters, [K, ...]
    support: list[list[EpisodeBatch]] = [[] for _ in tasks]
    for step, step_size in enumerate(step_sizes):
        batches = sampler.sample(tasks, per_task_on_cpu(task_params), episodes_per_task, (*seed, step))
        for task_support, batch in zip(support, batches, strict=True):
            task_support.append(batch)
        stacked = stack_tasks(batches).to(device)
        with torch.enable_grad():  # all tasks' inner steps at once, as the learner takes them
            leaves = {name: value.detach().requires_grad_() for name, value in task_params.items()}
            advantages = estimate_advantages(stacked, gamma, gae_lambda)
            task_params = detached(adapt(policy, leaves, [stacked], [advantages], step_size, True))
    query = sampler.sample(tasks, per_task_on_cpu(task_params), episodes_per_task, (*seed, len(step_sizes)))
    return MetaBatch(list(tasks), support, query)


def per_task_on_cpu(task_params: Params) -> list[Params]:
    """Parameters with a leading task axis as one CPU dict per task, as samplers take them."""
    num_tasks = next(iter(task_params.values())).shape[0]
    return [{name: value[i].detach().cpu() for name, value in task_params.items()} for i in range(num_tasks)]


def to_cpu(params: Params) -> Params:
    return {name: value.detach().cpu() for name, value in params.items()}
