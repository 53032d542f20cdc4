"""Helpers for tests that compare training runs' checkpoints."""

import torch


def latest_policy(run_dir):
    """The policy state of a run directory's latest checkpoint."""
    return torch.load(run_dir / "checkpoints" / "latest.pt", weights_only=True)["policy"]


def assert_same_policy(first, second):
    """Bit-identical policy states: same parameter names, equal tensors."""
    assert first.keys() == second.keys()
    for name in first:
        assert torch.equal(first[name], second[name]), name
