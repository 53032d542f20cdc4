"""Advantages as the learner uses them: GAE against a baseline fitted on the same episodes, normalised."""

from __future__ import annotations

import torch

from metarl.baseline import linear_baseline_values
from metarl.episodes import EpisodeBatch
from metarl.returns import gae, normalize


def estimate_advantages(episodes: EpisodeBatch, gamma: float, gae_lambda: float) -> torch.Tensor:
    """Normalised GAE(γ, λ) against a linear baseline fitted on these episodes alone, per task: [..., T, B]."""
    values_TB = linear_baseline_values(episodes, gamma)
    return normalize(gae(episodes.rewards_TB, values_TB, episodes.mask_TB, gamma, gae_lambda), episodes.mask_TB)
