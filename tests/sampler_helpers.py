"""Helpers shared by the sampler backend tests: a small navigation problem and its in-process reference."""

from __future__ import annotations

import os
import time
from pathlib import Path

import gymnasium
import numpy as np
import torch

import envs  # noqa: F401  (registers the env ids)
from metarl.policies import GaussianMLPPolicy
from metarl.samplers.vectorized import VectorizedSampler
from metarl.samplers.worker import torch_threads

REPO_ROOT = Path(__file__).resolve().parents[1]
ENV_ID = "metarl/Navigation2D-v0"
FIELDS = ["observations_TBO", "actions_TBA", "rewards_TB", "mask_TB", "lengths_B"]


def one_torch_thread():
    """The reference runs in this process: one thread keeps it fast on a shared 2-core machine."""
    return torch_threads(1)


def problem(num_tasks: int, seed: int = 0):
    """A policy and per-task parameters that differ between tasks, as after an inner step."""
    policy = GaussianMLPPolicy(2, 2, [32, 32], generator=torch.Generator().manual_seed(seed))
    tasks = gymnasium.make(ENV_ID).unwrapped.sample_tasks(num_tasks, np.random.default_rng(seed))
    params = [{name: p.detach() + 0.05 * i for name, p in policy.named_parameters()} for i in range(num_tasks)]
    return policy, tasks, params


def reference(policy, tasks, params, episodes_per_task, seed, horizon):
    sampler = VectorizedSampler(ENV_ID, {}, policy, horizon)
    with one_torch_thread():
        batches = sampler.sample(tasks, params, episodes_per_task, seed)
    sampler.close()
    return batches


def assert_same_episodes(expected, actual):
    assert len(expected) == len(actual)
    for task_index, (a, b) in enumerate(zip(expected, actual, strict=True)):
        for name in FIELDS:
            assert torch.equal(getattr(a, name), getattr(b, name)), f"task {task_index}: {name} differs"


def worker_env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO_ROOT)}


def gone(pid: int) -> bool:
    """No such process, or a zombie awaiting its (other) parent."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return True
    return state in ("Z", "X")


def wait_until_gone(pids: list[int], timeout_s: float) -> list[int]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and not all(gone(p) for p in pids):
        time.sleep(0.1)
    return [p for p in pids if not gone(p)]
