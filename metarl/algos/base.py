"""What the run loop asks of a meta-learner, and what the meta-steps share.

The loop (``metarl.trainer``) samples a meta-batch with the learner's inner step, hands the stacked
episodes to ``step`` and logs the statistics it returns under ``meta/``; checkpoints carry
``state_dict()`` so that a resumed run continues with the optimiser state it stopped with. Sampling,
the inner step, evaluation, checkpoints, resume and TensorBoard are the loop's, shared by every
algorithm; an algorithm is one file in this package and one entry in ``metarl.experiment.build_learner``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import torch
from torch.distributions import Distribution

from metarl.adaptation import InnerStep
from metarl.meta_batch import MetaBatchTensors
from metarl.policies import diagonal_gaussian, gaussian_parameters


class MetaLearner(Protocol):
    """A meta-learner as the run loop sees it."""

    inner: InnerStep
    """The inner step, shared with the sampling that collects the meta-batch."""
    device: torch.device
    """Where the meta-step runs (the policy's device)."""

    def step(self, data: MetaBatchTensors) -> dict[str, float]:
        """Update the policy from one meta-batch; its statistics, logged as ``meta/<key>``. ``kl`` is among them:
        the mean KL between the adapted policies before and after the update, on the query states (the
        progress line's ``kl``)."""
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
        loc, scale = gaussian_parameters(distribution)
        fixed = diagonal_gaussian(loc.detach(), scale.detach())
        return OldPolicy(fixed.log_prob(data.query.actions_TBA), fixed)
