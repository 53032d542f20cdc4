"""MAML with a TRPO meta-step (Finn et al., 2017, Algorithm 3 with TRPO as the meta-optimiser).

The meta-objective is the surrogate loss of the adapted policies on their query episodes; the trust
region is the mean KL between the adapted policies before and after the update. Both are taken
through the inner step, so the curvature used by conjugate gradient includes second-order terms
unless ``first_order`` is set.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn
from torch.distributions import Distribution, kl_divergence
from torch.func import functional_call

from metarl import mlp_curvature
from metarl.adaptation import InnerStep
from metarl.algos.base import OldPolicy
from metarl.config import TRPOSettings
from metarl.episodes import EpisodeBatch
from metarl.heartbeat import Note, silent
from metarl.meta_batch import MetaBatchTensors
from metarl.optim import (
    MatVec,
    backtracking_line_search,
    conjugate_gradient,
    flat,
    gauss_newton_product,
    hessian_vector_product,
)
from metarl.policies import (
    GaussianMLPPolicy,
    Params,
    detached,
    diagonal_gaussian,
    for_tasks,
    gaussian_parameters,
    parameters_of,
)
from metarl.returns import masked_mean


def unflatten(vector: torch.Tensor, like: Params) -> Params:
    params, offset = {}, 0
    for name, value in like.items():
        params[name] = vector[offset : offset + value.numel()].view_as(value)
        offset += value.numel()
    return params


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

    def state_dict(self) -> dict[str, Any]:
        """Nothing: each TRPO step starts afresh from the meta-batch and θ."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state:
            raise ValueError(f"MAML-TRPO keeps no state between iterations, but this state holds {sorted(state)}")

    def prepare(self, support: Sequence[Sequence[EpisodeBatch]], query: Sequence[EpisodeBatch]) -> MetaBatchTensors:
        """Per-task episodes as the tensors ``step`` takes (``collect_meta_batch`` hands them over already made)."""
        return MetaBatchTensors.from_episodes(support, query, self.inner, self.device)

    def adapted(self, params: Params, data: MetaBatchTensors, first_order: bool) -> Params:
        """θ'ᵢ for every task i, as parameters with a leading task axis."""
        task_params = for_tasks(params, data.num_tasks)
        return self.inner.adapt(self.policy, task_params, data.support, data.support_advantages, first_order)

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

    def meta_gradient(self, data: MetaBatchTensors) -> torch.Tensor:
        """∇θ of the surrogate loss at the current θ (for tests and diagnostics)."""
        params = parameters_of(self.policy)
        loss, _ = self.surrogate_and_kl(params, data, self.old_policy(params, data), self.inner.first_order)
        return flat(torch.autograd.grad(loss, list(params.values())))

    def curvature_product(
        self,
        params: Params,
        data: MetaBatchTensors,
        old: OldPolicy,
        distribution: Distribution | None = None,
        adapted: Params | None = None,
    ) -> MatVec:
        """v ↦ (∇²θ KL + damping·I) v through the inner step, by the configured method (all exact).

        ``distribution`` (with its graph) and ``adapted`` are the adapted policies' query distribution and
        parameters at θ, if already built.
        """
        if self.writes_out_curvature():
            if adapted is None:
                adapted = self.adapted(params, data, first_order=True)
            return self.written_out_product(params, data, adapted)
        if distribution is None:
            distribution = self.query_distribution(self.adapted(params, data, self.inner.first_order), data)
        if self.trpo.curvature == "double_backprop":
            return hessian_vector_product(self.kl(distribution, data, old), list(params.values()), self.trpo.cg_damping)
        return gauss_newton_product(
            gaussian_parameters(distribution),
            lambda outputs: self.kl(diagonal_gaussian(*outputs), data, old),
            list(params.values()),
            self.trpo.cg_damping,
        )

    def writes_out_curvature(self) -> bool:
        """Whether the products are the R-operator written out for the MLP: ``r_operator`` where it applies.

        It applies to the Gaussian MLP policy with one inner step of the policy-gradient objective, on the
        CPU (its task-by-task loop keeps each task's intermediates in cache; a GPU runs the batched autograd
        product, with fewer launches). Elsewhere ``r_operator`` takes the Gauss-Newton product, the same matrix.
        """
        return (
            self.trpo.curvature == "r_operator"
            and self.device.type == "cpu"
            and self.inner.objective == "pg"
            and mlp_curvature.supports(self.policy, self.inner.num_steps)
        )

    def describe(self) -> str:
        """One line for the launcher: which exact product the run takes, and why where it is not the one asked for."""
        if self.writes_out_curvature():
            return "curvature products: r_operator (written out for the MLP policy, task by task)"
        if self.trpo.curvature == "r_operator":
            return (
                "curvature products: gauss_newton (the same matrix; r_operator is written for the Gaussian MLP"
                " policy with one inner step of the 'pg' inner objective, on the CPU)"
            )
        return f"curvature products: {self.trpo.curvature}"

    def written_out_product(self, params: Params, data: MetaBatchTensors, adapted: Params) -> MatVec:
        """The exact product by ``mlp_curvature``: Fishers at ``adapted``, inner-step Jacobians from ``data``."""
        assert isinstance(self.policy, GaussianMLPPolicy)
        return mlp_curvature.MLPCurvature(
            self.policy,
            params,
            adapted,
            data.support[0],
            data.support_advantages[0],
            data.query,
            step_size=0.0 if self.inner.first_order else self.inner.step_sizes[0],
            damping=self.trpo.cg_damping,
        ).product

    def subsampled_curvature_product(self, params: Params, data: MetaBatchTensors, adapted: Params) -> MatVec:
        """The curvature product on a fraction of the episodes: an approximation, for speed.

        The products cost in proportion to the steps they see, support and query alike. Here the
        inner step's Jacobian (through ``data.support``) and the Fisher matrix (over ``data.query``)
        are both estimated from the episodes ``subsample`` keeps. The adapted parameters keep their
        full-data value (only their derivative comes from the subsample), so the KL is still taken
        where old and new policies coincide and the Gauss-Newton product stays the KL's Hessian there.
        """
        subset = data.subsample(self.trpo.curvature_subsample)
        if self.writes_out_curvature():
            return self.written_out_product(params, subset, adapted)
        estimated = self.adapted(params, subset, self.inner.first_order)
        adapted = {name: value.detach() + estimated[name] - estimated[name].detach() for name, value in adapted.items()}
        distribution = self.query_distribution(adapted, subset)
        return self.curvature_product(params, subset, OldPolicy.frozen(distribution, subset), distribution)

    def evaluate(self, candidate: Params, data: MetaBatchTensors, old: OldPolicy) -> tuple[float, float]:
        """Surrogate loss and KL at candidate parameters, with no graph kept (for the line search)."""
        candidate = {name: value.detach().requires_grad_() for name, value in candidate.items()}
        adapted_params = detached(self.adapted(candidate, data, first_order=True))
        with torch.no_grad():
            distribution = self.query_distribution(adapted_params, data)
            return float(self.surrogate(distribution, data, old)), float(self.kl(distribution, data, old))

    def step(self, data: MetaBatchTensors, note: Note = silent) -> dict[str, float]:
        """One TRPO meta-update from the meta-batch's stacked support and query episodes."""
        note("meta-update, the surrogate's gradient through the inner step")
        params = parameters_of(self.policy)
        # One graph through the inner step serves the loss, its gradient and (unsubsampled) the curvature.
        adapted = self.adapted(params, data, self.inner.first_order)
        distribution = self.query_distribution(adapted, data)
        old = OldPolicy.frozen(distribution, data)

        subsampled = self.trpo.curvature_subsample < 1
        graph_reused = not subsampled and not self.writes_out_curvature()
        loss = self.surrogate(distribution, data, old)
        loss_grad = flat(torch.autograd.grad(loss, list(params.values()), retain_graph=graph_reused))
        loss_before = float(loss.detach())
        adapted = detached(adapted)
        if subsampled:
            product = self.subsampled_curvature_product(params, data, adapted)
        else:
            product = self.curvature_product(params, data, old, distribution if graph_reused else None, adapted)
        solved = conjugate_gradient(
            product,
            loss_grad,
            self.trpo.cg_iters,
            on_iteration=lambda i: note(f"meta-update, conjugate gradient {i}/{self.trpo.cg_iters}"),
        )
        del product, adapted, distribution, loss  # frees the graphs before the line search
        direction = solved.solution
        step_scale = torch.sqrt(2 * self.trpo.max_kl / (direction @ solved.product).clamp(min=1e-12))
        full_step = -(step_scale * direction).detach()

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
