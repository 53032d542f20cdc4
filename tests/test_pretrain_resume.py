"""launchers/pretrain.py --resume: a pretraining run continued from its latest checkpoint is the run it would
have been uninterrupted (policy, Adam's state, TensorBoard scalars), and every resume it cannot do is one line."""

import errno
import functools
import os
import shutil

import pytest
import torch
from run_helpers import assert_same_policy

import metarl.pretraining
import metarl.run
import metarl.run_loop

LATEST = "checkpoints/latest.pt"


def load(run_dir):
    return torch.load(run_dir / LATEST, weights_only=True)


def assert_same_adam_state(first, second):
    """Bit-identical optimizer state dicts: the same per-parameter moments and step counts, the same settings."""
    assert first["param_groups"] == second["param_groups"]
    assert first["state"].keys() == second["state"].keys()
    for index, moments in first["state"].items():
        assert moments.keys() == second["state"][index].keys()
        for name, tensor in moments.items():
            assert torch.equal(tensor, second["state"][index][name]), (index, name)


@pytest.fixture(scope="module")
def pretrain_args(tiny_run_args):
    """``pretrain_args(iterations)``: a tiny 2D-navigation pretraining run's arguments (checkpoint every 2)."""
    return lambda iterations: [*tiny_run_args(), "--iterations", iterations, "--quiet"]


@pytest.fixture
def pretrain_here(launcher_here):
    """``pretrain_here(*args)``: launchers/pretrain.py's main() in-process, so that a test can inject faults."""
    return functools.partial(launcher_here, "pretrain.py")


@pytest.fixture(scope="module")
def four_iterations(tmp_path_factory, launcher, pretrain_args):
    """4 uninterrupted iterations, through the launcher as a user runs them."""
    run_dir = tmp_path_factory.mktemp("uninterrupted") / "run"
    result = launcher("pretrain.py", *pretrain_args(4), "--output-dir", run_dir)
    assert result.returncode == 0, result.stderr
    return run_dir


@pytest.fixture(scope="module")
def two_iterations(tmp_path_factory, launcher, pretrain_args):
    """The first 2 of them, a finished run of its own. Do not modify it; copy it."""
    run_dir = tmp_path_factory.mktemp("two") / "run"
    assert launcher("pretrain.py", *pretrain_args(2), "--output-dir", run_dir).returncode == 0
    return run_dir


@pytest.fixture
def two_iterations_copy(two_iterations, tmp_path):
    return shutil.copytree(two_iterations, tmp_path / "run")


def assert_same_as_uninterrupted(run_dir, uninterrupted, run_scalars):
    """Same iteration, env steps, policy, Adam state and settings; each TensorBoard step once, with the same
    value as the uninterrupted run's."""
    state, reference = load(run_dir), load(uninterrupted)
    assert state["iteration"] == reference["iteration"] == 4
    assert state["env_steps"] == reference["env_steps"]
    assert state["pretrain"] == reference["pretrain"]
    assert_same_policy(reference["policy"], state["policy"])
    assert_same_adam_state(reference["optimizer"], state["optimizer"])
    resumed, expected = run_scalars(run_dir), run_scalars(uninterrupted)
    assert set(resumed) == set(expected) == {"pretrain/return", "pretrain/loss", "pretrain/env_steps"}
    for tag, points in resumed.items():
        assert [step for step, _ in points] == [1, 2, 3, 4], tag
        assert points == expected[tag], tag


# What a run may hold instead of a good checkpoint.


def without_checkpoints(run_dir):
    for path in (run_dir / "checkpoints").iterdir():
        path.unlink()


def corrupt(run_dir):
    (run_dir / LATEST).write_bytes(b"\x80\x02garbage" * 100)


def without_optimizer_state(run_dir):
    """As pretraining wrote checkpoints before they held Adam's state."""
    state = load(run_dir)
    del state["optimizer"]
    torch.save(state, run_dir / LATEST)


def test_resume_extends_a_run_bit_for_bit(two_iterations_copy, four_iterations, launcher, run_scalars):
    """2 iterations, then --resume --iterations 4 (a process of its own, as a later session would), give the
    4 uninterrupted iterations: the checkpoint holds Adam's state, and every random stream is (seed, iteration)."""
    result = launcher("pretrain.py", "--resume", two_iterations_copy, "--iterations", 4)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0] == f"run directory: {two_iterations_copy}"
    assert [line.split("|")[0].strip() for line in result.stdout.splitlines()[1:3]] == ["pretrain 3/4", "pretrain 4/4"]
    assert result.stdout.splitlines()[-1].startswith(f"done: 4 iterations, {load(four_iterations)['env_steps']:,} env")
    assert_same_as_uninterrupted(two_iterations_copy, four_iterations, run_scalars)


def test_ctrl_c_points_to_resume_which_finishes_the_run(
    tmp_path, pretrain_here, pretrain_args, four_iterations, run_scalars, monkeypatch
):
    """Ctrl-C, injected as iteration 3 is saved (after it was logged), prints one line pointing to
    `pretrain.py --resume` that counts the 2 iterations the checkpoint holds, not the 3 the process did. The
    resume, without --iterations, runs to the saved total from iteration 2's
    checkpoint; the first process's events of iteration 3 are superseded, so each step shows once."""
    run_dir, real_save = tmp_path / "run", metarl.run_loop.save_checkpoints

    def interrupted_third(run_dir, state, every):
        if state["iteration"] == 3:
            raise KeyboardInterrupt
        real_save(run_dir, state, every)

    monkeypatch.setattr(metarl.run_loop, "save_checkpoints", interrupted_third)
    result = pretrain_here(*pretrain_args(4), "--output-dir", run_dir)
    assert result.returncode == 130
    assert result.stderr.splitlines() == [
        "interrupted after 2 iterations; the run can be resumed from its last complete checkpoint, "
        f"checkpoints/latest.pt; continue with: python launchers/pretrain.py --resume {run_dir}"
    ]
    assert load(run_dir)["iteration"] == 2
    assert [step for step, _ in run_scalars(run_dir)["pretrain/loss"]] == [1, 2, 3]
    monkeypatch.undo()
    assert pretrain_here("--resume", run_dir, "--quiet").returncode == 0
    assert_same_as_uninterrupted(run_dir, four_iterations, run_scalars)


def test_ctrl_c_before_the_first_checkpoint_leaves_nothing(tmp_path, pretrain_here, pretrain_args, monkeypatch):
    def interrupted(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr(metarl.pretraining, "pretrain_iteration", interrupted)
    result = pretrain_here(*pretrain_args(4), "--output-dir", tmp_path / "run")
    assert result.returncode == 130
    assert result.stderr.startswith("interrupted before the first checkpoint, so there is nothing to resume")
    assert "--resume" not in result.stderr and not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    "failing_call, fragments",
    [
        (3, ["last complete checkpoint, checkpoints/latest.pt", "python launchers/pretrain.py --resume"]),
        (1, ["it has no checkpoint to resume from; delete", "and start it again"]),
    ],
    ids=["after-a-checkpoint", "before-the-first"],
)
def test_a_full_disk_is_one_line_pointing_to_what_can_be_done(
    failing_call, fragments, tmp_path, pretrain_here, pretrain_args, four_iterations, run_scalars, monkeypatch
):
    """Exit 1, as train.py: the machine, not the input, is at fault. With a checkpoint the run resumes to the
    uninterrupted run's end; without one there is nothing to resume (pretraining's settings are in checkpoints)."""
    run_dir, real_save, calls = tmp_path / "run", metarl.run.save_checkpoint, []

    def full_disk(path, state):
        calls.append(path.name)
        if len(calls) == failing_call:  # 3: iteration 2's numbered checkpoint, after iteration 1's latest.pt
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real_save(path, state)

    monkeypatch.setattr(metarl.run, "save_checkpoint", full_disk)
    result = pretrain_here(*pretrain_args(4), "--output-dir", run_dir)
    assert result.returncode == 1, result.stderr
    assert len(result.stderr.splitlines()) == 1 and result.stderr.startswith("error: cannot write to")
    for fragment in [os.strerror(errno.ENOSPC), *fragments]:
        assert fragment in result.stderr, fragment
    monkeypatch.undo()
    if failing_call == 3:
        assert pretrain_here("--resume", run_dir, "--quiet").returncode == 0
        assert_same_as_uninterrupted(run_dir, four_iterations, run_scalars)


def test_a_new_run_on_one_stopped_before_its_first_checkpoint(
    two_iterations_copy, pretrain_here, pretrain_args, assert_clean_error
):
    """Unlike RL training's, such a run cannot be resumed: the message says so instead of pointing to --resume."""
    without_checkpoints(two_iterations_copy)
    result = pretrain_here(*pretrain_args(1), "--output-dir", two_iterations_copy)
    assert_clean_error(result, "before its first checkpoint, so there is nothing to resume", "delete it")
    assert "--resume" not in result.stderr


def test_resuming_a_finished_run_does_nothing(two_iterations_copy, pretrain_here, directory_snapshot):
    """Nothing is written (config.yaml included), and one line says how to extend the run or use it."""
    before = directory_snapshot(two_iterations_copy)
    result = pretrain_here("--resume", two_iterations_copy, "--quiet")
    assert result.returncode == 0, result.stderr
    [line] = result.stdout.splitlines()
    assert line.startswith(f"{two_iterations_copy} is finished (2 of 2 iterations): nothing to train"), line
    assert "--iterations N (N > 2)" in line and f"--pretrained {two_iterations_copy}/checkpoints/latest.pt" in line
    assert directory_snapshot(two_iterations_copy) == before


def test_a_new_run_in_a_pretraining_run_points_to_resume(two_iterations, pretrain_here, assert_clean_error):
    result = pretrain_here("--iterations", 1, "--output-dir", two_iterations)
    assert_clean_error(result, "already holds a run", f"--resume {two_iterations}")


# --- resumes that cannot go ahead: one line, exit 2, the run unchanged -----------------------------------------


@pytest.mark.parametrize(
    "damage, args, fragments",
    [
        (without_checkpoints, [], ["has no checkpoint to resume from", "delete it and start a new run"]),
        (corrupt, [], ["latest.pt", "corrupt", "iter_000002.pt"]),
        (
            without_optimizer_state,
            [],
            ["cannot be resumed bit for bit: it predates optimizer state in checkpoints; start a new run"],
        ),
        (None, ["--lr", "0.01"], ["drop --lr"]),
        (None, ["--episodes-per-task", "3", "--config", "2d-navigation"], ["drop --config, --episodes-per-task"]),
        (None, ["--output-dir", "elsewhere"], ["drop --output"]),
        (None, ["--iterations", "1"], ["--iterations 1 is fewer than the 2 iterations the run has done"]),
        (None, ["--iterations", "0"], ["--iterations must be positive, got 0"]),
        (None, ["--set", "inner_lr=0.2"], ["cannot change inner_lr"]),
        (
            None,
            ["--set", "num_iterations=10"],
            ["cannot change num_iterations", "only checkpoint_every, device, sampler"],
        ),
    ],
    ids=[
        "no-checkpoint",
        "corrupt",
        "no-optimizer-state",
        "lr",
        "config-and-episodes",
        "output-dir",
        "fewer-iterations",
        "zero-iterations",
        "forbidden-key",
        "num-batches-is-not-its-length",
    ],
)
def test_a_resume_that_cannot_go_ahead(
    damage, args, fragments, two_iterations_copy, pretrain_here, directory_snapshot, assert_clean_error
):
    if damage is not None:
        damage(two_iterations_copy)
    before = directory_snapshot(two_iterations_copy)
    assert_clean_error(pretrain_here("--resume", two_iterations_copy, *args), *fragments)
    assert directory_snapshot(two_iterations_copy) == before


def test_resume_of_a_directory_that_is_not_a_run(tmp_path, launcher, assert_clean_error):
    """Through the launcher as a user runs it: exit 2 and one line, like train.py's."""
    assert_clean_error(launcher("pretrain.py", "--resume", tmp_path), "not a run directory", "--resume path")


def test_resume_of_an_rl_training_run_names_its_launcher(
    tiny_run, pretrain_here, directory_snapshot, assert_clean_error
):
    run_dir = tiny_run[0]
    before = directory_snapshot(run_dir)
    result = pretrain_here("--resume", run_dir)
    assert_clean_error(result, "holds a MAML-training run", f"python launchers/train.py --resume {run_dir}")
    assert directory_snapshot(run_dir) == before


def test_train_py_refuses_to_resume_a_pretraining_run(two_iterations, launcher_here, assert_clean_error):
    result = launcher_here("train.py", "--resume", two_iterations)
    assert_clean_error(result, "holds a pretraining run", f"python launchers/pretrain.py --resume {two_iterations}")
