"""The one loop every kind of run trains in: RL meta-training, pretraining and supervised meta-training.

A kind of run supplies only its step and its state (``Steps``); the loop owns the rest, the same way for all:
the iteration count and wall time, the TensorBoard steps (scalars averaged over ``log_every`` iterations),
the progress line ``LABEL i/N | ... | ETA``, the heartbeat within long iterations, and the numbered-then-latest
checkpoints. What a stop (Ctrl-C, SIGTERM, a full disk) leaves and how to resume is ``metarl.run.RunKind``'s.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from metarl.heartbeat import Heartbeat, Note
from metarl.logger import EventLayout, Logger, format_duration, print_progress
from metarl.run import process_settings, save_checkpoints

Scalars = dict[str, float]


@dataclass
class Progress:
    """Where a run stands, across resumes: the iterations done, the env steps they sampled (RL runs) and the
    training time they took."""

    iteration: int = 0
    env_steps: int = 0
    wall_time_s: float = 0.0


@dataclass(frozen=True)
class Cadence:
    """How often the loop writes: TensorBoard scalars and a progress line every ``log_every`` iterations, the
    checkpoint (latest.pt) every ``save_every``, a numbered one kept every ``checkpoint_every``; each also
    after the last iteration."""

    checkpoint_every: int
    log_every: int = 1
    save_every: int = 1


class Steps(Protocol):
    """What a kind of run supplies to ``run_loop``."""

    label: str
    """The progress line's first word ("iter", "pretrain")."""
    total: int
    """The iteration the run ends after."""
    progress: Progress
    """Where it stands; the loop counts iterations and wall time, ``step`` the env steps it samples."""

    def step(self, note: Note) -> Scalars:
        """Iteration ``progress.iteration`` (from 0): its scalars. ``note`` hears its stages."""
        ...

    def record(self, logger: Logger, scalars: Scalars) -> None:
        """Record a log interval's mean scalars (the loop dumps them at the interval's last iteration)."""
        ...

    def summary(self, scalars: Scalars) -> str:
        """The middle of the progress line for a log interval's mean scalars."""
        ...

    def checkpoint_state(self) -> dict[str, Any]:
        """Everything a resume needs to go on as if uninterrupted (see ``metarl.run.checkpoint_state``)."""
        ...


def record_all(logger: Logger, scalars: Scalars) -> None:
    """``Steps.record`` for a run whose scalars are all its TensorBoard tags."""
    for tag, value in scalars.items():
        logger.record(tag, value)


class ETA:
    """Time left, from the mean duration of the last ``window`` iterations (a run's pace changes as it learns)."""

    def __init__(self, total: int, window: int = 10):
        self.total = total
        self.recent: deque[float] = deque(maxlen=window)

    def after(self, done: int, seconds: float) -> float:
        """Seconds left once ``done`` of ``total`` iterations are done, the last one having taken ``seconds``."""
        self.recent.append(seconds)
        return sum(self.recent) / len(self.recent) * (self.total - done)


def run_loop(
    steps: Steps,
    run_dir: Path,
    logger: Logger,
    cadence: Cadence,
    quiet: bool = False,
    callback: Callable[[int, Scalars], bool | None] | None = None,
) -> list[Scalars]:
    """Run ``steps`` from ``steps.progress`` to ``steps.total``; returns each iteration's scalars.
    ``callback(iteration, scalars)`` runs after each iteration is logged and saved; returning False stops the
    run there (it resumes from its last checkpoint). The caller opens and closes ``logger``."""
    process_settings()
    progress, total = steps.progress, steps.total
    events, eta, width = EventLayout.of(run_dir), ETA(total), len(str(total))
    heartbeat = Heartbeat.unless(quiet)  # lines within an iteration that takes minutes
    history: list[Scalars] = []
    window: dict[str, list[float]] = {}
    while progress.iteration < total:
        heartbeat.begin(f"{steps.label} {progress.iteration + 1}/{total}")
        start = time.perf_counter()
        scalars = steps.step(heartbeat)
        seconds = time.perf_counter() - start
        progress.iteration += 1
        progress.wall_time_s += seconds
        done, remaining = progress.iteration, eta.after(progress.iteration, seconds)
        history.append(scalars)
        for tag, value in scalars.items():
            window.setdefault(tag, []).append(value)
        logged = done % cadence.log_every == 0 or done == total
        if logged:
            means = {tag: sum(values) / len(values) for tag, values in window.items()}
            window = {}
            steps.record(logger, means)
            logger.dump(events.step(done))
        if done % cadence.save_every == 0 or done == total:
            save_checkpoints(run_dir, steps.checkpoint_state(), cadence.checkpoint_every)
        if logged and not quiet:  # its line once its checkpoint is saved
            print_progress(
                f"{steps.label} {done:>{width}}/{total} | {steps.summary(means)} | ETA {format_duration(remaining)}"
            )
        if callback is not None and callback(done, scalars) is False:
            break
    return history
