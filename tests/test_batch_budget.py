"""``batch_unit: transitions``: each task's batch is whole episodes until K × horizon steps, as the paper's
code sampled. Tasks then hold different numbers of episodes; the empty episodes that pad them in a
meta-batch must change nothing the learner computes."""

import dataclasses

import gymnasium
import numpy as np
import pytest
import torch
from conftest import make_episode_batch, make_tiny_policy
from meta_step_helpers import tensors
from sampler_helpers import assert_same_episodes, one_torch_thread

import envs  # noqa: F401  (registers the env ids)
from metarl.adaptation import InnerStep
from metarl.algos.maml_trpo import MAMLTRPO
from metarl.config import ConfigError, TrainConfig, TRPOSettings
from metarl.episodes import concat_episodes, first_episodes_with_steps, stack_tasks
from metarl.policies import GaussianMLPPolicy, parameters_of
from metarl.samplers import VectorizedSampler
from metarl.samplers.budget import EpisodeBudget
from metarl.samplers.process import ProcessSampler

ANT_VEL = "metarl/AntVel-v0"


def test_first_episodes_with_steps_keeps_whole_episodes_up_to_the_first_that_reaches_the_budget():
    batch = make_episode_batch(0, [5, 3, 6, 2])
    assert first_episodes_with_steps(batch, 8).lengths_B.tolist() == [5, 3]
    kept = first_episodes_with_steps(batch, 9)
    assert kept.lengths_B.tolist() == [5, 3, 6]
    assert torch.equal(kept.rewards_TB, batch.rewards_TB[:, :3])
    trimmed = first_episodes_with_steps(batch, 1)
    assert trimmed.lengths_B.tolist() == [5] and trimmed.rewards_TB.shape == (5, 1)  # time trimmed to the longest
    assert first_episodes_with_steps(batch, 100).lengths_B.tolist() == [5, 3, 6, 2]


def test_concatenated_batches_keep_every_episode_in_order():
    first, second = make_episode_batch(0, [2, 4]), make_episode_batch(1, [7])
    joined = concat_episodes([first, second])
    assert joined.lengths_B.tolist() == [2, 4, 7]
    assert torch.equal(joined.observations_TBO[:4, :2], first.observations_TBO)
    assert torch.equal(joined.observations_TBO[:, 2], second.observations_TBO[:, 0])
    assert torch.equal(joined.mask_TB.sum(0), torch.tensor([2.0, 4.0, 7.0], dtype=joined.mask_TB.dtype))


def test_stacking_tasks_with_fewer_episodes_pads_them_with_empty_ones():
    few, many = make_episode_batch(0, [3, 2]), make_episode_batch(1, [4, 1, 2])
    stacked = stack_tasks([few, many])
    assert stacked.rewards_TB.shape == (2, 4, 3)
    assert stacked.lengths_B.tolist() == [[3, 2, 0], [4, 1, 2]]
    assert stacked.mask_TB[0, :, 2].sum() == 0 and stacked.observations_TBO[0, :, 2].abs().sum() == 0
    assert torch.equal(stacked.rewards_TB[0, :3, :2], few.rewards_TB)


def with_empty_episode(batch):
    """``batch`` and one more episode of length 0 (what ``stack_tasks`` pads a task with)."""
    one = make_episode_batch(99, [1])
    empty = {f.name: getattr(one, f.name) * 0 for f in dataclasses.fields(one)}
    return concat_episodes([batch, dataclasses.replace(one, **empty)])


def test_mean_return_ignores_empty_episodes():
    batch = make_episode_batch(0, [3, 2])
    padded = with_empty_episode(batch)
    assert padded.num_episodes == 3 and padded.lengths_B.tolist() == [3, 2, 0]
    assert padded.mean_return() == pytest.approx(batch.mean_return(), rel=1e-12)


@pytest.mark.parametrize("curvature", ["r_operator", "gauss_newton"])
def test_padding_a_task_with_empty_episodes_changes_no_quantity_of_the_meta_update(synthetic_meta_batch, curvature):
    """Advantages, meta-gradient, surrogate, KL, curvature product and the TRPO step itself, padded or not."""
    support, query = synthetic_meta_batch
    padded_support = [[with_empty_episode(support[0][0])], support[1]]
    padded_query = [query[0], with_empty_episode(with_empty_episode(query[1]))]
    results = {}
    for name, (s, q) in {"plain": (support, query), "padded": (padded_support, padded_query)}.items():
        policy = make_tiny_policy()
        # Padding reorders sums (rounding of 1e-16); conjugate gradient and the line search amplify that
        # (to ~1e-11 here, with damping keeping the solve well conditioned), while a padded episode that
        # counted would move every quantity by percents.
        learner = MAMLTRPO(policy, InnerStep((0.3,)), TRPOSettings(cg_damping=0.1, curvature=curvature))
        assert learner.curvature.written_out == (curvature == "r_operator")
        data = tensors(learner, s, q)
        assert data.query.rewards_TB.shape[-1] == (3 if name == "plain" else 5)
        problem = learner.problem(data)
        vector = torch.linspace(-1, 1, sum(p.numel() for p in policy.parameters()), dtype=torch.float64)
        results[name] = {
            "support_advantages": data.support_advantages[0][..., :3],
            "query_advantages": data.query_advantages[..., :3],
            "gradient": problem.gradient,
            "surrogate_and_kl": torch.tensor(
                learner.evaluate(parameters_of(policy), data, problem.old), dtype=torch.float64
            ),
            "curvature": problem.curvature(vector),
            "step": torch.tensor(list(learner.step(data).values()), dtype=torch.float64),
            "updated": torch.cat([p.detach().flatten() for p in policy.parameters()]),
        }
    for key, value in results["plain"].items():
        torch.testing.assert_close(results["padded"][key], value, rtol=1e-8, atol=1e-10, msg=key)


def ant_problem(num_tasks):
    env = gymnasium.make(ANT_VEL)
    tasks = env.unwrapped.sample_tasks(num_tasks, np.random.default_rng(0))
    dims = (env.observation_space.shape[0], env.action_space.shape[0])
    env.close()
    policy = GaussianMLPPolicy(*dims, (16,), "relu", 1.0, generator=torch.Generator().manual_seed(0))
    return policy, tasks, [parameters_of(policy)] * num_tasks


def test_a_transition_budget_takes_whole_episodes_until_each_task_has_its_steps():
    """Ant episodes end early (a random Ant jumps out of its height range), so tasks need extra rounds."""
    policy, tasks, params = ant_problem(3)
    budget = EpisodeBudget(4, 800)
    sampler = VectorizedSampler(ANT_VEL, {}, policy, 200)
    with one_torch_thread():
        batches = budget.sample(sampler, tasks, params, (5, 1, 0, 0))
        again = budget.sample(sampler, tasks, params, (5, 1, 0, 0))
        first_round = sampler.sample(tasks, params, 4, (5, 1, 0, 0))
    sampler.close()
    assert_same_episodes(batches, again)
    for batch, first in zip(batches, first_round, strict=True):
        lengths = batch.lengths_B.tolist()
        assert sum(lengths) >= 800 > sum(lengths[:-1]), lengths  # the first whole episodes that reach it
        assert torch.equal(batch.lengths_B[:4], first.lengths_B)  # the first round is the episode budget's
    assert any(batch.num_episodes > 4 for batch in batches), "no task needed an extra round: the test tests nothing"
    assert any(min(batch.lengths_B.tolist()) < 200 for batch in batches)


def test_a_task_holds_at_most_twice_k_episodes_however_short_they_are():
    """Padding every task to the one with most episodes would let a task that falls over at once blow up
    the meta-batch (an AntGoal run was killed for memory): the bound keeps it within 2 × K episodes."""
    assert EpisodeBudget.of("transitions", 4, 200) == EpisodeBudget(4, 800, 8)
    assert EpisodeBudget.of("transitions", 4, 200).most_episodes == 8
    assert EpisodeBudget.of("episodes", 4, 200).most_episodes == 4
    batch = make_episode_batch(0, [5, 3, 6, 2])
    assert first_episodes_with_steps(batch, 100, max_episodes=3).lengths_B.tolist() == [5, 3, 6]
    policy, tasks, params = ant_problem(3)
    sampler = VectorizedSampler(ANT_VEL, {}, policy, 200)
    with one_torch_thread():
        bounded = EpisodeBudget(4, 800, 5).sample(sampler, tasks, params, (5, 1, 0, 0))
        unbounded = EpisodeBudget(4, 800).sample(sampler, tasks, params, (5, 1, 0, 0))
    sampler.close()
    assert max(b.num_episodes for b in unbounded) > 5, "no task needed more than 5 episodes: nothing bounded"
    for b, u in zip(bounded, unbounded, strict=True):
        assert b.num_episodes == min(u.num_episodes, 5)
        assert torch.equal(b.lengths_B, u.lengths_B[: b.num_episodes])


def test_where_no_episode_ends_early_a_transition_budget_is_the_episode_budget():
    """HalfCheetah's configs say 'transitions' as the paper's code did; their batches are K episodes exactly."""
    env = gymnasium.make("metarl/HalfCheetahVel-v0")
    tasks = env.unwrapped.sample_tasks(2, np.random.default_rng(0))
    policy = GaussianMLPPolicy(env.observation_space.shape[0], env.action_space.shape[0], (8,), "relu", 1.0)
    env.close()
    sampler = VectorizedSampler("metarl/HalfCheetahVel-v0", {}, policy, 200)
    with one_torch_thread():
        by_steps = EpisodeBudget.of("transitions", 3, 200).sample(sampler, tasks, [parameters_of(policy)] * 2, (1, 2))
        by_episodes = EpisodeBudget.of("episodes", 3, 200).sample(sampler, tasks, [parameters_of(policy)] * 2, (1, 2))
    sampler.close()
    assert_same_episodes(by_episodes, by_steps)
    assert [b.lengths_B.tolist() for b in by_steps] == [[200] * 3] * 2


@pytest.mark.slow
def test_worker_processes_return_the_same_transition_budgeted_batches():
    """Extra rounds sample few episodes per task, split unevenly between workers: the in-process sampler and
    2 worker processes must still return the same episodes bit for bit. A random Ant is chaotic, so any
    last-bit difference in the policy's forward (see rollout.MIN_GROUP_ROWS) would show as other episodes."""
    policy, tasks, params = ant_problem(3)
    budget = EpisodeBudget(4, 800)
    samplers = {"vectorized": VectorizedSampler(ANT_VEL, {}, policy, 200)}
    samplers["process"] = ProcessSampler(ANT_VEL, {}, policy, 200, num_workers=2)
    try:
        with one_torch_thread():
            batches = {name: budget.sample(s, tasks, params, (5, 1, 0, 0)) for name, s in samplers.items()}
            uneven = {name: s.sample(tasks, params, 3, (5, 1, 0, 9)) for name, s in samplers.items()}
    finally:
        for sampler in samplers.values():
            sampler.close()
    assert any(batch.num_episodes > 4 for batch in batches["vectorized"])
    assert_same_episodes(batches["vectorized"], batches["process"])
    assert_same_episodes(uneven["vectorized"], uneven["process"])  # 9 episodes: shares of 5 and 4


def test_transitions_refuse_a_subsampled_curvature():
    """Subsampling takes a fraction of each task's episodes, which assumes the same count in every task."""
    config = TrainConfig(batch_unit="transitions")
    config.trpo.curvature_subsample = 0.5
    with pytest.raises(ConfigError, match="curvature_subsample must be 1.0 with batch_unit: transitions"):
        config.validate()
    with pytest.raises(ConfigError, match="batch_unit must be 'episodes' or 'transitions'"):
        TrainConfig(batch_unit="steps").validate()
