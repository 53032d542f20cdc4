"""What every launcher's command line shares: the config arguments and the one-line error exit."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

USAGE_ERROR = 2


def add_config_arguments(parser: argparse.ArgumentParser, default_config: Path, example: str) -> None:
    """``--config``, ``--set key=value`` (repeatable), ``--output-dir`` and ``--quiet``."""
    parser.add_argument("--config", type=Path, default=None, help=f"YAML config (default: {default_config.name})")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help=f"override a config key, e.g. {example}")
    parser.add_argument("--output-dir", type=Path, default=None, help="run directory (default: a new one under runs/)")
    parser.add_argument("--quiet", action="store_true", help="no progress lines")


def usage_error(error: Exception) -> int:
    """Report a problem the user can fix as one line on stderr, no traceback; the exit status to return."""
    print(f"error: {error}", file=sys.stderr)
    return USAGE_ERROR
