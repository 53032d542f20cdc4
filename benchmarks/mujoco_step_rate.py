"""Env steps per second on one core: raw MuJoCo, Gymnasium's v5 env, and our batched vector env.

For each robot, N environments run ``--steps`` steps with the same uniform random actions in all
three ways:

(a) raw physics: ``mujoco.mj_step(model, data, frame_skip)`` over N ``MjData``; only these calls are
    timed (setting the controls between them is not), so this is the ceiling for any env;
(b) Gymnasium's own ``HalfCheetah-v5`` / ``Ant-v5`` from ``gymnasium.make``, stepped one env at a time;
(c) our ``TaskVectorEnv`` (``gymnasium.make_vec(id, N)``): one ``step`` call for all N envs,
    observations, rewards and terminations included.

Rates use the process's CPU time, so other jobs on the machine disturb them less; each is the best of
``--repeats`` interleaved runs. The process is pinned to one CPU where the OS allows it.

    python benchmarks/mujoco_step_rate.py --json step_rates.json
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import tempfile
import time
from collections.abc import Iterator

import gymnasium
import mujoco
import numpy as np

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


def raw_physics_rate(env_id: str, actions_TNA: np.ndarray) -> float:
    """(a): the batched env's own MjData (reset by the env), stepped by bare ``mj_step`` calls."""
    num_envs = actions_TNA.shape[1]
    vector = gymnasium.make_vec(env_id, num_envs, max_episode_steps=None).unwrapped
    vector.reset(seed=list(range(num_envs)))
    model, datas, frame_skip = vector.sim.model, vector.sim.datas, vector.robot.frame_skip
    elapsed = 0.0
    for actions_NA in actions_TNA:
        for data, action in zip(datas, actions_NA):
            data.ctrl[:] = action
        start = clock()
        for data in datas:
            mujoco.mj_step(model, data, frame_skip)
        elapsed += clock() - start
    return actions_TNA.shape[0] * num_envs / elapsed


def gymnasium_rate(singles: list[gymnasium.Env], actions_TNA: np.ndarray) -> float:
    """(b): Gymnasium's v5 env as ``gymnasium.make`` returns it, one ``step`` per env, resets included."""
    for seed, env in enumerate(singles):
        env.reset(seed=seed)
    start = clock()
    for actions_NA in actions_TNA:
        for env, action in zip(singles, actions_NA):
            _, _, terminated, truncated, _ = env.step(action)
            if terminated or truncated:
                env.reset()
    return actions_TNA.shape[0] * actions_TNA.shape[1] / (clock() - start)


def batched_rate(env_id: str, actions_TNA: np.ndarray) -> float:
    """(c): our vector env; only environments still running count as steps."""
    num_envs = actions_TNA.shape[1]
    vector = gymnasium.make_vec(env_id, num_envs, max_episode_steps=None)
    vector.reset(seed=list(range(num_envs)))
    steps = 0
    start = clock()
    for actions_NA in actions_TNA:
        steps += int(np.count_nonzero(~vector.unwrapped.done))
        vector.step(actions_NA)
    return steps / (clock() - start)


def measure(num_envs: int, num_steps: int, repeats: int, seed: int) -> list[dict[str, float | int | str]]:
    rows = []
    for env_id, gym_id in CASES:
        action_dim = gymnasium.make_vec(env_id, 1).single_action_space.shape[0]
        actions_TNA = np.random.default_rng(seed).uniform(-1, 1, (num_steps, num_envs, action_dim)).astype(np.float32)
        singles = gymnasium_envs(gym_id, num_envs)
        best = {"raw": 0.0, "gymnasium": 0.0, "batched": 0.0}
        for _ in range(repeats):
            best["raw"] = max(best["raw"], raw_physics_rate(env_id, actions_TNA))
            best["gymnasium"] = max(best["gymnasium"], gymnasium_rate(singles, actions_TNA))
            best["batched"] = max(best["batched"], batched_rate(env_id, actions_TNA))
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
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"rows": rows, "settings": vars(args), "mujoco": mujoco.__version__}, f, indent=2)


if __name__ == "__main__":
    main()
