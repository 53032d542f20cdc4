"""The vectorized sampler: seeded episodes, consistent masks, and one batched forward for all tasks."""

import math

import numpy as np
import pytest
import torch
from torch.func import functional_call

from metarl.policies import GaussianMLPPolicy, parameters_of
from metarl.samplers.rollout import BatchedPolicy

HORIZON = 25
TASKS = [{"goal": (0.0, 0.0)}, {"goal": (0.3, -0.2)}, {"goal": (-0.1, 0.4)}]


@pytest.fixture
def policy():
    return GaussianMLPPolicy(2, 2, (8,), "tanh", 1.0, generator=torch.Generator().manual_seed(0))


def per_task_params(policy):
    """Different parameters per task; task 0 acts almost deterministically near zero, so it often ends early."""
    params = []
    for task_index in range(len(TASKS)):
        generator = torch.Generator().manual_seed(100 + task_index)
        task_params = {
            n: p.detach() + 0.3 * torch.randn(p.shape, generator=generator) for n, p in parameters_of(policy).items()
        }
        params.append(task_params)
    params[0] = {n: torch.zeros_like(p) for n, p in params[0].items()}
    params[0]["log_std"] = torch.full((2,), math.log(0.06))  # moves 0.1·a of std 0.006: the goal box, sometimes
    return params


def sample(sampler, policy, seed, episodes_per_task=6):
    return sampler.sample(TASKS, per_task_params(policy), episodes_per_task, seed)


def assert_batches_equal(first, second):
    for a, b in zip(first, second, strict=True):
        for name in ("observations_TBO", "actions_TBA", "rewards_TB", "mask_TB", "lengths_B"):
            assert torch.equal(getattr(a, name), getattr(b, name)), name


def test_same_seed_same_episodes(navigation_sampler, policy):
    """Two samplers with one seed key return bit-identical episodes; another key returns different ones."""
    first = sample(navigation_sampler(policy, HORIZON), policy, (1, 1, 0, 0))
    second = sample(navigation_sampler(policy, HORIZON), policy, (1, 1, 0, 0))
    assert_batches_equal(first, second)
    other = sample(navigation_sampler(policy, HORIZON), policy, (1, 1, 0, 1))
    assert not torch.equal(first[1].actions_TBA[0], other[1].actions_TBA[0])


def test_episode_seeds_do_not_depend_on_batch_size(navigation_sampler, policy):
    """Episode e of task i is the same whether 3 or 6 episodes per task are sampled (per-episode seeds)."""
    sampler = navigation_sampler(policy, HORIZON)
    few, many = sample(sampler, policy, (2, 1, 3, 0), 3), sample(sampler, policy, (2, 1, 3, 0), 6)
    for small, large in zip(few, many, strict=True):
        steps = small.rewards_TB.shape[0]
        assert torch.equal(small.actions_TBA, large.actions_TBA[:steps, :3])
        assert torch.equal(small.lengths_B, large.lengths_B[:3])


def test_masks_and_lengths_match_early_termination(navigation_sampler, policy):
    """Lengths end exactly at termination (within 0.01 of the goal on both axes) or the horizon; padding is
    masked and zero."""
    batches = sample(navigation_sampler(policy, HORIZON), policy, (3, 1, 0, 0), 8)
    early_ends = 0
    for task, batch in zip(TASKS, batches, strict=True):
        lengths = batch.lengths_B.numpy()
        steps = batch.rewards_TB.shape[0]
        assert steps == lengths.max() and 1 <= lengths.min() and lengths.max() <= HORIZON
        expected_mask = (np.arange(steps)[:, None] < lengths[None, :]).astype(np.float32)
        np.testing.assert_array_equal(batch.mask_TB.numpy(), expected_mask)
        padding = batch.mask_TB == 0
        assert (batch.rewards_TB[padding] == 0).all()
        assert (batch.observations_TBO[padding] == 0).all() and (batch.actions_TBA[padding] == 0).all()
        assert batch.num_steps == lengths.sum()
        goal = np.array(task["goal"])
        for b, length in enumerate(lengths):
            rewards = batch.rewards_TB[:length, b].numpy()
            observations = batch.observations_TBO[:length, b].numpy().astype(np.float64)
            actions = batch.actions_TBA[:length, b].numpy().astype(np.float64)
            # the recorded observations follow from the recorded actions, scaled by 0.1 and clipped, from the origin
            positions = np.cumsum(0.1 * np.clip(actions, -1.0, 1.0), axis=0)
            np.testing.assert_allclose(observations[1:], positions[:-1], atol=1e-5)
            np.testing.assert_array_equal(observations[0], [0.0, 0.0])
            np.testing.assert_allclose(rewards, -np.linalg.norm(positions - goal, axis=-1), atol=1e-5)
            reached = np.all(np.abs(positions - goal) < 0.01, axis=-1)  # within 0.01 on both axes
            assert not reached[:-1].any(), "an episode ran past reaching its goal"
            if length < HORIZON:
                assert reached[-1], "an episode ended early without reaching its goal"
                early_ends += 1
    all_lengths = torch.cat([batch.lengths_B for batch in batches])
    assert 0 < early_ends < len(all_lengths), "the fixture should mix early-terminated and full episodes"
    assert len(set(batches[0].lengths_B.tolist())) > 1, "task 0's episodes should end at different steps"


def test_batched_forward_matches_per_task_functional_call(policy):
    """BatchedPolicy.mean_std (one vmapped forward) equals functional_call with each env's task parameters."""
    params = per_task_params(policy)
    task_of_env = np.array([1, 0, 2, 1, 1, 0, 2])  # unsorted, uneven groups
    observations_NO = np.random.default_rng(0).normal(size=(len(task_of_env), 2)).astype(np.float32)

    mean_NA, std_NA = BatchedPolicy(policy, params, task_of_env).mean_std(observations_NO)

    for n, task_index in enumerate(task_of_env):
        with torch.no_grad():
            distribution = functional_call(policy, params[task_index], (torch.from_numpy(observations_NO[n]),))
        np.testing.assert_allclose(mean_NA[n], distribution.mean.numpy(), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(std_NA[n], distribution.stddev.numpy(), rtol=1e-6)
