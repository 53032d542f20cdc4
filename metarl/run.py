"""A run directory, and what every kind of run keeps in it the same way.

RL training (``metarl.trainer``), pretraining (``metarl.pretraining``) and supervised meta-training
(``metarl.supervised.training``) supply only their iteration. What a run directory may be (new and empty,
or a run to resume), its config file, the checkpoint schema and its numbered-then-latest atomic saves, the
TensorBoard writer and the progress line's ETA are here, once.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import is_dataclass
from pathlib import Path
from typing import Any

from metarl.checkpoint import LATEST, atomic_write_text, is_stale_temporary, remove_stale_temporaries, save_checkpoint
from metarl.cli import require_writable_directory
from metarl.config import ConfigError, dump_yaml, to_dict
from metarl.logger import EventLayout, Logger
from metarl.memory import keep_freed_memory
from metarl.version import __version__

CONFIG_FILE = "config.yaml"
CHECKPOINTS = "checkpoints"


def new_run_dir(name: str, seed: int, output_dir: Path | None, resumable: bool = True) -> Path:
    """The directory for a new run (default ``runs/<name>-seed<seed>-<time>``): new or empty, and writable.
    Anything else is refused before a byte is written, so neither a run nor the user's other files get
    overwritten. ``resumable``: whether the message may point to ``--resume`` (RL training only)."""
    if output_dir is None:
        output_dir = Path("runs") / f"{name}-seed{seed}-{time.strftime('%Y%m%d-%H%M%S')}"
    output_dir = Path(output_dir)
    if (output_dir / CONFIG_FILE).exists():
        if not resumable:
            raise ConfigError(f"{output_dir} already holds a run; choose a new --output-dir")
        if latest_checkpoint(output_dir) is None:
            raise ConfigError(
                f"{output_dir} holds a run that stopped before its first checkpoint; start it "
                f"with --resume {output_dir} (its saved config), or choose a new --output-dir"
            )
        raise ConfigError(
            f"{output_dir} already holds a run; continue it with --resume {output_dir} or choose a new --output-dir"
        )
    require_writable_directory(output_dir, "--output-dir")
    if output_dir.is_dir() and not all(is_stale_temporary(path) for path in output_dir.iterdir()):
        raise ConfigError(
            f"{output_dir} is not empty but holds no run (no {CONFIG_FILE}); choose a new or "
            "empty --output-dir so that nothing in it gets overwritten"
        )
    return output_dir


def write_config(run_dir: Path, config: Any) -> None:
    """Create (or, on resume, tidy) the run directory and save the resolved config beside the run, atomically."""
    run_dir.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(run_dir)
    remove_stale_temporaries(run_dir / CHECKPOINTS)
    atomic_write_text(run_dir / CONFIG_FILE, dump_yaml(config))


def latest_checkpoint(run_dir: Path) -> Path | None:
    """The checkpoint a resume continues from: latest.pt, else the highest numbered one (a kill between the
    first numbered checkpoint and latest.pt leaves only that), else None for a run killed before any."""
    directory = Path(run_dir) / CHECKPOINTS
    if (directory / LATEST).exists():
        return directory / LATEST
    numbered = sorted(directory.glob("iter_[0-9]*.pt"))
    return numbered[-1] if numbered else None


def checkpoint_state(config: Any, iteration: int, wall_time_s: float, **payload: Any) -> dict[str, Any]:
    """The schema every checkpoint shares: the payload (state dicts, counters), the iteration done, the time
    it took and the config and package version that made it. There is no RNG state: every random stream is
    derived from (seed, iteration), see ``metarl.seeding``."""
    return {
        **payload,
        "iteration": iteration,
        "wall_time_s": wall_time_s,
        "config": to_dict(config) if is_dataclass(config) else config,
        "metarl_version": __version__,
    }


def save_checkpoints(run_dir: Path, state: dict[str, Any], every: int) -> None:
    """``iter_NNNNNN.pt`` every ``every`` iterations, then ``latest.pt``. Numbered first: a kill between the
    two leaves latest one iteration behind, and the resume redoes that iteration bit for bit and writes both
    again (the other order would resume after an iteration whose numbered checkpoint was never written)."""
    directory = Path(run_dir) / CHECKPOINTS
    if state["iteration"] % every == 0:
        save_checkpoint(directory / f"iter_{state['iteration']:06d}.pt", state)
    save_checkpoint(directory / LATEST, state)


def open_logger(run_dir: Path, first_iteration: int = 0, resumed: bool = False) -> Logger:
    """The run's TensorBoard logger (see ``EventLayout``). A resume supersedes what an earlier process logged
    from the next iteration's step on; a new run writes from step 0 (its settings)."""
    events = EventLayout.of(run_dir)
    first_step = events.step(first_iteration + 1) if first_iteration else 0
    return Logger(events.directory, purge_step=first_step if resumed else None)


def process_settings() -> None:
    """Settings of the process a run trains in: glibc keeps freed memory for the large tensors' reuse."""
    keep_freed_memory()


class ETA:
    """Time left, from the mean duration of the last ``window`` iterations (a run's pace changes as it learns)."""

    def __init__(self, total: int, window: int = 10):
        self.total = total
        self.recent: deque[float] = deque(maxlen=window)

    def after(self, done: int, seconds: float) -> float:
        """Seconds left once ``done`` of ``total`` iterations are done, the last one having taken ``seconds``."""
        self.recent.append(seconds)
        return sum(self.recent) / len(self.recent) * (self.total - done)
