"""A user's env (``module:EnvId``) that raises in its own code (at import, in its constructor, its
sample_tasks, reset or step) stops a launcher with one line naming the env and the exception, exit 2; a new
run that never got a checkpoint is removed, as after Ctrl-C. A policy that diverged is blamed on the settings
of the run at hand. Bugs in metarl's own code keep their tracebacks."""

import numpy as np
import pytest
import torch
from broken_env_for_tests import ENV_ID

import metarl.samplers.rollout
from metarl.user_env import EnvError, env_code

IMPORT_ENV_ID = "tests.broken_env_for_tests_import:BrokenPoint-v0"


def env_args(tiny_run_args, fail_in=None, backend="vectorized", env_id=ENV_ID, **changes):
    kwargs = "{}" if fail_in is None else f"{{fail_in: {fail_in}, at_step: 3}}"
    return [
        *tiny_run_args(num_iterations=1, **changes),
        "--set",
        f"env_id={env_id}",
        "--set",
        f"env_kwargs={kwargs}",
        "--set",
        f"sampler.backend={backend}",
        "--quiet",
    ]


@pytest.mark.parametrize(
    "fail_in, fragments, started",
    [
        ("construction", ["raised ValueError: bad goal in its construction"], False),
        ("sample_tasks", ["raised ValueError: bad goal in its sample_tasks"], True),
        ("reset", ["raised ValueError: bad goal in its reset"], True),
        ("step", ["raised ValueError: bad goal in its step", "was removed"], True),
    ],
)
def test_an_env_that_raises_is_one_line_and_the_new_run_is_removed(
    train_here, tiny_run_args, tmp_path, assert_clean_error, fail_in, fragments, started
):
    run_dir = tmp_path / "run"
    result = train_here(*env_args(tiny_run_args, fail_in), "--output-dir", run_dir)
    assert_clean_error(result, f"env {ENV_ID}", *fragments, started=started)
    assert not run_dir.exists()


def test_a_module_that_raises_at_import_is_one_line(train_here, tiny_run_args, tmp_path, assert_clean_error):
    """Not an ImportError, so not 'put its directory on PYTHONPATH': the module's own error, named."""
    run_dir = tmp_path / "run"
    result = train_here(*env_args(tiny_run_args, env_id=IMPORT_ENV_ID), "--output-dir", run_dir)
    line = assert_clean_error(result, IMPORT_ENV_ID, "RuntimeError: the module's own bug", "import")
    assert "PYTHONPATH" not in line and not run_dir.exists()


def test_a_worker_process_sends_the_env_s_error_back(train, tiny_run_args, tmp_path, assert_clean_error):
    """In a worker process the env's step raises; the parent prints its line, not the worker's traceback."""
    run_dir = tmp_path / "run"
    result = train(*env_args(tiny_run_args, "step", backend="process"), "--output-dir", run_dir)
    assert_clean_error(result, f"env {ENV_ID} raised ValueError: bad goal in its step", started=True)
    assert not run_dir.exists()


def test_a_resumed_run_is_kept(train_here, tiny_run_args, tmp_path, assert_clean_error):
    """Only a new run without checkpoint goes; a run the user resumes stays as it was."""
    run_dir = tmp_path / "run"
    assert train_here(*env_args(tiny_run_args), "--output-dir", run_dir).returncode == 0
    (run_dir / "config.yaml").write_text(
        (run_dir / "config.yaml").read_text().replace("env_kwargs: {}", "env_kwargs: {fail_in: step}")
    )
    result = train_here("--resume", run_dir, "--set", "num_iterations=2", "--quiet")
    line = assert_clean_error(result, "in its step", started=True)
    assert "removed" not in line and (run_dir / "checkpoints" / "latest.pt").is_file()


def test_pretraining_on_an_env_that_raises_is_one_line(launcher_here, tiny_run_args, tmp_path, assert_clean_error):
    run_dir = tmp_path / "run"
    result = launcher_here("pretrain.py", *env_args(tiny_run_args, "step"), "--output-dir", run_dir)
    assert_clean_error(result, f"env {ENV_ID} raised ValueError: bad goal in its step", started=True)
    assert not run_dir.exists()


def test_long_messages_are_shortened():
    with pytest.raises(EnvError) as error, env_code("m:Env-v0", "step"):
        raise KeyError("x" * 5000)
    assert len(str(error.value)) < 300 and "KeyError" in str(error.value)


def test_metarl_s_own_envs_and_bugs_keep_their_tracebacks():
    """An error in metarl's own env code is not blamed on a user's env."""
    with pytest.raises(ZeroDivisionError), env_code("metarl/Navigation2D-v0", "step"):
        raise ZeroDivisionError


# --- a diverged policy names the settings of the run at hand -------------------------------------------------


@pytest.fixture
def diverging_policy(monkeypatch):
    """Every action the sampler's policy chooses is NaN, as after a step that diverged."""
    original = metarl.samplers.rollout.BatchedPolicy.mean_std

    def nan_mean(self, observations_NO):
        mean, std = original(self, observations_NO)
        return np.full_like(mean, np.nan), std

    monkeypatch.setattr(metarl.samplers.rollout.BatchedPolicy, "mean_std", nan_mean)


@pytest.mark.parametrize(
    "changes, hint",
    [
        ({}, "try a smaller inner_lr or trpo.max_kl"),
        ({"algo": "maml_ppo"}, "try a smaller inner_lr or ppo.lr"),
        ({"algo": "promp", "inner_objective": "lvc"}, "try a smaller inner_lr or promp.lr"),
    ],
    ids=["maml_trpo", "maml_ppo", "promp"],
)
def test_training_divergence_names_the_algorithm_s_step(
    diverging_policy, train_here, tiny_run_args, tmp_path, assert_clean_error, changes, hint
):
    run_dir = tmp_path / "run"
    result = train_here(*tiny_run_args(num_iterations=1, **changes), "--output-dir", run_dir, "--quiet")
    line = assert_clean_error(result, "its parameters diverged; " + hint, started=True)
    assert line.count("try a smaller") == 1 and not run_dir.exists()


def test_pretraining_divergence_names_its_learning_rate(
    diverging_policy, launcher_here, tiny_run_args, tmp_path, assert_clean_error
):
    result = launcher_here("pretrain.py", *tiny_run_args(num_iterations=1), "--output-dir", tmp_path / "run", "--quiet")
    line = assert_clean_error(result, "its parameters diverged; try a smaller --lr", started=True)
    assert "inner_lr" not in line and "max_kl" not in line


def test_evaluation_divergence_names_its_step_sizes(
    diverging_policy, tiny_run, launcher_here, tmp_path, assert_clean_error
):
    result = launcher_here(
        "evaluate.py", "--run", tiny_run[0], "--num-tasks", 1, "--num-steps", 1, "--episodes-per-task", 2,
        "--output-dir", tmp_path / "out", "--quiet",
    )  # fmt: skip
    line = assert_clean_error(result, "diverged; try a smaller --inner-lr or --later-inner-lr")
    assert "max_kl" not in line and not (tmp_path / "out").exists()


def test_a_diverged_checkpoint_is_refused_before_evaluating(tiny_run_copy, launcher_here, tmp_path, assert_clean_error):
    path = tiny_run_copy / "checkpoints" / "latest.pt"
    state = torch.load(path, weights_only=True)
    name = next(iter(state["policy"]))
    state["policy"][name] = torch.full_like(state["policy"][name], float("nan"))
    torch.save(state, path)
    result = launcher_here("evaluate.py", "--run", tiny_run_copy, "--output-dir", tmp_path / "out", "--quiet")
    assert_clean_error(result, "holds non-finite parameters", name, "evaluate an earlier checkpoint")
