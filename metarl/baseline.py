"""Linear feature baseline (Duan et al., 2016), fitted afresh on each task's episodes.

Works on one task's batch [T, B, ...] or a stacked meta-batch [K, T, B, ...]: each task gets its own
fit, all solved together.
"""

from __future__ import annotations

import torch

from metarl.episodes import EpisodeBatch
from metarl.returns import discounted_returns


class BaselineFitError(RuntimeError):
    pass


def features(observations_TBO: torch.Tensor, mask_TB: torch.Tensor, time_scale: float = 100.0) -> torch.Tensor:
    """[obs, obs², t, t², t³, 1] per step, t scaled so the cubic stays well conditioned; zero on padding."""
    num_steps = mask_TB.shape[-2]
    t = torch.arange(num_steps, dtype=observations_TBO.dtype, device=observations_TBO.device) / time_scale
    t_TB1 = t[:, None, None].expand(*mask_TB.shape, 1)
    obs = observations_TBO.clamp(-10, 10)
    features_TBF = torch.cat([obs, obs**2, t_TB1, t_TB1**2, t_TB1**3, torch.ones_like(t_TB1)], dim=-1)
    return features_TBF * mask_TB[..., None]


def fit_linear(
    features_NF: torch.Tensor, targets_N: torch.Tensor, reg_coeff: float = 1e-5, max_tries: int = 6
) -> torch.Tensor:
    """Ridge regression in float64 ([..., N, F] → [..., F]), raising a fit's ridge tenfold until it is well posed.

    Raises instead of returning a wrong fit when no ridge in range makes a system solvable.
    """
    x = features_NF.double()
    gram = x.mT @ x
    rhs = (x.mT @ targets_N.double()[..., None])[..., 0]
    eye = torch.eye(gram.shape[-1], dtype=gram.dtype, device=gram.device)
    ridge = torch.full(gram.shape[:-2], reg_coeff, dtype=gram.dtype, device=gram.device)
    weights = torch.full_like(rhs, float("nan"))
    unsolved = torch.ones(gram.shape[:-2], dtype=torch.bool, device=gram.device)
    for _ in range(max_tries):
        cholesky, info = torch.linalg.cholesky_ex(gram + ridge[..., None, None] * eye)
        solved = torch.cholesky_solve(rhs[..., None], cholesky)[..., 0]
        good = unsolved & (info == 0) & torch.isfinite(solved).all(-1)
        weights = torch.where(good[..., None], solved, weights)
        unsolved &= ~good
        if not unsolved.any():
            return weights.to(features_NF.dtype)
        ridge = torch.where(unsolved, ridge * 10, ridge)
    raise BaselineFitError(
        f"baseline fit failed with ridge up to {reg_coeff * 10 ** (max_tries - 1):g}; "
        "observations may contain NaN or inf"
    )


def linear_baseline_values(episodes: EpisodeBatch, gamma: float, reg_coeff: float = 1e-5) -> torch.Tensor:
    """Fit the baseline to the episodes' discounted returns and return its predictions, [..., T, B]."""
    features_TBF = features(episodes.observations_TBO, episodes.mask_TB)
    returns_TB = discounted_returns(episodes.rewards_TB, episodes.mask_TB, gamma)
    weights_F = fit_linear(features_TBF.flatten(-3, -2), returns_TB.flatten(-2), reg_coeff)
    return (features_TBF @ weights_F[..., None, :, None])[..., 0] * episodes.mask_TB
