"""The inner step of MAML, θ' = θ − α ∇θ L(θ), as a function on parameter dicts.

It is model-agnostic: ``inner_step`` knows nothing of policies, so supervised meta-learning uses the
same code. ``create_graph`` keeps the step differentiable, which gives the second-order
meta-gradient; ``first_order`` treats ∇θ L as a constant, which drops the Hessian terms.

The policy's inner objective is the paper's policy-gradient loss (``pg``) or ProMP's low-variance
curvature objective (``lvc``, Rothfuss et al., ICLR 2019): the same value of gradient, so the same
adapted parameters, but a Hessian that keeps the ∇log π ∇log πᵀ term the paper's estimator drops.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn
from torch.func import functional_call

from metarl.advantages import estimate_advantages
from metarl.config import INNER_OBJECTIVES
from metarl.episodes import EpisodeBatch
from metarl.policies import Params
from metarl.returns import masked_mean


def inner_step(params: Params, loss: torch.Tensor, lr: float, first_order: bool = False) -> Params:
    """One gradient step on ``loss`` from ``params``; differentiable unless ``first_order``."""
    grads = torch.autograd.grad(loss, list(params.values()), create_graph=not first_order)
    return {name: value - lr * grad for (name, value), grad in zip(params.items(), grads, strict=True)}


def log_probs(policy: nn.Module, params: Params, episodes: EpisodeBatch) -> torch.Tensor:
    """log π(a|s) of the episodes' actions under ``params``, [T, B]."""
    distribution = functional_call(policy, params, (episodes.observations_TBO,))
    return distribution.log_prob(episodes.actions_TBA)


def policy_gradient_loss(
    policy: nn.Module,
    params: Params,
    episodes: EpisodeBatch,
    advantages_TB: torch.Tensor,
    objective: str = "pg",
    behaviour_log_probs_TB: torch.Tensor | None = None,
) -> torch.Tensor:
    """REINFORCE with a baseline: −E[log π(a|s) A], averaged over the valid steps (``pg``); or ProMP's
    LVC objective −E[π(a|s) / ⊥π(a|s) · A] (``lvc``, ⊥ stops the gradient), whose value and gradient
    are the same at the sampling policy but whose Hessian is E[(∇²log π + ∇log π ∇log πᵀ) A]: the
    likelihood ratio's second derivative, which an importance-sampled inner step has.

    ``behaviour_log_probs_TB`` (``lvc`` only): log π_b(a|s) of the policy that sampled the episodes, the
    ratio's denominator in place of ⊥π(a|s). The two agree where ``params`` are the sampling policy's; where
    θ has moved since (ProMP's later Adam steps on one meta-batch) the step is importance-sampled,
    −E[π(a|s) / π_b(a|s) · A], as ProMP's code takes it.

    For a stacked meta-batch (leading task axis, parameters with a matching task axis) this is the sum
    of the tasks' losses, whose gradient with respect to task i's parameters is task i's gradient.
    """
    weights_TB = log_probs(policy, params, episodes)
    if objective == "lvc":
        denominator_TB = weights_TB.detach() if behaviour_log_probs_TB is None else behaviour_log_probs_TB
        weights_TB = torch.exp(weights_TB - denominator_TB)
    elif objective != "pg":
        raise ValueError(f"unknown inner objective {objective!r}: expected one of {INNER_OBJECTIVES}")
    elif behaviour_log_probs_TB is not None:
        raise ValueError("behaviour log-probabilities weight the 'lvc' inner objective only")
    per_batch = masked_mean(weights_TB * advantages_TB, episodes.mask_TB, dims=(-2, -1))
    return -per_batch.sum()


def adapt(
    policy: nn.Module,
    params: Params,
    support: Sequence[EpisodeBatch],
    support_advantages: Sequence[torch.Tensor],
    step_sizes: Sequence[float],
    first_order: bool = False,
    objective: str = "pg",
    behaviour_log_probs: Sequence[torch.Tensor] | None = None,
) -> Params:
    """One inner step per support batch, in order: batch k was sampled with the parameters after k steps
    and is stepped on with ``step_sizes[k]``."""
    return adapt_steps(
        policy, params, support, support_advantages, step_sizes, first_order, objective, behaviour_log_probs
    )[-1]


def adapt_steps(
    policy: nn.Module,
    params: Params,
    support: Sequence[EpisodeBatch],
    support_advantages: Sequence[torch.Tensor],
    step_sizes: Sequence[float],
    first_order: bool = False,
    objective: str = "pg",
    behaviour_log_probs: Sequence[torch.Tensor] | None = None,
) -> list[Params]:
    """``adapt``'s parameters before each step and after the last: [θ, θ'₁, …, θ'_K], θ'_k the parameters
    that sample support batch k. ``behaviour_log_probs[k]``: see ``policy_gradient_loss``."""
    behaviour = [None] * len(support) if behaviour_log_probs is None else list(behaviour_log_probs)
    steps = [params]
    for episodes, advantages_TB, step_size, behaviour_TB in zip(
        support, support_advantages, step_sizes, behaviour, strict=True
    ):
        loss = policy_gradient_loss(policy, steps[-1], episodes, advantages_TB, objective, behaviour_TB)
        steps.append(inner_step(steps[-1], loss, step_size, first_order))
    return steps


@dataclass(frozen=True)
class InnerStep:
    """Everything that defines a task's adaptation, in one place for sampling and for the meta-learner:
    the step size of each inner step, the advantage estimator's γ and λ, whether the meta-gradient
    goes through the step (second order) or treats its gradient as a constant (first order), and the
    inner objective whose second derivative the meta-gradient takes (``pg`` or ``lvc``)."""

    step_sizes: tuple[float, ...]
    gamma: float = 0.99
    gae_lambda: float = 1.0
    first_order: bool = False
    objective: str = "pg"

    def __post_init__(self) -> None:
        if self.objective not in INNER_OBJECTIVES:
            raise ValueError(f"unknown inner objective {self.objective!r}: expected one of {INNER_OBJECTIVES}")

    @classmethod
    def repeated(cls, inner_lr: float, num_steps: int, **settings: float | bool | str) -> InnerStep:
        """``num_steps`` steps of size ``inner_lr``, as in training (the paper's α for every step)."""
        return cls((inner_lr,) * num_steps, **settings)  # type: ignore[arg-type]

    @property
    def num_steps(self) -> int:
        return len(self.step_sizes)

    def advantages(self, episodes: EpisodeBatch) -> torch.Tensor:
        return estimate_advantages(episodes, self.gamma, self.gae_lambda)

    def adapt(
        self,
        policy: nn.Module,
        params: Params,
        support: Sequence[EpisodeBatch],
        support_advantages: Sequence[torch.Tensor],
        first_order: bool | None = None,
    ) -> Params:
        """θ' after every step; ``first_order`` overrides the setting (e.g. True where no meta-gradient is taken)."""
        order = self.first_order if first_order is None else first_order
        return adapt(policy, params, support, support_advantages, self.step_sizes, order, self.objective)

    def adapt_steps(
        self,
        policy: nn.Module,
        params: Params,
        support: Sequence[EpisodeBatch],
        support_advantages: Sequence[torch.Tensor],
        first_order: bool | None = None,
        behaviour_log_probs: Sequence[torch.Tensor] | None = None,
    ) -> list[Params]:
        """[θ, θ'₁, …, θ'_K] (see ``adapt_steps``), each step importance-sampled against
        ``behaviour_log_probs[k]`` where given (``lvc`` only)."""
        order = self.first_order if first_order is None else first_order
        return adapt_steps(
            policy, params, support, support_advantages, self.step_sizes, order, self.objective, behaviour_log_probs
        )
