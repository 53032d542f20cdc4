"""Env steps per second on one core: raw MuJoCo, Gymnasium's v5 env, and our batched vector env.

For each robot, N environments run ``--steps`` steps with the same uniform random actions in all
three ways, from the same seeded resets, so that all three simulate identical states:

(a) raw physics: ``mujoco.mj_step(model, data, frame_skip)`` over N ``MjData``; only these calls are
    timed (setting the controls between them is not), so this is the ceiling for any env;
(b) Gymnasium's own ``HalfCheetah-v5`` / ``Ant-v5`` from ``gymnasium.make``, stepped one env at a time;
(c) our ``TaskVectorEnv`` (``gymnasium.make_vec(id, N)``): one ``step`` call for all N envs,
    observations, rewards and terminations included.

The three are interleaved step by step and timed in the process's CPU time, so other jobs on the
machine disturb them less and alike; each rate is the best of ``--repeats`` runs. The process is
pinned to one CPU where the OS allows it.

    python benchmarks/mujoco_step_rate.py --json step_rates.json
"""

from __future__ import annotations

import argparse
import contextlib
import os
import tempfile
import time
from collections.abc import Iterator

import gymnasium
import mujoco
import numpy as np
from common import write_json

import envs  # noqa: F401  (registers the metarl ids)

CASES = [
    ("metarl/HalfCheetahVel-v0", "HalfCheetah-v5"),
    ("metarl/AntVel-v0", "Ant-v5"),
]
clock = time.process_time


@contextlib.contextmanager
def away_from_cwd_and_stdout() -> Iterator[None]:
    """Gymnasium's own HalfCheetah-v5 makes MuJoCo write MUJOCO_LOG.TXT into the working directory and
    print the same deprecation warning from C on every construction: send both elsewhere."""
    cwd, saved_stdout, saved_stderr = os.getcwd(), os.dup(1), os.dup(2)
    with tempfile.TemporaryDirectory() as directory, open(os.devnull, "w") as devnull:
        os.chdir(directory)
        os.dup2(devnull.fileno(), 1)
        os.dup2(devnull.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved_stdout, 1)
            os.dup2(saved_stderr, 2)
            os.close(saved_stderr)
            os.close(saved_stdout)
            os.chdir(cwd)


def gymnasium_envs(gym_id: str, num_envs: int) -> list[gymnasium.Env]:
    with away_from_cwd_and_stdout():
        return [gymnasium.make(gym_id) for _ in range(num_envs)]


def step_rates(env_id: str, singles: list[gymnasium.Env], actions_TNA: np.ndarray) -> dict[str, float]:
    """(a), (b) and (c) on identical physics, interleaved step by step so that load bursts hit all three.

    All three start from the same seeded resets (the models are identical, see envs/mujoco_model.py)
    and get the same actions, so their states stay identical; at each step all three simulate exactly
    the envs that our vector env still runs.
    """
    num_envs = actions_TNA.shape[1]
    seeds = list(range(num_envs))
    ours = gymnasium.make_vec(env_id, num_envs, max_episode_steps=None)
    bare = gymnasium.make_vec(env_id, num_envs, max_episode_steps=None).unwrapped
    ours.reset(seed=seeds)
    bare.reset(seed=seeds)
    for seed, env in zip(seeds, singles, strict=True):
        env.reset(seed=seed)
    model, datas, frame_skip = bare.sim.model, bare.sim.datas, bare.robot.frame_skip
    elapsed = {"raw": 0.0, "gymnasium": 0.0, "batched": 0.0}
    steps = 0
    for actions_NA in actions_TNA:
        running = np.flatnonzero(~ours.unwrapped.done).tolist()
        steps += len(running)
        for i in running:
            datas[i].ctrl[:] = actions_NA[i]
        start = clock()
        for i in running:  # (a): bare physics calls only
            mujoco.mj_step(model, datas[i], frame_skip)
        elapsed["raw"] += clock() - start
        start = clock()
        for i in running:  # (b): Gymnasium's env as gymnasium.make returns it, one step call per env
            singles[i].step(actions_NA[i])
        elapsed["gymnasium"] += clock() - start
        start = clock()
        ours.step(actions_NA)  # (c): one call for all envs, observations, rewards and terminations included
        elapsed["batched"] += clock() - start
    return {name: steps / seconds for name, seconds in elapsed.items()}


def measure(num_envs: int, num_steps: int, repeats: int, seed: int) -> list[dict[str, float | int | str]]:
    rows = []
    for env_id, gym_id in CASES:
        action_dim = gymnasium.make_vec(env_id, 1).single_action_space.shape[0]
        actions_TNA = np.random.default_rng(seed).uniform(-1, 1, (num_steps, num_envs, action_dim)).astype(np.float32)
        singles = gymnasium_envs(gym_id, num_envs)
        best = {"raw": 0.0, "gymnasium": 0.0, "batched": 0.0}
        for _ in range(repeats):
            for name, rate in step_rates(env_id, singles, actions_TNA).items():
                best[name] = max(best[name], rate)
        rows.append(
            {
                "env_id": env_id,
                "gymnasium_id": gym_id,
                "num_envs": num_envs,
                "raw_mj_step_per_s": best["raw"],
                "gymnasium_step_per_s": best["gymnasium"],
                "batched_step_per_s": best["batched"],
                "batched_over_raw": best["batched"] / best["raw"],
                "gymnasium_over_raw": best["gymnasium"] / best["raw"],
            }
        )
    return rows


def table(rows: list[dict[str, float | int | str]]) -> str:
    lines = [
        "| env | N | (a) raw mj_step | (b) Gymnasium v5 step | (c) our vector env | (c)/(a) | (b)/(a) |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        lines.append(
            f"| {r['env_id']} (vs {r['gymnasium_id']}) | {r['num_envs']} | {r['raw_mj_step_per_s']:,.0f} "
            f"| {r['gymnasium_step_per_s']:,.0f} | {r['batched_step_per_s']:,.0f} "
            f"| {r['batched_over_raw']:.2f} | {r['gymnasium_over_raw']:.2f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--num-envs", type=int, default=40, help="environments stepped together")
    parser.add_argument("--steps", type=int, default=200, help="steps per run (the paper's horizon)")
    parser.add_argument("--repeats", type=int, default=5, help="runs per measurement; the best counts")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random actions")
    parser.add_argument("--json", metavar="FILE", help="also write the numbers to FILE")
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    rows = measure(args.num_envs, args.steps, args.repeats, args.seed)
    print(f"env steps per second of CPU time, one core, best of {args.repeats} runs of {args.steps} steps")
    print(table(rows))
    write_json(args.json, {"rows": rows, "settings": vars(args), "mujoco": mujoco.__version__})


if __name__ == "__main__":
    main()
