"""A run directory, and what every kind of run keeps in it the same way.

RL training (``metarl.trainer``), pretraining (``metarl.pretraining``) and supervised meta-training
(``metarl.supervised.training``) supply only their step to the one loop (``metarl.run_loop``). What a run
directory may be (new and empty, or a run to resume), its config file, the checkpoint schema and its
numbered-then-latest atomic saves, the TensorBoard writer and what a stopped run leaves are here, once.
"""

from __future__ import annotations

import fcntl
import os
import shlex
import shutil
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, is_dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from metarl.checkpoint import (
    LATEST,
    CheckpointError,
    atomic_write_text,
    is_stale_temporary,
    load_checkpoint,
    remove_stale_temporaries,
    save_checkpoint,
)
from metarl.cli import (
    Terminated,
    environment_fault,
    interrupted_status,
    is_disk_fault,
    require_writable_directory,
    usage_error,
)
from metarl.config import ConfigError, apply_overrides, dump_yaml, from_dict, load_yaml, to_dict
from metarl.logger import EventLayout, Logger
from metarl.memory import keep_freed_memory
from metarl.samplers.base import WorkerError
from metarl.version import __version__

if TYPE_CHECKING:  # the loop is built on this module
    from metarl.run_loop import Progress

CONFIG_FILE = "config.yaml"
CHECKPOINTS = "checkpoints"
T = TypeVar("T")


@dataclass(frozen=True)
class RunKind:
    """A kind of run that its launcher's ``--resume DIR`` continues: what tells its checkpoints apart, and what
    the messages of a refused directory, an interruption or a disk fault tell the user to run."""

    name: str
    method: str
    """Its checkpoints' ``method`` (RL training's, most written before the key existed, say none: "maml")."""
    launcher: str
    from_scratch: bool
    """Whether a run stopped before its first checkpoint resumes from iteration 0 (RL training: its config.yaml
    is all that takes) or cannot (pretraining: its settings are saved in its checkpoints only)."""
    extend: str
    """The resume option that runs a finished run for longer (its total, N iterations)."""
    next_steps: str
    """What to run once a run is done, with ``{run}`` for its directory: the line a finished run ends with."""

    def done_hint(self, run_dir: Path) -> str:
        """``next_steps`` for the run in ``run_dir``, its path quoted for the shell."""
        return self.next_steps.format(run=shlex.quote(str(run_dir)))

    def finished(self, run_dir: Path, iterations: int) -> RunFinished:
        """What a resume of a run that has done all its ``iterations`` raises: it trains and writes nothing."""
        return RunFinished(
            f"{run_dir} is finished ({iterations} of {iterations} iterations): nothing to train, and nothing in it "
            f"was changed; to train it further: python {self.launcher} --resume {shlex.quote(str(run_dir))} "
            f"{self.extend} (N > {iterations}); {self.done_hint(run_dir)}"
        )

    def resume_hint(self, run_dir: Path) -> str:
        """How to carry on after the run in ``run_dir`` stopped: the end of an interruption's or a fault's message."""
        if not (Path(run_dir) / CONFIG_FILE).is_file():
            return "nothing of the run was written; start it again"
        checkpoint = latest_checkpoint(run_dir)
        if checkpoint is None and not self.from_scratch:
            return f"it has no checkpoint to resume from; delete {run_dir} and start it again"
        if checkpoint is None:
            where = "from iteration 0, as it has no checkpoint yet"
        else:
            where = f"from its last complete checkpoint, {checkpoint.relative_to(run_dir)}"
        return f"the run can be resumed {where}; continue with: python {self.launcher} --resume {run_dir}"

    def interruption_message(
        self, run_dir: Path | None, iterations_done: int | None, new_run: bool, how: str = "interrupted"
    ) -> str:
        """What Ctrl-C (or SIGTERM: ``how``) leaves, for its one line (``iterations_done``: None if it came before
        the run started). A new run stopped before its first checkpoint is removed: its directory holds only what
        this process wrote (``new_run_dir`` refused any other), nothing that the same command would not write
        again, and left in place it would make that command refuse the directory. Every other run is kept, to be
        resumed; the iterations it reports are those its checkpoint holds (a stop while latest.pt was being
        replaced leaves the one before)."""
        if run_dir is None or (new_run and latest_checkpoint(run_dir) is None):
            if run_dir is not None:
                shutil.rmtree(run_dir, ignore_errors=True)
            return f"{how} before the first checkpoint, so there is nothing to resume; run the same command again"
        checkpoint = latest_checkpoint(run_dir)
        saved = None if checkpoint is None or iterations_done is None else saved_iteration(checkpoint)
        iterations_done = iterations_done if saved is None else saved
        done = "before training resumed" if iterations_done is None else f"after {iterations_done} iterations"
        return f"{how} {done}; {self.resume_hint(run_dir)}"

    def stopped(
        self,
        error: OSError | KeyboardInterrupt | WorkerError,
        run_dir: Path | None,
        iterations_done: int | None,
        new_run: bool,
    ) -> int:
        """The exit status of a launcher whose run ``error`` stopped, after its one line on stderr: Ctrl-C (130),
        SIGTERM (143), a full or read-only disk or a sampler worker killed again and again (1). Any other OSError
        is a bug, re-raised with its traceback."""
        if isinstance(error, WorkerError):
            return environment_fault(str(error) if run_dir is None else f"{error}; {self.resume_hint(run_dir)}")
        if isinstance(error, KeyboardInterrupt):
            how = "terminated (SIGTERM)" if isinstance(error, Terminated) else "interrupted"
            print(self.interruption_message(run_dir, iterations_done, new_run, how), file=sys.stderr, flush=True)
            return interrupted_status(error)
        if run_dir is None or not is_disk_fault(error):
            raise error
        return environment_fault(f"cannot write to {run_dir} ({error.strerror}); {self.resume_hint(run_dir)}")

    def launch(
        self, new_run: bool, body: Callable[[Attempt], None], user_errors: tuple[type[Exception], ...] = ()
    ) -> int:
        """A launcher's run, ``body(attempt)``, and its exit status: 0, or what ``refused`` (a ConfigError,
        CheckpointError or one of ``user_errors``) or ``stopped`` (Ctrl-C, SIGTERM, a disk fault, a worker killed
        again and again) return after their one line. ``body`` fills in ``attempt`` as it goes, for that line;
        a resume of a finished run prints ``RunFinished``'s line and is 0."""
        attempt = Attempt()
        refusals: tuple[type[Exception], ...] = (ConfigError, CheckpointError, *user_errors)
        try:
            body(attempt)
        except RunFinished as finished:
            print(finished, flush=True)
        except refusals as error:
            return self.refused(error, attempt.run_dir, started=attempt.progress is not None, new_run=new_run)
        except (OSError, KeyboardInterrupt, WorkerError) as error:
            done = None if attempt.progress is None else attempt.progress.iteration
            return self.stopped(error, attempt.run_dir, done, new_run)
        finally:
            if attempt.run_dir is not None:
                release_run_dir(attempt.run_dir)
        return 0

    def done_line(self, progress: Progress, run_dir: Path) -> str:
        """What a finished RL or pretraining run prints last: its totals and what to do next."""
        return (
            f"done: {progress.iteration} iterations, {progress.env_steps:,} env steps, {progress.wall_time_s:.1f} s; "
            f"{self.done_hint(run_dir)}"
        )

    def refused(self, error: Exception, run_dir: Path | None, started: bool, new_run: bool) -> int:
        """The exit status (2) of a launcher stopped by the user's input, after its one line: a bad setting, or
        one met only once the run ``started`` (an env that raised or returned NaN, a policy that diverged). A new
        run that this process started and that has no checkpoint yet is removed, as after Ctrl-C, so that the
        same command runs again once the input is fixed; every other run is kept as it is."""
        message = str(error)
        if started and new_run and run_dir is not None and latest_checkpoint(run_dir) is None:
            shutil.rmtree(run_dir, ignore_errors=True)
            message += f" (the new run stopped before its first checkpoint, so {run_dir} was removed)"
        return usage_error(message)


@dataclass
class Attempt:
    """How far a launcher's run got, for the line that says what a stop left: its directory once chosen, its
    progress once it was built (``RunKind.launch``)."""

    run_dir: Path | None = None
    progress: Progress | None = None


RL_TRAINING = RunKind(
    "MAML-training",
    "maml",
    "launchers/train.py",
    from_scratch=True,
    extend="--set num_iterations=N",
    next_steps="evaluate it: python launchers/evaluate.py {run}; its curves: tensorboard --logdir {run}",
)
PRETRAINING = RunKind(
    "pretraining",
    "pretrained",
    "launchers/pretrain.py",
    from_scratch=False,
    extend="--iterations N",
    next_steps="evaluate it beside a MAML run: python launchers/evaluate.py RUN_DIR --pretrained "
    f"{{run}}/{CHECKPOINTS}/{LATEST}",
)


class RunFinished(Exception):
    """A resume of a run that has done every iteration it was to do: it is left as it is, byte for byte (its
    config.yaml is not rewritten either), unless the resume extends it. The message says how, in one line."""


RUN_KINDS = (RL_TRAINING, PRETRAINING)


def new_run_dir(name: str, seed: int, output_dir: Path | None, kind: RunKind | None) -> Path:
    """The directory for a new run (default ``runs/<name>-seed<seed>-<time>``): new or empty, and writable.
    Anything else is refused before a byte is written, so neither a run nor the user's other files get
    overwritten. ``kind``: how a run of this launcher is resumed, for the message; None if it cannot be."""
    if output_dir is None:
        output_dir = Path("runs") / f"{name}-seed{seed}-{time.strftime('%Y%m%d-%H%M%S')}"
    output_dir = Path(output_dir)
    if (output_dir / CONFIG_FILE).exists():
        if kind is None:
            raise ConfigError(f"{output_dir} already holds a run; choose a new --output")
        if latest_checkpoint(output_dir) is None:
            if not kind.from_scratch:
                raise ConfigError(
                    f"{output_dir} holds a run that stopped before its first checkpoint, so there is nothing to "
                    "resume; delete it or choose a new --output"
                )
            raise ConfigError(
                f"{output_dir} holds a run that stopped before its first checkpoint; start it "
                f"with --resume {output_dir} (its saved config), or choose a new --output"
            )
        raise ConfigError(
            f"{output_dir} already holds a run; continue it with --resume {output_dir} or choose a new --output"
        )
    require_writable_directory(output_dir, "--output")
    if output_dir.is_dir() and not all(is_stale_temporary(path) for path in output_dir.iterdir()):
        raise ConfigError(
            f"{output_dir} is not empty but holds no run (no {CONFIG_FILE}); choose a new or "
            "empty --output so that nothing in it gets overwritten"
        )
    _NEW_RUNS.add(output_dir.resolve())
    return output_dir


_CLAIMED: dict[Path, int] = {}
"""The run directories this process writes, each with the open descriptor that holds its lock."""
_NEW_RUNS: set[Path] = set()
"""The directories ``new_run_dir`` handed out in this process: a new run must find no config.yaml there."""


def claim_run_dir(run_dir: Path) -> None:
    """Make ``run_dir`` this process's: an exclusive ``flock`` on the directory, held until ``release_run_dir``
    or the process ends, however it ends (the kernel drops it, so a killed run never leaves a stale lock).
    A second train, resume or pretraining in the same directory stops here, before it writes a byte; so does
    one of two new runs started there at the same moment, as the second finds the first's config.yaml."""
    key = Path(run_dir).resolve()
    if key not in _CLAIMED:
        descriptor = os.open(key, os.O_RDONLY | os.O_DIRECTORY)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(descriptor)
            raise ConfigError(
                f"{run_dir} is in use by another process (a run training or resuming there); wait for it to "
                "end, or stop it, before resuming it, or choose another --output"
            ) from None
        _CLAIMED[key] = descriptor
    if key in _NEW_RUNS and (key / CONFIG_FILE).exists():
        release_run_dir(run_dir)
        raise ConfigError(
            f"{run_dir} already holds a run, started by another process at the same moment; "
            f"continue it with --resume {run_dir} or choose a new --output"
        )


def release_run_dir(run_dir: Path) -> None:
    """Give up ``claim_run_dir``'s lock (a run's loop does when it ends; exiting does too)."""
    key = Path(run_dir).resolve()
    _NEW_RUNS.discard(key)
    descriptor = _CLAIMED.pop(key, None)
    if descriptor is not None:
        os.close(descriptor)


def write_config(run_dir: Path, config: Any) -> None:
    """Create (or, on resume, tidy) the run directory, claim it for this process, and save the resolved config
    beside the run, atomically."""
    run_dir.mkdir(parents=True, exist_ok=True)
    claim_run_dir(run_dir)
    _NEW_RUNS.discard(Path(run_dir).resolve())
    remove_stale_temporaries(run_dir)
    remove_stale_temporaries(run_dir / CHECKPOINTS)
    atomic_write_text(run_dir / CONFIG_FILE, dump_yaml(config))


def saved_run_config(
    run_dir: Path,
    cls: type[T],
    fix: str,
    overrides: Sequence[str] = (),
    resumable: frozenset[str] = frozenset(),
    upgrade: Callable[[dict[str, Any]], dict[str, Any]] = lambda saved: saved,
) -> T:
    """The config a run saved beside itself, read the one way that resuming, evaluating and plotting a run share:
    ``upgrade`` brings an older layout up to date, and ``key=value`` ``overrides`` are refused for keys other than
    ``resumable`` (those would change the run's results). A directory that holds no run is a ConfigError ending
    in ``fix``, how the caller's user names another."""
    run_dir = Path(run_dir)
    if run_dir.exists() and not run_dir.is_dir():
        raise ConfigError(f"{run_dir} is a file, not a run directory; {fix}")
    if not run_dir.is_dir():
        raise ConfigError(f"run directory {run_dir} does not exist; {fix}")
    if not (run_dir / CONFIG_FILE).is_file():
        raise ConfigError(f"{run_dir} is not a run directory (no {CONFIG_FILE}); {fix}")
    saved = upgrade(load_yaml(run_dir / CONFIG_FILE))
    merged = apply_overrides(saved, list(overrides))
    config = from_dict(cls, merged)  # a misspelled key is named here, with the closest valid one
    forbidden = sorted(key for key in merged if saved.get(key) != merged[key] and key not in resumable)
    if forbidden:
        raise ConfigError(
            f"cannot change {', '.join(forbidden)} when resuming (only {', '.join(sorted(resumable))}); "
            "start a new run instead"
        )
    return config


def latest_checkpoint(run_dir: Path) -> Path | None:
    """The checkpoint a resume continues from: latest.pt, else the highest numbered one (a kill between the
    first numbered checkpoint and latest.pt leaves only that), else None for a run killed before any."""
    directory = Path(run_dir) / CHECKPOINTS
    if (directory / LATEST).exists():
        return directory / LATEST
    numbered = sorted(directory.glob("iter_[0-9]*.pt"))
    return numbered[-1] if numbered else None


def saved_iteration(checkpoint: Path) -> int | None:
    """The iteration a checkpoint holds, or None if it cannot be read (for messages only)."""
    try:
        return int(load_checkpoint(checkpoint)["iteration"])
    except (CheckpointError, KeyError, TypeError, ValueError):
        return None


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


def open_logger(
    run_dir: Path, first_iteration: int = 0, resumed: bool = False, settings: dict[str, Any] | None = None
) -> Logger:
    """The run's TensorBoard logger (see ``EventLayout``). A resume supersedes what an earlier process logged
    from the next iteration's step on; a run that starts at iteration 0 writes its ``settings`` first."""
    events = EventLayout.of(run_dir)
    first_step = events.step(first_iteration + 1) if first_iteration else 0
    logger = Logger(events.directory, purge_step=first_step if resumed else None)
    if first_iteration == 0 and settings is not None:
        logger.hyperparameters(settings)
    return logger


def process_settings() -> None:
    """Settings of the process a run trains in: glibc keeps freed memory for the large tensors' reuse."""
    keep_freed_memory()
