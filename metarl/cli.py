"""What every launcher's command line shares: the config arguments and the one-line error exit."""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from metarl.config import ConfigError

USAGE_ERROR = 2


def add_config_arguments(parser: argparse.ArgumentParser, default_config: Path, example: str) -> None:
    """``--config``, ``--set key=value`` (repeatable), ``--output-dir`` and ``--quiet``."""
    parser.add_argument("--config", type=Path, default=None,
                        help=f"YAML config: a path, or a file name in launchers/{default_config.parent.name}/ "
                        f"(default: {default_config.name})")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help=f"override a config key, e.g. {example}")
    parser.add_argument("--output-dir", type=Path, default=None, help="run directory (default: a new one under runs/)")
    parser.add_argument("--quiet", action="store_true", help="no progress lines")


def usage_error(error: Exception) -> int:
    """Report a problem the user can fix as one line on stderr, no traceback; the exit status to return."""
    print(f"error: {error}", file=sys.stderr)
    return USAGE_ERROR


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
        raise ConfigError(f"{flag} {path} is not writable ({error.strerror or type(error).__name__}); "
                          f"choose another {flag}") from None
