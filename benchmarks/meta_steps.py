"""Seconds per meta-step of each meta-learner (MAML-TRPO, MAML-PPO, ProMP) on the same meta-batch, side by side.

The algorithms share sampling and the inner step; they differ in the meta-step, whose time this measures on
synthetic HalfCheetah-shaped episodes (obs 17, act 6; the paper's 40 tasks × 20 episodes × 200 steps for the
support and the query sets; policy 2×100 ReLU), each with its config's default settings (MAML-TRPO with the
config's default curvature product, ProMP with its LVC inner objective). The ratio to MAML-TRPO, measured in
one run, is the comparable number on a loaded machine. Usage:

    python benchmarks/meta_steps.py [--tasks 40] [--episodes 20] [--horizon 200] [--repeats 3] [--json FILE]
"""

from __future__ import annotations

import argparse

import torch
from common import print_table, timed, write_json
from meta_update import synthetic_meta_batch

from metarl.config import TrainConfig
from metarl.experiment import build_learner
from metarl.memory import keep_freed_memory
from metarl.meta_batch import MetaBatchTensors
from metarl.parts import build_inner_step
from metarl.policies import GaussianMLPPolicy

ALGORITHMS = {"maml_trpo": "pg", "maml_ppo": "pg", "promp": "lvc"}
"""Each meta-learner with its inner objective (ProMP's is LVC)."""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=40)
    parser.add_argument("--episodes", type=int, default=20)
    parser.add_argument("--horizon", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    keep_freed_memory()  # as launchers/train.py does
    device = torch.device("cpu")
    generator = torch.Generator().manual_seed(0)
    support, query = synthetic_meta_batch(args.tasks, args.episodes, args.horizon, generator)
    initial = GaussianMLPPolicy(17, 6, (100, 100), generator=generator).state_dict()
    rows = []
    for algo, objective in ALGORITHMS.items():
        config = TrainConfig(algo=algo, inner_objective=objective, inner_lr=0.1)
        inner = build_inner_step(config)
        tensors = MetaBatchTensors.from_episodes(support, query, inner, device)
        policy = GaussianMLPPolicy(17, 6, (100, 100))

        def step(policy=policy, config=config, inner=inner, tensors=tensors):
            policy.load_state_dict(initial)  # the same step each time, from a fresh learner (Adam's state)
            return build_learner(config, policy, inner, device).step(tensors)

        seconds, _ = timed(step, args.repeats)
        rows.append({"algo": algo, "seconds": seconds})
    for row in rows:
        row["ratio_to_maml_trpo"] = row["seconds"] / rows[0]["seconds"]
    print(
        f"meta-step: {args.tasks} tasks x {args.episodes} episodes x {args.horizon} steps, "
        f"{torch.get_num_threads()} CPU threads"
    )
    print_table(rows, ["algo", "seconds", "ratio_to_maml_trpo"])
    write_json(args.json, {"args": vars(args), "results": rows}, device)


if __name__ == "__main__":
    main()
