"""ProMP's LVC inner objective: the same inner step as the policy gradient, a different second derivative."""

import numpy as np
import pytest
import torch
from meta_step_helpers import double_backprop_curvature, random_vector, tensors
from run_helpers import central_differences, flat, unflat

from metarl.adaptation import InnerStep, log_probs, policy_gradient_loss
from metarl.advantages import estimate_advantages
from metarl.algos.base import adapted_on
from metarl.algos.maml_trpo import MAMLTRPO
from metarl.config import ConfigError, TrainConfig, TRPOSettings
from metarl.policies import parameters_of
from metarl.returns import masked_mean

INNER_LR, GAMMA, GAE_LAMBDA = 0.5, 0.9, 0.95


def learner(policy, objective, first_order=False, **trpo):
    return MAMLTRPO(policy, InnerStep((INNER_LR,), GAMMA, GAE_LAMBDA, first_order, objective), TRPOSettings(**trpo))


@pytest.mark.parametrize("first_order", [False, True])
def test_lvc_takes_the_same_inner_step_as_the_policy_gradient(tiny_policy, synthetic_meta_batch, first_order):
    """θ' is bit for bit the same: at the sampling policy the likelihood ratio is exactly 1."""
    support, query = synthetic_meta_batch
    adapted = {}
    for objective in ("pg", "lvc"):
        maml = learner(tiny_policy, objective, first_order)
        adapted[objective] = adapted_on(
            tiny_policy, maml.inner, parameters_of(tiny_policy), tensors(maml, support, query)
        )
    for name, value in adapted["pg"].items():
        assert torch.equal(value, adapted["lvc"][name]), name


def test_lvc_hessian_adds_the_score_outer_product(tiny_policy, episode_batch):
    """∇² of the LVC loss is −E[(∇²log π + ∇log π ∇log πᵀ) A]; the policy gradient's is −E[∇²log π · A]."""
    episodes = episode_batch(3, [5, 3, 4])
    advantages_TB = estimate_advantages(episodes, GAMMA, GAE_LAMBDA)
    params = parameters_of(tiny_policy)
    theta = flat(params).detach()

    def loss(objective):
        return lambda v: policy_gradient_loss(tiny_policy, unflat(v, params), episodes, advantages_TB, objective)

    def log_prob_at(t, b):
        return lambda vector: log_probs(tiny_policy, unflat(vector, params), episodes)[t, b]

    count = episodes.mask_TB.sum()
    log_pi_hessian = torch.zeros(theta.numel(), theta.numel(), dtype=theta.dtype)
    score_outer = torch.zeros_like(log_pi_hessian)
    for t, b in episodes.mask_TB.nonzero().tolist():
        weight = advantages_TB[t, b] / count
        score = torch.autograd.functional.jacobian(log_prob_at(t, b), theta)
        log_pi_hessian += weight * torch.autograd.functional.hessian(log_prob_at(t, b), theta)
        score_outer += weight * torch.outer(score, score)

    pg_hessian = torch.autograd.functional.hessian(loss("pg"), theta)
    lvc_hessian = torch.autograd.functional.hessian(loss("lvc"), theta)
    torch.testing.assert_close(pg_hessian, -log_pi_hessian, rtol=1e-9, atol=1e-12)
    torch.testing.assert_close(lvc_hessian, -log_pi_hessian - score_outer, rtol=1e-9, atol=1e-12)
    assert score_outer.abs().max() > 1e-3  # the two objectives really differ in their curvature


def test_lvc_meta_gradient_differentiates_the_importance_sampled_inner_step(tiny_policy, synthetic_meta_batch):
    """With LVC the meta-gradient is the derivative of the query loss after an inner step whose gradient is
    importance-weighted by π_θ / π_θ₀ (θ₀ the sampling policy), by central differences; the paper's
    estimator (pg) differentiates a step that ignores where the support episodes came from."""
    support, query = synthetic_meta_batch
    params = parameters_of(tiny_policy)
    theta0 = flat(params).detach()
    support_advantages = [estimate_advantages(task[0], GAMMA, GAE_LAMBDA) for task in support]
    query_advantages = [estimate_advantages(batch, GAMMA, GAE_LAMBDA) for batch in query]
    sampling_log_probs = [log_probs(tiny_policy, params, task[0]).detach() for task in support]

    def objective_at(vector):
        named = {name: value.requires_grad_() for name, value in unflat(vector.clone(), params).items()}
        losses = []
        for task_support, advantages_TB, behaviour_TB, task_query, query_advantages_TB in zip(
            support, support_advantages, sampling_log_probs, query, query_advantages, strict=True
        ):
            episodes = task_support[0]
            ratio_TB = torch.exp(log_probs(tiny_policy, named, episodes) - behaviour_TB)
            inner_loss = -masked_mean(ratio_TB * advantages_TB, episodes.mask_TB)
            grads = torch.autograd.grad(inner_loss, list(named.values()))
            adapted = {name: value - INNER_LR * grad for (name, value), grad in zip(named.items(), grads, strict=True)}
            query_log_probs_TB = log_probs(tiny_policy, adapted, task_query)
            losses.append(-masked_mean(query_log_probs_TB * query_advantages_TB, task_query.mask_TB))
        return torch.stack(losses).mean().item()

    expected = central_differences(objective_at, theta0)
    maml = {objective: learner(tiny_policy, objective) for objective in ("pg", "lvc")}
    gradients = {name: m.problem(tensors(m, support, query)).gradient for name, m in maml.items()}
    torch.testing.assert_close(gradients["lvc"], expected, rtol=1e-5, atol=1e-8)
    assert (gradients["pg"] - expected).abs().max() > 1e-4


def test_lvc_curvature_products_are_exact_and_r_operator_falls_back(tiny_policy, synthetic_meta_batch):
    """The Gauss-Newton product through the LVC inner step is the KL Hessian's; ``r_operator`` is written for
    the policy-gradient inner step only, so with LVC it takes Gauss-Newton and says so."""
    support, query = synthetic_meta_batch
    vector = random_vector(tiny_policy, 0)
    products = {}
    for method in ("gauss_newton", "r_operator"):
        maml = learner(tiny_policy, "lvc", cg_damping=0.0, curvature=method)
        products[method] = maml.problem(tensors(maml, support, query)).curvature(vector)
    reference = double_backprop_curvature(maml, tensors(maml, support, query))(vector)
    torch.testing.assert_close(products["gauss_newton"], reference, rtol=1e-7, atol=1e-10)
    torch.testing.assert_close(products["r_operator"], products["gauss_newton"], rtol=0, atol=0)
    pg = learner(tiny_policy, "pg", cg_damping=0.0)
    pg_product = double_backprop_curvature(pg, tensors(pg, support, query))(vector)
    assert (pg_product - products["gauss_newton"]).abs().max() > 1e-6

    falling_back = learner(tiny_policy, "lvc", curvature="r_operator")
    assert not falling_back.curvature.written_out
    assert "gauss_newton (the same matrix; r_operator is written for" in falling_back.describe()
    assert "'pg' inner objective" in falling_back.describe()


def test_unknown_inner_objective_is_refused():
    with pytest.raises(ConfigError, match="^inner_objective must be 'pg' or 'lvc', got 'dice'"):
        TrainConfig(inner_objective="dice").validate()
    with pytest.raises(ValueError, match="unknown inner objective 'dice'"):
        InnerStep((0.1,), objective="dice")


def test_lvc_trains_from_the_cli_and_resume_refuses_to_change_it(train, tmp_path, tiny_run_args, run_scalars):
    """A tiny LVC run trains with finite returns; the objective is part of the run's results, so --resume
    refuses a different one."""
    run_dir = tmp_path / "lvc"
    result = train(*tiny_run_args(inner_objective="lvc"), "--output-dir", run_dir)
    assert result.returncode == 0, result.stderr
    assert "inner_objective: lvc" in (run_dir / "config.yaml").read_text()
    returns = [value for _, value in run_scalars(run_dir)["returns/step_1"]]
    assert len(returns) == 3 and np.isfinite(returns).all()

    refused = train("--resume", run_dir, "--set", "inner_objective=pg", "--set", "num_iterations=4")
    assert refused.returncode == 2 and "inner_objective" in refused.stderr
