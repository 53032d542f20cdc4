"""The "pretrained" baseline: one policy trained on all tasks jointly with ordinary policy gradient.

Each iteration samples ``meta_batch_size`` tasks from the training stream (the same tasks MAML sees),
``episodes_per_task`` episodes on each with the current policy, and takes one Adam step on the mean
over tasks of the REINFORCE-with-baseline loss the inner step uses. By default an iteration samples
as many episodes as a MAML iteration (fast_batch_size · (num_steps + 1) per task), so the two
baselines get the same number of env steps. No adaptation happens here; evaluation adapts it like MAML.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from metarl.adaptation import policy_gradient_loss
from metarl.config import ConfigError, TrainConfig, to_dict
from metarl.experiment import Experiment, build_experiment
from metarl.logger import format_duration, print_progress
from metarl.meta_batch import to_cpu
from metarl.policies import parameters_of
from metarl.run import ETA, new_run_dir, open_logger, process_settings, save_checkpoints, write_config
from metarl.seeding import PRETRAIN_EPISODES, TRAIN_TASKS, task_rng
from metarl.trainer import Progress, policy_checkpoint, run_name


@dataclass(frozen=True)
class PretrainSettings:
    num_iterations: int
    """Policy-gradient iterations (default: the config's num_batches)."""
    episodes_per_task: int
    """Episodes per task per iteration (default: what a MAML iteration samples per task)."""
    learning_rate: float = 1e-3
    """Adam step size."""

    @classmethod
    def matching(
        cls,
        config: TrainConfig,
        num_iterations: int | None = None,
        learning_rate: float = 1e-3,
        episodes_per_task: int | None = None,
    ) -> PretrainSettings:
        """Settings with MAML's sample budget unless told otherwise."""
        settings = cls(
            num_iterations if num_iterations is not None else config.num_batches,
            episodes_per_task if episodes_per_task is not None else config.fast_batch_size * (config.num_steps + 1),
            learning_rate,
        )
        for name, value in asdict(settings).items():
            if not value > 0:
                raise ConfigError(f"--{name.replace('_', '-')} must be positive, got {value}")
        return settings


def pretrain_iteration(
    experiment: Experiment, optimizer: torch.optim.Optimizer, settings: PretrainSettings, iteration: int
) -> dict[str, float]:
    config, policy = experiment.config, experiment.policy
    tasks = experiment.tasks.sample_tasks(config.meta_batch_size, task_rng(config.seed, TRAIN_TASKS, iteration))
    params = to_cpu(parameters_of(policy))
    batches = experiment.sampler.sample(
        tasks, [params] * len(tasks), settings.episodes_per_task, (config.seed, PRETRAIN_EPISODES, iteration)
    )
    device = next(policy.parameters()).device
    losses = []
    for batch in batches:
        batch = batch.to(device)
        advantages_TB = experiment.learner.inner.advantages(batch)
        losses.append(policy_gradient_loss(policy, parameters_of(policy), batch, advantages_TB))
    loss = torch.stack(losses).mean()
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return {
        "pretrain/return": sum(b.mean_return() for b in batches) / len(batches),
        "pretrain/loss": float(loss.detach()),
        "pretrain/env_steps": float(sum(b.num_steps for b in batches)),
    }


def pretrain(config: TrainConfig, settings: PretrainSettings, output_dir: Path, quiet: bool = False) -> dict[str, Any]:
    """Train the joint policy, writing a run directory like training's; returns the final checkpoint."""
    experiment = build_experiment(config)  # fails before anything is written
    try:
        run_dir = new_run_dir(run_name(config), config.seed, output_dir, kind=None)
        write_config(run_dir, config)
    except BaseException:
        experiment.close()
        raise
    process_settings()
    optimizer = torch.optim.Adam(experiment.policy.parameters(), lr=settings.learning_rate)
    logger = open_logger(run_dir)
    logger.hyperparameters({**to_dict(config), "pretrain": asdict(settings)})
    progress, state, eta = Progress(), {}, ETA(settings.num_iterations)
    try:
        for iteration in range(settings.num_iterations):
            start = time.perf_counter()
            scalars = pretrain_iteration(experiment, optimizer, settings, iteration)
            seconds = time.perf_counter() - start
            progress.iteration += 1
            progress.env_steps += int(scalars["pretrain/env_steps"])
            progress.wall_time_s += seconds
            for tag, value in scalars.items():
                logger.record(tag, value)
            logger.dump(progress.iteration)
            state = policy_checkpoint(experiment, progress, method="pretrained", pretrain=asdict(settings))
            save_checkpoints(run_dir, state, config.checkpoint_every)
            if not quiet:
                width = len(str(settings.num_iterations))
                print_progress(
                    f"pretrain {progress.iteration:>{width}}/{settings.num_iterations} | "
                    f"return {scalars['pretrain/return']:9.2f} | "
                    f"ETA {format_duration(eta.after(progress.iteration, seconds))}"
                )
    finally:
        logger.close()
        experiment.close()
    return state
