"""MAML-TRPO's curvature products v ↦ (∇²θ KL + damping·I) v, in one place: which exact product a run takes, and
the subsampled estimate.

The KL is the mean over tasks of KL(old adapted policy ‖ new adapted policy) on the query states, through the
inner step. Two products compute its Hessian exactly at θ, where old and new policies coincide:

- ``r_operator``: Pearlmutter's R-operator written out for the Gaussian MLP and taken task by task
  (``metarl.mlp_curvature``), the fastest on the CPU. It is written for one inner step of the 'pg' objective.
- Gauss-Newton through autograd, batched over tasks (``optim.gauss_newton_product``): every other case (two or
  more inner steps, the 'lvc' objective, another policy, a GPU, where fewer and larger kernels win), and what
  ``gauss_newton`` asks for everywhere.

Double backprop (``optim.hessian_vector_product``) takes the same matrix at several times the cost: the tests'
reference, not a run's choice.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.distributions import Distribution

from metarl import mlp_curvature
from metarl.adaptation import InnerStep
from metarl.algos.base import OldPolicy, adapted_on, mean_kl, query_distribution
from metarl.config import TRPOSettings
from metarl.meta_batch import MetaBatchTensors
from metarl.optim import MatVec, gauss_newton_product
from metarl.policies import GaussianMLPPolicy, Params, diagonal_gaussian, gaussian_parameters


class KLCurvature:
    """The product a MAML-TRPO learner takes, chosen once from its settings."""

    def __init__(self, policy: nn.Module, inner: InnerStep, trpo: TRPOSettings, device: torch.device):
        self.policy = policy
        self.inner = inner
        self.trpo = trpo
        self.written_out = (
            trpo.curvature == "r_operator"
            and device.type == "cpu"
            and inner.objective == "pg"
            and mlp_curvature.supports(policy, inner.num_steps)
        )
        """Whether the products are ``mlp_curvature``'s R-operator (else Gauss-Newton through autograd)."""

    @property
    def reuses_graph(self) -> bool:
        """Whether the product is built on the meta-step's own graph through the inner step (Gauss-Newton on every
        episode): the surrogate's gradient must then keep that graph."""
        return not self.written_out and self.trpo.curvature_subsample == 1

    def describe(self) -> str:
        """One line for the launcher: which exact product the run takes, and why where it is not the one asked for."""
        if self.written_out:
            return "curvature products: r_operator (written out for the MLP policy, task by task)"
        if self.trpo.curvature == "r_operator":
            return (
                "curvature products: gauss_newton (the same matrix; r_operator is written for the Gaussian MLP"
                " policy with one inner step of the 'pg' inner objective, on the CPU)"
            )
        return f"curvature products: {self.trpo.curvature}"

    def product(
        self,
        params: Params,
        data: MetaBatchTensors,
        adapted: Params,
        old: OldPolicy,
        distribution: Distribution,
    ) -> MatVec:
        """The product at θ = ``params`` for the meta-batch ``data``: ``adapted`` are the adapted parameters θ'ᵢ
        (detached), ``old`` the adapted policies held fixed and ``distribution`` their query distribution, with its
        graph through the inner step (used where ``reuses_graph``)."""
        if self.trpo.curvature_subsample < 1:
            return self.subsampled_product(params, data, adapted)
        if self.written_out:
            return self.written_out_product(params, data, adapted)
        return self.gauss_newton_product(params, data, old, distribution)

    def gauss_newton_product(
        self, params: Params, data: MetaBatchTensors, old: OldPolicy, distribution: Distribution
    ) -> MatVec:
        """Jᵀ H J v, J the Jacobian of the query distribution's mean and scale in θ and H the KL's Hessian in them."""
        return gauss_newton_product(
            gaussian_parameters(distribution),
            lambda outputs: mean_kl(old, diagonal_gaussian(*outputs), data.query.mask_TB),
            list(params.values()),
            self.trpo.cg_damping,
        )

    def written_out_product(self, params: Params, data: MetaBatchTensors, adapted: Params) -> MatVec:
        """The R-operator product: Fishers at ``adapted``, the inner step's Jacobians from ``data``."""
        assert isinstance(self.policy, GaussianMLPPolicy)
        return mlp_curvature.MLPCurvature(
            self.policy,
            params,
            adapted,
            data.support[0],
            data.support_advantages[0],
            data.query,
            inner_lr=0.0 if self.inner.first_order else self.inner.step_sizes[0],
            damping=self.trpo.cg_damping,
        ).product

    def subsampled_product(self, params: Params, data: MetaBatchTensors, adapted: Params) -> MatVec:
        """The product on a fraction of the episodes: an approximation, for speed.

        The products cost in proportion to the steps they see, support and query alike. Here the inner step's
        Jacobian (through the support episodes) and the Fisher matrix (over the query episodes) are both estimated
        from the episodes ``subsample`` keeps. The adapted parameters keep their full-data value (only their
        derivative comes from the subsample), so the KL is still taken where old and new policies coincide and
        the Gauss-Newton product stays the KL's Hessian there.
        """
        subset = data.subsample(self.trpo.curvature_subsample)
        if self.written_out:
            return self.written_out_product(params, subset, adapted)
        estimated = adapted_on(self.policy, self.inner, params, subset)
        adapted = {name: value.detach() + estimated[name] - estimated[name].detach() for name, value in adapted.items()}
        distribution = query_distribution(self.policy, adapted, subset)
        return self.gauss_newton_product(params, subset, OldPolicy.frozen(distribution, subset), distribution)
