"""The numerical parts of the TRPO meta-step: Hessian-vector products, conjugate gradient, line search."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

MatVec = Callable[[torch.Tensor], torch.Tensor]


def flat(tensors: Sequence[torch.Tensor]) -> torch.Tensor:
    return torch.cat([t.reshape(-1) for t in tensors])


def hessian_vector_product(scalar: torch.Tensor, params: Sequence[torch.Tensor], damping: float = 0.0) -> MatVec:
    """v ↦ (∇²scalar + damping·I) v by double backprop.

    The first gradient's graph is built once here and reused by every product, which is what a
    conjugate-gradient solve needs.
    """
    grad = flat(torch.autograd.grad(scalar, params, create_graph=True))

    def product(vector: torch.Tensor) -> torch.Tensor:
        hv = torch.autograd.grad(grad @ vector, params, retain_graph=True)
        return flat(hv) + damping * vector

    return product


@dataclass(frozen=True)
class ConjugateGradientResult:
    solution: torch.Tensor
    product: torch.Tensor
    """A · solution, read off the residual (b − r) rather than paid for with one more matrix-vector product."""


def conjugate_gradient(
    matvec: MatVec,
    b: torch.Tensor,
    iterations: int = 10,
    residual_tol: float = 1e-10,
    on_iteration: Callable[[int], None] | None = None,
) -> ConjugateGradientResult:
    """Approximately solve A x = b for symmetric positive-definite A given only v ↦ A v. ``on_iteration(i)`` is
    told as iteration i (from 1) starts: each costs a product with A, the slow part."""
    x = torch.zeros_like(b)
    residual = b.clone()
    direction = b.clone()
    residual_sq = residual @ residual
    for iteration in range(1, iterations + 1):
        if residual_sq < residual_tol:
            break
        if on_iteration is not None:
            on_iteration(iteration)
        a_direction = matvec(direction)
        alpha = residual_sq / (direction @ a_direction)
        x = x + alpha * direction
        residual = residual - alpha * a_direction
        new_residual_sq = residual @ residual
        direction = residual + (new_residual_sq / residual_sq) * direction
        residual_sq = new_residual_sq
    return ConjugateGradientResult(x.detach(), (b - residual).detach())


@dataclass(frozen=True)
class LineSearchResult:
    params: torch.Tensor  # the accepted parameters, or the starting ones if no step was accepted
    accepted: bool
    steps: int  # evaluations made
    loss: float
    kl: float


def backtracking_line_search(
    evaluate: Callable[[torch.Tensor], tuple[float, float]],
    start: torch.Tensor,
    full_step: torch.Tensor,
    loss_before: float,
    max_kl: float,
    max_steps: int = 15,
    backtrack_ratio: float = 0.8,
    on_step: Callable[[int], None] | None = None,
) -> LineSearchResult:
    """Try start + ratio^k · full_step for k = 0, 1, ...; accept the first that lowers the loss within max_kl.

    ``evaluate`` maps parameters to (loss, KL from the starting policy). If no step is accepted the
    starting parameters come back unchanged, so a bad direction never moves the policy. ``on_step(k)`` is told
    as the k-th evaluation (from 1) starts.
    """
    fraction = 1.0
    for step in range(1, max_steps + 1):
        if on_step is not None:
            on_step(step)
        candidate = start + fraction * full_step
        loss, kl = evaluate(candidate)
        if loss < loss_before and kl <= max_kl:
            return LineSearchResult(candidate, True, step, loss, kl)
        fraction *= backtrack_ratio
    return LineSearchResult(start, False, max_steps, loss_before, 0.0)


def gauss_newton_product(
    outputs: Sequence[torch.Tensor],
    loss_of_outputs: Callable[[Sequence[torch.Tensor]], torch.Tensor],
    params: Sequence[torch.Tensor],
    damping: float = 0.0,
) -> MatVec:
    """v ↦ (Jᵀ H_u J + damping·I) v, where J = ∂outputs/∂params and H_u = ∇²_u loss(u) at u = outputs.

    For a divergence from a fixed distribution, evaluated where the two coincide (TRPO's KL at the
    current parameters), the gradient in u vanishes, so this Gauss-Newton product equals the exact
    Hessian-vector product of loss(outputs(params)) — at a fraction of its cost: J v by the
    double-backward trick, H_u on the small per-sample graph, Jᵀ by one backward pass. All graphs
    are built once here and reused by every product.
    """
    outputs = list(outputs)
    free_outputs = [output.detach().requires_grad_() for output in outputs]
    loss_grad = torch.autograd.grad(loss_of_outputs(free_outputs), free_outputs, create_graph=True)
    probes = [torch.zeros_like(output, requires_grad=True) for output in outputs]
    transpose_of_probes = torch.autograd.grad(outputs, params, grad_outputs=probes, create_graph=True)

    def product(vector: torch.Tensor) -> torch.Tensor:
        pieces, offset = [], 0
        for param in params:
            pieces.append(vector[offset : offset + param.numel()].view_as(param))
            offset += param.numel()
        jv = torch.autograd.grad(transpose_of_probes, probes, grad_outputs=pieces, retain_graph=True)
        hjv = torch.autograd.grad(loss_grad, free_outputs, grad_outputs=jv, retain_graph=True)
        jthjv = torch.autograd.grad(outputs, params, grad_outputs=hjv, retain_graph=True)
        return flat(jthjv) + damping * vector

    return product
