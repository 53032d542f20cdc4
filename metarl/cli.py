"""What every launcher's command line shares: the config arguments and the one-line error exit."""

from __future__ import annotations

import argparse
import errno
import signal
import sys
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import NoReturn

from metarl.config import ConfigError

USAGE_ERROR = 2
ENVIRONMENT_FAULT = 1
INTERRUPTED = 130
"""128 + SIGINT: the status a shell reports for Ctrl-C."""
TERMINATED = 143
"""128 + SIGTERM: the status a shell (or a scheduler) reports for ``kill``."""
# OSErrors that say the machine, not the program, is at fault: the user frees space or fixes permissions
# and resumes; a traceback would only bury that.
DISK_FAULTS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM})


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where Ctrl-C raises KeyboardInterrupt: a scheduler's or ``kill``'s stop then ends a
    launcher the way Ctrl-C does, with one line on what was kept and what to run next."""


def stop_on_sigterm() -> None:
    """Turn SIGTERM into ``Terminated`` in this process; launchers call it before anything else."""
    signal.signal(signal.SIGTERM, _raise_terminated)


def _raise_terminated(signum: int, frame: object) -> NoReturn:
    raise Terminated


@contextmanager
def launcher_imports(module_name: str) -> Iterator[None]:
    """Around a launcher's imports (torch and MuJoCo take seconds): Ctrl-C or SIGTERM then is one line, not an
    import traceback. SIGTERM is turned into ``Terminated`` only where the launcher runs as ``__main__``, not in
    spawned sampler workers, which import it as ``__mp_main__`` and are stopped with SIGTERM."""
    if module_name == "__main__":
        stop_on_sigterm()
    try:
        yield
    except KeyboardInterrupt as stop:
        print(
            "error: interrupted while starting, before anything was written; run the same command again",
            file=sys.stderr,
        )
        sys.exit(interrupted_status(stop))


def interrupted_status(interruption: KeyboardInterrupt) -> int:
    """The exit status of a launcher stopped by Ctrl-C (130) or SIGTERM (143)."""
    return TERMINATED if isinstance(interruption, Terminated) else INTERRUPTED


class OneLineErrorParser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are the launchers' one ``error:`` line (exit 2), not usage plus a message."""

    def error(self, message: str) -> NoReturn:
        usage_error(f"{message}; see --help")
        sys.exit(USAGE_ERROR)


def output_dir_argument(text: str) -> Path:
    """``--output``'s value; an empty one would silently mean the current directory."""
    if not text.strip():
        raise argparse.ArgumentTypeError("must not be empty")
    return Path(text)


def add_output_argument(parser: argparse.ArgumentParser, help: str) -> None:
    """``--output DIR``: where a launcher writes, spelled as in report.py and plot_training.py (``args.output_dir``).
    ``--output-dir``, its name before, still works: a deprecated alias that ``--help`` no longer shows."""
    parser.add_argument("--output", dest="output_dir", type=output_dir_argument, default=None, metavar="DIR", help=help)
    parser.add_argument("--output-dir", dest="output_dir", type=output_dir_argument, help=argparse.SUPPRESS)


def add_run_argument(parser: argparse.ArgumentParser, help: str) -> None:
    """A training run directory as the first positional argument, as report.py and plot_training.py take theirs.
    ``--run DIR``, its form before, still works: a deprecated alias that ``--help`` no longer shows."""
    parser.add_argument("run", type=Path, nargs="?", default=None, metavar="RUN_DIR", help=help)
    parser.add_argument("--run", dest="run_option", type=Path, default=None, help=argparse.SUPPRESS)


def parsed_run(parser: argparse.ArgumentParser, args: argparse.Namespace) -> Path:
    """The run directory ``add_run_argument`` parsed, given once (positionally or as ``--run``)."""
    if args.run is not None and args.run_option is not None:
        parser.error("the run directory was given twice (RUN_DIR and --run); give it once, as RUN_DIR")
    run = args.run if args.run is not None else args.run_option
    if run is None:
        parser.error("the run directory is missing: give it as the first argument, RUN_DIR")
    return run


def add_config_arguments(parser: argparse.ArgumentParser, default_config: Path, example: str) -> None:
    """``--config``, ``--set key=value`` (repeatable), ``--output`` and ``--quiet``."""
    parser.add_argument(
        "--config",
        type=Path,
        default=None,
        help=f"YAML config: a path, or a file name in launchers/{default_config.parent.name}/ "
        f"(default: {default_config.name})",
    )
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help=f"override a config key, e.g. {example}",
    )
    add_output_argument(parser, "run directory (default: a new one under runs/)")
    parser.add_argument("--quiet", action="store_true", help="no progress lines")


def add_resume_argument(parser: argparse.ArgumentParser, resumable: str) -> None:
    """``--resume RUN_DIR`` of a launcher whose runs continue from their latest checkpoint; ``resumable``: the
    keys ``--set`` may then change."""
    parser.add_argument(
        "--resume",
        type=Path,
        default=None,
        metavar="RUN_DIR",
        help=f"continue the run in RUN_DIR from its latest checkpoint with its saved config (--set may change only "
        f"{resumable})",
    )


def usage_error(error: Exception | str) -> int:
    """Report a problem the user can fix as one line on stderr, no traceback; the exit status to return."""
    print(f"error: {error}", file=sys.stderr)
    return USAGE_ERROR


def is_disk_fault(error: BaseException) -> bool:
    return isinstance(error, OSError) and error.errno in DISK_FAULTS


def environment_fault(message: str) -> int:
    """Report a fault of the machine (full disk, read-only file system) like a usage error, but with exit 1:
    the same input will work once the machine is fixed."""
    usage_error(message)
    return ENVIRONMENT_FAULT


def require_writable_directory(path: Path, flag: str) -> None:
    """Refuse an output directory that cannot be written before the work whose results would go there,
    creating nothing. Its location is the user's choice, so this is a usage error (exit 2), not a fault."""
    path = Path(path)
    try:
        existing = path
        while not existing.exists() and existing != existing.parent:
            existing = existing.parent
        if not existing.is_dir():
            raise ConfigError(f"{flag} {path} cannot be created: {existing} is a file; choose another {flag}")
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as error:
        raise ConfigError(
            f"{flag} {path} is not writable ({error.strerror or type(error).__name__}); choose another {flag}"
        ) from None


def require_output_file(path: Path, flag: str, suffixes: Sequence[str]) -> None:
    """Refuse an output file that cannot be written (a directory, a format not in ``suffixes``, the first of
    which the message suggests; an unwritable or uncreatable place) before any work, creating nothing."""
    path = Path(path)
    if path.is_dir():
        raise ConfigError(f"{flag} {path} is a directory; give a file name, e.g. {path / ('out' + suffixes[0])}")
    if path.suffix.lower() not in suffixes:
        known = ", ".join(suffixes)
        raise ConfigError(f"{flag} {path}: unknown file type {path.suffix or '(none)'!r}; end it with one of {known}")
    require_writable_directory(path.parent, flag)
