"""How far the exact second-order meta-update is from the arithmetic it cannot avoid, on this machine.

One exact curvature product through one inner step is Σᵢ (I − αHᵢ) Fᵢ (I − αHᵢ) v. Written out with
Pearlmutter's R-operator, each hidden-to-hidden layer [H × H] costs at least 16 matrix products with
one dimension over all N states: 6 per support Hessian-vector product (2 in the tangent forward pass,
2 in the tangent backward pass, 2 for the weight gradient), twice, and 4 for the Fisher product
(2 forward, 1 backward, 1 weight gradient). The smaller input and output layers are left out, so
this is a lower bound. The script times those 16 products alone (the shapes the learner's products
use), the input and output layers' thin products beside them, the machine's best float32
matrix-product rate (a large square sgemm), one product and a whole meta-update with each exact
product (autograd's Gauss-Newton, the default, and the R-operator written out, ``r_operator``), all
in one run, on HalfCheetah-shaped synthetic episodes (as ``meta_update.py``). Usage:

    python benchmarks/curvature_floor.py [--tasks 40] [--episodes 20] [--horizon 200]
                                         [--hidden 100] [--repeats 3] [--task-chunks 1 5] [--json FILE]

``--task-chunks C ...`` also times the Gauss-Newton product summed over chunks of C tasks, each with its own
graph (the KL and its curvature are sums over tasks): smaller tensors that stay in cache, against more,
smaller operations. It is an idea that was measured, not what the learner does.
"""

from __future__ import annotations

import argparse
from dataclasses import fields
from functools import partial

import torch
from common import print_table, timed, write_json
from meta_update import synthetic_meta_batch

from metarl.adaptation import InnerStep
from metarl.algos.maml_trpo import MAMLTRPO
from metarl.config import TRPOSettings
from metarl.episodes import EpisodeBatch
from metarl.memory import keep_freed_memory
from metarl.meta_batch import MetaBatchTensors
from metarl.optim import MatVec
from metarl.policies import GaussianMLPPolicy, parameters_of

PRODUCTS_PER_CG_SOLVE = 10
METHODS = {
    "gauss_newton": "Gauss-Newton by autograd, tasks batched (trpo.curvature: gauss_newton)",
    "r_operator": "R-operator written out, task by task (trpo.curvature: r_operator, the default)",
}


def product_gemms(tasks: int, states: int, hidden: int):
    """The 16 unavoidable [states × hidden]·[hidden × hidden] products of one curvature product, per layer."""
    generator = torch.Generator().manual_seed(0)
    activations = torch.randn(tasks, states, hidden, generator=generator)
    weights = torch.randn(tasks, hidden, hidden, generator=generator)

    def forward():  # a tangent forward or backward pass: [K, n, H] · [K, H, H]
        return torch.bmm(activations, weights)

    def gradient():  # a weight gradient: [K, H, n] · [K, n, H]
        return torch.bmm(activations.transpose(1, 2), activations)

    # 2 support HVPs × (4 pass products + 2 gradients) + Fisher (3 pass products + 1 gradient).
    calls = [forward] * (2 * 4 + 3) + [gradient] * (2 * 2 + 1)
    return lambda: [call() for call in calls], len(calls) * 2 * tasks * states * hidden * hidden


def edge_layer_gemms(tasks: int, states: int, hidden: int, observation_dim: int, action_dim: int):
    """The input and output layers' products of one curvature product (the written-out product's count),
    which the floor leaves out: thin ([states × 17]·[17 × hidden], [states × hidden]·[hidden × 6], ...) and
    bound by writing or reading [states × hidden] activations rather than by arithmetic."""
    generator = torch.Generator().manual_seed(2)
    hidden_acts = torch.randn(tasks, states, hidden, generator=generator)
    inputs = torch.randn(tasks, states, observation_dim, generator=generator)
    outputs = torch.randn(tasks, states, action_dim, generator=generator)
    w_in = torch.randn(tasks, observation_dim, hidden, generator=generator)
    w_out = torch.randn(tasks, hidden, action_dim, generator=generator)
    calls = (
        [lambda: torch.bmm(inputs, w_in)] * 3  # tangent forward into the first layer: 2 HVPs + Fisher
        + [lambda: torch.bmm(hidden_acts.transpose(1, 2), inputs)] * 3  # the first layer's weight gradients
        + [lambda: torch.bmm(hidden_acts, w_out)] * 6  # the mean's tangent: 2 per HVP, 2 in the Fisher product
        + [lambda: torch.bmm(outputs, w_out.transpose(1, 2))] * 5  # back into the last hidden layer
        + [lambda: torch.bmm(outputs.transpose(1, 2), hidden_acts)] * 5  # the last layer's weight gradients
    )
    flop = 2 * tasks * states * hidden * (6 * observation_dim + 16 * action_dim)
    return lambda: [call() for call in calls], flop


def tasks_of(data: MetaBatchTensors, chunk: slice) -> MetaBatchTensors:
    def batch(episodes: EpisodeBatch) -> EpisodeBatch:
        return EpisodeBatch(**{f.name: getattr(episodes, f.name)[chunk] for f in fields(episodes)})

    return MetaBatchTensors(
        tuple(batch(b) for b in data.support),
        tuple(a[chunk] for a in data.support_advantages),
        batch(data.query),
        data.query_advantages[chunk],
    )


def exact_product(learner: MAMLTRPO, data: MetaBatchTensors) -> MatVec:
    """The learner's exact curvature product, built once (as ``MAMLTRPO.step`` builds it)."""
    return learner.problem(data).curvature


def chunked_product(learner: MAMLTRPO, data: MetaBatchTensors, size: int) -> MatVec:
    """The same product as a weighted sum over chunks of ``size`` tasks (the KL is a mean over tasks)."""
    chunks = [tasks_of(data, slice(start, start + size)) for start in range(0, data.num_tasks, size)]
    parts = [(exact_product(learner, chunk), chunk.num_tasks / data.num_tasks) for chunk in chunks]
    return lambda vector: sum(weight * product(vector) for product, weight in parts)  # damping sums to one


def square_sgemm(size: int = 2048):
    generator = torch.Generator().manual_seed(1)
    a, b = torch.randn(size, size, generator=generator), torch.randn(size, size, generator=generator)
    return lambda: a @ b, 2 * size**3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=40)
    parser.add_argument("--episodes", type=int, default=20)
    parser.add_argument("--horizon", type=int, default=200)
    parser.add_argument("--hidden", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--task-chunks", type=int, nargs="*", default=[])
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    keep_freed_memory()  # as launchers/train.py does

    generator = torch.Generator().manual_seed(0)
    support, query = synthetic_meta_batch(args.tasks, args.episodes, args.horizon, generator)
    policy = GaussianMLPPolicy(17, 6, (args.hidden, args.hidden), generator=generator)
    initial = {name: value.clone() for name, value in policy.state_dict().items()}
    learners = {method: MAMLTRPO(policy, InnerStep((0.1,)), trpo=TRPOSettings(curvature=method)) for method in METHODS}
    data = MetaBatchTensors.from_episodes(support, query, learners["gauss_newton"].inner, "cpu")
    params = parameters_of(policy)
    vector = torch.randn(sum(p.numel() for p in params.values()), generator=generator)

    gemms, gemm_flop = product_gemms(args.tasks, args.episodes * args.horizon, args.hidden)
    sgemm, sgemm_flop = square_sgemm()
    sgemm_seconds = timed(sgemm, args.repeats)[0]
    floor = gemm_flop * sgemm_seconds / sgemm_flop  # one product's GEMMs at the best rate
    gemm_seconds = timed(gemms, args.repeats)[0]
    edges, edge_flop = edge_layer_gemms(args.tasks, args.episodes * args.horizon, args.hidden, 17, 6)
    edge_seconds = timed(edges, args.repeats)[0]
    product_seconds, update_seconds, chunked_seconds = {}, {}, {}
    reference = None
    for method, learner in learners.items():
        product = exact_product(learner, data)
        product_seconds[method] = timed(partial(product, vector), args.repeats)[0]
        result = product(vector)
        reference = result if reference is None else reference
        difference = float((result - reference).norm() / reference.norm())
        assert difference < 1e-4, f"the {method} product differs from the Gauss-Newton one by {difference:.1e}"
        del product  # frees the product's graphs before the others build their own
    for size in args.task_chunks:
        chunked = chunked_product(learners["gauss_newton"], data, size)
        chunked_seconds[size] = timed(partial(chunked, vector), args.repeats)[0]
        difference = float((chunked(vector) - reference).norm() / reference.norm())
        assert difference < 1e-4, f"the chunked product differs from the learner's by {difference:.1e}"
        del chunked
    for method, learner in learners.items():

        def update(learner=learner):
            policy.load_state_dict(initial)  # the same update each time
            # stacking and advantages included, as in training
            return learner.step(MetaBatchTensors.from_episodes(support, query, learner.inner, "cpu"))

        update_seconds[method] = timed(update, args.repeats)[0]
    solve_floor = PRODUCTS_PER_CG_SOLVE * floor

    def row(what: str, seconds: float, gflop: float | None = None, floor_seconds: float | None = None):
        return {
            "what": what,
            "seconds": seconds,
            "gflop": gflop,
            "gflop_per_s": None if gflop is None else gflop / seconds,
            "x_floor": None if floor_seconds is None else seconds / floor_seconds,
        }

    rows = [
        row("square sgemm 2048 (the machine's best float32 rate)", sgemm_seconds, sgemm_flop / 1e9),
        row("the 16 unavoidable GEMMs of one product, alone", gemm_seconds, gemm_flop / 1e9, floor),
        row("the input and output layers' 22 GEMMs of one product, alone", edge_seconds, edge_flop / 1e9, floor),
        row(
            "every GEMM of one product, alone (the two rows above)",
            gemm_seconds + edge_seconds,
            (gemm_flop + edge_flop) / 1e9,
            floor,
        ),
        *(
            row(f"one exact product, {METHODS[method]}", product_seconds[method], gemm_flop / 1e9, floor)
            for method in METHODS
        ),
        *(
            row(f"the Gauss-Newton product summed over chunks of {size} tasks", seconds, gemm_flop / 1e9, floor)
            for size, seconds in chunked_seconds.items()
        ),
        row(
            f"{PRODUCTS_PER_CG_SOLVE} products' GEMMs at the best rate (floor of one CG solve)",
            solve_floor,
            PRODUCTS_PER_CG_SOLVE * gemm_flop / 1e9,
        ),
        *(
            row(f"one meta-update (second order, exact), {METHODS[method]}", seconds, floor_seconds=solve_floor)
            for method, seconds in update_seconds.items()
        ),
    ]
    print(
        f"curvature floor: {args.tasks} tasks x {args.episodes} episodes x {args.horizon} steps, "
        f"hidden {args.hidden}x{args.hidden}, {torch.get_num_threads()} threads"
    )
    print_table(rows, ["what", "seconds", "gflop", "gflop_per_s", "x_floor"])
    write_json(args.json, {"args": vars(args), "results": rows})


if __name__ == "__main__":
    main()
