"""MAML with a TRPO meta-step (Finn et al., 2017, Algorithm 3 with TRPO as the meta-optimiser).

The meta-objective is the surrogate loss of the adapted policies on their query episodes; the trust
region is the mean KL between the adapted policies before and after the update. Both are taken
through the inner step, so the curvature used by conjugate gradient includes second-order terms
unless ``first_order`` is set.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn
from torch.distributions import kl_divergence
from torch.func import functional_call

from metarl.adaptation import adapt, log_probs
from metarl.advantages import estimate_advantages
from metarl.returns import masked_mean
from metarl.episodes import EpisodeBatch
from metarl.optim import backtracking_line_search, conjugate_gradient, flat, hessian_vector_product
from metarl.policies import Params, detached, parameters_of


@dataclass(frozen=True)
class TRPOSettings:
    max_kl: float = 1e-2
    cg_iters: int = 10
    cg_damping: float = 1e-5
    ls_max_steps: int = 15
    ls_backtrack_ratio: float = 0.8


@dataclass(frozen=True)
class TaskData:
    """One task's episodes on the learner's device, with advantages computed once."""

    support: tuple[EpisodeBatch, ...]
    support_advantages: tuple[torch.Tensor, ...]
    query: EpisodeBatch
    query_advantages: torch.Tensor


def unflatten(vector: torch.Tensor, like: Params) -> Params:
    params, offset = {}, 0
    for name, value in like.items():
        params[name] = vector[offset : offset + value.numel()].view_as(value)
        offset += value.numel()
    return params


class MAMLTRPO:
    """Meta-learner: takes each task's support and query episodes, updates the policy, returns statistics."""

    def __init__(
        self,
        policy: nn.Module,
        fast_lr: float,
        first_order: bool = False,
        gamma: float = 0.99,
        gae_lambda: float = 1.0,
        trpo: TRPOSettings = TRPOSettings(),
        device: torch.device | str = "cpu",
    ):
        self.policy = policy
        self.fast_lr = fast_lr
        self.first_order = first_order
        self.gamma = gamma
        self.gae_lambda = gae_lambda
        self.trpo = trpo
        self.device = torch.device(device)

    def prepare(self, support: Sequence[Sequence[EpisodeBatch]], query: Sequence[EpisodeBatch]) -> list[TaskData]:
        """Move each task's episodes to the device once and compute their advantages."""
        tasks = []
        for task_support, task_query in zip(support, query, strict=True):
            task_support = tuple(batch.to(self.device) for batch in task_support)
            task_query = task_query.to(self.device)
            tasks.append(
                TaskData(
                    support=task_support,
                    support_advantages=tuple(estimate_advantages(b, self.gamma, self.gae_lambda) for b in task_support),
                    query=task_query,
                    query_advantages=estimate_advantages(task_query, self.gamma, self.gae_lambda),
                )
            )
        return tasks

    def adapted(self, params: Params, task: TaskData, first_order: bool) -> Params:
        return adapt(self.policy, params, task.support, task.support_advantages, self.fast_lr, first_order)

    def surrogate_and_kl(
        self, params: Params, tasks: Sequence[TaskData], old: Sequence[tuple], first_order: bool
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean over tasks of the query surrogate loss −E[ratio·A] and of KL(old adapted ‖ new adapted)."""
        losses, kls = [], []
        for task, (old_log_probs_TB, old_distribution) in zip(tasks, old, strict=True):
            adapted_params = self.adapted(params, task, first_order)
            distribution = functional_call(self.policy, adapted_params, (task.query.observations_TBO,))
            ratio_TB = torch.exp(distribution.log_prob(task.query.actions_TBA) - old_log_probs_TB)
            losses.append(-masked_mean(ratio_TB * task.query_advantages, task.query.mask_TB))
            kls.append(masked_mean(kl_divergence(old_distribution, distribution), task.query.mask_TB))
        return torch.stack(losses).mean(), torch.stack(kls).mean()

    def old_policies(self, params: Params, tasks: Sequence[TaskData]) -> list[tuple]:
        """Log-probs and distributions of the adapted policies at the current θ, held fixed during the step."""
        old = []
        for task in tasks:
            adapted_params = detached(self.adapted(params, task, first_order=True))
            with torch.no_grad():
                old.append(
                    (
                        log_probs(self.policy, adapted_params, task.query),
                        functional_call(self.policy, adapted_params, (task.query.observations_TBO,)),
                    )
                )
        return old

    def meta_gradient(self, support, query) -> torch.Tensor:
        """∇θ of the surrogate loss at the current θ (for tests and diagnostics)."""
        tasks = self.prepare(support, query)
        params = parameters_of(self.policy)
        loss, _ = self.surrogate_and_kl(params, tasks, self.old_policies(params, tasks), self.first_order)
        return flat(torch.autograd.grad(loss, list(params.values())))

    def step(self, support: Sequence[Sequence[EpisodeBatch]], query: Sequence[EpisodeBatch]) -> dict[str, float]:
        """One TRPO meta-update. ``support[i][k]`` is task i's batch for inner step k; ``query[i]`` its query batch."""
        tasks = self.prepare(support, query)
        params = parameters_of(self.policy)
        old = self.old_policies(params, tasks)

        loss, kl = self.surrogate_and_kl(params, tasks, old, self.first_order)
        loss_grad = flat(torch.autograd.grad(loss, list(params.values()), retain_graph=True))
        fisher_product = hessian_vector_product(kl, list(params.values()), self.trpo.cg_damping)
        direction = conjugate_gradient(fisher_product, loss_grad, self.trpo.cg_iters)
        curvature = direction @ fisher_product(direction)
        step_scale = torch.sqrt(2 * self.trpo.max_kl / curvature.clamp(min=1e-12))
        full_step = -(step_scale * direction).detach()
        del fisher_product

        start = flat([p.detach() for p in params.values()])

        def evaluate(candidate: torch.Tensor) -> tuple[float, float]:
            candidate_params = {n: p.requires_grad_() for n, p in unflatten(candidate.clone(), params).items()}
            new_loss, new_kl = self.surrogate_and_kl(candidate_params, tasks, old, first_order=True)
            return float(new_loss), float(new_kl)

        result = backtracking_line_search(
            evaluate, start, full_step, float(loss.detach()), self.trpo.max_kl, self.trpo.ls_max_steps, self.trpo.ls_backtrack_ratio
        )
        with torch.no_grad():
            for name, value in unflatten(result.params, params).items():
                params[name].copy_(value)
        return {
            "surrogate_before": float(loss.detach()),
            "surrogate_after": result.loss,
            "kl": result.kl,
            "line_search_steps": float(result.steps),
            "line_search_accepted": float(result.accepted),
        }
