"""launchers/evaluate.py at its edges: Ctrl-C and SIGTERM, argparse's errors, sizes that cannot fit, and
checkpoints that are damaged or of the wrong kind. Each ends in one line on stderr, and no evaluation output
is left half-written."""

import functools

import pytest
import torch
import yaml

import metarl.config
import metarl.evaluation_run
import metarl.memory
from metarl.cli import Terminated

TINY = ["--num-tasks", "1", "--num-steps", "1", "--episodes-per-task", "2", "--quiet"]


@pytest.fixture
def evaluate(launcher_here):
    """``evaluate(*args)``: launchers/evaluate.py's main() in-process."""
    return functools.partial(launcher_here, "evaluate.py")


def edit_checkpoint(path, **changes):
    state = torch.load(path, weights_only=True)
    state.update(changes)
    torch.save(state, path)


@pytest.mark.parametrize("stop, status", [(KeyboardInterrupt, 130), (Terminated, 143)], ids=["ctrl-c", "sigterm"])
def test_a_stop_during_the_evaluation_is_one_line_and_writes_nothing(
    evaluate, tiny_run, tmp_path, monkeypatch, assert_clean_error, stop, status
):
    def stopped(*args, **kwargs):
        raise stop

    monkeypatch.setattr(metarl.evaluation_run, "evaluate_policy", stopped)
    result = evaluate("--run", tiny_run[0], *TINY, "--output-dir", tmp_path / "out")
    assert_clean_error(result, "before the evaluation was complete", "run the same command again", status=status)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("existing", [False, True], ids=["new-directory", "existing-directory"])
def test_a_stop_while_writing_removes_what_it_wrote(
    evaluate, tiny_run, tmp_path, monkeypatch, assert_clean_error, existing
):
    """A new output directory goes entirely; in an existing one only the files this evaluation added go."""
    output_dir = tmp_path / "out"
    if existing:
        output_dir.mkdir()
        (output_dir / "notes.txt").write_text("keep me")
    original = metarl.evaluation_run.write_outputs

    def write_then_stop(directory, results, reference):
        original(directory, results, reference)
        (directory / "evaluation.json").unlink()  # as if stopped just before the last, atomic write
        raise KeyboardInterrupt

    monkeypatch.setattr(metarl.evaluation_run, "write_outputs", write_then_stop)
    result = evaluate("--run", tiny_run[0], *TINY, "--output-dir", output_dir)
    assert_clean_error(result, "interrupted before the evaluation was complete", status=130)
    if existing:
        assert [p.name for p in output_dir.iterdir()] == ["notes.txt"]
    else:
        assert not output_dir.exists()


@pytest.mark.parametrize(
    "args, fragments",
    [
        (["--bogus"], ["unrecognized arguments: --bogus", "--help"]),
        (["--num-tasks", "many"], ["--num-tasks", "invalid int value: 'many'"]),
        ([], ["the run directory is missing", "RUN_DIR"]),
        (["--run", "elsewhere"], ["the run directory was given twice", "give it once, as RUN_DIR"]),
    ],
    ids=["unknown-flag", "bad-value", "missing-run", "run-given-twice"],
)
def test_argument_errors_are_one_line(evaluate, tiny_run, assert_clean_error, args, fragments):
    run = [] if args == [] else [str(tiny_run[0])]
    line = assert_clean_error(evaluate(*run, *args), *fragments)
    assert "usage:" not in line


@pytest.mark.parametrize(
    "flag, fix",
    [
        ("--num-tasks", "lower --num-tasks, --episodes-per-task or --num-steps"),
        ("--episodes-per-task", "lower --num-tasks"),
    ],
)
def test_sizes_that_cannot_fit_are_refused_with_the_evaluation_s_estimate(
    evaluate, tiny_run, tmp_path, monkeypatch, assert_clean_error, flag, fix
):
    """The estimate is the evaluation's own (its flags), refused before a task is drawn."""
    monkeypatch.setattr(metarl.memory, "available_memory", lambda device: 16 * 2**30)
    args = ["--num-tasks", "1", "--num-steps", "1", "--episodes-per-task", "2", flag, "1000000000"]
    result = evaluate("--run", tiny_run[0], *args, "--output-dir", tmp_path / "out")
    line = assert_clean_error(result, "the evaluation needs at least", "available", fix)
    assert "meta_batch_size" not in line and not (tmp_path / "out").exists()


def test_training_sizes_too_large_for_this_machine_do_not_stop_a_small_evaluation(
    evaluate, tiny_run_copy, tmp_path, monkeypatch
):
    """A run trained on a larger machine: its meta_batch_size would not fit here, its evaluation does."""
    config = yaml.safe_load((tiny_run_copy / "config.yaml").read_text())
    config["meta_batch_size"] = 10**7
    (tiny_run_copy / "config.yaml").write_text(yaml.safe_dump(config))
    monkeypatch.setattr(metarl.memory, "available_memory", lambda device: 2**30)
    result = evaluate("--run", tiny_run_copy, *TINY, "--output-dir", tmp_path / "out")
    assert result.returncode == 0, result.stderr


def test_a_run_with_more_workers_than_this_machine_takes_is_evaluated_with_fewer(
    evaluate, tiny_run_copy, tmp_path, monkeypatch
):
    """Refused for training (see test_run_limits), a process backend's worker count is capped for evaluation:
    the episodes are the same for any split."""
    config = yaml.safe_load((tiny_run_copy / "config.yaml").read_text())
    config["sampler"] = {"backend": "process", "num_workers": 1000}
    (tiny_run_copy / "config.yaml").write_text(yaml.safe_dump(config))
    monkeypatch.setattr(metarl.config, "max_workers", lambda: 1)
    monkeypatch.setattr(metarl.evaluation_run, "max_workers", lambda: 1)
    result = evaluate("--run", tiny_run_copy, *TINY, "--output-dir", tmp_path / "out")
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(
    "changes, fragments",
    [
        ({"policy": [1, 2, 3]}, ["its policy is a list, not a dict of tensors"]),
        ({"policy": {"mean.0.weight": "abc"}}, ["its policy is a dict, not a dict of tensors"]),
        ({"iteration": "abc"}, ["iteration is 'abc', not a non-negative integer"]),
        ({"method": "pretrained"}, ["is a pretraining checkpoint", "--checkpoint takes one of launchers/train.py"]),
        ({"method": "sgd"}, ["of method 'sgd'"]),
    ],
    ids=["policy-a-list", "policy-not-tensors", "iteration-a-string", "a-pretraining-checkpoint", "unknown-method"],
)
def test_damaged_or_foreign_checkpoints_are_one_line_naming_the_file(
    evaluate, tiny_run_copy, tmp_path, assert_clean_error, changes, fragments
):
    checkpoint = tmp_path / "crafted.pt"
    checkpoint.write_bytes((tiny_run_copy / "checkpoints" / "latest.pt").read_bytes())
    edit_checkpoint(checkpoint, **changes)
    result = evaluate("--run", tiny_run_copy, "--checkpoint", checkpoint, *TINY, "--output-dir", tmp_path / "out")
    assert_clean_error(result, str(checkpoint), *fragments)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    "changes, fragments",
    [
        ({}, ["is a MAML-training checkpoint", "--pretrained takes one of launchers/pretrain.py"]),
        ({"method": "pretrained", "env_id": "metarl/AntVel-v0"}, ["trained on metarl/AntVel-v0"]),
    ],
    ids=["maml-checkpoint", "another-env"],
)
def test_pretrained_takes_only_a_pretraining_checkpoint_of_the_run_s_env(
    evaluate, tiny_run, tmp_path, assert_clean_error, changes, fragments
):
    checkpoint = tmp_path / "other.pt"
    checkpoint.write_bytes((tiny_run[0] / "checkpoints" / "latest.pt").read_bytes())
    edit_checkpoint(checkpoint, **changes)
    result = evaluate("--run", tiny_run[0], "--pretrained", checkpoint, *TINY, "--output-dir", tmp_path / "out")
    assert_clean_error(result, str(checkpoint), *fragments)
    assert not (tmp_path / "out").exists()


def test_an_empty_output_dir_is_refused_not_the_current_directory(
    evaluate, tiny_run, tmp_path, monkeypatch, assert_clean_error
):
    """Path('') is '.': the evaluation was written into the current directory."""
    monkeypatch.chdir(tmp_path)
    assert_clean_error(evaluate("--run", tiny_run[0], *TINY, "--output-dir", ""), "--output-dir", "must not be empty")
    assert list(tmp_path.iterdir()) == []


def test_a_file_given_as_the_run_is_named_a_file(evaluate, tiny_run, assert_clean_error):
    assert_clean_error(evaluate("--run", tiny_run[0] / "config.yaml"), "config.yaml is a file, not a run directory")
