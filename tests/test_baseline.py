"""The linear feature baseline: exact on linear targets, loud on NaN input."""

from dataclasses import replace

import pytest
import torch

from metarl.baseline import BaselineFitError, features, fit_linear, linear_baseline_values
from metarl.episodes import EpisodeBatch


def test_fit_linear_recovers_known_weights():
    """Ridge regression without a ridge recovers the weights of a noiseless linear target."""
    generator = torch.Generator().manual_seed(0)
    features_NF = torch.randn(50, 6, generator=generator, dtype=torch.float64)
    weights_F = torch.tensor([1.5, -2.0, 0.25, 3.0, 0.0, -0.75], dtype=torch.float64)
    fitted = fit_linear(features_NF, features_NF @ weights_F, reg_coeff=0.0)
    torch.testing.assert_close(fitted, weights_F, rtol=1e-10, atol=1e-10)


def test_linear_baseline_predicts_returns_that_are_linear_in_its_features(episode_batch):
    """When the discounted returns are a linear function of the features, the baseline reproduces them."""
    gamma = 0.9
    batch = episode_batch(3, [8, 5, 8, 3])
    features_TBF = features(batch.observations_TBO, batch.mask_TB)
    weights_F = torch.linspace(-1.0, 1.0, features_TBF.shape[-1], dtype=torch.float64)
    returns_TB = (features_TBF @ weights_F) * batch.mask_TB
    # rewards that produce exactly these returns: r_t = R_t − γ R_{t+1}
    next_returns_TB = torch.cat([returns_TB[1:], torch.zeros_like(returns_TB[:1])])
    rewards_TB = (returns_TB - gamma * next_returns_TB) * batch.mask_TB
    linear_batch = EpisodeBatch(batch.observations_TBO, batch.actions_TBA, rewards_TB, batch.mask_TB, batch.lengths_B)

    values_TB = linear_baseline_values(linear_batch, gamma)

    torch.testing.assert_close(values_TB, returns_TB, rtol=1e-3, atol=1e-3)
    assert torch.equal(values_TB[batch.mask_TB == 0], torch.zeros_like(values_TB[batch.mask_TB == 0]))


@pytest.mark.parametrize("where", ["features", "targets"])
def test_fit_linear_raises_on_nan(where):
    """NaN features or targets make the fit raise BaselineFitError instead of returning garbage weights."""
    features_NF = torch.randn(20, 4, dtype=torch.float64)
    targets_N = torch.randn(20, dtype=torch.float64)
    (features_NF[3] if where == "features" else targets_N)[1] = float("nan")
    with pytest.raises(BaselineFitError):
        fit_linear(features_NF, targets_N)


@pytest.mark.parametrize("field", ["observations_TBO", "rewards_TB"])
def test_linear_baseline_raises_on_nan_episodes(episode_batch, field):
    """A NaN observation or reward reaching the baseline raises rather than producing NaN advantages."""
    batch = episode_batch(4, [5, 5])
    broken = getattr(batch, field).clone()
    broken[2, 0] = float("nan")
    with pytest.raises(BaselineFitError):
        linear_baseline_values(replace(batch, **{field: broken}), 0.99)


def test_stacked_tasks_get_the_advantages_of_their_own_fits(episode_batch):
    """A stacked meta-batch (tasks of different lengths, time-padded) gets each task's own baseline fit,
    GAE and normalisation: the same numbers as task by task."""
    from metarl.advantages import estimate_advantages
    from metarl.episodes import stack_tasks

    batches = [episode_batch(0, [7, 3, 7]), episode_batch(1, [4, 5, 2]), episode_batch(2, [9, 9, 1])]
    stacked = estimate_advantages(stack_tasks(batches), 0.99, 0.95)
    assert stacked.shape == (3, 9, 3)
    for k, batch in enumerate(batches):
        alone = estimate_advantages(batch, 0.99, 0.95)
        steps = alone.shape[0]
        torch.testing.assert_close(stacked[k, :steps], alone, rtol=1e-9, atol=1e-9)
        assert torch.equal(stacked[k, steps:], torch.zeros_like(stacked[k, steps:]))


def test_a_stacked_fit_with_one_broken_task_raises():
    """One task's NaN targets fail the whole fit loudly; the other task's good fit does not hide it."""
    generator = torch.Generator().manual_seed(3)
    features_KNF = torch.randn(2, 30, 4, generator=generator, dtype=torch.float64)
    targets_KN = torch.randn(2, 30, generator=generator, dtype=torch.float64)
    assert torch.isfinite(fit_linear(features_KNF, targets_KN)).all()
    targets_KN[1, 5] = float("nan")
    with pytest.raises(BaselineFitError):
        fit_linear(features_KNF, targets_KN)
