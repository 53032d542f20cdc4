"""The supervised meta-learners: MAML's meta-gradient against finite differences and hand computations,
first-order MAML and Reptile against hand computations on a quadratic loss, batching against a per-task loop."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn
from torch.func import functional_call

from metarl.adaptation import inner_step
from metarl.policies import parameters_of
from metarl.supervised.meta_learning import MAML, Reptile, cross_entropy_per_task, mse_per_task
from metarl.supervised.models import ConvClassifier, MLPRegressor
from metarl.supervised.tasks import SinusoidDistribution, TaskBatch


class Linear(nn.Module):
    """f(x) = x·w: the MSE is quadratic in w, so every step can be computed by hand."""

    def __init__(self, w: np.ndarray):
        super().__init__()
        self.w = nn.Parameter(torch.tensor(w, dtype=torch.float64))  # a copy: w stays the hand-computation start

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x @ self.w


def quadratic_tasks(num_tasks: int = 3, dim: int = 3, n_support: int = 4, n_query: int = 5, seed: int = 0):
    rng = np.random.default_rng(seed)
    xs, xq = rng.normal(size=(num_tasks, n_support, dim)), rng.normal(size=(num_tasks, n_query, dim))
    ys, yq = rng.normal(size=(num_tasks, n_support)), rng.normal(size=(num_tasks, n_query))
    batch = TaskBatch(*(torch.as_tensor(a) for a in (xs, ys, xq, yq)))
    return batch, (xs, ys, xq, yq), rng.normal(size=dim)


def mse_grad(w: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return 2.0 / len(y) * x.T @ (x @ w - y)


def hand_adapted(w, xs, ys, lr, steps):
    for _ in range(steps):
        w = w - lr * mse_grad(w, xs, ys)
    return w


@pytest.mark.parametrize("num_steps", [1, 2])
def test_maml_meta_gradient_matches_hand_computation_on_quadratic(num_steps):
    batch, (xs, ys, xq, yq), w0 = quadratic_tasks()
    lr = 0.1
    model = Linear(w0)
    for first_order in (False, True):
        maml = MAML(model, mse_per_task, lr, num_steps, meta_lr=1e-3, first_order=first_order)
        loss, _ = maml.meta_loss(parameters_of(model), batch)
        (grad,) = torch.autograd.grad(loss, [model.w])
        expected = np.zeros_like(w0)
        for i in range(len(batch)):
            w = hand_adapted(w0, xs[i], ys[i], lr, num_steps)
            g = mse_grad(w, xq[i], yq[i])
            if not first_order:  # chain rule through each step: dw_{k+1}/dw_k = I − α H_i, H_i = 2/n XᵀX
                jacobian = np.eye(len(w0)) - lr * 2.0 / len(ys[i]) * xs[i].T @ xs[i]
                for _ in range(num_steps):
                    g = jacobian @ g
            expected += g / len(batch)
        np.testing.assert_allclose(grad.numpy(), expected, rtol=1e-10, atol=1e-12)


def test_second_and_first_order_differ_on_quadratic():
    batch, _, w0 = quadratic_tasks()
    model = Linear(w0)
    grads = []
    for first_order in (False, True):
        loss, _ = MAML(model, mse_per_task, 0.1, 1, 1e-3, first_order).meta_loss(parameters_of(model), batch)
        grads.append(torch.autograd.grad(loss, [model.w])[0])
    assert (grads[0] - grads[1]).abs().max() > 1e-3


def test_maml_meta_gradient_matches_finite_differences():
    model = MLPRegressor(1, 1, [16, 16], generator=torch.Generator().manual_seed(0)).double()
    batch = SinusoidDistribution().sample(4, 5, 7, np.random.default_rng(0))
    batch = TaskBatch(
        *(t.double() for t in (batch.support_inputs, batch.support_targets, batch.query_inputs, batch.query_targets))
    )
    maml = MAML(model, mse_per_task, 0.05, 2, 1e-3)
    params = {name: value.detach().clone().requires_grad_() for name, value in parameters_of(model).items()}
    loss, _ = maml.meta_loss(params, batch)
    grads = torch.autograd.grad(loss, list(params.values()))
    rng = torch.Generator().manual_seed(1)
    direction = {name: torch.randn(value.shape, generator=rng, dtype=torch.float64) for name, value in params.items()}
    analytic = sum((g * direction[name]).sum() for g, name in zip(grads, params, strict=True)).item()
    eps = 1e-6

    def loss_at(sign: float) -> float:
        shifted = {
            name: (value + sign * eps * direction[name]).detach().requires_grad_() for name, value in params.items()
        }
        return maml.meta_loss(shifted, batch)[0].item()

    numeric = (loss_at(1.0) - loss_at(-1.0)) / (2 * eps)
    assert analytic == pytest.approx(numeric, rel=1e-6)
    first_order, _ = MAML(model, mse_per_task, 0.05, 2, 1e-3, first_order=True).meta_loss(params, batch)
    fo_grads = torch.autograd.grad(first_order, list(params.values()))
    fo_analytic = sum((g * direction[name]).sum() for g, name in zip(fo_grads, params, strict=True)).item()
    assert abs(fo_analytic - numeric) > 1e-4 * abs(numeric)  # the test would notice a dropped Hessian term


@pytest.mark.parametrize("num_steps", [1, 3])
def test_reptile_update_matches_hand_computation(num_steps):
    batch, (xs, ys, _, _), w0 = quadratic_tasks()
    lr, epsilon = 0.1, 0.3
    model = Linear(w0)
    Reptile(model, mse_per_task, lr, num_steps, epsilon).meta_step(batch)
    adapted = [hand_adapted(w0, xs[i], ys[i], lr, num_steps) for i in range(len(batch))]
    expected = w0 + epsilon * np.mean([w - w0 for w in adapted], axis=0)
    np.testing.assert_allclose(model.w.detach().numpy(), expected, rtol=1e-10, atol=1e-12)


def per_task_loop_meta_loss(model, batch, loss_fn, lr, num_steps, first_order):
    """The plain definition: each task adapted on its own with inner_step, query losses averaged."""
    params, total = parameters_of(model), 0.0
    for i in range(len(batch)):
        task_params = params
        for _ in range(num_steps):
            predictions = functional_call(model, task_params, (batch.support_inputs[i],)).unsqueeze(0)
            loss = loss_fn(predictions, batch.support_targets[i].unsqueeze(0)).sum()
            task_params = inner_step(task_params, loss, lr, first_order)
        predictions = functional_call(model, task_params, (batch.query_inputs[i],)).unsqueeze(0)
        total = total + loss_fn(predictions, batch.query_targets[i].unsqueeze(0)).sum()
    return total / len(batch)


@pytest.mark.parametrize("first_order", [False, True])
def test_batched_tasks_equal_per_task_loop_for_conv_net_with_batch_norm(first_order):
    """vmap over tasks must keep each task's batch-norm statistics its own."""
    torch.manual_seed(0)
    model = ConvClassifier(3, num_filters=4, image_size=16, generator=torch.Generator().manual_seed(0)).double()
    labels = torch.arange(3).repeat(2).expand(2, -1)
    batch = TaskBatch(
        torch.rand(2, 6, 1, 16, 16, dtype=torch.float64) * torch.tensor([1.0, 3.0]).view(2, 1, 1, 1, 1),
        labels,
        torch.rand(2, 6, 1, 16, 16, dtype=torch.float64),
        labels,
    )
    maml = MAML(model, cross_entropy_per_task, 0.4, 2, 1e-3, first_order)
    batched, _ = maml.meta_loss(parameters_of(model), batch)
    looped = per_task_loop_meta_loss(model, batch, cross_entropy_per_task, 0.4, 2, first_order)
    grads_batched = torch.autograd.grad(batched, list(model.parameters()))
    grads_looped = torch.autograd.grad(looped, list(model.parameters()))
    assert batched.item() == pytest.approx(looped.item(), rel=1e-10)
    for a, b in zip(grads_batched, grads_looped, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-8, atol=1e-10)


def test_meta_step_is_deterministic_for_a_seed():
    def train(seed: int) -> torch.Tensor:
        model = MLPRegressor(generator=torch.Generator().manual_seed(seed))
        maml = MAML(model, mse_per_task, 0.01, 1, 1e-3)
        for iteration in range(5):
            maml.meta_step(SinusoidDistribution().sample(5, 5, 5, np.random.default_rng([seed, iteration])))
        return torch.cat([p.detach().flatten() for p in model.parameters()])

    assert torch.equal(train(3), train(3))
    assert not torch.equal(train(3), train(4))
