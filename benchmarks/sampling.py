"""Env steps per second of each sampler backend, next to the physics limit measured in the same run.

    python benchmarks/sampling.py [--env-id metarl/HalfCheetahVel-v0] [--tasks 40] [--episodes 20]
                                  [--horizon 200] [--rounds 3] [--no-ray] [--json FILE]

Backends are measured in interleaved rounds (one call each per round, after a warm-up call) so that
load from other jobs on shared cores hits them alike; the table shows medians. The physics limit is
raw ``mujoco.mj_step`` × frame_skip over as many ``MjData`` as the sampler has environments, on one
core and on all cores (one process per core); it exists only for MuJoCo envs.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
import time
from typing import Any

import gymnasium
import numpy as np
import torch
from common import machine, print_table, write_json

import envs  # noqa: F401  (registers the env ids)
from metarl.policies import GaussianMLPPolicy
from metarl.samplers.process import ProcessSampler
from metarl.samplers.vectorized import VectorizedSampler


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


def _physics_worker(args: tuple[str, int, int, Any]) -> float:
    env_id, num_datas, horizon, barrier = args
    return raw_physics_seconds(env_id, num_datas, horizon, barrier)


def raw_physics_all_cores(env_id: str, num_datas: int, horizon: int, processes: int) -> float:
    """Wall seconds for the same work split over ``processes`` processes started together."""
    context = multiprocessing.get_context("spawn")
    shares = [len(s) for s in np.array_split(np.arange(num_datas), processes)]
    with context.Manager() as manager:
        barrier = manager.Barrier(processes)
        with context.Pool(processes) as pool:
            return max(pool.map(_physics_worker, [(env_id, n, horizon, barrier) for n in shares]))


class OneThread:
    """The in-process sampler with torch at one thread during its calls (the parent's default: one per core)."""

    def __init__(self, sampler: VectorizedSampler):
        self.sampler = sampler

    def sample(self, *args: Any) -> Any:
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            return self.sampler.sample(*args)
        finally:
            torch.set_num_threads(threads)

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
        try:
            import ray
        except ImportError:
            print("ray not installed: skipping the ray backend (pip install -e '.[ray]')")
        else:
            from metarl.samplers.ray_backend import RaySampler

            os.environ.setdefault("RAY_AUTH_MODE", "disabled")  # a private local instance
            ray.init(include_dashboard=False, log_to_driver=False)
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
    for sampler in backends.values():
        sampler.close()

    rows = [{"what": name, "env_steps_per_s": steps[name] / statistics.median(s)} for name, s in seconds.items()]
    num_envs = args.tasks * args.episodes
    if physics(args.env_id) is not None:
        cores = len(os.sched_getaffinity(0))
        one = raw_physics_seconds(args.env_id, num_envs, args.horizon)
        every = raw_physics_all_cores(args.env_id, num_envs, args.horizon, cores)
        rows.append({"what": "physics limit, 1 core (raw mj_step)", "env_steps_per_s": num_envs * args.horizon / one})
        rows.append({"what": f"physics limit, {cores} cores", "env_steps_per_s": num_envs * args.horizon / every})
        limit_1, limit_all = rows[-2]["env_steps_per_s"], rows[-1]["env_steps_per_s"]
        for row in rows:
            row["of 1-core limit"] = row["env_steps_per_s"] / limit_1
            row["of all-core limit"] = row["env_steps_per_s"] / limit_all
    base = rows[0]["env_steps_per_s"]
    for row in rows:
        row["vs vectorized"] = row["env_steps_per_s"] / base
    columns = ["what", "env_steps_per_s", "vs vectorized", "of 1-core limit", "of all-core limit"]
    info = machine()
    print(f"{args.env_id}: {args.tasks} tasks × {args.episodes} episodes, horizon {args.horizon}, "
          f"{args.rounds} rounds; {info['cpu']}, {info['cpu_count']} cores, load {info['load_average']:.1f}")
    print_table(rows, [c for c in columns if any(c in row for row in rows)])
    write_json(args.json, {"args": vars(args), "results": rows, "seconds": seconds})


if __name__ == "__main__":
    main()
