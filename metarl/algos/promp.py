"""ProMP: Proximal Meta-Policy Search (Rothfuss, Lee, Clavera, Asfour & Abbeel, ICLR 2019).

The meta-loss is the clipped surrogate of the adapted policies on their query episodes (as MAML-PPO's)
plus a KL penalty that keeps the pre-update policies close to those that sampled the support episodes:

    L(θ) = −meanᵢ E[min(rᵢ A, clip(rᵢ, 1 − ε, 1 + ε) A)] + mean_k η_k KL_k(θ),
    KL_k(θ) = meanᵢ E_s[KL(π_θ'ᵢ,ₖ(θ_start)(·|s) ‖ π_θ'ᵢ,ₖ(θ)(·|s))] over the states of support batch k,

θ'ᵢ,₀ = θ and θ'ᵢ,ₖ the parameters after k inner steps, which sampled support batch k. The inner step is
the LVC objective's, importance-sampled against the policies that sampled the support episodes: at the
iteration's start it is the plain inner step, and after θ has moved it is −E[π_θ'(a|s) / π_b(a|s) · A],
as ProMP's code takes it (its likelihood ratio against the stored ``agent_infos``). Every Adam step
recomputes θ'ᵢ(θ) from the stored support episodes, second order unless ``first_order``. After the
Adam steps each η_k is halved where KL_k fell below target / 1.5 and doubled above 1.5 × target, if
``adaptive_inner_kl_penalty`` (ProMP ``meta_algos/pro_mp.py``, ``_adapt_kl_coeff``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.distributions import Distribution
from torch.func import functional_call

from metarl.adaptation import InnerStep
from metarl.algos.base import OldPolicy, adam_steps, clip_fraction, clipped_surrogate, load_optimizer_state, mean_kl
from metarl.config import ProMPSettings
from metarl.heartbeat import Note, silent
from metarl.meta_batch import MetaBatchTensors
from metarl.policies import Params, detached, for_tasks, parameters_of

ADAM_EPS = 1e-8
"""Adam's ε: ProMP's MAMLFirstOrderOptimizer builds tf.train.AdamOptimizer(learning_rate) with TensorFlow's
default epsilon, 1e-8 (TensorFlow adds it to √v̂ after its bias correction, torch before: a negligible shift)."""


def adapted_kl_coefficients(coefficients: Sequence[float], kls: Sequence[float], target: float) -> list[float]:
    """ProMP's rule for each inner step's coefficient: halve it where its KL fell below target / 1.5,
    double it where its KL rose above 1.5 × target, keep it in between (``_adapt_kl_coeff``)."""
    adapted = []
    for coefficient, kl in zip(coefficients, kls, strict=True):
        if kl < target / 1.5:
            coefficient /= 2
        elif kl > target * 1.5:
            coefficient *= 2
        adapted.append(coefficient)
    return adapted


@dataclass(frozen=True)
class SamplingPolicies:
    """The policies that sampled the meta-batch, at the iteration's start: for each support batch k the pre-update
    policy after k inner steps (the inner step's importance weights and the KL penalty's first argument), and
    the adapted policies on the query episodes (the clipped ratio's denominator)."""

    support: tuple[OldPolicy, ...]
    query: OldPolicy


class ProMP:
    """Meta-learner: ``adam_steps`` Adam steps on ProMP's objective; the KL coefficients carry over iterations."""

    def __init__(
        self,
        policy: nn.Module,
        inner: InnerStep,
        settings: ProMPSettings = ProMPSettings(),
        device: torch.device | str = "cpu",
    ):
        if inner.objective != "lvc":
            raise ValueError(f"ProMP's inner step is the 'lvc' objective's, not {inner.objective!r}")
        self.policy = policy
        self.inner = inner
        """The inner step, shared with the sampling that collects the meta-batch."""
        self.settings = settings
        self.device = torch.device(device)
        self.optimizer = torch.optim.Adam(policy.parameters(), lr=settings.lr, eps=ADAM_EPS)
        self.inner_kl_coefficients = [settings.inner_kl_penalty] * inner.num_steps
        """η_k for each inner step k, adapted after every meta-iteration if the settings say so."""

    def sampling_policies(self, params: Params, data: MetaBatchTensors) -> SamplingPolicies:
        """The policies at ``params`` that sampled ``data`` (the same parameters the sampling adapted to), fixed."""
        steps = [detached(p) for p in self.adapt_steps(params, data, first_order=True)]
        with torch.no_grad():
            support = tuple(
                OldPolicy.holding(self.distribution(steps[k], batch.observations_TBO), batch.actions_TBA)
                for k, batch in enumerate(data.support)
            )
            query = OldPolicy.frozen(self.distribution(steps[-1], data.query.observations_TBO), data)
        return SamplingPolicies(support, query)

    def adapt_steps(
        self,
        params: Params,
        data: MetaBatchTensors,
        first_order: bool | None = None,
        sampled_by: SamplingPolicies | None = None,
    ) -> list[Params]:
        """[θ, θ'₁, …, θ'_K] for every task (leading task axis), importance-sampled against ``sampled_by``."""
        behaviour = None if sampled_by is None else [policy.log_probs for policy in sampled_by.support]
        task_params = for_tasks(params, data.num_tasks)
        return self.inner.adapt_steps(
            self.policy, task_params, data.support, data.support_advantages, first_order, behaviour
        )

    def distribution(self, params: Params, observations: torch.Tensor) -> Distribution:
        return functional_call(self.policy, params, (observations,))

    def objective(
        self, params: Params, data: MetaBatchTensors, sampled_by: SamplingPolicies, first_order: bool | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, Distribution]:
        """The clipped surrogate at ``params``, the KL of each inner step's pre-update policies [K], and the adapted
        policies' query distribution; with their graph through the inner step unless ``first_order``."""
        steps = self.adapt_steps(params, data, first_order, sampled_by)
        inner_kls = torch.stack(
            [
                mean_kl(before, self.distribution(steps[k], batch.observations_TBO), batch.mask_TB)
                for k, (batch, before) in enumerate(zip(data.support, sampled_by.support, strict=True))
            ]
        )
        distribution = self.distribution(steps[-1], data.query.observations_TBO)
        return clipped_surrogate(distribution, data, sampled_by.query, self.settings.clip_eps), inner_kls, distribution

    def loss(self, params: Params, data: MetaBatchTensors, sampled_by: SamplingPolicies) -> torch.Tensor:
        """ProMP's loss at ``params``: the clipped surrogate plus the mean over inner steps of η_k KL_k."""
        surrogate, inner_kls, _ = self.objective(params, data, sampled_by)
        coefficients = torch.tensor(self.inner_kl_coefficients, dtype=inner_kls.dtype, device=inner_kls.device)
        return surrogate + (coefficients * inner_kls).mean()

    def step(self, data: MetaBatchTensors, note: Note = silent) -> dict[str, float]:
        """``adam_steps`` Adam steps on one meta-batch, then the KL coefficients' update. Statistics: the loss
        before the first step, the surrogate after the last, the KL between old and new adapted policies on the
        query states, the share of query steps the clip holds, the inner steps' mean KL after the update and
        the mean coefficient this iteration's loss used."""
        params = parameters_of(self.policy)
        sampled_by = self.sampling_policies(params, data)
        coefficients = self.inner_kl_coefficients
        losses = adam_steps(self.optimizer, lambda: self.loss(params, data, sampled_by), self.settings.adam_steps, note)
        surrogate, inner_kls, distribution = self.objective(params, data, sampled_by, first_order=True)
        kls = [float(kl) for kl in inner_kls.detach()]
        if self.settings.adaptive_inner_kl_penalty:
            self.inner_kl_coefficients = adapted_kl_coefficients(coefficients, kls, self.settings.inner_kl_target)
        with torch.no_grad():
            return {
                "surrogate_before": losses[0],
                "surrogate_after": float(surrogate.detach()),
                "kl": float(mean_kl(sampled_by.query, distribution, data.query.mask_TB)),
                "clip_fraction": clip_fraction(distribution, data, sampled_by.query, self.settings.clip_eps),
                "inner_kl": sum(kls) / len(kls),
                "inner_kl_coeff": sum(coefficients) / len(coefficients),
            }

    def describe(self) -> str:
        order = "first order" if self.inner.first_order else "second order"
        penalty = "adaptive" if self.settings.adaptive_inner_kl_penalty else "fixed"
        return (
            f"meta-step: ProMP, {self.settings.adam_steps} Adam steps (lr {self.settings.lr:g}) on the clipped "
            f"surrogate (clip_eps {self.settings.clip_eps:g}) with a {penalty} inner KL penalty "
            f"(initial {self.settings.inner_kl_penalty:g}), LVC inner step, {order}"
        )

    def state_dict(self) -> dict[str, Any]:
        """Adam's moments and step count, and the KL coefficients: a resumed run continues with them."""
        return {"adam": self.optimizer.state_dict(), "inner_kl_coefficients": list(self.inner_kl_coefficients)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        coefficients = state.get("inner_kl_coefficients")
        if not isinstance(coefficients, list) or len(coefficients) != self.inner.num_steps:
            raise ValueError(
                f"its inner_kl_coefficients are {coefficients!r}, not one number for each of the "
                f"{self.inner.num_steps} inner steps"
            )
        load_optimizer_state(self.optimizer, state, "adam")
        self.inner_kl_coefficients = [float(value) for value in coefficients]
