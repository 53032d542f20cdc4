"""MAML with a TRPO meta-step (Finn et al., 2017, Algorithm 3 with TRPO as the meta-optimiser).

The meta-objective is the surrogate loss of the adapted policies on their query episodes; the trust
region is the mean KL between the adapted policies before and after the update. Both are taken
through the inner step, so the curvature used by conjugate gradient includes second-order terms
unless ``first_order`` is set.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.distributions import Distribution

from metarl.adaptation import InnerStep
from metarl.algos.base import OldPolicy, adapted_on, mean_kl, query_distribution
from metarl.algos.trpo_curvature import KLCurvature
from metarl.config import TRPOSettings
from metarl.heartbeat import Note, silent
from metarl.meta_batch import MetaBatchTensors
from metarl.optim import MatVec, backtracking_line_search, conjugate_gradient, flat
from metarl.policies import Params, detached, parameters_of
from metarl.returns import masked_mean


def unflatten(vector: torch.Tensor, like: Params) -> Params:
    params, offset = {}, 0
    for name, value in like.items():
        params[name] = vector[offset : offset + value.numel()].view_as(value)
        offset += value.numel()
    return params


@dataclass(frozen=True)
class TrustRegionProblem:
    """The TRPO step's problem at θ: the surrogate's gradient g and the KL's curvature A (as its product), whose
    solve A x = g gives the step's direction; the loss and the fixed adapted policies the line search measures
    candidates against."""

    loss: float
    """The surrogate loss at θ."""
    gradient: torch.Tensor
    """∇θ of the surrogate through the inner step, flat."""
    curvature: MatVec
    """v ↦ (∇²θ KL + damping·I) v at θ."""
    old: OldPolicy
    """The adapted policies at θ, held fixed while θ moves."""


class MAMLTRPO:
    """Meta-learner: takes each task's support and query episodes, updates the policy, returns statistics.

    All tasks are processed together: θ is expanded along a task axis, and the policy evaluates
    per-task parameters in batched matrix products, so the cost does not grow with Python loops
    over tasks. The policy must accept parameters with a leading task axis (GaussianMLPPolicy does).
    """

    def __init__(
        self,
        policy: nn.Module,
        inner: InnerStep,
        trpo: TRPOSettings = TRPOSettings(),
        device: torch.device | str = "cpu",
    ):
        self.policy = policy
        self.inner = inner
        """The inner step, shared with the sampling that collects the meta-batch."""
        self.trpo = trpo
        self.device = torch.device(device)
        self.curvature = KLCurvature(policy, inner, trpo, self.device)

    def state_dict(self) -> dict[str, Any]:
        """Nothing: each TRPO step starts afresh from the meta-batch and θ."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state:
            raise ValueError(f"MAML-TRPO keeps no state between iterations, but this state holds {sorted(state)}")

    def surrogate(self, distribution: Distribution, data: MetaBatchTensors, old: OldPolicy) -> torch.Tensor:
        """Mean over tasks of the query surrogate loss −E[π'/π'_old · A]."""
        ratio = torch.exp(distribution.log_prob(data.query.actions_TBA) - old.log_probs)
        return -masked_mean(ratio * data.query_advantages, data.query.mask_TB, dims=(-2, -1)).mean()

    def describe(self) -> str:
        """One line for the launcher: which exact curvature product the run takes."""
        return self.curvature.describe()

    def problem(self, data: MetaBatchTensors) -> TrustRegionProblem:
        """The trust-region problem at the current θ. One graph through the inner step serves the loss, its
        gradient and (where the curvature reuses it) the curvature products."""
        params = parameters_of(self.policy)
        adapted = adapted_on(self.policy, self.inner, params, data)
        distribution = query_distribution(self.policy, adapted, data)
        old = OldPolicy.frozen(distribution, data)
        loss = self.surrogate(distribution, data, old)
        reuse = self.curvature.reuses_graph
        gradient = flat(torch.autograd.grad(loss, list(params.values()), retain_graph=reuse))
        curvature = self.curvature.product(params, data, detached(adapted), old, distribution)
        return TrustRegionProblem(float(loss.detach()), gradient, curvature, old)

    def evaluate(self, candidate: Params, data: MetaBatchTensors, old: OldPolicy) -> tuple[float, float]:
        """Surrogate loss and KL at candidate parameters, with no graph kept (for the line search)."""
        candidate = {name: value.detach().requires_grad_() for name, value in candidate.items()}
        adapted = detached(adapted_on(self.policy, self.inner, candidate, data, first_order=True))
        with torch.no_grad():
            distribution = query_distribution(self.policy, adapted, data)
            return float(self.surrogate(distribution, data, old)), float(mean_kl(old, distribution, data.query.mask_TB))

    def step(self, data: MetaBatchTensors, note: Note = silent) -> dict[str, float]:
        """One TRPO meta-update from the meta-batch's stacked support and query episodes."""
        note("meta-update, the surrogate's gradient through the inner step")
        problem = self.problem(data)
        solved = conjugate_gradient(
            problem.curvature,
            problem.gradient,
            self.trpo.cg_iters,
            on_iteration=lambda i: note(f"meta-update, conjugate gradient {i}/{self.trpo.cg_iters}"),
        )
        loss_before, old = problem.loss, problem.old
        del problem  # frees the graphs before the line search
        direction = solved.solution
        step_scale = torch.sqrt(2 * self.trpo.max_kl / (direction @ solved.product).clamp(min=1e-12))
        full_step = -(step_scale * direction).detach()

        params = parameters_of(self.policy)
        start = flat([p.detach() for p in params.values()])
        result = backtracking_line_search(
            lambda candidate: self.evaluate(unflatten(candidate, params), data, old),
            start,
            full_step,
            loss_before,
            self.trpo.max_kl,
            self.trpo.ls_max_steps,
            self.trpo.ls_backtrack_ratio,
            on_step=lambda k: note(f"meta-update, line search step {k}/{self.trpo.ls_max_steps}"),
        )
        with torch.no_grad():
            for name, value in unflatten(result.params, params).items():
                params[name].copy_(value)
        return {
            "surrogate_before": loss_before,
            "surrogate_after": result.loss,
            "kl": result.kl,
            "line_search_steps": float(result.steps),
            "line_search_accepted": float(result.accepted),
        }
