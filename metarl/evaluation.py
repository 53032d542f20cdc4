"""The k-shot test protocol of the MAML paper, applied alike to MAML and to its baselines.

For each of ``num_tasks`` fresh test tasks: sample episodes with θ, take a policy-gradient step,
sample again, up to ``num_steps`` steps (``collect_meta_batch``, the same code training uses). The
first step has size α, later ones ``later_inner_lr`` (α/2 by default, as in the paper's test
scripts). Every method sees the same tasks, the same episode seeds and the same step sizes, so their
differences are not sampling noise between methods.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from envs import Task, TaskDistribution
from metarl.adaptation import InnerStep
from metarl.checkpoint_check import EVALUATED_POLICY_KEYS, CheckpointUse, read_checkpoint
from metarl.checkpoint_check import load_policy_weights as load_policy_weights  # metarl.api imports it from here
from metarl.config import BATCH_UNITS, ConfigError, TrainConfig, upgrade_saved_config
from metarl.heartbeat import Note, silent
from metarl.meta_batch import collect_meta_batch
from metarl.policies import parameters_of
from metarl.reporting.reference import PaperReference, reference_for
from metarl.reporting.statistics import summarize
from metarl.run import RL_TRAINING, RunKind, saved_run_config
from metarl.samplers.base import Sampler
from metarl.samplers.budget import EpisodeBudget
from metarl.seeding import EVAL_EPISODES, EVAL_TASKS, task_rng


@dataclass(frozen=True)
class EvalSettings:
    num_tasks: int = 40
    """Test tasks, each sampled fresh from the EVAL_TASKS stream."""
    num_steps: int = 3
    """Inner gradient steps taken on each test task."""
    episodes_per_task: int = 20
    """Episodes sampled per task before each step and after the last (the paper's K)."""
    batch_unit: str = "episodes"
    """'transitions': whole episodes until episodes_per_task × horizon env steps, as the paper's tests sampled."""
    inner_lr: float = 0.1
    """Size of the first inner step (the run's α)."""
    later_inner_lr: float = 0.05
    """Size of every later inner step (α/2 in the paper's test scripts)."""
    seed: int = 1
    """Keys the test tasks and the episodes; distinct streams from training's for every seed."""

    def step_sizes(self) -> list[float]:
        return [self.inner_lr] + [self.later_inner_lr] * (self.num_steps - 1)

    def to_dict(self) -> dict[str, Any]:
        """The settings as ``evaluation.json`` records them, with every step's size spelled out."""
        return {**dataclasses.asdict(self), "step_sizes": self.step_sizes()}

    def validate(self) -> EvalSettings:
        """Refuse settings no evaluation can use, naming the launcher flag that sets each one."""
        for name in ("num_tasks", "num_steps", "episodes_per_task"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{eval_flag(name)} must be at least 1, got {getattr(self, name)}")
        for name in ("inner_lr", "later_inner_lr"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ConfigError(f"{eval_flag(name)} must be a positive finite number, got {value}")
        if self.batch_unit not in BATCH_UNITS:
            raise ConfigError(f"--batch-unit must be 'episodes' or 'transitions', got {self.batch_unit!r}")
        if self.seed < 0:
            raise ConfigError(f"{eval_flag('seed')} must be non-negative, got {self.seed}")
        return self


def eval_flag(setting: str) -> str:
    """The launchers/evaluate.py flag of an EvalSettings field."""
    return "--" + setting.replace("_", "-")


def sample_test_tasks(distribution: TaskDistribution, num_tasks: int, seed: int) -> list[Task]:
    """The test tasks for ``seed``: from the EVAL_TASKS stream, which training never draws from."""
    return distribution.sample_tasks(num_tasks, task_rng(seed, EVAL_TASKS, 0))


def evaluate_policy(
    sampler: Sampler,
    policy: nn.Module,
    tasks: Sequence[Task],
    settings: EvalSettings,
    gamma: float,
    gae_lambda: float,
    horizon: int,
    note: Note = silent,
) -> np.ndarray:
    """Per-task mean episode return after 0..num_steps inner steps from ``policy``'s parameters, [K + 1, tasks];
    ``note`` hears each sampling as it starts."""
    batch = collect_meta_batch(
        sampler,
        policy,
        parameters_of(policy),
        tasks,
        budget=EpisodeBudget.of(settings.batch_unit, settings.episodes_per_task, horizon),
        inner=InnerStep(tuple(settings.step_sizes()), gamma, gae_lambda, first_order=True),
        seed=(settings.seed, EVAL_EPISODES, 0),
        note=note,
    )
    return batch.task_returns()


def default_episodes_per_task(config: TrainConfig) -> int:
    """The paper's test scripts sampled a fixed number of env steps per step (4,000 for most families,
    i.e. 40 navigation or 20 locomotion episodes), not the training K: use theirs where there is one."""
    reference = reference_for(config.env_id)
    return reference.episodes_per_task if reference is not None else config.episodes_per_task


def baseline_settings(
    settings: EvalSettings, reference: PaperReference | None, explicit_step_sizes: bool
) -> dict[str, EvalSettings]:
    """Each baseline's settings: the paper's test scripts adapted them with their own first step size
    (e.g. HalfCheetah velocity: pretrained 0.02, random 0.1; Ant: pretrained 0.2, random 1.0), later steps
    half of it. Explicit step sizes (evaluate's --inner-lr or --later-inner-lr) apply to every method instead."""
    if reference is None or explicit_step_sizes:
        return {"random_init": settings, "pretrained": settings}
    return {
        name: dataclasses.replace(settings, inner_lr=size, later_inner_lr=size / 2).validate()
        for name, size in reference.first_step_sizes.items()
        if name != "maml"
    }


def method_results(task_returns: np.ndarray) -> list[dict[str, Any]]:
    """One entry per number of steps: the summary statistics and the per-task returns they come from."""
    return [
        {"step": step, **summarize(returns).to_dict(), "task_returns": [float(r) for r in returns]}
        for step, returns in enumerate(task_returns)
    ]


# --- loading runs and checkpoints ---------------------------------------------------------------


def load_run_config(run_dir: Path) -> TrainConfig:
    """The resolved config a training run saved beside itself."""
    return saved_run_config(run_dir, TrainConfig, "pass a training run directory", upgrade=upgrade_saved_config)


def load_policy_checkpoint(
    path: Path, env_id: str, device: torch.device, kind: RunKind = RL_TRAINING, flag: str = "--checkpoint"
) -> dict[str, Any]:
    """A policy checkpoint of a ``kind`` run (what ``flag``, the option that named it, takes) for ``env_id``: a
    pretraining checkpoint is not evaluated as MAML's, nor MAML's as the pretrained baseline."""
    return read_checkpoint(path, CheckpointUse(kind, EVALUATED_POLICY_KEYS, env_id, flag=flag), device)
