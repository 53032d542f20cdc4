"""A run's numbers depend on torch's thread count (the order of float sums), so the config fixes it: the same
seed and ``num_threads`` give the same numbers whatever the machine's cores, and the README's console numbers
are what its command prints."""

import re
import subprocess
import sys

import pytest
import torch
import yaml
from conftest import LAUNCHERS, REPO_ROOT, TINY_RUN_OVERRIDES, run_train, subprocess_env

from metarl.config import ConfigError, TrainConfig
from metarl.experiment import build_experiment

PROGRESS = re.compile(r"iter +(\d+)/\d+ \| return +(\S+) -> +(\S+) \| kl (\S+) \|")


def test_a_run_sets_torch_threads_from_its_config():
    previous = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        config = TrainConfig(meta_batch_size=2, episodes_per_task=2, horizon=5, hidden_sizes=[4], num_threads=1)
        build_experiment(config).close()
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(previous)


def test_num_threads_must_be_positive():
    with pytest.raises(ConfigError, match=r"num_threads must be positive.*--set num_threads="):
        TrainConfig(num_threads=0).validate()


def test_the_run_directory_records_its_thread_count(tmp_path):
    run_dir = tmp_path / "run"
    result = run_train(*[arg for o in TINY_RUN_OVERRIDES for arg in ("--set", o)], "--output", run_dir, "--quiet")
    assert result.returncode == 0, result.stderr
    assert yaml.safe_load((run_dir / "config.yaml").read_text())["num_threads"] == 1


def readme_progress_lines():
    """The iterations, returns and KL of the console lines the README shows for its default run."""
    shown = PROGRESS.findall((REPO_ROOT / "README.md").read_text())
    assert shown, "README shows no progress line"
    return {iteration: list(numbers) for iteration, *numbers in shown}


@pytest.mark.slow
def test_the_default_run_prints_the_readmes_numbers_on_a_machine_with_more_threads(tmp_path):
    """The README's command with torch defaulting to two threads (OMP_NUM_THREADS=2, as on a 2-core machine
    without the variable) prints the README's numbers to the digits shown; two compute threads would change
    iteration 2's KL."""
    shown = readme_progress_lines()
    command = [sys.executable, str(LAUNCHERS / "train.py"), "--set", f"num_iterations={max(map(int, shown))}"]
    command += ["--output", str(tmp_path / "run")]
    env = {**subprocess_env(), "OMP_NUM_THREADS": "2"}
    result = subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr
    printed = {iteration: list(numbers) for iteration, *numbers in PROGRESS.findall(result.stdout)}
    assert {iteration: printed.get(iteration) for iteration in shown} == shown
