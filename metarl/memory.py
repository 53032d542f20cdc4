"""Memory: refusing sizes that cannot fit, and allocator settings for the meta-update's large tensors.

An iteration's memory is estimated up front from the config, so that ``meta_batch_size=10**9`` or
``hidden_sizes=[10**6, 10**6]`` is refused with the estimate in one line, instead of allocating for minutes
and dying to the OOM killer. The estimate counts only what an iteration must hold (a lower bound: a real
run also holds MuJoCo, the libraries and freed memory kept for reuse), so it never refuses a run that fits.

glibc returns freed blocks above 128 KiB to the kernel at once, so every fresh [tasks × steps × 100]
activation is page-faulted in again (measured here: an elementwise product on a 160,000×100 tensor
took 41 ms with the defaults and 9 ms with freed memory kept). Raising the mmap and trim thresholds
keeps freed memory in the process for reuse. A no-op where glibc is absent.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import itertools
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from metarl.config import ConfigError

M_TRIM_THRESHOLD = -1
M_TOP_PAD = -2
M_MMAP_THRESHOLD = -3


def keep_freed_memory() -> bool:
    """Ask glibc's malloc to keep and reuse freed memory; True if the settings took effect."""
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    settings = {M_MMAP_THRESHOLD: 2**30, M_TRIM_THRESHOLD: 2**31 - 1, M_TOP_PAD: 2**28}
    return all(mallopt(option, value) == 1 for option, value in settings.items())


FLOAT_BYTES = 4
STEP_FLOATS = 8
"""Per episode step besides observation and action: reward, mask, return, baseline, advantage, log-probabilities."""
ACTIVATION_COPIES = 2
"""Per step and hidden unit, the meta-gradient keeps a layer's pre- and post-nonlinearity values."""
PARAMETER_COPIES = 4
"""θ, its meta-gradient, and the conjugate-gradient and line-search vectors, besides one adapted copy per task."""


@dataclass(frozen=True)
class MemoryEstimate:
    """An iteration's least memory, in its two parts: each has its own fix."""

    episode_steps: int
    episode_bytes: int
    parameters: int
    parameter_bytes: int

    @property
    def total_bytes(self) -> int:
        return self.episode_bytes + self.parameter_bytes


def iteration_memory(
    meta_batch_size: int,
    episodes_per_task: int,
    horizon: int,
    num_steps: int,
    observation_dim: int,
    action_dim: int,
    hidden_sizes: Sequence[int],
) -> MemoryEstimate:
    """The least memory one meta-iteration holds: every sampling's episodes (num_steps + 1 per task) with the
    policy's activations over them, and the policy's parameters with one adapted copy per task and step."""
    episode_steps = meta_batch_size * episodes_per_task * horizon * (num_steps + 1)
    step_floats = observation_dim + action_dim + STEP_FLOATS + ACTIVATION_COPIES * sum(hidden_sizes)
    sizes = [observation_dim, *hidden_sizes, action_dim]
    parameters = sum(fan_in * fan_out + fan_out for fan_in, fan_out in itertools.pairwise(sizes)) + action_dim
    return MemoryEstimate(
        episode_steps,
        episode_steps * step_floats * FLOAT_BYTES,
        parameters,
        parameters * (meta_batch_size * num_steps + PARAMETER_COPIES) * FLOAT_BYTES,
    )


def evaluation_memory(
    num_tasks: int,
    episodes_per_task: int,
    horizon: int,
    num_steps: int,
    observation_dim: int,
    action_dim: int,
    hidden_sizes: Sequence[int],
) -> MemoryEstimate:
    """The least memory one method's evaluation holds (launchers/evaluate.py, whose sizes are its own flags):
    every sampling's episodes (num_steps + 1 per test task), but, its inner steps being first-order, the policy's
    activations over one sampling at a time; θ and each task's adapted parameters, on the device and on the CPU."""
    sampling_steps = num_tasks * episodes_per_task * horizon
    episode_steps = sampling_steps * (num_steps + 1)
    estimate = iteration_memory(num_tasks, episodes_per_task, horizon, 0, observation_dim, action_dim, hidden_sizes)
    return MemoryEstimate(
        episode_steps,
        (
            episode_steps * (observation_dim + action_dim + STEP_FLOATS)
            + sampling_steps * ACTIVATION_COPIES * sum(hidden_sizes)
        )
        * FLOAT_BYTES,
        estimate.parameters,
        estimate.parameters * (2 * num_tasks + 1) * FLOAT_BYTES,
    )


@dataclass(frozen=True)
class MemoryWording:
    """How a refusal names the work, what its episode steps multiply, and the settings to lower: a config's keys
    for training, a launcher's flags for pretraining and evaluation."""

    work: str
    episode_steps: str
    episode_fix: str
    parameter_use: str
    parameter_fix: str
    unit: str = "episode steps"
    """What the estimate's data count counts (a few-shot iteration's are images)."""


TRAINING = MemoryWording(
    "an iteration",
    "meta_batch_size × episodes_per_task × horizon × (num_steps + 1)",
    "lower meta_batch_size, episodes_per_task or horizon",
    "adapted once per task and inner step",
    "lower hidden_sizes (or meta_batch_size)",
)
PRETRAINING = MemoryWording(
    "a pretraining iteration",
    "meta_batch_size × --episodes-per-task × horizon",
    "lower --episodes-per-task (or meta_batch_size or horizon)",
    "with its gradient and Adam's state",
    "lower hidden_sizes",
)
EVALUATION = MemoryWording(
    "the evaluation",
    "--num-tasks × --episodes-per-task × horizon × (--num-steps + 1)",
    "lower --num-tasks, --episodes-per-task or --num-steps",
    "adapted once per test task",
    "lower --num-tasks",
)


def available_memory(device: torch.device) -> int | None:
    """Bytes free for new allocations where the meta-update runs: the GPU's free memory, or the host's
    MemAvailable (which counts reclaimable caches, unlike MemFree); None where the system does not say."""
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0]
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def human_bytes(count: int) -> str:
    """``count`` bytes in binary units, e.g. '15.4 GiB'."""
    units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"]
    exponent = min(int(math.log(max(count, 1), 1024)), len(units) - 1)
    return f"{count / 1024**exponent:.1f} {units[exponent]}"


def require_memory(estimate: MemoryEstimate, device: torch.device, wording: MemoryWording = TRAINING) -> None:
    """Refuse work that cannot fit where it runs, before anything is allocated, with the estimate, the memory
    available and the settings to lower (``wording``: an RL iteration's config keys by default)."""
    available = available_memory(device)
    if available is None or estimate.total_bytes <= available:
        return
    if estimate.episode_bytes >= estimate.parameter_bytes:
        cause = f"{estimate.episode_steps:,} {wording.unit}: {wording.episode_steps}"
        fix = wording.episode_fix
    else:
        cause = f"a policy of {estimate.parameters:,} parameters, {wording.parameter_use}"
        fix = wording.parameter_fix
    where = "this machine" if device.type == "cpu" else str(device)
    raise ConfigError(
        f"{wording.work} needs at least {human_bytes(estimate.total_bytes)} of memory ({cause}) "
        f"but {where} has {human_bytes(available)} available; {fix}"
    )
