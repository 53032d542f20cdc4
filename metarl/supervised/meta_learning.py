"""MAML, first-order MAML and Reptile for supervised tasks, all adapting with ``metarl.adaptation.inner_step``.

The tasks of a meta-batch are adapted together: θ is expanded to one copy per task ([T, ...]) and the
model runs under ``torch.func.vmap``. The inner loss is the *sum* of the per-task mean losses, so the
gradient with respect to copy i is exactly ∇θ L_i, and one ``inner_step`` call takes every task's own
step. Second-order MAML differentiates through those steps (``create_graph``); first-order MAML and
Reptile do not.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, vmap

from metarl.adaptation import inner_step
from metarl.policies import Params, for_tasks, parameters_of
from metarl.supervised.config import ALGORITHMS, MetaLearningConfig
from metarl.supervised.tasks import TaskBatch

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
"""(predictions [T, N, ...], targets [T, N, ...]) → per-task mean loss [T]."""


def mse_per_task(predictions: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    return ((predictions - targets) ** 2).flatten(1).mean(dim=1)


def cross_entropy_per_task(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    losses = F.cross_entropy(logits.flatten(0, 1), labels.flatten(), reduction="none")
    return losses.view(labels.shape).flatten(1).mean(dim=1)


def accuracy_per_task(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    return (logits.argmax(dim=-1) == labels).float().flatten(1).mean(dim=1)


def batched_forward(model: nn.Module, task_params: Params, inputs: torch.Tensor) -> torch.Tensor:
    """Each task's inputs [T, N, ...] through the model with that task's parameters [T, ...]."""
    return vmap(lambda params, x: functional_call(model, params, (x,)))(task_params, inputs)


def task_losses(
    model: nn.Module, task_params: Params, inputs: torch.Tensor, targets: torch.Tensor, loss_fn: LossFn
) -> torch.Tensor:
    return loss_fn(batched_forward(model, task_params, inputs), targets)


def adapt(
    model: nn.Module,
    task_params: Params,
    inputs: torch.Tensor,
    targets: torch.Tensor,
    loss_fn: LossFn,
    lr: float,
    num_steps: int,
    first_order: bool = False,
) -> Params:
    """``num_steps`` inner SGD steps of every task on its own support set, all tasks in one ``inner_step``."""
    for _ in range(num_steps):
        loss = task_losses(model, task_params, inputs, targets, loss_fn).sum()
        task_params = inner_step(task_params, loss, lr, first_order)
    return task_params


def adapt_on_support(
    model: nn.Module,
    task_params: Params,
    batch: TaskBatch,
    loss_fn: LossFn,
    lr: float,
    num_steps: int,
    first_order: bool,
) -> Params:
    """Every task's parameters after ``num_steps`` inner steps on its own support set."""
    return adapt(model, task_params, batch.support_inputs, batch.support_targets, loss_fn, lr, num_steps, first_order)


class MAML:
    """Finn et al. (2017), algorithm 2: adapt on the support set, meta-update with Adam on the query loss."""

    def __init__(
        self,
        model: nn.Module,
        loss_fn: LossFn,
        inner_lr: float,
        num_steps: int,
        meta_lr: float,
        first_order: bool = False,
    ):
        self.model, self.loss_fn = model, loss_fn
        self.inner_lr, self.num_steps, self.first_order = inner_lr, num_steps, first_order
        self.optimizer = torch.optim.Adam(model.parameters(), lr=meta_lr)

    def meta_loss(self, params: Params, batch: TaskBatch) -> tuple[torch.Tensor, torch.Tensor]:
        """(mean post-adaptation query loss, differentiable in ``params``; per-task pre-adaptation query loss)."""
        task_params = for_tasks(params, len(batch))
        adapted = adapt_on_support(
            self.model, task_params, batch, self.loss_fn, self.inner_lr, self.num_steps, self.first_order
        )
        post = task_losses(self.model, adapted, batch.query_inputs, batch.query_targets, self.loss_fn)
        with torch.no_grad():
            pre = task_losses(self.model, task_params, batch.query_inputs, batch.query_targets, self.loss_fn)
        return post.mean(), pre

    def meta_step(self, batch: TaskBatch) -> dict[str, float]:
        loss, pre = self.meta_loss(parameters_of(self.model), batch)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        return {"loss/query_pre_adaptation": pre.mean().item(), "loss/query_post_adaptation": loss.item()}

    def state_dict(self) -> dict:
        return {"optimizer": self.optimizer.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.optimizer.load_state_dict(state["optimizer"])


class Reptile:
    """Nichol et al. (2018): k SGD steps on each task, then θ ← θ + ε · mean_i(θ'_i − θ).

    The inner steps are the same ``inner_step`` calls as MAML's, first order (Reptile never
    differentiates through them), on the task's support set.
    """

    def __init__(self, model: nn.Module, loss_fn: LossFn, inner_lr: float, num_steps: int, step_size: float):
        self.model, self.loss_fn = model, loss_fn
        self.inner_lr, self.num_steps, self.step_size = inner_lr, num_steps, step_size

    def meta_step(self, batch: TaskBatch) -> dict[str, float]:
        params = {name: value.detach().requires_grad_() for name, value in parameters_of(self.model).items()}
        task_params = for_tasks(params, len(batch))
        adapted = adapt_on_support(
            self.model, task_params, batch, self.loss_fn, self.inner_lr, self.num_steps, first_order=True
        )
        with torch.no_grad():
            pre = task_losses(self.model, task_params, batch.query_inputs, batch.query_targets, self.loss_fn)
            post = task_losses(self.model, adapted, batch.query_inputs, batch.query_targets, self.loss_fn)
            for name, value in parameters_of(self.model).items():
                value.add_(self.step_size * (adapted[name].mean(dim=0) - value))
        return {"loss/query_pre_adaptation": pre.mean().item(), "loss/query_post_adaptation": post.mean().item()}

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass


def make_meta_learner(config: MetaLearningConfig, model: nn.Module, loss_fn: LossFn) -> MAML | Reptile:
    """The meta-learner ``config.algorithm`` names, with the config's step sizes and order."""
    if config.algorithm == "maml":
        return MAML(model, loss_fn, config.inner_lr, config.num_steps, config.meta_lr, config.first_order)
    if config.algorithm == "reptile":
        return Reptile(model, loss_fn, config.inner_lr, config.num_steps, config.reptile_step_size)
    raise ValueError(f"unknown algorithm {config.algorithm!r}; choose one of {ALGORITHMS}")
