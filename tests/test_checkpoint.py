"""Checkpoints: atomic writes, weights_only loading, and a clear error for a damaged file."""

import pytest
import torch

import metarl.run
import metarl.trainer
from metarl.checkpoint import CheckpointError, atomic_write_bytes, load_checkpoint
from metarl.config import TrainConfig, from_dict


class Interrupted(Exception):
    pass


def test_failed_write_keeps_previous_file_and_leaves_no_temporary(tmp_path):
    """A write that raises half-way leaves the old bytes in place and no temporary file behind."""
    path = tmp_path / "latest.pt"
    path.write_bytes(b"previous checkpoint")

    def write_then_fail(file):
        file.write(b"half of a new checkp")
        file.flush()
        raise Interrupted

    with pytest.raises(Interrupted):
        atomic_write_bytes(path, write_then_fail)

    assert path.read_bytes() == b"previous checkpoint"
    assert [p.name for p in tmp_path.iterdir()] == ["latest.pt"]


def test_successful_write_replaces_file_and_leaves_no_temporary(tmp_path):
    """A completed write replaces the file's contents and cleans up after itself."""
    path = tmp_path / "sub" / "config.yaml"
    atomic_write_bytes(path, lambda file: file.write(b"first"))
    atomic_write_bytes(path, lambda file: file.write(b"second"))
    assert path.read_bytes() == b"second"
    assert [p.name for p in path.parent.iterdir()] == ["config.yaml"]


def test_run_checkpoints_load_with_weights_only(tiny_run):
    """latest.pt and the numbered checkpoints are plain tensors and primitives: torch.load(weights_only=True)."""
    run_dir, _ = tiny_run
    checkpoints = run_dir / "checkpoints"
    assert sorted(p.name for p in checkpoints.iterdir()) == ["iter_000002.pt", "latest.pt"]
    state = torch.load(checkpoints / "latest.pt", weights_only=True)
    assert state["iteration"] == 3
    assert state["env_steps"] > 0
    assert state["config"]["hidden_sizes"] == [8]
    assert set(state["policy"]) == {"mean.0.weight", "mean.0.bias", "mean.2.weight", "mean.2.bias", "log_std"}
    assert torch.load(checkpoints / "iter_000002.pt", weights_only=True)["iteration"] == 2


def test_corrupt_checkpoint_raises_checkpoint_error(tmp_path):
    """A damaged checkpoint raises CheckpointError (not a raw unpickling error); a missing one too."""
    path = tmp_path / "latest.pt"
    path.write_bytes(b"\x00garbage\xff" * 10)
    with pytest.raises(CheckpointError, match="corrupt"):
        load_checkpoint(path)
    with pytest.raises(CheckpointError, match="no checkpoint"):
        load_checkpoint(tmp_path / "missing.pt")


@pytest.mark.parametrize("killed_at_write", [1, 2])
def test_a_kill_between_checkpoint_writes_loses_no_checkpoint(killed_at_write, tmp_path, monkeypatch):
    """Kill the run at the first or second file write of the iteration that owes a numbered checkpoint;
    resuming then ends with every numbered checkpoint of an uninterrupted run, with identical contents."""
    tiny = dict(
        meta_batch_size=2, episodes_per_task=2, horizon=20, hidden_sizes=[8], num_iterations=2, checkpoint_every=2
    )
    uninterrupted = tmp_path / "uninterrupted"
    metarl.trainer.Trainer.start(from_dict(TrainConfig, tiny), uninterrupted).run(quiet=True)

    run_dir, real_save, writes = tmp_path / "killed", metarl.run.save_checkpoint, []

    def save_then_maybe_die(path, state):
        if state["iteration"] == 2:
            writes.append(path.name)
            if len(writes) == killed_at_write:
                raise Interrupted  # the process dies before this write starts
        real_save(path, state)

    monkeypatch.setattr(metarl.run, "save_checkpoint", save_then_maybe_die)
    with pytest.raises(Interrupted):
        metarl.trainer.Trainer.start(from_dict(TrainConfig, tiny), run_dir).run(quiet=True)
    monkeypatch.setattr(metarl.run, "save_checkpoint", real_save)
    metarl.trainer.Trainer.resume(run_dir, []).run(quiet=True)

    for name in ["iter_000002.pt", "latest.pt"]:
        ours = torch.load(run_dir / "checkpoints" / name, weights_only=True)
        reference = torch.load(uninterrupted / "checkpoints" / name, weights_only=True)
        assert ours["iteration"] == reference["iteration"] == 2
        for key, value in reference["policy"].items():
            assert torch.equal(ours["policy"][key], value), (name, key)
