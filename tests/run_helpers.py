"""Helpers for tests that load launchers in-process and compare training runs' checkpoints."""

import functools
import importlib.util
from pathlib import Path

import torch

LAUNCHERS = Path(__file__).resolve().parent.parent / "launchers"


@functools.cache
def launcher_module(script):
    """``launchers/SCRIPT`` (e.g. "train.py") as a module, loaded once in-process by path (launchers/ is not a
    package), so that a test can call its main() or parse_args() and inject faults into metarl's modules."""
    spec = importlib.util.spec_from_file_location(f"launcher_{Path(script).stem}", LAUNCHERS / script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def launcher_main(script):
    """``launchers/SCRIPT``'s main(), loaded in-process (see ``launcher_module``)."""
    return launcher_module(script).main


def latest_policy(run_dir):
    """The policy state of a run directory's latest checkpoint."""
    return torch.load(run_dir / "checkpoints" / "latest.pt", weights_only=True)["policy"]


def assert_same_policy(first, second):
    """Bit-identical policy states: same parameter names, equal tensors."""
    assert first.keys() == second.keys()
    for name in first:
        assert torch.equal(first[name], second[name]), name


def flat(params):
    """A parameter dict as one vector (for finite differences over every parameter)."""
    return torch.cat([p.reshape(-1) for p in params.values()])


def unflat(vector, like):
    chunks = torch.split(vector, [p.numel() for p in like.values()])
    return {name: chunk.view_as(p) for (name, p), chunk in zip(like.items(), chunks, strict=True)}


def central_differences(function, point, eps=1e-6):
    """The gradient of a scalar ``function`` of a vector at ``point``, by central differences."""
    gradient = torch.zeros_like(point)
    for i in range(point.numel()):
        step = torch.zeros_like(point)
        step[i] = eps
        gradient[i] = (function(point + step) - function(point - step)) / (2 * eps)
    return gradient
