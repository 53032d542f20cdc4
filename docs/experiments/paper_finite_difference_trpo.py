"""An experiment, not part of the package: metarl training with the paper's code's TRPO curvature.

The paper's code (cbfinn/maml_rl, ``sandbox/rocky/tf/optimizers/conjugate_gradient_optimizer.py``) switched
its Hessian-vector product from Pearlmutter's to ``FiniteDifferenceHvp`` on 2017-02-18 (commit 8818ca7),
before the paper's runs: Hx ≈ (∇KL(θ + εx) − ∇KL(θ − εx)) / 2ε with ε = 1e-8 / ‖θ‖, the perturbed
parameters written back as float32. At the scale of a gradient (‖x‖ ≈ 1) that perturbation is below
float32's resolution for most parameters, so the product sees only the parameters near zero; the step
size, taken with the same product on the (large) CG solution, is closer to exact. This script replaces
``MAMLTRPO.step`` by that procedure (float32 perturbations, ``rllab``'s CG, step size from the finite
difference, the same line search) and trains a config for a few iterations, printing what it did:

    python docs/experiments/paper_finite_difference_trpo.py launchers/configs/halfcheetah-dir.yaml paper 10 /tmp/hcd
    python docs/experiments/paper_finite_difference_trpo.py launchers/configs/2d-navigation.yaml exact 40 /tmp/nav

(``exact``: metarl's own step, for the side-by-side.) Results are in docs/RESULTS.md.
"""

from __future__ import annotations

import math
import sys
import types
from pathlib import Path

import numpy as np
import torch

from metarl.algos.base import OldPolicy
from metarl.algos.maml_trpo import MAMLTRPO, unflatten
from metarl.config import TrainConfig, load_config
from metarl.meta_batch import MetaBatchTensors
from metarl.optim import backtracking_line_search, conjugate_gradient, flat
from metarl.policies import parameters_of
from metarl.trainer import Trainer

BASE_EPS = 1e-8  # FiniteDifferenceHvp's default


def finite_difference_step(self: MAMLTRPO, data: MetaBatchTensors) -> dict[str, float]:
    params = parameters_of(self.policy)
    tensors = list(params.values())
    adapted = self.adapted(params, data, False)
    distribution = self.query_distribution(adapted, data)
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
        new = self.query_distribution(self.adapted(params, data, False), data)
        return flat(torch.autograd.grad(self.kl(new, data, old), tensors)).detach()

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
    }


def main() -> None:
    config_path, mode, iterations, output = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    config = load_config(TrainConfig, Path(config_path), [f"num_batches={iterations}", *sys.argv[5:]]).validate()
    trainer = Trainer.start(config, Path(output))
    if mode == "paper":
        learner = trainer.experiment.learner
        learner.step = types.MethodType(finite_difference_step, learner)  # type: ignore[method-assign]
    for iteration in range(iterations):
        s = trainer.iteration()
        print(
            f"{mode} {iteration:3d}: return {s['returns/step_0']:8.2f} -> {s['returns/step_1']:8.2f}, "
            f"accepted {s['meta/line_search_accepted']:.0f} after {s['meta/line_search_steps']:.0f} tries, "
            f"kl {s['meta/kl']:.4f}, cos(direction, gradient) {s.get('meta/cos_direction_gradient', math.nan):.2f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
