"""The fast curvature products (Gauss-Newton, the written-out R-operator) are the exact KL Hessian-vector
product at the current θ: each is the one a learner's step takes (``MAMLTRPO.problem``), checked against double
backprop."""

import dataclasses

import numpy as np
import pytest
import torch
from meta_step_helpers import double_backprop_curvature, random_vector, tensors

from metarl.adaptation import InnerStep
from metarl.algos.maml_trpo import MAMLTRPO
from metarl.config import ConfigError, TrainConfig, TRPOSettings
from metarl.episodes import EpisodeBatch, stack_tasks
from metarl.experiment import build_experiment
from metarl.meta_batch import collect_meta_batch
from metarl.optim import gauss_newton_product, hessian_vector_product
from metarl.policies import GaussianMLPPolicy, parameters_of
from metarl.samplers.budget import EpisodeBudget


@pytest.fixture(scope="module")
def navigation_meta_batch():
    config = TrainConfig(meta_batch_size=3, episodes_per_task=4, hidden_sizes=[16, 16], horizon=20, num_steps=2)
    experiment = build_experiment(config)
    tasks = experiment.tasks.sample_tasks(3, np.random.default_rng(0))
    policy = experiment.policy
    batch = collect_meta_batch(
        experiment.sampler,
        policy,
        parameters_of(policy),
        tasks,
        budget=EpisodeBudget(4),
        inner=experiment.learner.inner,
        seed=(0, 1, 0),
    )
    experiment.close()
    support = [[b.to(dtype=torch.float64) for b in task] for task in batch.support]
    return policy.double(), support, [b.to(dtype=torch.float64) for b in batch.query]


@pytest.mark.parametrize("first_order", [False, True])
def test_gauss_newton_equals_double_backprop(navigation_meta_batch, first_order):
    """The Gauss-Newton product is the KL's Hessian (float64, through two inner steps)."""
    policy, support, query = navigation_meta_batch
    vector = random_vector(policy, 0)
    learner = MAMLTRPO(
        policy,
        InnerStep.repeated(0.1, 2, first_order=first_order),
        trpo=TRPOSettings(cg_damping=0.0, curvature="gauss_newton"),
    )
    data = tensors(learner, support, query)
    reference = double_backprop_curvature(learner, data)(vector)
    assert reference.abs().max() > 1e-6
    torch.testing.assert_close(learner.problem(data).curvature(vector), reference, rtol=1e-7, atol=1e-10)


def one_step_learner(policy, method, first_order=False, **settings):
    return MAMLTRPO(
        policy,
        InnerStep((0.3,), first_order=first_order),
        trpo=TRPOSettings(**{"cg_damping": 0.0, "curvature": method, **settings}),
    )


def navigation_policy(nonlinearity, log_std):
    """A fresh float64 policy of the navigation shapes with the given nonlinearity and log-std."""
    fresh = GaussianMLPPolicy(2, 2, (16, 16), nonlinearity, min_std=1e-3, generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        fresh.log_std.copy_(torch.tensor(log_std))
    return fresh.double()


@pytest.mark.parametrize("nonlinearity", ["relu", "tanh"])
@pytest.mark.parametrize("first_order", [False, True])
@pytest.mark.parametrize("log_std", [[0.3, -0.5], [-8.0, 0.1]], ids=["free", "clamped"])
def test_written_out_product_equals_double_backprop(navigation_meta_batch, nonlinearity, first_order, log_std):
    """The R-operator product by hand (task by task) is the KL Hessian-vector product through the inner step:
    ReLU and tanh (whose φ'' enters), second and first order, with one log-std at its clamp (no gradient)."""
    _, support, query = navigation_meta_batch
    support = [task[:1] for task in support]  # one inner step, which the written-out product is for
    policy = navigation_policy(nonlinearity, log_std)
    vector = random_vector(policy, 5)
    learner = one_step_learner(policy, "r_operator", first_order)
    assert learner.curvature.written_out
    data = tensors(learner, support, query)
    reference = double_backprop_curvature(learner, data)(vector)
    assert reference.abs().max() > 1e-6
    torch.testing.assert_close(learner.problem(data).curvature(vector), reference, rtol=1e-7, atol=1e-10)


def test_written_out_product_applies_only_where_it_was_written_for(navigation_meta_batch):
    """Two inner steps (or a GPU) take the Gauss-Newton product instead: the same matrix."""
    policy, support, query = navigation_meta_batch
    learner = MAMLTRPO(policy, InnerStep.repeated(0.1, 2), trpo=TRPOSettings(curvature="r_operator"))
    assert not learner.curvature.written_out
    assert "gauss_newton (the same matrix; r_operator is written for" in learner.describe()
    assert one_step_learner(policy, "r_operator").curvature.written_out
    assert one_step_learner(policy, "r_operator").describe().startswith("curvature products: r_operator")
    assert not MAMLTRPO(policy, InnerStep((0.1,)), TRPOSettings(curvature="gauss_newton")).curvature.written_out


def test_written_out_subsampled_product_keeping_every_episode_is_the_exact_product(navigation_meta_batch):
    _, support, query = navigation_meta_batch
    support = [task[:1] for task in support]
    policy = navigation_policy("relu", [0.3, -0.5])
    vector = random_vector(policy, 6)
    exact = one_step_learner(policy, "r_operator")
    keep_all = one_step_learner(policy, "r_operator", curvature_subsample=0.99)
    data = tensors(exact, support, query)
    torch.testing.assert_close(
        keep_all.problem(data).curvature(vector), exact.problem(data).curvature(vector), rtol=1e-10, atol=1e-12
    )


def test_meta_update_is_the_same_with_either_exact_product(navigation_meta_batch):
    """The whole TRPO step (CG, step size, line search) lands on the same θ with both exact products."""
    _, support, query = navigation_meta_batch
    support = [task[:1] for task in support]
    updated = {}
    for method in ("r_operator", "gauss_newton"):
        policy = navigation_policy("tanh", [0.3, -0.5])
        learner = one_step_learner(policy, method, cg_damping=0.1)  # damped: a well-conditioned solve
        stats = learner.step(tensors(learner, support, query))
        assert stats["line_search_accepted"] == 1.0
        updated[method] = torch.cat([p.detach().flatten() for p in policy.parameters()])
    initial = torch.cat([p.detach().flatten() for p in navigation_policy("tanh", [0.3, -0.5]).parameters()])
    assert (updated["r_operator"] - initial).abs().max() > 1e-4
    # The products agree to 1e-16 here, conjugate gradient amplifies rounding: the two autograd methods'
    # steps differ by 3e-10 on this batch too. The step itself moves θ by more than 1e-4.
    torch.testing.assert_close(updated["r_operator"], updated["gauss_newton"], rtol=1e-6, atol=1e-8)


def test_gauss_newton_is_not_the_hessian_away_from_the_minimum():
    """The identity needs ∇_u loss = 0: with a non-zero output gradient the two differ (so the test can fail)."""
    torch.manual_seed(0)
    weight = torch.randn(3, 2, requires_grad=True, dtype=torch.float64)
    x = torch.randn(5, 2, dtype=torch.float64)
    outputs = torch.tanh(x @ weight.T)
    target = torch.randn(5, 3, dtype=torch.float64)
    loss_of = lambda u: ((u[0] - target) ** 2).sum()  # noqa: E731
    vector = torch.randn(6, dtype=torch.float64)
    gn = gauss_newton_product([outputs], loss_of, [weight])(vector)
    hv = hessian_vector_product(loss_of([outputs]), [weight])(vector)
    assert not torch.allclose(gn, hv)


def test_subsampled_product_keeping_every_episode_is_the_exact_product(navigation_meta_batch):
    """The subsample path (full-data value, subsample derivative) changes nothing when it keeps every episode."""
    policy, support, query = navigation_meta_batch
    vector = random_vector(policy, 1)
    exact = MAMLTRPO(policy, InnerStep.repeated(0.1, 2), trpo=TRPOSettings(cg_damping=0.0))
    keep_all = MAMLTRPO(
        policy,
        InnerStep.repeated(0.1, 2),  # 0.99 keeps 4 of 4 episodes
        trpo=TRPOSettings(cg_damping=0.0, curvature_subsample=0.99),
    )
    data = tensors(exact, support, query)
    assert data.subsample(0.99).query.num_episodes == data.query.num_episodes
    torch.testing.assert_close(
        keep_all.problem(data).curvature(vector), exact.problem(data).curvature(vector), rtol=1e-10, atol=1e-12
    )


def test_subsampled_product_uses_fewer_episodes_and_stays_positive(navigation_meta_batch):
    """Half the episodes: a different matrix, still positive definite on random directions."""
    policy, support, query = navigation_meta_batch
    learner = MAMLTRPO(policy, InnerStep.repeated(0.1, 2), trpo=TRPOSettings(cg_damping=0.0, curvature_subsample=0.5))
    data = tensors(learner, support, query)
    assert data.subsample(0.5).query.num_episodes == 2
    subsampled = learner.problem(data).curvature
    exact = MAMLTRPO(policy, InnerStep.repeated(0.1, 2), trpo=TRPOSettings(cg_damping=0.0)).problem(data).curvature
    generator = torch.Generator().manual_seed(2)
    for _ in range(3):
        vector = torch.randn(sum(p.numel() for p in policy.parameters()), generator=generator, dtype=torch.float64)
        approximate = subsampled(vector)
        assert vector @ approximate > 0
        assert not torch.allclose(approximate, exact(vector))


def test_select_episodes_takes_the_same_episodes_from_every_field():
    steps, episodes = 3, 4
    batch = EpisodeBatch(
        observations_TBO=torch.arange(steps * episodes * 2.0).view(steps, episodes, 2),
        actions_TBA=torch.arange(steps * episodes * 1.0).view(steps, episodes, 1),
        rewards_TB=torch.arange(steps * episodes * 1.0).view(steps, episodes),
        mask_TB=torch.ones(steps, episodes),
        lengths_B=torch.tensor([3, 2, 1, 3]),
    )
    index = torch.tensor([1, 3])
    chosen = batch.select_episodes(index)
    assert torch.equal(chosen.observations_TBO, batch.observations_TBO[:, [1, 3]])
    assert torch.equal(chosen.actions_TBA, batch.actions_TBA[:, [1, 3]])
    assert torch.equal(chosen.rewards_TB, batch.rewards_TB[:, [1, 3]])
    assert torch.equal(chosen.lengths_B, torch.tensor([2, 3]))
    stacked = stack_tasks([batch, batch]).select_episodes(index)  # [K, T, B, ...]: same axis from the end
    assert torch.equal(stacked.observations_TBO[1], chosen.observations_TBO)
    assert torch.equal(stacked.lengths_B, torch.tensor([[2, 3], [2, 3]]))


def test_double_backprop_is_the_tests_reference_not_a_run_option():
    """It takes the same matrix as the fast products at several times the cost: no run should take it."""
    with pytest.raises(ConfigError, match="^trpo.curvature must be one of 'r_operator', 'gauss_newton', got"):
        TrainConfig(trpo=TRPOSettings(curvature="double_backprop")).validate()


def test_a_new_run_takes_the_fastest_exact_product_that_applies():
    """The default is r_operator: written out for the MLP with one inner step on the CPU, Gauss-Newton elsewhere."""
    config = TrainConfig(meta_batch_size=2, episodes_per_task=2, horizon=5, hidden_sizes=[4])
    for num_steps, written_out in ((1, True), (2, False)):
        experiment = build_experiment(dataclasses.replace(config, num_steps=num_steps))
        experiment.close()
        assert experiment.learner.curvature.written_out == written_out, num_steps
