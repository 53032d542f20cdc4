"""Episode batches: time-major padded tensors with a mask, immutable once built.

Shape suffixes name the axes: T time, B episodes, O observation dims, A action dims.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import torch


@dataclass(frozen=True)
class EpisodeBatch:
    """The episodes of one task. Steps after an episode's end are zero and masked out."""

    observations_TBO: torch.Tensor
    actions_TBA: torch.Tensor
    rewards_TB: torch.Tensor
    mask_TB: torch.Tensor
    lengths_B: torch.Tensor

    @property
    def num_episodes(self) -> int:
        return self.rewards_TB.shape[1]

    @property
    def num_steps(self) -> int:
        """Environment steps actually taken (padding excluded)."""
        return int(self.lengths_B.sum())

    def mean_return(self) -> float:
        """Mean undiscounted return per episode."""
        return float(self.rewards_TB.sum(0).mean())

    def to(self, device: torch.device | str) -> EpisodeBatch:
        return EpisodeBatch(**{f.name: getattr(self, f.name).to(device) for f in fields(self)})
