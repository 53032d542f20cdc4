"""Whole runs through the launcher: determinism, bit-identical resume, and the progress line."""

import re
import shlex
import shutil

import pytest
import torch
from run_helpers import assert_same_policy, latest_policy, launcher_module
from torch.utils.tensorboard import SummaryWriter

from metarl.experiment_run import resumed_config
from metarl.logger import read_returns


@pytest.fixture(scope="module")
def four_iteration_run(tmp_path_factory, train, tiny_run_args):
    """A tiny run of 4 uninterrupted iterations."""
    run_dir = tmp_path_factory.mktemp("uninterrupted") / "run"
    result = train(*tiny_run_args(num_iterations=4), "--output-dir", run_dir)
    assert result.returncode == 0, result.stderr
    return run_dir


def test_same_seed_same_run(four_iteration_run, train, tiny_run_args, tmp_path, run_scalars):
    """Two runs with one seed give identical returns, statistics and parameters."""
    again = tmp_path / "again"
    result = train(*tiny_run_args(num_iterations=4), "--output-dir", again)
    assert result.returncode == 0, result.stderr
    first, second = run_scalars(four_iteration_run), run_scalars(again)
    for tag in [
        "returns/step_0",
        "returns/step_1",
        "meta/surrogate_before",
        "meta/surrogate_after",
        "meta/kl",
        "perf/env_steps",
    ]:
        assert first[tag] == second[tag], tag
    assert_same_policy(latest_policy(four_iteration_run), latest_policy(again))


def test_other_seed_other_run(four_iteration_run, train, tiny_run_args, tmp_path, run_scalars):
    """A different seed gives a different run (the seed is really used)."""
    other = tmp_path / "other"
    assert train(*tiny_run_args(num_iterations=4, seed=2), "--output-dir", other).returncode == 0
    assert run_scalars(four_iteration_run)["returns/step_0"] != run_scalars(other)["returns/step_0"]


def test_resume_is_bit_identical(four_iteration_run, train, tiny_run_args, tmp_path, run_scalars):
    """2 iterations, then --resume with num_iterations=4, gives the same parameters and returns as 4 in one go."""
    resumed = tmp_path / "resumed"
    assert train(*tiny_run_args(num_iterations=2), "--output-dir", resumed).returncode == 0
    assert torch.load(resumed / "checkpoints" / "latest.pt", weights_only=True)["iteration"] == 2
    result = train("--resume", resumed, "--set", "num_iterations=4")
    assert result.returncode == 0, result.stderr

    state = torch.load(resumed / "checkpoints" / "latest.pt", weights_only=True)
    assert state["iteration"] == 4
    uninterrupted = torch.load(four_iteration_run / "checkpoints" / "latest.pt", weights_only=True)
    assert state["env_steps"] == uninterrupted["env_steps"]
    assert_same_policy(uninterrupted["policy"], state["policy"])
    # the event files of the two sessions together hold each iteration once, equal to the uninterrupted run
    for tag in ["returns/step_0", "returns/step_1", "meta/kl"]:
        assert run_scalars(resumed)[tag] == run_scalars(four_iteration_run)[tag], tag


def test_a_run_of_the_older_event_layout_resumes_in_it(four_iteration_run, train, tiny_run_args, tmp_path, run_scalars):
    """A run from before events moved to train/ (iteration i at step i − 1, in the run directory itself) keeps
    that layout when resumed, so its curves go on without a seam; readers give the iterations a new run's give."""
    old = tmp_path / "old"
    assert train(*tiny_run_args(num_iterations=2), "--output-dir", old).returncode == 0
    logged = run_scalars(old)
    shutil.rmtree(old / "train")
    with SummaryWriter(str(old)) as writer:  # as the older trainer wrote them
        for tag, points in logged.items():
            for step, value in points:
                writer.add_scalar(tag, value, step - 1)
    result = train("--resume", old, "--set", "num_iterations=4")
    assert result.returncode == 0, result.stderr
    assert not (old / "train").exists()
    resumed, uninterrupted = run_scalars(old), run_scalars(four_iteration_run)
    for tag in ["returns/step_0", "returns/step_1", "meta/kl"]:
        assert resumed[tag] == [(step - 1, value) for step, value in uninterrupted[tag]], tag
    assert read_returns(old) == read_returns(four_iteration_run)


PROGRESS = re.compile(
    r"^iter +(?P<iteration>\d+)/(?P<total>\d+) \| return +(?P<before>-?[\d.]+) -> +(?P<after>-?[\d.]+) \| "
    r"kl (?P<kl>[\d.]+) \| +(?P<speed>[\d,]+) env steps/s \| ETA (?:\d+h)?\d+m\d\ds$"
)


def test_progress_line_per_iteration(tiny_run, run_scalars):
    """stdout has one line per iteration: iteration/total, return before -> after, KL, env steps/s and ETA."""
    run_dir, stdout = tiny_run
    matches = [PROGRESS.match(line) for line in stdout.splitlines() if line.startswith("iter ")]
    assert all(matches), stdout
    assert [int(m["iteration"]) for m in matches] == [1, 2, 3]
    assert {int(m["total"]) for m in matches} == {3}
    logged = run_scalars(run_dir)
    for match, (_, before), (_, after), (_, kl) in zip(
        matches, logged["returns/step_0"], logged["returns/step_1"], logged["meta/kl"], strict=True
    ):
        assert float(match["before"]) == pytest.approx(before, abs=0.006)
        assert float(match["after"]) == pytest.approx(after, abs=0.006)
        assert float(match["kl"]) == pytest.approx(kl, abs=6e-5)
        assert int(match["speed"].replace(",", "")) > 0
    assert matches[-1].group(0).endswith("ETA 0m00s")


def test_the_last_line_names_the_commands_that_come_next(tiny_run):
    """As pretraining's does: evaluate this very run (the README's next block), and its TensorBoard."""
    run_dir, stdout = tiny_run
    last = stdout.splitlines()[-1]
    assert last.startswith("done: 3 iterations") and f"tensorboard --logdir {run_dir}" in last, last
    evaluate = re.search(r"python launchers/evaluate\.py [^;]+", last)
    assert evaluate is not None, last
    command = shlex.split(evaluate.group(0))
    assert launcher_module("evaluate.py").parse_args(command[2:]).run == run_dir


def test_resume_override_of_one_section_key_keeps_the_others(tiny_run_copy):
    """--resume --set sampler.num_workers=2 changes that key only; the run's other sampler settings stay."""
    config_file = tiny_run_copy / "config.yaml"
    config_file.write_text(config_file.read_text().replace("ray_address: null", "ray_address: auto"))

    config = resumed_config(tiny_run_copy, ["sampler.num_workers=2"])

    assert config.sampler.num_workers == 2
    assert config.sampler.ray_address == "auto"
    assert config.sampler.backend == "vectorized"
