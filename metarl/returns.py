"""Returns, generalised advantage estimation and normalisation on masked time-major tensors.

Every function takes [..., T, B] tensors: one task's batch [T, B], or a stacked meta-batch [K, T, B]
whose tasks are then processed together (per-task statistics, one loop over time for all tasks).
"""

from __future__ import annotations

import torch


def discounted_returns(rewards_TB: torch.Tensor, mask_TB: torch.Tensor, gamma: float) -> torch.Tensor:
    """Reward-to-go: R_t = r_t + γ R_{t+1}, zero after each episode's end."""
    returns_TB = torch.zeros_like(rewards_TB)
    running_B = torch.zeros_like(rewards_TB[..., 0, :])
    for t in reversed(range(rewards_TB.shape[-2])):
        running_B = (rewards_TB[..., t, :] + gamma * running_B) * mask_TB[..., t, :]
        returns_TB[..., t, :] = running_B
    return returns_TB


def gae(
    rewards_TB: torch.Tensor, values_TB: torch.Tensor, mask_TB: torch.Tensor, gamma: float, lam: float
) -> torch.Tensor:
    """GAE(γ, λ) (Schulman et al., 2016). The value after an episode's last step counts as zero."""
    values_TB = values_TB * mask_TB
    next_values_TB = torch.cat([values_TB[..., 1:, :], torch.zeros_like(values_TB[..., :1, :])], dim=-2)
    deltas_TB = (rewards_TB + gamma * next_values_TB - values_TB) * mask_TB
    return discounted_returns(deltas_TB, mask_TB, gamma * lam)


def masked_mean(values: torch.Tensor, mask: torch.Tensor, dims: tuple[int, ...] | None = None) -> torch.Tensor:
    """Mean over the valid entries, over all axes or only over ``dims`` (e.g. (-2, -1) for per-task means)."""
    if dims is None:
        return (values * mask).sum() / mask.sum()
    return (values * mask).sum(dims) / mask.sum(dims)


def normalize(advantages_TB: torch.Tensor, mask_TB: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Zero mean, unit standard deviation over each task's valid steps; padding stays zero."""
    mean = masked_mean(advantages_TB, mask_TB, dims=(-2, -1))[..., None, None]
    variance = masked_mean((advantages_TB - mean) ** 2, mask_TB, dims=(-2, -1))[..., None, None]
    return (advantages_TB - mean) / (variance.sqrt() + eps) * mask_TB
