"""Hessian-vector products, conjugate gradient and the backtracking line search of the TRPO step."""

import math

import pytest
import torch
from torch.func import functional_call

from metarl.optim import backtracking_line_search, conjugate_gradient, hessian_vector_product
from metarl.policies import parameters_of


def test_hessian_vector_product_matches_explicit_hessian(tiny_policy, episode_batch):
    """(∇²f + damping·I) v by double backprop equals the explicit Hessian of f times v."""
    batch = episode_batch(0, [4, 3])
    params = parameters_of(tiny_policy)
    names, shapes = list(params), [p.shape for p in params.values()]
    sizes = [p.numel() for p in params.values()]

    def loss_of(named):
        distribution = functional_call(tiny_policy, named, (batch.observations_TBO,))
        return -(distribution.log_prob(batch.actions_TBA) * batch.rewards_TB).sum()

    def loss_of_flat(vector):
        chunks = torch.split(vector, sizes)
        return loss_of({n: c.view(s) for n, c, s in zip(names, chunks, shapes, strict=True)})

    start = torch.cat([p.detach().reshape(-1) for p in params.values()])
    hessian = torch.autograd.functional.hessian(loss_of_flat, start)
    damping = 0.1
    product = hessian_vector_product(loss_of(params), list(params.values()), damping)

    generator = torch.Generator().manual_seed(1)
    for _ in range(3):
        vector = torch.randn(start.numel(), generator=generator, dtype=torch.float64)
        torch.testing.assert_close(product(vector), hessian @ vector + damping * vector, rtol=1e-9, atol=1e-9)


def test_conjugate_gradient_solves_spd_system():
    """CG with n iterations on an n×n SPD system matches torch.linalg.solve, given only v ↦ A v."""
    generator = torch.Generator().manual_seed(0)
    q, _ = torch.linalg.qr(torch.randn(8, 8, generator=generator, dtype=torch.float64))
    matrix = q @ torch.diag(torch.linspace(0.5, 20.0, 8, dtype=torch.float64)) @ q.T
    b = torch.randn(8, generator=generator, dtype=torch.float64)
    calls = []

    def matvec(vector):
        calls.append(1)
        return matrix @ vector

    x = conjugate_gradient(matvec, b, iterations=8, residual_tol=1e-20).solution
    torch.testing.assert_close(x, torch.linalg.solve(matrix, b), rtol=1e-8, atol=1e-8)
    assert len(calls) <= 8


@pytest.mark.parametrize("iterations", [1, 3, 10])
def test_conjugate_gradient_product_is_matrix_times_solution(iterations):
    """The A·x that CG returns (from its residual, with no extra product) equals A·x computed directly,
    also when CG stops early, which is how TRPO scales its step."""
    generator = torch.Generator().manual_seed(2)
    a = torch.randn(40, 40, generator=generator, dtype=torch.float64)
    matrix = a @ a.T + 0.1 * torch.eye(40, dtype=torch.float64)
    b = torch.randn(40, generator=generator, dtype=torch.float64)
    result = conjugate_gradient(lambda v: matrix @ v, b, iterations=iterations)
    assert not torch.allclose(result.product, b)  # truncated: A x is not b yet, so the check below means something
    torch.testing.assert_close(result.product, matrix @ result.solution, rtol=1e-9, atol=1e-9)


def test_conjugate_gradient_few_iterations_still_descends():
    """Truncated CG (fewer iterations than dimensions) still reduces the residual from x = 0."""
    generator = torch.Generator().manual_seed(1)
    a = torch.randn(30, 30, generator=generator, dtype=torch.float64)
    matrix = a @ a.T + torch.eye(30, dtype=torch.float64)
    b = torch.randn(30, generator=generator, dtype=torch.float64)
    x = conjugate_gradient(lambda v: matrix @ v, b, iterations=3).solution
    assert torch.linalg.norm(matrix @ x - b) < torch.linalg.norm(b)


class Landscape:
    """A known loss and KL along a line: records every candidate the line search evaluates."""

    def __init__(self, start, loss, kl):
        self.start, self.loss, self.kl = start, loss, kl
        self.candidates = []

    def __call__(self, candidate):
        self.candidates.append(candidate.clone())
        return self.loss(candidate), self.kl(candidate)


def quadratic_landscape(start, optimum):
    """Loss ‖x − optimum‖², KL ‖x − start‖²: the full step overshoots the optimum."""
    return Landscape(
        start,
        lambda x: float(((x - optimum) ** 2).sum()),
        lambda x: float(((x - start) ** 2).sum()),
    )


@pytest.mark.parametrize("ratio", [0.5, 0.8])
def test_line_search_backtracks_by_ratio_and_accepts_first_valid_step(ratio):
    """Candidates are start + ratio^k · full_step; the first that lowers the loss within max_kl is taken."""
    start = torch.tensor([1.0, -1.0], dtype=torch.float64)
    optimum = torch.tensor([0.0, 0.0], dtype=torch.float64)
    full_step = 4.0 * (optimum - start)  # overshoots: the loss at start + full_step is 9× worse
    landscape = quadratic_landscape(start, optimum)
    max_kl = 1.0
    loss_before = landscape.loss(start)

    result = backtracking_line_search(landscape, start, full_step, loss_before, max_kl, 15, ratio)

    assert result.accepted
    for k, candidate in enumerate(landscape.candidates):
        torch.testing.assert_close(candidate, start + ratio**k * full_step, rtol=1e-12, atol=1e-12)
    valid = [landscape.loss(c) < loss_before and landscape.kl(c) <= max_kl for c in landscape.candidates]
    assert valid[-1] and not any(valid[:-1]), "must stop at the first acceptable candidate"
    assert result.steps == len(landscape.candidates)
    assert torch.equal(result.params, landscape.candidates[-1])
    assert result.loss == landscape.loss(result.params) < loss_before
    assert result.kl == landscape.kl(result.params) <= max_kl


def test_line_search_never_breaks_trust_region():
    """Steps that improve the loss but exceed max_kl are rejected until one fits inside the region."""
    start = torch.zeros(3, dtype=torch.float64)
    full_step = torch.ones(3, dtype=torch.float64)
    # the loss improves all along the line; KL = 3·fraction² exceeds 0.05 until fraction ≤ 0.129
    landscape = Landscape(start, lambda x: -float(x.sum()), lambda x: float((x**2).sum()))
    result = backtracking_line_search(landscape, start, full_step, 0.0, 0.05, 15, 0.5)
    assert result.accepted
    assert result.kl <= 0.05
    assert result.steps == 4  # fractions 1, 0.5, 0.25, 0.125
    torch.testing.assert_close(result.params, 0.125 * full_step)


def test_line_search_never_accepts_a_worse_or_equal_loss():
    """A direction along which the loss only grows (or stays equal) is never accepted, however small the KL."""
    start = torch.zeros(2, dtype=torch.float64)
    full_step = torch.tensor([1.0, 2.0], dtype=torch.float64)
    for loss in (lambda x: float(x.abs().sum()), lambda x: 0.0):
        landscape = Landscape(start, loss, lambda x: 0.0)
        result = backtracking_line_search(landscape, start, full_step, 0.0, 1.0, 6, 0.8)
        assert not result.accepted


@pytest.mark.parametrize(
    "loss, kl",
    [
        (lambda x: 1.0, lambda x: 0.0),  # the loss is worse everywhere
        (lambda x: -1.0, lambda x: 1.0),  # the loss is better, but the KL always breaks the trust region
        (lambda x: float("nan"), lambda x: 0.0),  # NaN loss
        (lambda x: -1.0, lambda x: float("nan")),  # NaN KL
    ],
    ids=["worse-loss", "kl-too-large", "nan-loss", "nan-kl"],
)
def test_line_search_rejection_returns_start_unchanged(loss, kl):
    """When no step is accepted the starting parameters come back unchanged after exactly max_steps tries."""
    start = torch.tensor([0.3, -0.7, 1.1], dtype=torch.float64)
    landscape = Landscape(start, loss, kl)
    result = backtracking_line_search(landscape, start.clone(), torch.ones(3, dtype=torch.float64), 0.0, 0.01, 5, 0.5)
    assert not result.accepted
    assert torch.equal(result.params, start)
    assert len(landscape.candidates) == result.steps == 5
    assert result.loss == 0.0 and not math.isnan(result.kl)
