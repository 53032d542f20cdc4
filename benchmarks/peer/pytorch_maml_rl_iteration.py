"""Seconds per meta-iteration of pytorch-maml-rl (github.com/tristandeleu/pytorch-maml-rl), timed the way
``benchmarks/iteration.py`` times metarl, for side-by-side comparisons on one machine.

Run it with a Python that has pytorch-maml-rl's dependencies (gym 0.17.3, numpy < 2, torch, tqdm, pyyaml)
and Gymnasium with MuJoCo (the HalfCheetah physics, see ``halfcheetah_shim.py``), from a checkout of its
master; nothing of it is part of this repository. Its ``train.py`` loop is reproduced with timers:

    python benchmarks/peer/pytorch_maml_rl_iteration.py --checkout DIR --config configs/maml/halfcheetah-vel.yaml
        [--iterations 5] [--num-workers N] [--wait-sampling] [--seed 1] [--json FILE]

``--wait-sampling`` waits for the episodes before the meta-step, to split sampling from the update (its
own loop overlaps them). Two things current libraries removed are put back, as nothing else: ``torch.lstsq``
(as ``torch.linalg.lstsq``) for its baseline, and mujoco-py's HalfCheetah (the shim).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import statistics
import sys
import time
from pathlib import Path

import torch
import yaml


def restore_removed_apis() -> None:
    def lstsq(b, a):  # the old torch.lstsq(B, A) returned (solution, QR); only the solution is used
        return torch.linalg.lstsq(a, b).solution, None

    torch.lstsq = lstsq
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import halfcheetah_shim

    halfcheetah_shim.install()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkout", required=True, type=Path, help="a pytorch-maml-rl checkout")
    parser.add_argument("--config", required=True, help="its config, relative to the checkout")
    parser.add_argument("--iterations", type=int, default=5, help="timed iterations (after one warm-up)")
    parser.add_argument("--num-workers", type=int, default=mp.cpu_count() - 1, help="its default: cpu_count − 1")
    parser.add_argument("--wait-sampling", action="store_true")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()

    restore_removed_apis()
    sys.path.insert(0, str(args.checkout.resolve()))
    import gym
    import maml_rl.envs  # noqa: F401  (registers its envs)
    from maml_rl.baseline import LinearFeatureBaseline
    from maml_rl.metalearners import MAMLTRPO
    from maml_rl.samplers import MultiTaskSampler
    from maml_rl.utils.helpers import get_input_size, get_policy_for_env

    config = yaml.safe_load((args.checkout / args.config).read_text())
    torch.manual_seed(args.seed)
    env = gym.make(config["env-name"], **config.get("env-kwargs", {}))
    env.close()
    policy = get_policy_for_env(env, hidden_sizes=config["hidden-sizes"], nonlinearity=config["nonlinearity"])
    policy.share_memory()
    baseline = LinearFeatureBaseline(get_input_size(env))
    sampler = MultiTaskSampler(
        config["env-name"],
        env_kwargs=config.get("env-kwargs", {}),
        batch_size=config["fast-batch-size"],
        policy=policy,
        baseline=baseline,
        env=env,
        seed=args.seed,
        num_workers=args.num_workers,
    )
    learner = MAMLTRPO(policy, fast_lr=config["fast-lr"], first_order=config["first-order"], device="cpu")
    step_settings = {
        key.replace("-", "_"): config[key]
        for key in ("max-kl", "cg-iters", "cg-damping", "ls-max-steps", "ls-backtrack-ratio")
    }
    rows = []
    for _ in range(args.iterations + 1):
        start = time.perf_counter()
        tasks = sampler.sample_tasks(num_tasks=config["meta-batch-size"])
        futures = sampler.sample_async(
            tasks,
            num_steps=config["num-steps"],
            fast_lr=config["fast-lr"],
            gamma=config["gamma"],
            gae_lambda=config["gae-lambda"],
            device="cpu",
        )
        sampled = None
        if args.wait_sampling:
            sampler.sample_wait(futures)
            sampled = time.perf_counter()
        learner.step(*futures, **step_settings)
        stepped = time.perf_counter()
        if not args.wait_sampling:
            sampler.sample_wait(futures)
        end = time.perf_counter()
        rows.append(
            {
                "iteration_s": end - start,
                "sampling_s": None if sampled is None else sampled - start,
                "meta_update_s": None if sampled is None else stepped - sampled,
            }
        )
    sampler.close()
    timed = rows[1:]
    summary = {
        key: statistics.median(row[key] for row in timed) if timed[0][key] is not None else None for key in timed[0]
    }
    print(
        f"pytorch-maml-rl {args.config}: {args.num_workers} worker(s), OMP_NUM_THREADS="
        f"{os.environ.get('OMP_NUM_THREADS', 'unset')}, {'sampling waited for' if args.wait_sampling else 'its loop'}: "
        + ", ".join(f"{key} {value:.2f}" for key, value in summary.items() if value is not None)
    )
    if args.json:
        Path(args.json).write_text(json.dumps({"args": {**vars(args), "checkout": str(args.checkout)}, **summary}))


if __name__ == "__main__":
    main()
