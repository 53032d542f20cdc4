"""Task batches for supervised meta-learning, and the MAML paper's sinusoid task distribution.

A ``TaskBatch`` holds T tasks stacked on the leading axis, so the meta-learners can adapt all of them
at once with ``torch.func.vmap`` instead of looping over tasks in Python.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch


@dataclass(frozen=True)
class TaskBatch:
    """T tasks, each with a support set (for the inner steps) and a query set (for the meta-loss).

    Inputs are [T, examples, *input_shape]; targets are [T, examples, *target_shape].
    """

    support_inputs: torch.Tensor
    support_targets: torch.Tensor
    query_inputs: torch.Tensor
    query_targets: torch.Tensor

    def __len__(self) -> int:
        return self.support_inputs.shape[0]

    def __getitem__(self, index: slice) -> TaskBatch:
        """The tasks in ``index`` (a slice), e.g. to evaluate many tasks in chunks."""
        return TaskBatch(
            self.support_inputs[index], self.support_targets[index], self.query_inputs[index], self.query_targets[index]
        )

    def to(self, device: torch.device) -> TaskBatch:
        """The same tasks on ``device`` (where the network runs)."""
        return TaskBatch(
            self.support_inputs.to(device),
            self.support_targets.to(device),
            self.query_inputs.to(device),
            self.query_targets.to(device),
        )


@dataclass(frozen=True)
class SinusoidTask:
    """y = amplitude · sin(x − phase), as in the MAML code (``amp * np.sin(x - phase)``)."""

    amplitude: float
    phase: float

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return self.amplitude * np.sin(x - self.phase)


@dataclass(frozen=True)
class SinusoidDistribution:
    """Finn et al. (2017), section 5.1: amplitude ~ U[0.1, 5.0], phase ~ U[0, π], x ~ U[−5, 5]."""

    amplitude_range: tuple[float, float] = (0.1, 5.0)
    phase_range: tuple[float, float] = (0.0, math.pi)
    input_range: tuple[float, float] = (-5.0, 5.0)

    def sample_tasks(self, num_tasks: int, rng: np.random.Generator) -> list[SinusoidTask]:
        amplitudes = rng.uniform(*self.amplitude_range, size=num_tasks)
        phases = rng.uniform(*self.phase_range, size=num_tasks)
        return [SinusoidTask(float(a), float(p)) for a, p in zip(amplitudes, phases, strict=True)]

    def sample_batch(
        self, tasks: list[SinusoidTask], num_support: int, num_query: int, rng: np.random.Generator
    ) -> TaskBatch:
        """Fresh x for every task: the query points are never the support points."""
        x = rng.uniform(*self.input_range, size=(len(tasks), num_support + num_query, 1))
        y = np.stack([task(x_task) for task, x_task in zip(tasks, x, strict=True)])
        x_t, y_t = torch.as_tensor(x, dtype=torch.float32), torch.as_tensor(y, dtype=torch.float32)
        return TaskBatch(x_t[:, :num_support], y_t[:, :num_support], x_t[:, num_support:], y_t[:, num_support:])

    def sample(self, num_tasks: int, num_support: int, num_query: int, rng: np.random.Generator) -> TaskBatch:
        return self.sample_batch(self.sample_tasks(num_tasks, rng), num_support, num_query, rng)
