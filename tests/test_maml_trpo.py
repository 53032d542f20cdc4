"""The TRPO meta-step on real navigation episodes: trust region kept, loss lowered, rejection is a no-op."""

import torch
from torch.distributions import kl_divergence
from torch.func import functional_call

from metarl.adaptation import InnerStep, adapt
from metarl.advantages import estimate_advantages
from metarl.algos.maml_trpo import MAMLTRPO
from metarl.config import TRPOSettings
from metarl.policies import detached, parameters_of
from metarl.returns import masked_mean

INNER_LR, GAMMA, GAE_LAMBDA = 0.1, 0.99, 1.0


def adapted_distributions(policy, params, batch):
    """Each task's adapted policy on its query observations, computed independently of the learner."""
    distributions = []
    for support, query in zip(batch.support, batch.query, strict=True):
        advantages = [estimate_advantages(b, GAMMA, GAE_LAMBDA) for b in support]
        adapted = detached(adapt(policy, params, support, advantages, [INNER_LR] * len(support), first_order=True))
        distributions.append(functional_call(policy, adapted, (query.observations_TBO,)))
    return distributions


def measured_kl_and_surrogate(policy, old_params, new_params, batch):
    old = adapted_distributions(policy, old_params, batch)
    new = adapted_distributions(policy, new_params, batch)
    kls, surrogates = [], []
    for old_distribution, new_distribution, query in zip(old, new, batch.query, strict=True):
        advantages = estimate_advantages(query, GAMMA, GAE_LAMBDA)
        ratio = torch.exp(new_distribution.log_prob(query.actions_TBA) - old_distribution.log_prob(query.actions_TBA))
        kls.append(masked_mean(kl_divergence(old_distribution, new_distribution), query.mask_TB))
        surrogates.append(-masked_mean(ratio * advantages, query.mask_TB))
    return float(torch.stack(kls).mean()), float(torch.stack(surrogates).mean())


def with_grad(params):
    return {name: value.clone().requires_grad_() for name, value in params.items()}


def test_step_keeps_trust_region_and_lowers_surrogate(navigation_meta_batch):
    """After an accepted step, KL(old adapted ‖ new adapted) ≤ max_kl and the surrogate went down."""
    policy, batch = navigation_meta_batch
    max_kl = 0.01
    old_params = {n: p.detach().clone() for n, p in parameters_of(policy).items()}
    learner = MAMLTRPO(policy, InnerStep((INNER_LR,), GAMMA, GAE_LAMBDA), TRPOSettings(max_kl=max_kl))

    stats = learner.step(batch.tensors)

    assert stats["line_search_accepted"] == 1.0
    new_params = {n: p.detach().clone() for n, p in parameters_of(policy).items()}
    assert any(not torch.equal(old_params[n], new_params[n]) for n in old_params)
    kl, surrogate = measured_kl_and_surrogate(policy, with_grad(old_params), with_grad(new_params), batch)
    assert 0 < kl <= max_kl
    assert surrogate < stats["surrogate_before"]
    assert stats["surrogate_after"] < stats["surrogate_before"]
    assert abs(stats["kl"] - kl) <= 1e-4 * max_kl
    assert abs(stats["surrogate_after"] - surrogate) <= 1e-4 * abs(surrogate) + 1e-7


def test_rejected_step_leaves_parameters_bit_identical(navigation_meta_batch):
    """With one line-search try and an impossible trust region, the policy does not move by a single bit."""
    policy, batch = navigation_meta_batch
    before = {name: value.clone() for name, value in policy.state_dict().items()}
    learner = MAMLTRPO(policy, InnerStep((INNER_LR,), GAMMA, GAE_LAMBDA), TRPOSettings(max_kl=1e-30, ls_max_steps=1))

    stats = learner.step(batch.tensors)

    assert stats["line_search_accepted"] == 0.0
    assert stats["line_search_steps"] == 1.0
    after = policy.state_dict()
    assert all(torch.equal(before[name], after[name]) for name in before)
