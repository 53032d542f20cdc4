"""Returns, GAE and normalisation against hand-computed numbers on short masked episodes."""

import pytest
import torch

from metarl.returns import discounted_returns, gae, normalize

GAMMA, LAMBDA = 0.9, 0.8


@pytest.fixture
def two_episodes():
    """Episode 0 has 3 steps, episode 1 has 2; the padding step holds garbage that must be ignored."""
    rewards_TB = torch.tensor([[1.0, 4.0], [2.0, 5.0], [3.0, 7.0]], dtype=torch.float64)
    values_TB = torch.tensor([[0.5, 2.0], [1.0, 2.5], [1.5, 9.0]], dtype=torch.float64)
    mask_TB = torch.tensor([[1.0, 1.0], [1.0, 1.0], [1.0, 0.0]], dtype=torch.float64)
    return rewards_TB, values_TB, mask_TB


def test_discounted_returns_by_hand(two_episodes):
    """Reward-to-go R_t = r_t + γ R_{t+1}, stopping at each episode's end; zero on padding."""
    rewards_TB, _, mask_TB = two_episodes
    # episode 0: R2 = 3, R1 = 2 + 0.9·3 = 4.7, R0 = 1 + 0.9·4.7 = 5.23
    # episode 1: R1 = 5, R0 = 4 + 0.9·5 = 8.5; the padding reward 7 is not counted
    expected = torch.tensor([[5.23, 8.5], [4.7, 5.0], [3.0, 0.0]], dtype=torch.float64)
    torch.testing.assert_close(discounted_returns(rewards_TB, mask_TB, GAMMA), expected)


def test_gae_by_hand(two_episodes):
    """GAE(γ=0.9, λ=0.8) with the value after the last step taken as zero (not the padding's value)."""
    rewards_TB, values_TB, mask_TB = two_episodes
    # γλ = 0.72
    # episode 0: δ2 = 3 − 1.5 = 1.5;  δ1 = 2 + 0.9·1.5 − 1.0 = 2.35;  δ0 = 1 + 0.9·1.0 − 0.5 = 1.4
    #            A2 = 1.5;  A1 = 2.35 + 0.72·1.5 = 3.43;  A0 = 1.4 + 0.72·3.43 = 3.8696
    # episode 1: δ1 = 5 − 2.5 = 2.5 (the padding value 9 is not bootstrapped);  δ0 = 4 + 0.9·2.5 − 2.0 = 4.25
    #            A1 = 2.5;  A0 = 4.25 + 0.72·2.5 = 6.05
    expected = torch.tensor([[3.8696, 6.05], [3.43, 2.5], [1.5, 0.0]], dtype=torch.float64)
    torch.testing.assert_close(gae(rewards_TB, values_TB, mask_TB, GAMMA, LAMBDA), expected)


def test_gae_lambda_one_is_returns_minus_values(two_episodes):
    """With λ = 1, GAE telescopes to the discounted return minus the baseline on valid steps."""
    rewards_TB, values_TB, mask_TB = two_episodes
    expected = (discounted_returns(rewards_TB, mask_TB, GAMMA) - values_TB) * mask_TB
    torch.testing.assert_close(gae(rewards_TB, values_TB, mask_TB, GAMMA, 1.0), expected)


def test_gae_lambda_zero_is_one_step_td_error(two_episodes):
    """With λ = 0, GAE is the one-step TD error r_t + γV_{t+1} − V_t."""
    rewards_TB, values_TB, mask_TB = two_episodes
    expected = torch.tensor([[1.4, 4.25], [2.35, 2.5], [1.5, 0.0]], dtype=torch.float64)
    torch.testing.assert_close(gae(rewards_TB, values_TB, mask_TB, GAMMA, 0.0), expected)


def test_normalize_on_valid_steps_only():
    """Normalised advantages have mean 0 and std 1 over the valid steps, and padding stays exactly zero."""
    generator = torch.Generator().manual_seed(0)
    advantages_TB = 3.0 + 5.0 * torch.randn(7, 4, generator=generator, dtype=torch.float64)
    lengths = torch.tensor([7, 2, 5, 1])
    mask_TB = (torch.arange(7)[:, None] < lengths[None, :]).double()
    advantages_TB[mask_TB == 0] = 100.0  # garbage on padding must not shift the statistics

    normalized_TB = normalize(advantages_TB, mask_TB)

    valid = normalized_TB[mask_TB.bool()]
    assert valid.mean().item() == pytest.approx(0.0, abs=1e-12)
    assert valid.std(unbiased=False).item() == pytest.approx(1.0, abs=1e-6)
    assert torch.equal(normalized_TB[~mask_TB.bool()], torch.zeros(int((mask_TB == 0).sum()), dtype=torch.float64))
    # an affine map of the valid values: order and relative spacing are kept
    expected = (advantages_TB[mask_TB.bool()] - advantages_TB[mask_TB.bool()].mean()) / advantages_TB[
        mask_TB.bool()
    ].std(unbiased=False)
    torch.testing.assert_close(valid, expected, rtol=1e-6, atol=1e-6)
