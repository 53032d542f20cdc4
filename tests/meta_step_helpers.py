"""The TRPO meta-step's inputs and references for tests: a meta-batch's tensors as training stacks them, and the
KL's curvature by double backprop, the plain Hessian-vector product the fast products are checked against."""

import torch
from torch.func import functional_call

from metarl.algos.base import OldPolicy, mean_kl
from metarl.algos.maml_trpo import MAMLTRPO
from metarl.meta_batch import MetaBatchTensors
from metarl.optim import MatVec, hessian_vector_product
from metarl.policies import for_tasks, parameters_of


def tensors(learner, support, query) -> MetaBatchTensors:
    """Per-task support and query episodes stacked on the learner's device, with their advantages."""
    return MetaBatchTensors.from_episodes(support, query, learner.inner, learner.device)


def double_backprop_curvature(learner: MAMLTRPO, data: MetaBatchTensors) -> MatVec:
    """v ↦ (∇²θ KL + damping·I) v at the learner's θ, by double backprop through its inner step: the KL of the
    adapted policies on the query states, from a copy of themselves held fixed."""
    policy = learner.policy
    params = parameters_of(policy)
    adapted = learner.inner.adapt(policy, for_tasks(params, data.num_tasks), data.support, data.support_advantages)
    distribution = functional_call(policy, adapted, (data.query.observations_TBO,))
    kl = mean_kl(OldPolicy.frozen(distribution, data), distribution, data.query.mask_TB)
    return hessian_vector_product(kl, list(params.values()), learner.trpo.cg_damping)


def random_vector(policy, seed) -> torch.Tensor:
    """A float64 direction in the policy's parameter space."""
    size = sum(p.numel() for p in policy.parameters())
    return torch.randn(size, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
