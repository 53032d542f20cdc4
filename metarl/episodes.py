"""Episode batches: time-major padded tensors with a mask, immutable once built.

Shape suffixes name the axes: T time, B episodes, O observation dims, A action dims. A meta-batch
stacks the batches of K tasks along a new leading axis (``stack_tasks``), so its fields are
[K, T, B, ...]: the suffixes always name the trailing axes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields

import torch
import torch.nn.functional as F


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
        return self.rewards_TB.shape[-1]

    @property
    def num_steps(self) -> int:
        """Environment steps actually taken (padding excluded)."""
        return int(self.lengths_B.sum())

    def mean_return(self) -> float:
        """Mean undiscounted return per episode."""
        return float(self.rewards_TB.sum(0).mean())

    def to(self, device: torch.device | str | None = None, dtype: torch.dtype | None = None) -> EpisodeBatch:
        """On another device, and/or with another floating-point dtype (lengths stay integers)."""
        moved = {}
        for f in fields(self):
            tensor = getattr(self, f.name)
            moved[f.name] = tensor.to(device, dtype if tensor.is_floating_point() else None)
        return EpisodeBatch(**moved)

    def select_episodes(self, index: torch.Tensor) -> EpisodeBatch:
        """The episodes at ``index`` along the B axis, for one task's batch or a stacked meta-batch alike."""
        selected = {}
        for f in fields(self):
            axes = f.name.rsplit("_", 1)[1]  # the shape suffix, e.g. "TBO"
            selected[f.name] = getattr(self, f.name).index_select(axes.index("B") - len(axes), index)
        return EpisodeBatch(**selected)


def _pad_time(tensor: torch.Tensor, steps: int) -> torch.Tensor:
    """Zero-pad the time axis (first axis) to ``steps``."""
    padding = [0, 0] * (tensor.dim() - 1) + [0, steps - tensor.shape[0]]
    return F.pad(tensor, padding)


def stack_tasks(batches: Sequence[EpisodeBatch]) -> EpisodeBatch:
    """Stack per-task batches (same episode count) into one [K, T, B, ...] batch, padding time to the longest."""
    steps = max(batch.rewards_TB.shape[0] for batch in batches)
    stacked = {}
    for f in fields(EpisodeBatch):
        tensors = [getattr(batch, f.name) for batch in batches]
        if f.name != "lengths_B":
            tensors = [_pad_time(t, steps) for t in tensors]
        stacked[f.name] = torch.stack(tensors)
    return EpisodeBatch(**stacked)
