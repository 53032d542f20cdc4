"""Env steps per second of each sampler backend, next to the physics limit measured in the same run.

    python benchmarks/sampling.py [--env-id metarl/HalfCheetahVel-v0] [--tasks 40] [--episodes 20]
                                  [--horizon 200] [--rounds 3] [--no-ray] [--json FILE]

Backends are measured in interleaved rounds (one call each per round, after a warm-up call) so that
load from other jobs on shared cores hits them alike; the table shows medians. The physics limit is
raw ``mujoco.mj_step`` × frame_skip over as many ``MjData`` as the sampler has environments, on one
core and on all cores (one process per core); it exists only for MuJoCo envs. It is measured twice:

- replaying the sampled episodes: the same reset states and the same actions as the samplers' last
  round, so the physics does exactly the work the samplers' physics did. The ratios use this one.
- with uniformly random controls from the initial state, a workload-free reference. MuJoCo's cost
  per step depends on the motion (contacts, solver iterations): for HalfCheetah, uniform controls
  step about 20% faster than small Gaussian ones, so this reference is not the samplers' workload.
"""

from __future__ import annotations

import argparse
import importlib.util
import multiprocessing
import os
import statistics
import time
from typing import Any

import gymnasium
import numpy as np
import torch
from common import machine, print_table, write_json

from envs import make_task_vector_env
from metarl.episodes import EpisodeBatch, stack_tasks
from metarl.policies import GaussianMLPPolicy
from metarl.samplers.process import ProcessSampler
from metarl.samplers.rollout import episode_randomness, slots_for
from metarl.samplers.vectorized import VectorizedSampler
from metarl.samplers.worker import torch_threads


def physics(env_id: str) -> tuple[Any, int] | None:
    """The env's MjModel and frame_skip, or None for an env without MuJoCo physics."""
    env = gymnasium.make(env_id).unwrapped
    model, frame_skip = getattr(env, "model", None), getattr(env, "frame_skip", None)
    return (model, int(frame_skip)) if model is not None and frame_skip is not None else None


def raw_physics_seconds(env_id: str, num_datas: int, horizon: int, barrier: Any = None) -> float:
    """Seconds for ``horizon`` steps of ``num_datas`` MjData, each step ``frame_skip`` mj_steps with new controls."""
    import mujoco

    model, frame_skip = physics(env_id)
    datas = [mujoco.MjData(model) for _ in range(num_datas)]
    low, high = model.actuator_ctrlrange.T
    controls = np.random.default_rng(0).uniform(low, high, size=(horizon, num_datas, model.nu))
    if barrier is not None:
        barrier.wait()
    start = time.perf_counter()
    for t in range(horizon):
        for data, control in zip(datas, controls[t], strict=True):
            data.ctrl[:] = control
            mujoco.mj_step(model, data, frame_skip)
    return time.perf_counter() - start


def replay_physics_seconds(
    env_id: str, reset_seeds: list[int], actions_TNA: np.ndarray, lengths_N: np.ndarray, barrier: Any = None
) -> float:
    """Seconds of raw mj_step replaying sampled episodes: their reset states, their actions, their lengths."""
    import mujoco

    env = make_task_vector_env(env_id, len(reset_seeds), max_episode_steps=actions_TNA.shape[0])
    env.reset(seed=reset_seeds)  # the reset states the samplers started from
    sim = env.unwrapped.sim
    model, datas, frame_skip = sim.model, sim.datas, sim.robot.frame_skip
    actions_TNA = actions_TNA.astype(np.float64)
    running_TN = np.arange(actions_TNA.shape[0])[:, None] < lengths_N[None, :]
    if barrier is not None:
        barrier.wait()
    start = time.perf_counter()
    for t in range(actions_TNA.shape[0]):
        for i in np.flatnonzero(running_TN[t]).tolist():
            datas[i].ctrl[:] = actions_TNA[t, i]
            mujoco.mj_step(model, datas[i], frame_skip)
    return time.perf_counter() - start


def _physics_worker(args: tuple[Any, ...]) -> float:
    kind, *rest = args
    return raw_physics_seconds(*rest) if kind == "uniform" else replay_physics_seconds(*rest)


def on_all_cores(shares: list[tuple[Any, ...]]) -> float:
    """Wall seconds for ``_physics_worker`` on each share, one spawned process per share, started together."""
    context = multiprocessing.get_context("spawn")
    with context.Manager() as manager:
        barrier = manager.Barrier(len(shares))
        with context.Pool(len(shares)) as pool:
            return max(pool.map(_physics_worker, [(*share, barrier) for share in shares]))


def replayed_episodes(
    batches: list[EpisodeBatch], seed: tuple[int, ...], episodes: int
) -> tuple[list[int], np.ndarray, np.ndarray]:
    """The samplers' episodes in environment order: reset seeds, actions [T, N, A] and lengths [N]."""
    slots = slots_for(len(batches), episodes)
    reset_seeds, _ = episode_randomness(seed, slots, 1, 1)
    stacked = stack_tasks(batches)  # [K, T, B, ...], time padded to the longest episode
    actions_KTBA = stacked.actions_TBA.numpy()
    actions_TNA = actions_KTBA.transpose(1, 0, 2, 3).reshape(actions_KTBA.shape[1], -1, actions_KTBA.shape[-1])
    return reset_seeds, actions_TNA, stacked.lengths_B.numpy().reshape(-1)


class OneThread:
    """The in-process sampler with torch at one thread during its calls (the parent's default: one per core)."""

    def __init__(self, sampler: VectorizedSampler):
        self.sampler = sampler

    def sample(self, *args: Any) -> Any:
        with torch_threads(1):
            return self.sampler.sample(*args)

    def close(self) -> None:
        self.sampler.close()


def make_backends(args: argparse.Namespace, policy: torch.nn.Module) -> dict[str, Any]:
    threads = torch.get_num_threads()
    backends: dict[str, Any] = {
        f"vectorized ({threads} torch threads)": VectorizedSampler(args.env_id, {}, policy, args.horizon),
        "vectorized, 1 torch thread": OneThread(VectorizedSampler(args.env_id, {}, policy, args.horizon)),
        "process, 1 worker": ProcessSampler(args.env_id, {}, policy, args.horizon, 1),
        "process, 2 workers": ProcessSampler(args.env_id, {}, policy, args.horizon, 2),
        "process, 2 workers, default torch threads": ProcessSampler(
            args.env_id, {}, policy, args.horizon, 2, torch_threads=None
        ),
    }
    if not args.no_ray:
        if importlib.util.find_spec("ray") is None:
            print("ray not installed: skipping the ray backend (pip install -e '.[ray]')")
        else:
            from metarl.samplers.ray_backend import RaySampler, init_ray

            os.environ.setdefault("RAY_AUTH_MODE", "disabled")  # a private local instance
            init_ray(None, log_to_driver=False)  # a fresh one: leftover Ray state or RAY_ADDRESS cannot stall it
            backends["ray, 2 actors"] = RaySampler(args.env_id, {}, policy, args.horizon, 2)
    return backends


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env-id", default="metarl/Navigation2D-v0")
    parser.add_argument("--tasks", type=int, default=40)
    parser.add_argument("--episodes", type=int, default=20, help="episodes per task")
    parser.add_argument("--horizon", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3, help="timed calls per backend (after one warm-up)")
    parser.add_argument("--hidden-sizes", type=int, nargs="+", default=[100, 100])
    parser.add_argument("--no-ray", action="store_true")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()

    env = gymnasium.make(args.env_id)
    tasks = env.unwrapped.sample_tasks(args.tasks, np.random.default_rng(0))
    policy = GaussianMLPPolicy(
        int(np.prod(env.observation_space.shape)), int(np.prod(env.action_space.shape)), args.hidden_sizes,
        generator=torch.Generator().manual_seed(0),
    )  # fmt: skip
    params = [{n: p.detach() + 0.01 * i for n, p in policy.named_parameters()} for i in range(args.tasks)]
    backends = make_backends(args, policy)
    seconds: dict[str, list[float]] = {name: [] for name in backends}
    steps: dict[str, int] = {}
    for sampler in backends.values():  # warm-up: workers start, envs are built
        sampler.sample(tasks, params, args.episodes, (0,))
    for round_index in range(args.rounds):
        for name, sampler in backends.items():
            start = time.perf_counter()
            batches = sampler.sample(tasks, params, args.episodes, (1, round_index))
            seconds[name].append(time.perf_counter() - start)
            steps[name] = sum(b.num_steps for b in batches)
    last_round = (1, args.rounds - 1)  # every backend returned these same episodes (tests/test_sampler*.py)
    for sampler in backends.values():
        sampler.close()

    rows = [{"what": name, "env_steps_per_s": steps[name] / statistics.median(s)} for name, s in seconds.items()]
    num_envs = args.tasks * args.episodes
    if physics(args.env_id) is not None:
        cores = len(os.sched_getaffinity(0))
        seeds, actions_TNA, lengths_N = replayed_episodes(batches, last_round, args.episodes)
        replay_steps = int(lengths_N.sum())
        shares = np.array_split(np.arange(num_envs), cores)
        limits = {
            "physics limit, 1 core (raw mj_step replaying the episodes)":
                replay_steps / replay_physics_seconds(args.env_id, seeds, actions_TNA, lengths_N),
            f"physics limit, {cores} cores (raw mj_step replaying the episodes)": replay_steps / on_all_cores(
                [("replay", args.env_id, [seeds[i] for i in share], actions_TNA[:, share], lengths_N[share])
                 for share in shares]
            ),
            "raw mj_step, uniform random controls, 1 core":
                num_envs * args.horizon / raw_physics_seconds(args.env_id, num_envs, args.horizon),
            f"raw mj_step, uniform random controls, {cores} cores": num_envs * args.horizon / on_all_cores(
                [("uniform", args.env_id, len(share), args.horizon) for share in shares]
            ),
        }  # fmt: skip
        rows += [{"what": what, "env_steps_per_s": rate} for what, rate in limits.items()]
        limit_1, limit_all = list(limits.values())[:2]
        for row in rows:
            row["of 1-core limit"] = row["env_steps_per_s"] / limit_1
            row["of all-core limit"] = row["env_steps_per_s"] / limit_all
    base = rows[0]["env_steps_per_s"]
    for row in rows:
        row["vs vectorized"] = row["env_steps_per_s"] / base
    columns = ["what", "env_steps_per_s", "vs vectorized", "of 1-core limit", "of all-core limit"]
    info = machine()
    print(
        f"{args.env_id}: {args.tasks} tasks × {args.episodes} episodes, horizon {args.horizon}, "
        f"{args.rounds} rounds; {info['cpu']}, {info['cpu_count']} cores, load {info['load_average']:.1f}"
    )
    print_table(rows, [c for c in columns if any(c in row for row in rows)])
    write_json(args.json, {"args": vars(args), "results": rows, "seconds": seconds})


if __name__ == "__main__":
    main()
