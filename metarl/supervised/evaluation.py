"""Evaluation of adaptation: the query metric after 0..n inner steps, with 95% confidence intervals,
and the MAML paper's "pretrained" baseline (one network regressed on all tasks jointly).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from metarl.heartbeat import Note, silent
from metarl.policies import Params, for_tasks, parameters_of
from metarl.reporting.statistics import summarize as summarize_values
from metarl.supervised.meta_learning import LossFn, adapt, task_losses
from metarl.supervised.tasks import TaskBatch


def adaptation_curve(
    model: nn.Module,
    params: Params,
    batch: TaskBatch,
    loss_fn: LossFn,
    lr: float,
    num_steps: int,
    metric_fn: LossFn | None = None,
    chunk_size: int = 1000,
) -> np.ndarray:
    """Per-task query ``metric_fn`` (default: the loss) after 0..num_steps inner steps, [num_steps + 1, T].

    Step k+1 continues from step k with the same ``adapt`` the meta-learners use (first order: nothing
    here is differentiated afterwards). Tasks go through in chunks to bound memory.
    """
    metric_fn = metric_fn or loss_fn
    params = {name: value.detach().requires_grad_() for name, value in params.items()}
    curves = []
    for start in range(0, len(batch), chunk_size):
        chunk = batch[start : start + chunk_size]
        task_params = for_tasks(params, len(chunk))
        rows = []
        for step in range(num_steps + 1):
            if step > 0:
                task_params = adapt(
                    model, task_params, chunk.support_inputs, chunk.support_targets, loss_fn, lr, 1, first_order=True
                )
            with torch.no_grad():
                rows.append(task_losses(model, task_params, chunk.query_inputs, chunk.query_targets, metric_fn))
        curves.append(torch.stack(rows))
    return torch.cat(curves, dim=1).cpu().numpy()


def summarize(curve: np.ndarray, steps: list[int]) -> dict[str, dict[str, float]]:
    """{"step_k": {"mean": ..., "ci95": ...}} for each k in ``steps`` from an ``adaptation_curve``."""
    summary = {}
    for step in steps:
        stats = summarize_values(curve[step])
        summary[f"step_{step}"] = {"mean": stats.mean, "ci95": stats.ci_high - stats.mean}
    return summary


def pretrain_jointly(
    model: nn.Module,
    sample_batch: Callable[[int], TaskBatch],
    num_iterations: int,
    lr: float,
    loss_fn: LossFn,
    note: Note = silent,
) -> list[float]:
    """The paper's baseline: ordinary regression with Adam on the pooled examples of all tasks, no inner loop.

    ``sample_batch(iteration)`` returns fresh tasks each iteration; support and query examples are
    both used as training data. Returns the loss per iteration. ``note`` hears each iteration as it starts
    (thousands of them take minutes).
    """
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    history = []
    for iteration in range(num_iterations):
        note(f"iteration {iteration + 1}/{num_iterations}")
        batch = sample_batch(iteration)
        task_params = for_tasks(parameters_of(model), len(batch))
        inputs = torch.cat([batch.support_inputs, batch.query_inputs], dim=1)
        targets = torch.cat([batch.support_targets, batch.query_targets], dim=1)
        loss = task_losses(model, task_params, inputs, targets, loss_fn).mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        history.append(loss.item())
    return history
