"""The loop the supervised launchers share: sample a meta-batch → meta-step → log → checkpoint.

A run can continue from its checkpoint bit for bit: the checkpoint holds the network, the meta-learner's
state (Adam's) and whatever else the run keeps (``extra_state``), and each meta-batch is drawn from a
generator keyed by (seed, iteration).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from metarl.checkpoint import CheckpointError
from metarl.logger import Logger, format_duration, print_progress
from metarl.run import ETA, checkpoint_state, process_settings, save_checkpoints
from metarl.supervised.config import MetaLearningConfig
from metarl.supervised.meta_learning import MAML, Reptile
from metarl.supervised.tasks import TaskBatch


@dataclass
class Progress:
    """Where a run stands: the meta-iterations done and the training time they took, across resumes."""

    iteration: int = 0
    wall_time_s: float = 0.0


def checkpoint(
    learner: MAML | Reptile, config: MetaLearningConfig, progress: Progress, **payload: Any
) -> dict[str, Any]:
    """The schema every run's checkpoints share (``metarl.run.checkpoint_state``), with the model and learner."""
    return checkpoint_state(
        config,
        progress.iteration,
        progress.wall_time_s,
        model=learner.model.state_dict(),
        learner=learner.state_dict(),
        **payload,
    )


def restore(learner: MAML | Reptile, state: dict[str, Any], path: Path) -> Progress:
    """Load a checkpoint's model and learner state; where it stood. A checkpoint of another network size fails
    with one line, not torch's page of size mismatches."""
    missing = [key for key in ("model", "learner", "iteration", "wall_time_s") if key not in state]
    if missing:
        raise CheckpointError(f"checkpoint {path} lacks {', '.join(missing)}; it is damaged or not a run's checkpoint")
    try:
        learner.model.load_state_dict(state["model"])
        learner.load_state_dict(state["learner"])
    except (KeyError, RuntimeError, TypeError, ValueError) as error:
        raise CheckpointError(
            f"checkpoint {path} does not fit this run's network ({type(error).__name__}); it is not this run's"
        ) from None
    return Progress(int(state["iteration"]), float(state["wall_time_s"]))


def meta_train(
    learner: MAML | Reptile,
    sample_batch: Callable[[int], TaskBatch],
    config: MetaLearningConfig,
    run_dir: Path,
    logger: Logger,
    quiet: bool = False,
    on_log: Callable[[int], dict[str, float]] | None = None,
    progress: Progress | None = None,
    extra_state: Callable[[], dict[str, Any]] | None = None,
) -> dict[str, float]:
    """Run meta-steps from ``progress`` (default: a new run) to ``config.num_iterations``; every ``log_every``
    write averaged scalars (plus ``on_log``'s), every ``checkpoint_every`` and at the end a checkpoint (plus
    ``extra_state()``'s entries). ``progress`` is updated as the run goes, for a message if it is stopped.

    Returns the wall time and this process's iteration rate for the results table.
    """
    process_settings()
    progress = progress if progress is not None else Progress()
    first, before_s = progress.iteration, progress.wall_time_s
    start = time.perf_counter()
    window: dict[str, list[float]] = {}
    eta, logged, logged_s = ETA(config.num_iterations), first, 0.0
    for iteration in range(first, config.num_iterations):
        stats = learner.meta_step(sample_batch(iteration))
        for key, value in stats.items():
            window.setdefault(key, []).append(value)
        done = iteration + 1
        elapsed = time.perf_counter() - start
        progress.iteration, progress.wall_time_s = done, before_s + elapsed
        rate = (done - first) / elapsed
        if done % config.log_every == 0 or done == config.num_iterations:
            means = {key: sum(values) / len(values) for key, values in window.items()}
            window = {}
            for key, value in means.items():
                logger.record(f"train/{key}", value)
            logger.record("perf/iterations_per_s", rate)
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
                    f"{rate:.1f} it/s | ETA {format_duration(remaining)}"
                )
        if done % config.checkpoint_every == 0 or done == config.num_iterations:
            payload = extra_state() if extra_state is not None else {}
            save_checkpoints(run_dir, checkpoint(learner, config, progress, **payload), config.checkpoint_every)
    this_process_s = time.perf_counter() - start
    return {
        "iterations": config.num_iterations,
        "wall_time_s": before_s + this_process_s,
        "iterations_per_s": (config.num_iterations - first) / this_process_s if this_process_s > 0 else 0.0,
    }


# Random streams of the supervised runs beyond metarl.seeding's (TRAIN_TASKS, EVAL_TASKS, POLICY_INIT).
BASELINE_TASKS = 10
BASELINE_INIT = 11
