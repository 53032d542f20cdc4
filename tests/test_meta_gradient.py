"""The MAML meta-gradient: second order through the inner step, first order at the adapted parameters."""

import pytest
import torch
from meta_step_helpers import tensors
from run_helpers import central_differences, flat, unflat

from metarl.adaptation import InnerStep, adapt, inner_step, log_probs
from metarl.advantages import estimate_advantages
from metarl.algos.maml_trpo import MAMLTRPO
from metarl.policies import parameters_of
from metarl.returns import masked_mean

INNER_LR, GAMMA, GAE_LAMBDA = 0.5, 0.9, 0.95


def learner(policy, first_order, inner_lr=INNER_LR):
    return MAMLTRPO(policy, InnerStep((inner_lr,), GAMMA, GAE_LAMBDA, first_order))


def meta_gradient(learner, support, query):
    """∇θ of the surrogate at θ, as the learner's step takes it."""
    return learner.problem(tensors(learner, support, query)).gradient


def advantages_of(support, query):
    support_advantages = [[estimate_advantages(b, GAMMA, GAE_LAMBDA) for b in task] for task in support]
    return support_advantages, [estimate_advantages(b, GAMMA, GAE_LAMBDA) for b in query]


def query_loss(policy, adapted_params, query, query_advantages_TB):
    """−E[log π(a|s) A] on the query episodes: the surrogate's value and gradient at θ_old."""
    return -masked_mean(log_probs(policy, adapted_params, query) * query_advantages_TB, query.mask_TB)


def reference_inner_step(policy, params, episodes, advantages_TB):
    """θ − α ∇θ (−E[log π(a|s) A]), written out here independently of metarl.adaptation."""
    loss = -masked_mean(log_probs(policy, params, episodes) * advantages_TB, episodes.mask_TB)
    grads = torch.autograd.grad(loss, list(params.values()), create_graph=True)
    return {name: value - INNER_LR * grad for (name, value), grad in zip(params.items(), grads, strict=True)}


def maml_objective(policy, params, support, query):
    """Mean over tasks of the query loss of θ'(θ), adapted on the task's support episodes."""
    support_advantages, query_advantages = advantages_of(support, query)
    losses = []
    for task_support, task_advantages, task_query, task_query_advantages in zip(
        support, support_advantages, query, query_advantages, strict=True
    ):
        adapted = params
        for episodes, advantages_TB in zip(task_support, task_advantages, strict=True):
            adapted = reference_inner_step(policy, adapted, episodes, advantages_TB)
        losses.append(query_loss(policy, adapted, task_query, task_query_advantages))
    return torch.stack(losses).mean()


def test_second_order_meta_gradient_matches_finite_differences(tiny_policy, synthetic_meta_batch):
    """meta_gradient equals central finite differences of the query loss through the inner step."""
    support, query = synthetic_meta_batch
    params = parameters_of(tiny_policy)
    theta = flat(params).detach()

    def objective_at(vector):
        named = {n: p.requires_grad_() for n, p in unflat(vector.clone(), params).items()}
        return maml_objective(tiny_policy, named, support, query).item()

    expected = central_differences(objective_at, theta)
    gradient = meta_gradient(learner(tiny_policy, first_order=False), support, query)

    torch.testing.assert_close(gradient, expected, rtol=1e-6, atol=1e-8)


def test_first_order_meta_gradient_is_query_gradient_at_adapted_params(tiny_policy, synthetic_meta_batch):
    """First-order meta_gradient = mean over tasks of ∇φ query loss at φ = θ', θ' treated as a free variable."""
    support, query = synthetic_meta_batch
    params = parameters_of(tiny_policy)
    support_advantages, query_advantages = advantages_of(support, query)
    gradients = []
    for task_support, task_advantages, task_query, task_query_advantages in zip(
        support, support_advantages, query, query_advantages, strict=True
    ):
        (support_batch,), (support_advantages_TB,) = task_support, task_advantages
        adapted = reference_inner_step(tiny_policy, params, support_batch, support_advantages_TB)
        free = {n: p.detach().requires_grad_() for n, p in adapted.items()}

        def loss_at(vector, free=free, task_query=task_query, task_query_advantages=task_query_advantages):
            named = unflat(vector, free)
            return query_loss(tiny_policy, named, task_query, task_query_advantages).item()

        gradients.append(central_differences(loss_at, flat(free).detach()))
    expected = torch.stack(gradients).mean(0)

    gradient = meta_gradient(learner(tiny_policy, first_order=True), support, query)

    torch.testing.assert_close(gradient, expected, rtol=1e-6, atol=1e-8)


def test_meta_parameters_receive_gradients_through_adapted_copy(tiny_policy, synthetic_meta_batch, episode_batch):
    """Second order differs from first order by a term that depends on the support episodes (graph connection)."""
    support, query = synthetic_meta_batch
    second = meta_gradient(learner(tiny_policy, first_order=False), support, query)
    first = meta_gradient(learner(tiny_policy, first_order=True), support, query)
    assert torch.linalg.norm(second - first) > 1e-3 * torch.linalg.norm(first)

    other_support = [[episode_batch(30, [6, 6, 3])], [episode_batch(31, [2, 5, 6])]]
    other_second = meta_gradient(learner(tiny_policy, first_order=False), other_support, query)
    other_first = meta_gradient(learner(tiny_policy, first_order=True), other_support, query)
    hessian_term, other_hessian_term = second - first, other_second - other_first
    assert torch.linalg.norm(hessian_term - other_hessian_term) > 1e-3 * torch.linalg.norm(hessian_term)


def test_inner_step_keeps_graph_to_every_meta_parameter(tiny_policy, episode_batch):
    """A second-order inner step makes each adapted tensor depend on the other meta-parameters, not just itself."""
    batch = episode_batch(5, [5, 4])
    params = parameters_of(tiny_policy)

    def loss():
        return -masked_mean(log_probs(tiny_policy, params, batch) * batch.rewards_TB, batch.mask_TB)

    adapted = inner_step(params, loss(), INNER_LR, first_order=False)
    output_weight = adapted["mean.2.weight"]
    assert output_weight.requires_grad
    grads = torch.autograd.grad(output_weight.sum(), list(params.values()), allow_unused=True)
    by_name = dict(zip(params, grads, strict=True))
    assert by_name["mean.0.weight"] is not None and by_name["mean.0.weight"].abs().sum() > 0

    first_order = inner_step(params, loss(), INNER_LR, first_order=True)
    grads = torch.autograd.grad(first_order["mean.2.weight"].sum(), list(params.values()), allow_unused=True)
    assert dict(zip(params, grads, strict=True))["mean.0.weight"] is None


@pytest.mark.parametrize("first_order", [False, True])
def test_adapt_takes_one_gradient_step_per_support_batch(tiny_policy, episode_batch, first_order):
    """adapt with two support batches equals two reference gradient steps, batch k at the k-th step."""
    params = parameters_of(tiny_policy)
    support = [episode_batch(40, [5, 3]), episode_batch(41, [4, 4])]
    advantages = [estimate_advantages(b, GAMMA, GAE_LAMBDA) for b in support]
    adapted = adapt(tiny_policy, params, support, advantages, [INNER_LR, INNER_LR], first_order)
    expected = reference_inner_step(tiny_policy, params, support[0], advantages[0])
    expected = reference_inner_step(tiny_policy, expected, support[1], advantages[1])
    for name in params:
        torch.testing.assert_close(adapted[name], expected[name], rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("first_order", [False, True])
def test_zero_inner_step_size_reduces_to_plain_policy_gradient(tiny_policy, synthetic_meta_batch, first_order):
    """With α = 0 the adapted policy is θ itself, so both variants give the plain query policy gradient."""
    support, query = synthetic_meta_batch
    zero = learner(tiny_policy, first_order, inner_lr=0.0)
    params = parameters_of(tiny_policy)
    _, query_advantages = advantages_of(support, query)
    losses = [query_loss(tiny_policy, params, q, a) for q, a in zip(query, query_advantages, strict=True)]
    loss = torch.stack(losses).mean()
    expected = flat(dict(zip(params, torch.autograd.grad(loss, list(params.values())), strict=True)))
    torch.testing.assert_close(meta_gradient(zero, support, query), expected, rtol=1e-10, atol=1e-12)
