"""A run over an ``Experiment`` (an env's tasks, sampler and policy): what RL meta-training
(``metarl.trainer``) and the pretrained baseline (``metarl.pretraining``) share. Starting one (config checked
before a byte is written), the policy part of its checkpoints, and resuming it from its saved config.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from metarl.checkpoint_check import load_policy_weights
from metarl.config import TrainConfig, upgrade_saved_config
from metarl.experiment import Experiment, build_experiment
from metarl.parts import MemoryNeed
from metarl.reporting.machine import machine_description
from metarl.run import checkpoint_state, release_run_dir, saved_run_config, write_config
from metarl.run_loop import Progress


def run_name(config: TrainConfig) -> str:
    """A new run's default directory name stem: the env's name (``runs/<name>-seed<seed>-<time>``)."""
    return config.env_id.split("/")[-1].lower()


RESUME_FIX = "check the --resume path"
# Keys a resumed run may change: they alter how long it runs or where it samples, never its numbers.
RESUMABLE_KEYS = frozenset({"num_iterations", "checkpoint_every", "sampler", "device"})
T = TypeVar("T")


def started_experiment(
    config: TrainConfig, run_dir: Path, restore: Callable[[Experiment], T], memory: MemoryNeed | None = None
) -> tuple[Experiment, T]:
    """The experiment of ``config`` (built before anything is written, so a bad config fails first), what
    ``restore(experiment)`` returns (a resume loads its checkpoint there), and the config saved in ``run_dir``.
    If either of the last two fails the experiment is closed: no sampler worker outlives the error. ``memory``:
    what an iteration needs, if not an RL training iteration (see ``build_experiment``)."""
    experiment = build_experiment(config, memory)
    try:
        restored = restore(experiment)
        write_config(run_dir, config)
    except BaseException:
        experiment.close()  # no orphaned sampler workers after a full disk
        release_run_dir(run_dir)
        raise
    return experiment, restored


def restored_progress(state: dict[str, Any], path: Path, experiment: Experiment) -> Progress:
    """Load a checked checkpoint (see ``metarl.checkpoint_check``) into the experiment's policy and return where the
    run stood."""
    load_policy_weights(experiment.policy, state, path)
    return Progress(state["iteration"], state["env_steps"], float(state["wall_time_s"]))


def resumed_config(run_dir: Path, overrides: list[str], resumable: frozenset[str] = RESUMABLE_KEYS) -> TrainConfig:
    """The run's saved config with ``key=value`` overrides, refused for keys other than ``resumable``: those
    would change its results."""
    return saved_run_config(run_dir, TrainConfig, RESUME_FIX, overrides, resumable, upgrade_saved_config)


def policy_checkpoint(experiment: Experiment, progress: Progress, **payload: Any) -> dict[str, Any]:
    """A checkpoint of a policy trained on an env (MAML's, or the pretrained baseline's with its extra fields)."""
    return checkpoint_state(
        experiment.config,
        progress.iteration,
        progress.wall_time_s,
        policy=experiment.policy.state_dict(),
        env_steps=progress.env_steps,
        env_id=experiment.config.env_id,
        machine=machine_description(experiment.learner.device),  # for results tables
        **payload,
    )
