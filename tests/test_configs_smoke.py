"""Every shipped launcher config trains for two iterations with tiny batches and writes a checkpoint."""

from pathlib import Path

import pytest
import torch

from metarl.checkpoint import LATEST
from metarl.config import TrainConfig, load_config
from metarl.trainer import CHECKPOINTS, Trainer

CONFIGS = sorted((Path(__file__).resolve().parent.parent / "launchers" / "configs").glob("*.yaml"))
RL_CONFIGS = [path for path in CONFIGS if "env_id" in path.read_text()]


def test_every_env_family_has_a_config():
    names = {path.stem for path in RL_CONFIGS}
    assert {"2d-navigation", "halfcheetah-vel", "halfcheetah-dir", "ant-vel", "ant-dir", "ant-goal"} <= names


@pytest.mark.slow
@pytest.mark.parametrize("path", RL_CONFIGS, ids=[path.stem for path in RL_CONFIGS])
def test_two_iteration_smoke_run(path, tmp_path):
    tiny = ["num_batches=2", "meta_batch_size=2", "fast_batch_size=2", "horizon=20", "hidden_sizes=[8]"]
    config = load_config(TrainConfig, path, tiny).validate()
    history = Trainer.start(config, tmp_path).run(quiet=True)
    assert len(history) == 2
    assert all(torch.isfinite(torch.tensor(list(h.values()))).all() for h in history)
    state = torch.load(tmp_path / CHECKPOINTS / LATEST, weights_only=True)
    assert state["iteration"] == 2 and state["env_id"] == config.env_id
