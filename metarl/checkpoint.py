"""Checkpoints: plain dicts of tensors and primitives, written atomically, loadable with weights_only=True."""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path
from typing import Any

import torch

LATEST = "latest.pt"
# The hidden name atomic_write_bytes gives its temporary file: "." + target name + "." + mkstemp's 8 characters,
# for the files a run directory gets atomically. Only these are cleaned up: a user's own ``.notes.abcdefgh.tmp``
# or ``.best.pt.keepme00.tmp`` beside a run has the same shape and is kept.
_TEMPORARY_NAME = re.compile(r"^\.(config\.yaml|evaluation\.json|latest\.pt|iter_\d{6}\.pt)\.[a-z0-9_]{8}\.tmp$")


class CheckpointError(RuntimeError):
    """A checkpoint that is missing or unreadable; the message says what to do instead."""


def atomic_write_bytes(path: Path, write: Any) -> None:
    """Call ``write(file)`` on a temporary file beside ``path``, then rename it over ``path``.

    A crash mid-write leaves at worst a stray temporary file, never a half-written ``path``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.chmod(temporary, 0o666 & ~_umask())  # mkstemp makes 0600; a run dir should be readable like any file
        with os.fdopen(handle, "wb") as file:
            write(file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def is_stale_temporary(path: Path) -> bool:
    """Whether ``path`` is a temporary file that an interrupted ``atomic_write_bytes`` of a run's file left behind."""
    return path.is_file() and _TEMPORARY_NAME.match(path.name) is not None


def remove_stale_temporaries(directory: Path) -> None:
    """Delete what interrupted atomic writes left in ``directory``: never a complete file, only clutter that
    would otherwise pile up with every kill. Call it only when no other process writes there."""
    if Path(directory).is_dir():
        for path in Path(directory).iterdir():
            if is_stale_temporary(path):
                path.unlink(missing_ok=True)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, lambda file: file.write(text.encode()))


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    atomic_write_bytes(path, lambda file: torch.save(state, file))


def load_checkpoint(
    path: Path, map_location: str | torch.device = "cpu", made_by: str = "launchers/train.py"
) -> dict[str, Any]:
    """A checkpoint's contents; ``made_by`` names the launcher that writes such checkpoints, for when it is missing."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path}; check the path or train first with {made_by}")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as error:  # torch raises many types for a damaged file
        others = sorted(p.name for p in path.parent.glob("*.pt") if p != path)
        hint = f"; other checkpoints here: {', '.join(others)}" if others else ""
        raise CheckpointError(f"checkpoint {path} is corrupt or unreadable ({type(error).__name__}){hint}") from None
