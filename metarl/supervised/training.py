"""Supervised meta-training's step (sample a meta-batch → meta-step) for the one run loop, ``metarl.run_loop``.

A run can continue from its checkpoint bit for bit: the checkpoint holds the network, the meta-learner's
state (Adam's) and whatever else the run keeps (``extra_state``), and each meta-batch is drawn from a
generator keyed by (seed, iteration).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from metarl.checkpoint import CheckpointError
from metarl.heartbeat import Note
from metarl.logger import Logger
from metarl.run import checkpoint_state
from metarl.run_loop import Cadence, Progress, Scalars, record_all, run_loop
from metarl.supervised.config import MetaLearningConfig
from metarl.supervised.meta_learning import MAML, Reptile
from metarl.supervised.tasks import TaskBatch


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


def restore(learner: MAML | Reptile, state: dict[str, Any], path: Path, progress: Progress) -> None:
    """Load a checkpoint's model and learner state, and where it stood into ``progress``. A checkpoint of another
    network size fails with one line, not torch's page of size mismatches."""
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
    progress.iteration, progress.wall_time_s = int(state["iteration"]), float(state["wall_time_s"])


class MetaTraining:
    """Meta-steps on batches from ``sample_batch(iteration)``: ``run_loop``'s ``Steps`` for a supervised run.
    ``on_log(iteration)`` adds scalars at each logged iteration (a periodic evaluation), ``extra_state()``
    entries to each checkpoint."""

    label = "iter"

    def __init__(
        self,
        learner: MAML | Reptile,
        sample_batch: Callable[[int], TaskBatch],
        config: MetaLearningConfig,
        progress: Progress,
        on_log: Callable[[int], dict[str, float]] | None = None,
        extra_state: Callable[[], dict[str, Any]] | None = None,
    ):
        self.learner, self.sample_batch, self.config = learner, sample_batch, config
        self.total, self.progress = config.num_iterations, progress
        self.on_log, self.extra_state = on_log, extra_state
        self.first, self.before_s = progress.iteration, progress.wall_time_s
        """Where this process started: its iteration rate counts from here."""

    def step(self, note: Note) -> Scalars:
        stats = {
            f"train/{key}": value
            for key, value in self.learner.meta_step(self.sample_batch(self.progress.iteration)).items()
        }
        done = self.progress.iteration + 1
        if self.on_log is not None and (done % self.config.log_every == 0 or done == self.total):
            stats.update(self.on_log(done))
        return stats

    def iterations_per_s(self) -> float:
        """This process's rate so far."""
        seconds = self.progress.wall_time_s - self.before_s
        return (self.progress.iteration - self.first) / seconds if seconds > 0 else 0.0

    def record(self, logger: Logger, scalars: Scalars) -> None:
        record_all(logger, scalars)
        logger.record("perf/iterations_per_s", self.iterations_per_s())

    def summary(self, scalars: Scalars) -> str:
        details = " | ".join(f"{key.split('/')[-1]} {value:.4f}" for key, value in scalars.items())
        return f"{details} | {self.iterations_per_s():.1f} it/s"

    def checkpoint_state(self) -> dict[str, Any]:
        payload = self.extra_state() if self.extra_state is not None else {}
        return checkpoint(self.learner, self.config, self.progress, **payload)


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
    """Run meta-steps from ``progress`` (default: a new run) to ``config.num_iterations`` in the run loop:
    averaged scalars every ``log_every`` (plus ``on_log``'s), a checkpoint every ``checkpoint_every`` and at the
    end (plus ``extra_state()``'s entries). ``progress`` is updated as the run goes, for a message if it is
    stopped.

    Returns the wall time and this process's iteration rate for the results table.
    """
    steps = MetaTraining(learner, sample_batch, config, progress or Progress(), on_log, extra_state)
    cadence = Cadence(config.checkpoint_every, log_every=config.log_every, save_every=config.checkpoint_every)
    run_loop(steps, run_dir, logger, cadence, quiet)
    return {
        "iterations": config.num_iterations,
        "wall_time_s": steps.progress.wall_time_s,
        "iterations_per_s": steps.iterations_per_s(),
    }


# Random streams of the supervised runs beyond metarl.seeding's (TRAIN_TASKS, EVAL_TASKS, POLICY_INIT).
BASELINE_TASKS = 10
BASELINE_INIT = 11
