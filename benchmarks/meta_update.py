"""Seconds per MAML-TRPO meta-update: the two exact curvature products side by side, second and first order.

``gauss_newton`` is the Gauss-Newton product by autograd, batched over tasks; ``r_operator`` (the default) the
R-operator written out for the MLP, task by task (``metarl/algos/trpo_curvature.py``).

Rows with a curvature subsample (``curvature_subsample`` < 1) take the curvature products on that
fraction of each task's episodes: an approximation, off by default, shown for its speed.

The episodes are synthetic, shaped like HalfCheetah (obs 17, act 6) with the paper's batch: 40 tasks
× 20 episodes × 200 steps for the support and the query sets, policy 2×100 ReLU. The update's cost
does not depend on what generated the episodes. Usage:

    python benchmarks/meta_update.py [--tasks 40] [--episodes 20] [--horizon 200] [--repeats 3]
                                     [--subsamples 0.2 0.1] [--device cpu|cuda] [--json FILE]

``--device cuda`` runs the update on the GPU (the episodes are moved there once per update, as in
training); without a GPU it stops with one line.
"""

from __future__ import annotations

import argparse

import torch
from common import config_errors_exit, device_label, print_table, timed, write_json

from metarl.adaptation import InnerStep
from metarl.algos.maml_trpo import MAMLTRPO
from metarl.config import TRPOSettings
from metarl.episodes import EpisodeBatch
from metarl.memory import keep_freed_memory
from metarl.meta_batch import MetaBatchTensors
from metarl.parts import resolve_device
from metarl.policies import GaussianMLPPolicy


def synthetic_batch(horizon: int, episodes: int, obs_dim: int, act_dim: int, generator: torch.Generator):
    return EpisodeBatch(
        observations_TBO=torch.randn(horizon, episodes, obs_dim, generator=generator),
        actions_TBA=torch.randn(horizon, episodes, act_dim, generator=generator),
        rewards_TB=torch.randn(horizon, episodes, generator=generator),
        mask_TB=torch.ones(horizon, episodes),
        lengths_B=torch.full((episodes,), horizon),
    )


def synthetic_meta_batch(tasks: int, episodes: int, horizon: int, generator: torch.Generator):
    """Support (one inner step) and query batches for ``tasks`` HalfCheetah-shaped tasks."""
    support = [[synthetic_batch(horizon, episodes, 17, 6, generator)] for _ in range(tasks)]
    query = [synthetic_batch(horizon, episodes, 17, 6, generator) for _ in range(tasks)]
    return support, query


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=40)
    parser.add_argument("--episodes", type=int, default=20)
    parser.add_argument("--horizon", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--subsamples", type=float, nargs="*", default=[0.2, 0.1])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    with config_errors_exit():
        device = resolve_device(args.device, fix="run with --device cpu")
    keep_freed_memory()  # as launchers/train.py does

    generator = torch.Generator().manual_seed(0)
    support, query = synthetic_meta_batch(args.tasks, args.episodes, args.horizon, generator)
    initial = GaussianMLPPolicy(17, 6, (100, 100), generator=generator).state_dict()

    variants = [
        (first_order, curvature, 1.0) for first_order in (False, True) for curvature in ("gauss_newton", "r_operator")
    ]
    variants += [(False, "gauss_newton", fraction) for fraction in args.subsamples]
    rows = []
    for first_order, curvature, fraction in variants:
        policy = GaussianMLPPolicy(17, 6, (100, 100)).to(device)
        settings = TRPOSettings(curvature=curvature, curvature_subsample=fraction)
        learner = MAMLTRPO(policy, InnerStep((0.1,), first_order=first_order), trpo=settings, device=device)

        def update(policy=policy, learner=learner):
            policy.load_state_dict(initial)  # the same update each time
            # stacking and advantages included
            return learner.step(MetaBatchTensors.from_episodes(support, query, learner.inner, device))

        seconds, _ = timed(update, args.repeats)
        rows.append(
            {
                "order": "first" if first_order else "second",
                "curvature": curvature,
                "curvature_subsample": fraction,
                "seconds": seconds,
            }
        )
    for row in rows:
        same = next(r for r in rows if r["order"] == row["order"] and r["curvature"] == "gauss_newton")
        row["speedup_vs_gauss_newton"] = same["seconds"] / row["seconds"]
    print(
        f"meta-update: {args.tasks} tasks x {args.episodes} episodes x {args.horizon} steps, "
        f"device {device_label(device)}, {torch.get_num_threads()} CPU threads"
    )
    print_table(rows, ["order", "curvature", "curvature_subsample", "seconds", "speedup_vs_gauss_newton"])
    write_json(args.json, {"args": vars(args), "results": rows}, device)


if __name__ == "__main__":
    main()
