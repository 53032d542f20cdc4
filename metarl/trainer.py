"""The training loop: sample tasks → collect support and query episodes → meta-update → log → checkpoint."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from torch.utils.tensorboard import SummaryWriter

from metarl.checkpoint import LATEST, atomic_write_text, load_checkpoint, save_checkpoint
from metarl.config import ConfigError, TrainConfig, apply_overrides, dump_yaml, from_dict, load_yaml, to_dict
from metarl.experiment import Experiment, build_experiment
from metarl.logger import Logger, print_progress, progress_line
from metarl.machine import machine_description
from metarl.meta_batch import collect_meta_batch
from metarl.seeding import TRAIN_EPISODES, TRAIN_TASKS, task_rng
from metarl.version import __version__

CONFIG_FILE = "config.yaml"
CHECKPOINTS = "checkpoints"
# Keys a resumed run may change: they alter how long it runs or where it samples, never its numbers.
RESUMABLE_KEYS = {"num_batches", "checkpoint_every", "sampler", "device"}


@dataclass
class Progress:
    iteration: int = 0
    """The next iteration to run."""
    env_steps: int = 0
    wall_time_s: float = 0.0


def new_run_dir(config: TrainConfig, output_dir: Path | None) -> Path:
    """The directory for a new run; refuses one that already holds a run so nothing gets overwritten."""
    if output_dir is None:
        name = config.env_id.split("/")[-1].lower()
        output_dir = Path("runs") / f"{name}-seed{config.seed}-{time.strftime('%Y%m%d-%H%M%S')}"
    output_dir = Path(output_dir)
    if (output_dir / CONFIG_FILE).exists():
        raise ConfigError(f"{output_dir} already holds a run; continue it with --resume {output_dir} "
                          "or choose a new --output-dir")
    return output_dir


def resumed_config(run_dir: Path, overrides: list[str]) -> TrainConfig:
    """The run's saved config with ``key=value`` overrides, refused for keys that would change its results."""
    if not (run_dir / CONFIG_FILE).is_file():
        raise ConfigError(f"{run_dir} is not a run directory (no {CONFIG_FILE}); check the --resume path")
    saved = load_yaml(run_dir / CONFIG_FILE)
    merged = apply_overrides(saved, overrides)
    config = from_dict(TrainConfig, merged)  # a misspelled key is named here, with the closest valid one
    forbidden = sorted(key for key in merged if saved.get(key) != merged[key] and key not in RESUMABLE_KEYS)
    if forbidden:
        allowed = ", ".join(sorted(RESUMABLE_KEYS))
        raise ConfigError(
            f"cannot change {', '.join(forbidden)} when resuming (only {allowed}); start a new run instead"
        )
    return config


class Trainer:
    def __init__(self, experiment: Experiment, run_dir: Path, progress: Progress | None = None):
        self.experiment = experiment
        self.config = experiment.config
        self.run_dir = Path(run_dir)
        self.progress = progress or Progress()
        self.logger: Logger | None = None

    @classmethod
    def start(cls, config: TrainConfig, run_dir: Path) -> Trainer:
        experiment = build_experiment(config)  # fails before anything is written
        run_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_text(run_dir / CONFIG_FILE, dump_yaml(config))
        return cls(experiment, run_dir)

    @classmethod
    def resume(cls, run_dir: Path, overrides: list[str]) -> Trainer:
        config = resumed_config(run_dir, overrides)
        state = load_checkpoint(run_dir / CHECKPOINTS / LATEST)
        experiment = build_experiment(config)
        experiment.policy.load_state_dict(state["policy"])
        atomic_write_text(run_dir / CONFIG_FILE, dump_yaml(config))
        progress = Progress(state["iteration"], state["env_steps"], state["wall_time_s"])
        return cls(experiment, run_dir, progress)

    def checkpoint_state(self) -> dict[str, Any]:
        return {
            "policy": self.experiment.policy.state_dict(),
            "iteration": self.progress.iteration,
            "env_steps": self.progress.env_steps,
            "wall_time_s": self.progress.wall_time_s,
            "config": to_dict(self.config),
            "env_id": self.config.env_id,
            "metarl_version": __version__,
            "machine": machine_description(self.experiment.learner.device),  # for results tables
            # No RNG state: every random stream is derived from (seed, iteration), see metarl.seeding.
        }

    def save(self) -> None:
        """The numbered checkpoint first, then latest: a kill between the two leaves latest one iteration
        behind, and the resume redoes that iteration bit for bit and writes both again. (The other order
        would resume after an iteration whose numbered checkpoint was never written.)"""
        state = self.checkpoint_state()
        directory = self.run_dir / CHECKPOINTS
        if self.progress.iteration % self.config.checkpoint_every == 0:
            save_checkpoint(directory / f"iter_{self.progress.iteration:06d}.pt", state)
        save_checkpoint(directory / LATEST, state)

    def iteration(self) -> dict[str, float]:
        """One meta-iteration; returns everything it logs."""
        config, experiment, it = self.config, self.experiment, self.progress.iteration
        tasks = experiment.tasks.sample_tasks(config.meta_batch_size, task_rng(config.seed, TRAIN_TASKS, it))
        start = time.perf_counter()
        batch = collect_meta_batch(
            experiment.sampler,
            experiment.policy,
            dict(experiment.policy.named_parameters()),
            tasks,
            config.fast_batch_size,
            [config.fast_lr] * config.num_steps,
            config.gamma,
            config.gae_lambda,
            (config.seed, TRAIN_EPISODES, it),
        )
        sampled = time.perf_counter()
        stats = experiment.learner.step(batch.support, batch.query)
        updated = time.perf_counter()

        scalars = {f"returns/step_{k}": value for k, value in enumerate(batch.mean_returns())}
        scalars.update({f"meta/{key}": value for key, value in stats.items()})
        scalars["time/sampling_s"] = sampled - start
        scalars["time/meta_update_s"] = updated - sampled
        scalars["time/iteration_s"] = updated - start
        scalars["perf/env_steps_per_s"] = batch.env_steps / (sampled - start)
        scalars["perf/env_steps"] = self.progress.env_steps + batch.env_steps
        self.progress.env_steps += batch.env_steps
        self.progress.wall_time_s += updated - start
        self.progress.iteration += 1
        return scalars

    def run(self, quiet: bool = False) -> list[dict[str, float]]:
        config = self.config
        writer = SummaryWriter(str(self.run_dir), purge_step=self.progress.iteration or None)
        self.logger = Logger(writer)
        if self.progress.iteration == 0:
            self.logger.hyperparameters(to_dict(config))
            self.logger.adaptation_chart(config.num_steps)
        history = []
        recent: list[float] = []
        try:
            while self.progress.iteration < config.num_batches:
                scalars = self.iteration()
                for tag, value in scalars.items():
                    self.logger.record(tag, value)
                self.logger.dump(self.progress.iteration - 1)
                self.save()
                history.append(scalars)
                recent = (recent + [scalars["time/iteration_s"]])[-10:]
                if not quiet:
                    print_progress(
                        progress_line(
                            self.progress.iteration,
                            config.num_batches,
                            scalars["returns/step_0"],
                            scalars[f"returns/step_{config.num_steps}"],
                            scalars["meta/kl"],
                            scalars["perf/env_steps_per_s"],
                            float(np.mean(recent)) * (config.num_batches - self.progress.iteration),
                        )
                    )
        finally:
            self.logger.close()
            self.experiment.close()
        return history
