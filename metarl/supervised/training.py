"""The loop both supervised launchers share: sample a meta-batch → meta-step → log → checkpoint."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from metarl.checkpoint import LATEST, atomic_write_text, save_checkpoint
from metarl.config import ConfigError, dump_yaml, to_dict
from metarl.logger import Logger, format_duration, print_progress
from metarl.supervised.config import MetaLearningConfig
from metarl.supervised.meta_learning import MAML, Reptile
from metarl.supervised.tasks import TaskBatch
from metarl.version import __version__

CONFIG_FILE = "config.yaml"
CHECKPOINTS = "checkpoints"


def new_run_dir(name: str, seed: int, output_dir: Path | None) -> Path:
    """The run directory, created with nothing in it yet; refuses one that already holds a run."""
    if output_dir is None:
        output_dir = Path("runs") / f"{name}-seed{seed}-{time.strftime('%Y%m%d-%H%M%S')}"
    output_dir = Path(output_dir)
    if (output_dir / CONFIG_FILE).exists():
        raise ConfigError(f"{output_dir} already holds a run; choose a new --output-dir")
    return output_dir


def start_run(config: MetaLearningConfig, run_dir: Path) -> None:
    run_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(run_dir / CONFIG_FILE, dump_yaml(config))


def checkpoint_state(learner: MAML | Reptile, config: MetaLearningConfig, iteration: int,
                     wall_time_s: float) -> dict[str, Any]:
    return {
        "model": learner.model.state_dict(),
        "learner": learner.state_dict(),
        "iteration": iteration,
        "wall_time_s": wall_time_s,
        "config": to_dict(config),
        "metarl_version": __version__,
        # No RNG state: each iteration's tasks come from task_rng(seed, TRAIN_TASKS, iteration).
    }


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
    start = time.perf_counter()
    window: dict[str, list[float]] = {}
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
            for key, value in extra.items():
                logger.record(key, value)
            logger.dump(done)
            if not quiet:
                details = " | ".join(f"{key.split('/')[-1]} {value:.4f}" for key, value in {**means, **extra}.items())
                eta = elapsed / done * (config.num_iterations - done)
                print_progress(f"iter {done:>{len(str(config.num_iterations))}}/{config.num_iterations} | {details} | "
                               f"{done / elapsed:.1f} it/s | ETA {format_duration(eta)}")
        if done % config.checkpoint_every == 0 or done == config.num_iterations:
            state = checkpoint_state(learner, config, done, time.perf_counter() - start)
            save_checkpoint(run_dir / CHECKPOINTS / LATEST, state)
            if done % config.checkpoint_every == 0:
                save_checkpoint(run_dir / CHECKPOINTS / f"iter_{done:06d}.pt", state)
    wall_time_s = time.perf_counter() - start
    return {"iterations": config.num_iterations, "wall_time_s": wall_time_s,
            "iterations_per_s": config.num_iterations / wall_time_s}

# Random streams of the supervised runs beyond metarl.seeding's (TRAIN_TASKS, EVAL_TASKS, POLICY_INIT).
BASELINE_TASKS = 10
BASELINE_INIT = 11
