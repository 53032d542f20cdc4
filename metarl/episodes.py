"""Episode batches: time-major padded tensors with a mask, immutable once built.

Shape suffixes name the axes: T time, B episodes, O observation dims, A action dims. A meta-batch
stacks the batches of K tasks along a new leading axis (``stack_tasks``), so its fields are
[K, T, B, ...]: the suffixes always name the trailing axes. Tasks may hold different numbers of
episodes (with ``batch_unit: transitions``); ``stack_tasks`` then pads the B axis with empty episodes,
whose mask is all zero, so every masked mean and fit ignores them as it ignores time padding.
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
        """Mean undiscounted return per episode of one task's batch (empty padding episodes excluded)."""
        return float(self.rewards_TB.sum(0)[self.lengths_B > 0].mean())

    def to(self, device: torch.device | str | None = None, dtype: torch.dtype | None = None) -> EpisodeBatch:
        """On another device, and/or with another floating-point dtype (lengths stay integers)."""
        moved = {}
        for f in fields(self):
            tensor = getattr(self, f.name)
            moved[f.name] = tensor.to(device, dtype if tensor.is_floating_point() else None)
        return EpisodeBatch(**moved)

    def select_episodes(self, index: torch.Tensor) -> EpisodeBatch:
        """The episodes at ``index`` along the B axis, for one task's batch or a stacked meta-batch alike."""
        return EpisodeBatch(
            **{f.name: getattr(self, f.name).index_select(episode_axis(f.name), index) for f in fields(self)}
        )


def episode_axis(field_name: str) -> int:
    """The B axis of a field, counted from the end so it holds for one task and a meta-batch alike."""
    axes = field_name.rsplit("_", 1)[1]  # the shape suffix, e.g. "TBO"
    return axes.index("B") - len(axes)


def _pad_time(tensor: torch.Tensor, steps: int) -> torch.Tensor:
    """Zero-pad the time axis (first axis) to ``steps``."""
    padding = [0, 0] * (tensor.dim() - 1) + [0, steps - tensor.shape[0]]
    return F.pad(tensor, padding)


def _pad_episodes(tensor: torch.Tensor, axis: int, episodes: int) -> torch.Tensor:
    """Zero-pad the episode axis ``axis`` (negative) to ``episodes``: empty episodes (length 0, mask 0)."""
    padding = [0, 0] * (-axis - 1) + [0, episodes - tensor.shape[axis]]
    return F.pad(tensor, padding)


def _padded(batch: EpisodeBatch, steps: int, episodes: int) -> dict[str, torch.Tensor]:
    """One task's fields padded to ``steps`` time steps and ``episodes`` episodes."""
    padded = {}
    for f in fields(EpisodeBatch):
        tensor = getattr(batch, f.name)
        if f.name != "lengths_B":
            tensor = _pad_time(tensor, steps)
        padded[f.name] = _pad_episodes(tensor, episode_axis(f.name), episodes)
    return padded


def stack_tasks(batches: Sequence[EpisodeBatch]) -> EpisodeBatch:
    """Stack per-task batches into one [K, T, B, ...] batch, padding time to the longest episode and the
    episode axis to the task with most episodes (no padding, and the same tensors, when all tasks agree)."""
    steps = max(batch.rewards_TB.shape[0] for batch in batches)
    episodes = max(batch.num_episodes for batch in batches)
    padded = [_padded(batch, steps, episodes) for batch in batches]
    return EpisodeBatch(**{f.name: torch.stack([p[f.name] for p in padded]) for f in fields(EpisodeBatch)})


def concat_episodes(batches: Sequence[EpisodeBatch]) -> EpisodeBatch:
    """One task's batches side by side along the episode axis, in order, time padded to the longest."""
    steps = max(batch.rewards_TB.shape[0] for batch in batches)
    padded = [_padded(batch, steps, batch.num_episodes) for batch in batches]
    return EpisodeBatch(
        **{f.name: torch.cat([p[f.name] for p in padded], dim=episode_axis(f.name)) for f in fields(EpisodeBatch)}
    )


def first_episodes_with_steps(batch: EpisodeBatch, min_steps: int, max_episodes: int | None = None) -> EpisodeBatch:
    """One task's first whole episodes that together hold at least ``min_steps`` steps (all of them if
    they hold fewer; no more than ``max_episodes``), time trimmed to the longest kept: how the MAML paper's
    code sized its batches."""
    reached = torch.nonzero(batch.lengths_B.cumsum(0) >= min_steps)
    kept = int(reached[0]) + 1 if len(reached) else batch.num_episodes
    kept = kept if max_episodes is None else min(kept, max_episodes)
    selected = batch.select_episodes(torch.arange(kept))
    steps = int(selected.lengths_B.max())
    return EpisodeBatch(
        **{
            f.name: getattr(selected, f.name) if f.name == "lengths_B" else getattr(selected, f.name)[:steps]
            for f in fields(EpisodeBatch)
        }
    )
