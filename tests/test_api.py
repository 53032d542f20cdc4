"""metarl.api: configure, train with a callback, resume, load and adapt, as a Python user would."""

import re

import numpy as np
import pytest
import torch
from conftest import REPO_ROOT
from run_helpers import assert_same_policy, latest_policy

from metarl import api
from metarl.checkpoint import CheckpointError
from metarl.config import ConfigError

TINY = {"num_iterations": 3, "meta_batch_size": 2, "episodes_per_task": 2, "horizon": 10, "hidden_sizes": [8]}


def test_make_config_takes_a_shipped_config_by_name_with_settings_and_sections_on_top():
    config = api.make_config("halfcheetah-dir", num_iterations=7, trpo={"cg_iters": 3})
    assert config.env_id == "metarl/HalfCheetahDir-v0" and config.num_iterations == 7
    assert config.trpo.cg_iters == 3 and config.trpo.max_kl == 0.02  # the section is merged, not replaced
    with pytest.raises(ConfigError, match="inner_lrr.*did you mean 'inner_lr'"):
        api.make_config(inner_lrr=0.1)
    with pytest.raises(ConfigError, match="inner_lr must be positive"):
        api.make_config(inner_lr=-1.0)


def test_a_callback_sees_every_iteration_and_can_stop_a_run_that_resume_finishes_bit_for_bit(tmp_path):
    config = api.make_config(**TINY)
    seen = []

    def stop_after_two(iteration, scalars):
        seen.append((iteration, sorted(scalars)))
        return iteration < 2

    stopped = api.train(config, tmp_path / "stopped", callback=stop_after_two)
    assert [iteration for iteration, _ in seen] == [1, 2]
    assert "returns/step_1" in seen[0][1] and "meta/kl" in seen[0][1]
    assert torch.load(stopped / "checkpoints" / "latest.pt", weights_only=True)["iteration"] == 2
    api.resume(stopped)
    whole = api.train(config, tmp_path / "whole")
    assert_same_policy(latest_policy(stopped), latest_policy(whole))


def test_a_loaded_policy_adapts_to_a_new_task_and_acts(tmp_path):
    run_dir = api.train(api.make_config(**TINY), tmp_path / "run")
    with api.load(run_dir) as policy:
        task = policy.sample_tasks(1, seed=3)[0]
        assert task == policy.sample_tasks(1, seed=3)[0] and task != policy.sample_tasks(1, seed=4)[0]
        adapted = policy.adapt(task, num_steps=2)
        assert len(adapted.returns) == 3 and all(np.isfinite(adapted.returns))
        assert adapted.returns == policy.adapt(task, num_steps=2).returns  # seeded: the same episodes
        theta = dict(policy.policy.named_parameters())
        assert adapted.params.keys() == theta.keys()
        assert any(not torch.equal(adapted.params[name], theta[name]) for name in theta)
        action = policy.act([0.1, -0.2], adapted.params)
        assert action.shape == (2,) and not np.array_equal(action, policy.act([0.1, -0.2]))


def test_loading_what_is_not_a_training_run_says_so(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        api.load(tmp_path / "nothing")
    run_dir = api.train(api.make_config(**{**TINY, "num_iterations": 1}), tmp_path / "run")
    (run_dir / "checkpoints" / "latest.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError):
        api.load(run_dir)


def test_the_documented_example_runs_as_it_stands(tmp_path, monkeypatch, capsys):
    example = re.search(r"```python\n(.*?)```", (REPO_ROOT / "docs" / "API.md").read_text(), re.S).group(1)
    monkeypatch.chdir(tmp_path)
    exec(compile(example, "docs/API.md", "exec"), {})
    printed = capsys.readouterr().out
    assert "iteration 1:" in printed and "iteration 2:" in printed and "iteration 3:" not in printed
    assert (tmp_path / "runs" / "api-example" / "checkpoints" / "latest.pt").is_file()
