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
from torch.distributions import Distribution, kl_divergence
from torch.func import functional_call

from metarl.adaptation import adapt
from metarl.advantages import estimate_advantages
from metarl.episodes import EpisodeBatch, stack_tasks
from metarl.optim import (
    MatVec,
    backtracking_line_search,
    conjugate_gradient,
    flat,
    gauss_newton_product,
    hessian_vector_product,
)
from metarl.policies import Params, detached, diagonal_gaussian, for_tasks, gaussian_parameters, parameters_of
from metarl.returns import masked_mean


@dataclass(frozen=True)
class TRPOSettings:
    """The meta-step's settings; each field is the TrainConfig key of the same name (see metarl/config.py)."""

    max_kl: float = 1e-2
    cg_iters: int = 10
    cg_damping: float = 1e-5
    ls_max_steps: int = 15
    ls_backtrack_ratio: float = 0.8
    curvature: str = "gauss_newton"
    """How KL-Hessian-vector products are taken: 'gauss_newton' (fast, exact at the current θ) or 'double_backprop'."""


@dataclass(frozen=True)
class MetaBatchTensors:
    """The meta-batch on the learner's device, tasks stacked on a leading axis, advantages computed once."""

    support: tuple[EpisodeBatch, ...]
    """One [K, T, B, ...] batch per inner step."""
    support_advantages: tuple[torch.Tensor, ...]
    query: EpisodeBatch
    query_advantages: torch.Tensor

    @property
    def num_tasks(self) -> int:
        return self.query.rewards_TB.shape[0]


@dataclass(frozen=True)
class OldPolicy:
    """The adapted policies at the current θ, held fixed while θ moves."""

    log_probs: torch.Tensor
    distribution: Distribution


def unflatten(vector: torch.Tensor, like: Params) -> Params:
    params, offset = {}, 0
    for name, value in like.items():
        params[name] = vector[offset : offset + value.numel()].view_as(value)
        offset += value.numel()
    return params


def stacked_advantages(batches: Sequence[EpisodeBatch], gamma: float, gae_lambda: float) -> torch.Tensor:
    advantages = [estimate_advantages(batch, gamma, gae_lambda) for batch in batches]
    steps = max(a.shape[0] for a in advantages)
    return torch.stack([torch.nn.functional.pad(a, (0, 0, 0, steps - a.shape[0])) for a in advantages])


class MAMLTRPO:
    """Meta-learner: takes each task's support and query episodes, updates the policy, returns statistics.

    All tasks are processed together: θ is expanded along a task axis, and the policy evaluates
    per-task parameters in batched matrix products, so the cost does not grow with Python loops
    over tasks. The policy must accept parameters with a leading task axis (GaussianMLPPolicy does).
    """

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

    def prepare(self, support: Sequence[Sequence[EpisodeBatch]], query: Sequence[EpisodeBatch]) -> MetaBatchTensors:
        """Compute advantages per task, stack the tasks and move everything to the device once."""
        num_steps = len(support[0])
        support_by_step = [[task_support[k] for task_support in support] for k in range(num_steps)]
        return MetaBatchTensors(
            support=tuple(stack_tasks(batches).to(self.device) for batches in support_by_step),
            support_advantages=tuple(
                stacked_advantages(batches, self.gamma, self.gae_lambda).to(self.device) for batches in support_by_step
            ),
            query=stack_tasks(query).to(self.device),
            query_advantages=stacked_advantages(query, self.gamma, self.gae_lambda).to(self.device),
        )

    def adapted(self, params: Params, data: MetaBatchTensors, first_order: bool) -> Params:
        """θ'ᵢ for every task i, as parameters with a leading task axis."""
        task_params = for_tasks(params, data.num_tasks)
        return adapt(self.policy, task_params, data.support, data.support_advantages, self.fast_lr, first_order)

    def query_distribution(self, adapted_params: Params, data: MetaBatchTensors) -> Distribution:
        return functional_call(self.policy, adapted_params, (data.query.observations_TBO,))

    def surrogate(self, distribution: Distribution, data: MetaBatchTensors, old: OldPolicy) -> torch.Tensor:
        """Mean over tasks of the query surrogate loss −E[π'/π'_old · A]."""
        ratio = torch.exp(distribution.log_prob(data.query.actions_TBA) - old.log_probs)
        return -masked_mean(ratio * data.query_advantages, data.query.mask_TB, dims=(-2, -1)).mean()

    def kl(self, distribution: Distribution, data: MetaBatchTensors, old: OldPolicy) -> torch.Tensor:
        """Mean over tasks of KL(old adapted policy ‖ new adapted policy) on the query states."""
        return masked_mean(kl_divergence(old.distribution, distribution), data.query.mask_TB, dims=(-2, -1)).mean()

    def surrogate_and_kl(
        self, params: Params, data: MetaBatchTensors, old: OldPolicy, first_order: bool
    ) -> tuple[torch.Tensor, torch.Tensor]:
        distribution = self.query_distribution(self.adapted(params, data, first_order), data)
        return self.surrogate(distribution, data, old), self.kl(distribution, data, old)

    def old_policy(self, params: Params, data: MetaBatchTensors) -> OldPolicy:
        adapted_params = detached(self.adapted(params, data, first_order=True))
        with torch.no_grad():
            distribution = self.query_distribution(adapted_params, data)
            return OldPolicy(distribution.log_prob(data.query.actions_TBA), distribution)

    def meta_gradient(self, support, query) -> torch.Tensor:
        """∇θ of the surrogate loss at the current θ (for tests and diagnostics)."""
        data = self.prepare(support, query)
        params = parameters_of(self.policy)
        loss, _ = self.surrogate_and_kl(params, data, self.old_policy(params, data), self.first_order)
        return flat(torch.autograd.grad(loss, list(params.values())))

    def curvature_product(self, params: Params, data: MetaBatchTensors, old: OldPolicy) -> MatVec:
        """v ↦ (∇²θ KL + damping·I) v through the inner step, by the configured method (both exact)."""
        distribution = self.query_distribution(self.adapted(params, data, self.first_order), data)
        if self.trpo.curvature == "double_backprop":
            return hessian_vector_product(self.kl(distribution, data, old), list(params.values()), self.trpo.cg_damping)
        return gauss_newton_product(
            gaussian_parameters(distribution),
            lambda outputs: self.kl(diagonal_gaussian(*outputs), data, old),
            list(params.values()),
            self.trpo.cg_damping,
        )

    def evaluate(self, candidate: Params, data: MetaBatchTensors, old: OldPolicy) -> tuple[float, float]:
        """Surrogate loss and KL at candidate parameters, with no graph kept (for the line search)."""
        candidate = {name: value.detach().requires_grad_() for name, value in candidate.items()}
        adapted_params = detached(self.adapted(candidate, data, first_order=True))
        with torch.no_grad():
            distribution = self.query_distribution(adapted_params, data)
            return float(self.surrogate(distribution, data, old)), float(self.kl(distribution, data, old))

    def step(self, support: Sequence[Sequence[EpisodeBatch]], query: Sequence[EpisodeBatch]) -> dict[str, float]:
        """One TRPO meta-update. ``support[i][k]`` is task i's batch for inner step k; ``query[i]`` its query batch."""
        data = self.prepare(support, query)
        params = parameters_of(self.policy)
        old = self.old_policy(params, data)

        loss, _ = self.surrogate_and_kl(params, data, old, self.first_order)
        loss_grad = flat(torch.autograd.grad(loss, list(params.values())))
        product = self.curvature_product(params, data, old)
        direction = conjugate_gradient(product, loss_grad, self.trpo.cg_iters)
        curvature = direction @ product(direction)
        del product  # frees the curvature graphs before the line search
        step_scale = torch.sqrt(2 * self.trpo.max_kl / curvature.clamp(min=1e-12))
        full_step = -(step_scale * direction).detach()

        start = flat([p.detach() for p in params.values()])
        result = backtracking_line_search(
            lambda candidate: self.evaluate(unflatten(candidate, params), data, old),
            start,
            full_step,
            float(loss.detach()),
            self.trpo.max_kl,
            self.trpo.ls_max_steps,
            self.trpo.ls_backtrack_ratio,
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
