"""What every supervised launcher (sinusoid, Omniglot, MiniImagenet) does around its run: a new run or
``--resume DIR`` with the run's saved config, everything checked before a byte is written, one line for each
problem a user can fix, and a stop (Ctrl-C, SIGTERM, a full disk) that leaves a resumable run and says how."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from metarl.checkpoint_check import resume_checkpoint
from metarl.config import ConfigError, find_config, load_config
from metarl.run import Attempt, RunKind, new_run_dir, saved_run_config, write_config
from metarl.run_loop import Progress
from metarl.supervised.config import MetaLearningConfig

RESUMABLE_KEYS = frozenset({"num_iterations", "checkpoint_every", "device"})
"""Keys a resume may change: they change how long and where it runs, not what a finished run's numbers are."""
C = TypeVar("C", bound=MetaLearningConfig)
Resumed = tuple[dict[str, Any], Path] | None
"""The checkpoint a resume continues from and its path; None for a new run or one stopped before its first."""
Run = Callable[[Path, Progress, Resumed], dict[str, Any]]
"""A prepared run: given its directory (holding its config), the progress to follow and where to resume, it
trains, evaluates and returns what its evaluation.json holds."""


def supervised_kind(name: str, title: str, launcher: str) -> RunKind:
    """The ``RunKind`` of a supervised launcher (``launcher``: how to call it, e.g. with ``--data DIR``)."""
    return RunKind(
        f"{title} meta-training",
        name,
        launcher,
        from_scratch=True,
        extend="--set num_iterations=N",
        next_steps="its results: {run}/evaluation.json; its curves: tensorboard --logdir {run}",
    )


def resume_point(kind: RunKind, run_dir: Path, config: MetaLearningConfig) -> Resumed:
    """The checkpoint a resume continues from (None: the run stopped before its first, so it starts at 0). A run
    that has done its iterations and written evaluation.json is finished (``RunFinished``)."""
    saved = resume_checkpoint(run_dir, kind)
    if saved is None:
        return None
    state, path = saved
    done = int(state.get("iteration", 0))
    if done > config.num_iterations:
        raise ConfigError(
            f"num_iterations={config.num_iterations} is fewer than the {done} iterations the run has done; "
            f"--set num_iterations={done} or more"
        )
    if done == config.num_iterations and (run_dir / "evaluation.json").is_file():
        raise kind.finished(run_dir, done)
    return saved


@dataclass
class Launch:
    """A launcher's command line, parsed: a new run's config file, output directory and ``--set`` overrides, or
    the directory of a run to resume."""

    config: Path | None
    output_dir: Path | None
    overrides: list[str]
    resume: Path | None


def launch(
    kind: RunKind,
    config_class: type[C],
    default_config: Path,
    launch: Launch,
    prepare: Callable[[C], Run],
    report: Callable[[C, Path, dict[str, Any]], None],
    user_errors: tuple[type[Exception], ...] = (),
) -> int:
    """Start or resume the run and return the launcher's exit status. ``prepare(config)`` checks and loads what
    the run needs before anything is written (raising ConfigError, or one of ``user_errors`` such as
    DatasetError, with the fix) and returns the run; ``report(config, run_dir, results)`` prints its results."""

    def start(attempt: Attempt) -> None:
        if launch.resume is None:
            config = load_config(config_class, find_config(launch.config, default_config), launch.overrides)
            config.validate()
            directory = attempt.run_dir = new_run_dir(kind.method, config.seed, launch.output_dir, kind)
            resumed: Resumed = None
        else:
            directory = attempt.run_dir = launch.resume
            if launch.config is not None or launch.output_dir is not None:
                raise ConfigError("--resume takes the run's own config and directory; drop --config/--output")
            config = saved_run_config(
                directory, config_class, "check the --resume path", launch.overrides, RESUMABLE_KEYS
            )
            config.validate()
            resumed = resume_point(kind, directory, config)
        run = prepare(config)
        write_config(directory, config)
        attempt.progress = Progress()
        print(f"run directory: {directory}", flush=True)
        report(config, directory, run(directory, attempt.progress, resumed))

    return kind.launch(launch.resume is None, start, user_errors)
