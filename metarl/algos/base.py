"""What the run loop asks of a meta-learner, and what the meta-steps share.

The loop (``metarl.trainer``) samples a meta-batch with the learner's inner step, hands the stacked
episodes to ``step`` and logs the statistics it returns under ``meta/``; checkpoints carry
``state_dict()`` so that a resumed run continues with the optimiser state it stopped with. Sampling,
the inner step, evaluation, checkpoints, resume and TensorBoard are the loop's, shared by every
algorithm; an algorithm is one file in this package and one entry in ``metarl.experiment.build_learner``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import torch
from torch import nn
from torch.distributions import Distribution, kl_divergence
from torch.func import functional_call

from metarl.adaptation import InnerStep
from metarl.heartbeat import Note
from metarl.meta_batch import MetaBatchTensors
from metarl.policies import Params, diagonal_gaussian, for_tasks, gaussian_parameters
from metarl.returns import masked_mean


class MetaLearner(Protocol):
    """A meta-learner as the run loop sees it."""

    inner: InnerStep
    """The inner step, shared with the sampling that collects the meta-batch."""
    device: torch.device
    """Where the meta-step runs (the policy's device)."""

    def step(self, data: MetaBatchTensors, note: Note = ...) -> dict[str, float]:
        """Update the policy from one meta-batch; its statistics, logged as ``meta/<key>``. ``kl`` is among them:
        the mean KL between the adapted policies before and after the update, on the query states (the
        progress line's ``kl``). ``note`` (default: silent) hears each costly stage as it starts."""
        ...

    def describe(self) -> str:
        """One line for the launcher: what the meta-step does."""
        ...

    def state_dict(self) -> dict[str, Any]:
        """What the learner carries from one iteration to the next (an optimiser's moments, a penalty's
        coefficient), as tensors and plain values that ``torch.load(weights_only=True)`` reads back."""
        ...

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue from ``state_dict()``'s output; ``ValueError`` with the reason if it does not fit."""
        ...


@dataclass(frozen=True)
class OldPolicy:
    """The adapted policies at the current θ, held fixed while θ moves: the likelihood ratio's denominator
    and the first argument of the KL between old and new adapted policies."""

    log_probs: torch.Tensor
    distribution: Distribution

    @staticmethod
    def frozen(distribution: Distribution, data: MetaBatchTensors) -> OldPolicy:
        """A detached copy of the adapted policies' query distribution (a diagonal Gaussian)."""
        return OldPolicy.holding(distribution, data.query.actions_TBA)

    @staticmethod
    def holding(distribution: Distribution, actions_TBA: torch.Tensor) -> OldPolicy:
        """A detached copy of ``distribution`` (a diagonal Gaussian) with its log-probabilities of ``actions_TBA``."""
        loc, scale = gaussian_parameters(distribution)
        fixed = diagonal_gaussian(loc.detach(), scale.detach())
        return OldPolicy(fixed.log_prob(actions_TBA), fixed)


def adapted_on(
    policy: nn.Module, inner: InnerStep, params: Params, data: MetaBatchTensors, first_order: bool | None = None
) -> Params:
    """θ'ᵢ for every task i of the meta-batch, from θ = ``params``, as parameters with a leading task axis; second
    order through the inner step unless ``first_order`` (default: the inner step's setting)."""
    return inner.adapt(policy, for_tasks(params, data.num_tasks), data.support, data.support_advantages, first_order)


def query_distribution(policy: nn.Module, adapted: Params, data: MetaBatchTensors) -> Distribution:
    """The adapted policies' distribution on their tasks' query states."""
    return functional_call(policy, adapted, (data.query.observations_TBO,))


def mean_kl(old: OldPolicy, distribution: Distribution, mask_TB: torch.Tensor) -> torch.Tensor:
    """Mean over tasks of KL(old ‖ new), each task's averaged over its valid steps."""
    return masked_mean(kl_divergence(old.distribution, distribution), mask_TB, dims=(-2, -1)).mean()


def clipped_surrogate(
    distribution: Distribution, data: MetaBatchTensors, old: OldPolicy, clip_eps: float
) -> torch.Tensor:
    """PPO's clipped surrogate loss on the query episodes, mean over tasks of −E[min(r A, clip(r, 1 − ε, 1 + ε) A)]
    with r = π'(a|s) / π'_old(a|s): once r has left [1 − ε, 1 + ε] in the direction A favours, it pulls no further."""
    ratio = torch.exp(distribution.log_prob(data.query.actions_TBA) - old.log_probs)
    advantages = data.query_advantages
    clipped = torch.minimum(ratio * advantages, ratio.clamp(1 - clip_eps, 1 + clip_eps) * advantages)
    return -masked_mean(clipped, data.query.mask_TB, dims=(-2, -1)).mean()


def clip_fraction(distribution: Distribution, data: MetaBatchTensors, old: OldPolicy, clip_eps: float) -> float:
    """The share of query steps whose ratio lies outside [1 − ε, 1 + ε] (mean over tasks): how far the update went."""
    ratio = torch.exp(distribution.log_prob(data.query.actions_TBA) - old.log_probs)
    outside = ((ratio - 1).abs() > clip_eps).to(ratio.dtype)
    return float(masked_mean(outside, data.query.mask_TB, dims=(-2, -1)).mean())


def adam_steps(
    optimizer: torch.optim.Optimizer, loss: Callable[[], torch.Tensor], steps: int, note: Note
) -> list[float]:
    """``steps`` optimiser steps on ``loss()``, each told to ``note`` as it starts; the loss before each."""
    losses = []
    for step in range(1, steps + 1):
        note(f"meta-update, Adam step {step}/{steps}")
        losses.append(adam_step(optimizer, loss()))
    return losses


def adam_step(optimizer: torch.optim.Optimizer, loss: torch.Tensor) -> float:
    """One optimiser step on ``loss``; its value. The gradients are freed after the step: none is left on the policy."""
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return float(loss.detach())


def load_optimizer_state(optimizer: torch.optim.Optimizer, state: dict[str, Any], name: str) -> None:
    """``optimizer.load_state_dict(state[name])``, a missing or misfit state being a ValueError that says so (torch
    checks only the number of parameters; a moment of another shape would fail at the next step)."""
    if name not in state:
        raise ValueError(f"it holds no {name} state (keys: {sorted(state)})")
    parameters = [parameter for group in optimizer.param_groups for parameter in group["params"]]
    try:
        for index, entry in state[name]["state"].items():
            for key, value in entry.items():
                if value.dim() > 0 and value.shape != parameters[index].shape:
                    raise ValueError(
                        f"{key} of parameter {index} has shape {tuple(value.shape)}, "
                        f"the parameter {tuple(parameters[index].shape)}"
                    )
        optimizer.load_state_dict(state[name])
    except (AttributeError, IndexError, KeyError, TypeError, ValueError) as error:
        raise ValueError(f"its {name} state does not fit the policy ({error})") from None
