"""An experiment, not part of the package: metarl training with the paper's code's TRPO curvature.

The paper's code (cbfinn/maml_rl) took its Hessian-vector products by finite differences from 2017-02-18
(commit 8818ca7) on, and so at the ICML deadline (7fe27d7, 2017-02-25) and in every later commit:
``sandbox/rocky/tf/optimizers/conjugate_gradient_optimizer.py`` line 163 builds ``FiniteDifferenceHvp(num_slices)``,
and ``FiniteDifferenceHvp.__init__(self, base_eps=1e-8, symmetric=True, grad_clip=None, num_slices=1)``
(line 62) takes its first positional argument as ``base_eps``. The optimizer's ``num_slices`` is 1 (its
default, line 135; ``SensitiveTRPO`` passes no optimizer arguments), so ``base_eps`` = 1, not the
default 1e-8, and line 86 gives ε = float32(1 / (‖θ‖ + 1e-8)): about 0.085 for our policies.
Hx ≈ (∇KL(θ + εx) − ∇KL(θ − εx)) / 2ε (lines 87-93), the perturbed parameters written back as float32.

This script replaces ``MAMLTRPO.step`` by that procedure (float32 perturbations, ``rllab``'s CG, step size
from the finite difference, the same line search), trains a config for a few iterations and prints what
it did, with the finite-difference product measured against metarl's exact one (the configured
``trpo.curvature``, damping left out of both) on the meta-gradient g and on the CG direction d: cosine and
length ratio ‖H_fd v‖ / ‖H v‖, the step length it implied against the exact one's,
sqrt(dᵀ H d / dᵀ H_fd d), and the cosine between d and the direction CG finds with the exact product.
Run it one thread at a time, from the repository root:

    export OMP_NUM_THREADS=1
    python docs/experiments/paper_finite_difference_trpo.py launchers/configs/halfcheetah-dir.yaml paper 9 /tmp/hcd
    python docs/experiments/paper_finite_difference_trpo.py launchers/configs/2d-navigation.yaml paper 40 /tmp/nav

(``exact`` instead of ``paper``: metarl's own step, for the side-by-side; further arguments are ``--set``-style
overrides, ``key=value``.) Results are in docs/RESULTS.md, *HalfCheetah direction*.
"""

from __future__ import annotations

import math
import sys
import types
from pathlib import Path

import numpy as np
import torch

from metarl.algos.base import OldPolicy, adapted_on, mean_kl, query_distribution
from metarl.algos.maml_trpo import MAMLTRPO, unflatten
from metarl.config import TrainConfig, load_config
from metarl.meta_batch import MetaBatchTensors
from metarl.optim import backtracking_line_search, conjugate_gradient, flat
from metarl.policies import detached, parameters_of
from metarl.trainer import Trainer

BASE_EPS = 1.0
"""What the paper's code passed as ``base_eps``: ``FiniteDifferenceHvp(num_slices)`` with num_slices = 1 (see above)."""


def compare(approximate: torch.Tensor, exact: torch.Tensor) -> tuple[float, float]:
    """Cosine and length ratio ‖approximate‖ / ‖exact‖."""
    cosine = float(torch.nn.functional.cosine_similarity(approximate, exact, dim=0))
    return cosine, float(approximate.norm() / exact.norm())


def finite_difference_step(self: MAMLTRPO, data: MetaBatchTensors, note: object = None) -> dict[str, float]:
    params = parameters_of(self.policy)
    tensors = list(params.values())
    adapted = adapted_on(self.policy, self.inner, params, data, False)
    distribution = query_distribution(self.policy, adapted, data)
    old = OldPolicy.frozen(distribution, data)
    loss = self.surrogate(distribution, data, old)
    gradient = flat(torch.autograd.grad(loss, tensors)).detach()
    loss_before = float(loss.detach())
    del adapted, distribution, loss
    start = flat([t.detach() for t in tensors]).clone()
    eps = float(np.float32(BASE_EPS / (np.linalg.norm(start.numpy()) + 1e-8)))

    def set_parameters(vector: torch.Tensor) -> None:
        offset = 0
        with torch.no_grad():
            for tensor in tensors:
                tensor.copy_(vector[offset : offset + tensor.numel()].view_as(tensor))
                offset += tensor.numel()

    def kl_gradient() -> torch.Tensor:
        new = query_distribution(self.policy, adapted_on(self.policy, self.inner, params, data, False), data)
        return flat(torch.autograd.grad(mean_kl(old, new, data.query.mask_TB), tensors)).detach()

    def product(vector: torch.Tensor) -> torch.Tensor:
        vector = vector.float()
        set_parameters(start + eps * vector)  # float32 arithmetic, as numpy did on the float32 parameters
        plus = kl_gradient()
        set_parameters(start - eps * vector)
        minus = kl_gradient()
        set_parameters(start)
        return (plus - minus) / (2 * eps) + self.trpo.cg_damping * vector

    direction = conjugate_gradient(product, gradient, self.trpo.cg_iters).solution
    curvature = float(direction @ product(direction))

    damping = self.trpo.cg_damping
    fd_g, fd_d = product(gradient) - damping * gradient, product(direction) - damping * direction
    # Built after the finite differences, which write the parameters in place under its graph.
    adapted = adapted_on(self.policy, self.inner, params, data)
    exact_product = self.curvature.product(
        params, data, detached(adapted), old, query_distribution(self.policy, adapted, data)
    )
    exact_g, exact_d = exact_product(gradient) - damping * gradient, exact_product(direction) - damping * direction
    cos_g, length_g = compare(fd_g, exact_g)
    cos_d, length_d = compare(fd_d, exact_d)
    exact_curvature = float(direction @ exact_product(direction))
    step_ratio = math.sqrt(exact_curvature / curvature) if curvature > 0 else math.nan
    exact_direction = conjugate_gradient(exact_product, gradient, self.trpo.cg_iters).solution
    del exact_product, adapted
    step_size = math.sqrt(2 * self.trpo.max_kl / (curvature + 1e-8)) if curvature + 1e-8 > 0 else 1.0
    result = backtracking_line_search(
        lambda candidate: self.evaluate(unflatten(candidate, params), data, old),
        start,
        -(step_size * direction),
        loss_before,
        self.trpo.max_kl,
        self.trpo.ls_max_steps,
        self.trpo.ls_backtrack_ratio,
    )
    set_parameters(result.params)
    return {
        "surrogate_before": loss_before,
        "surrogate_after": result.loss,
        "kl": result.kl,
        "line_search_steps": float(result.steps),
        "line_search_accepted": float(result.accepted),
        "cos_direction_gradient": float(torch.nn.functional.cosine_similarity(direction, gradient, dim=0)),
        "fd_cos_on_gradient": cos_g,
        "fd_length_on_gradient": length_g,
        "fd_cos_on_direction": cos_d,
        "fd_length_on_direction": length_d,
        "fd_step_over_exact_step": step_ratio,
        "fd_cos_with_exact_direction": float(torch.nn.functional.cosine_similarity(direction, exact_direction, dim=0)),
        "fd_eps": eps,
    }


def main() -> None:
    config_path, mode, iterations, output = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    config = load_config(TrainConfig, Path(config_path), [f"num_iterations={iterations}", *sys.argv[5:]]).validate()
    trainer = Trainer.start(config, Path(output))
    if mode == "paper":
        learner = trainer.experiment.learner
        learner.step = types.MethodType(finite_difference_step, learner)  # type: ignore[method-assign]

    def report(iteration: int, s: dict[str, float]) -> None:
        iteration -= 1  # the callback counts iterations done; this script's lines count from 0
        print(
            f"{mode} {iteration:3d}: return {s['returns/step_0']:8.2f} -> {s['returns/step_1']:8.2f}, "
            f"accepted {s['meta/line_search_accepted']:.0f} after {s['meta/line_search_steps']:.0f} tries, "
            f"kl {s['meta/kl']:.4f}, cos(direction, gradient) {s.get('meta/cos_direction_gradient', math.nan):.2f}",
            flush=True,
        )
        if mode == "paper":
            print(
                f"      eps {s['meta/fd_eps']:.4f}; fd product against exact: "
                f"on g cos {s['meta/fd_cos_on_gradient']:.3f} length {s['meta/fd_length_on_gradient']:.3f}, "
                f"on d cos {s['meta/fd_cos_on_direction']:.3f} length {s['meta/fd_length_on_direction']:.3f}; "
                f"step / exact step {s['meta/fd_step_over_exact_step']:.3f}; "
                f"cos(d, exact CG's direction) {s['meta/fd_cos_with_exact_direction']:.3f}",
                flush=True,
            )

    trainer.run(quiet=True, callback=report)


if __name__ == "__main__":
    main()
