"""MAML with PPO's clipped surrogate as the meta-objective, taken by Adam (MAML-PPO; garage's ``MAMLPPO``).

The meta-loss is PPO's clipped surrogate (Schulman et al., 2017) of the adapted policies θ'ᵢ(θ) on their
query episodes, the ratio's denominator being the adapted policies at the iteration's start:

    L(θ) = −meanᵢ E[min(rᵢ A, clip(rᵢ, 1 − ε, 1 + ε) A)],   rᵢ = π_θ'ᵢ(θ)(a|s) / π_θ'ᵢ(θ_start)(a|s).

Every Adam step recomputes θ'ᵢ(θ) through the inner step from the stored support episodes (second order
unless ``first_order``), so the meta-gradient is MAML's; the clip stops a task's query steps from pulling
once their ratio has moved past 1 ± ε. Adam's moments carry over from one meta-iteration to the next, as
garage's meta-optimiser does, and are saved in the checkpoints.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from metarl.adaptation import InnerStep
from metarl.algos.base import (
    OldPolicy,
    adam_steps,
    adapted_on,
    clip_fraction,
    clipped_surrogate,
    load_optimizer_state,
    mean_kl,
    query_distribution,
)
from metarl.config import PPOSettings
from metarl.heartbeat import Note, silent
from metarl.meta_batch import MetaBatchTensors
from metarl.policies import Params, detached, parameters_of

ADAM_EPS = 1e-5
"""Adam's ε: garage MAML builds its meta-optimiser with eps=_Default(1e-5) (src/garage/torch/algos/maml.py)."""


class MAMLPPO:
    """Meta-learner: ``adam_steps`` Adam steps on the clipped surrogate of the adapted policies, all tasks at once."""

    def __init__(
        self,
        policy: nn.Module,
        inner: InnerStep,
        settings: PPOSettings = PPOSettings(),
        device: torch.device | str = "cpu",
    ):
        self.policy = policy
        self.inner = inner
        """The inner step, shared with the sampling that collects the meta-batch."""
        self.settings = settings
        self.device = torch.device(device)
        self.optimizer = torch.optim.Adam(policy.parameters(), lr=settings.lr, eps=ADAM_EPS)

    def old_policy(self, params: Params, data: MetaBatchTensors) -> OldPolicy:
        """The adapted policies at ``params``, fixed: the ratio's denominator for the whole meta-step."""
        adapted = detached(adapted_on(self.policy, self.inner, params, data, first_order=True))
        with torch.no_grad():
            return OldPolicy.frozen(query_distribution(self.policy, adapted, data), data)

    def loss(self, params: Params, data: MetaBatchTensors, old: OldPolicy) -> torch.Tensor:
        """The clipped surrogate loss at ``params``, with its graph through the inner step."""
        distribution = query_distribution(self.policy, adapted_on(self.policy, self.inner, params, data), data)
        return clipped_surrogate(distribution, data, old, self.settings.clip_eps)

    def step(self, data: MetaBatchTensors, note: Note = silent) -> dict[str, float]:
        """``adam_steps`` Adam steps on one meta-batch; the surrogate before the first and after the last, the KL
        between old and new adapted policies, and the share of query steps the clip holds."""
        params = parameters_of(self.policy)
        old = self.old_policy(params, data)
        losses = adam_steps(self.optimizer, lambda: self.loss(params, data, old), self.settings.adam_steps, note)
        adapted = detached(adapted_on(self.policy, self.inner, params, data, first_order=True))
        with torch.no_grad():
            distribution = query_distribution(self.policy, adapted, data)
            return {
                "surrogate_before": losses[0],
                "surrogate_after": float(clipped_surrogate(distribution, data, old, self.settings.clip_eps)),
                "kl": float(mean_kl(old, distribution, data.query.mask_TB)),
                "clip_fraction": clip_fraction(distribution, data, old, self.settings.clip_eps),
            }

    def describe(self) -> str:
        order = "first order" if self.inner.first_order else "second order"
        return (
            f"meta-step: MAML-PPO, {self.settings.adam_steps} Adam steps (lr {self.settings.lr:g}) on the clipped "
            f"surrogate (clip_eps {self.settings.clip_eps:g}), {order} through the inner step"
        )

    def state_dict(self) -> dict[str, Any]:
        """Adam's moments and step count: a resumed run continues with them."""
        return {"adam": self.optimizer.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        load_optimizer_state(self.optimizer, state, "adam")
