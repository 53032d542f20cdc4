"""The loop both supervised launchers share: sample a meta-batch → meta-step → log → checkpoint."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from metarl.logger import Logger, format_duration, print_progress
from metarl.run import ETA, checkpoint_state, process_settings, save_checkpoints
from metarl.supervised.config import MetaLearningConfig
from metarl.supervised.meta_learning import MAML, Reptile
from metarl.supervised.tasks import TaskBatch


def checkpoint(
    learner: MAML | Reptile, config: MetaLearningConfig, iteration: int, wall_time_s: float
) -> dict[str, Any]:
    """The schema every run's checkpoints share (``metarl.run.checkpoint_state``), with the model and learner."""
    return checkpoint_state(
        config, iteration, wall_time_s, model=learner.model.state_dict(), learner=learner.state_dict()
    )


def meta_train(
    learner: MAML | Reptile,
    sample_batch: Callable[[int], TaskBatch],
    config: MetaLearningConfig,
    run_dir: Path,
    logger: Logger,
    quiet: bool = False,
    on_log: Callable[[int], dict[str, float]] | None = None,
) -> dict[str, float]:
    """Run ``config.num_iterations`` meta-steps; every ``log_every`` write averaged scalars (plus ``on_log``'s).

    Returns the wall time and iteration rate for the results table.
    """
    process_settings()
    start = time.perf_counter()
    window: dict[str, list[float]] = {}
    eta, logged, logged_s = ETA(config.num_iterations), 0, 0.0
    for iteration in range(config.num_iterations):
        stats = learner.meta_step(sample_batch(iteration))
        for key, value in stats.items():
            window.setdefault(key, []).append(value)
        done = iteration + 1
        if done % config.log_every == 0 or done == config.num_iterations:
            elapsed = time.perf_counter() - start
            means = {key: sum(values) / len(values) for key, values in window.items()}
            window = {}
            for key, value in means.items():
                logger.record(f"train/{key}", value)
            logger.record("perf/iterations_per_s", done / elapsed)
            extra = on_log(done) if on_log is not None else {}
            remaining = eta.after(done, (elapsed - logged_s) / (done - logged))
            logged, logged_s = done, elapsed
            for key, value in extra.items():
                logger.record(key, value)
            logger.dump(done)
            if not quiet:
                details = " | ".join(f"{key.split('/')[-1]} {value:.4f}" for key, value in {**means, **extra}.items())
                print_progress(
                    f"iter {done:>{len(str(config.num_iterations))}}/{config.num_iterations} | {details} | "
                    f"{done / elapsed:.1f} it/s | ETA {format_duration(remaining)}"
                )
        if done % config.checkpoint_every == 0 or done == config.num_iterations:
            save_checkpoints(
                run_dir, checkpoint(learner, config, done, time.perf_counter() - start), config.checkpoint_every
            )
    wall_time_s = time.perf_counter() - start
    return {
        "iterations": config.num_iterations,
        "wall_time_s": wall_time_s,
        "iterations_per_s": config.num_iterations / wall_time_s,
    }


# Random streams of the supervised runs beyond metarl.seeding's (TRAIN_TASKS, EVAL_TASKS, POLICY_INIT).
BASELINE_TASKS = 10
BASELINE_INIT = 11
