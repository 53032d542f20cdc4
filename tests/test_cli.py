"""The train launcher's command line: bad input exits with code 2, one `error:` line, and touches nothing.

The launchers run in-process here (their main(), as ``launchers/*.py`` calls it); one subprocess per launcher
checks that --help answers before torch is imported, and the tiny run fixture trains through a subprocess."""

import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from custom_env_for_tests import ENV_ID
from run_helpers import launcher_module

from metarl.config import TrainConfig, describe_keys, from_dict, keys_text, load_config
from metarl.experiment import build_experiment


@pytest.mark.parametrize(
    "args, fragments",
    [
        (["--set", "inner_lrr=0.1"], ["inner_lrr", "inner_lr'"]),
        (["--set", "inner_lr=-0.1"], ["inner_lr", "positive"]),
        (["--set", "episodes_per_task=0"], ["episodes_per_task", "positive"]),
        (["--set", "meta_batch_size=0"], ["meta_batch_size"]),
        (["--set", "env_id=metarl/Navigation3D-v0"], ["metarl/Navigation3D-v0", "metarl/Navigation2D-v0"]),
        (["--set", "hidden_sizes=3"], ["hidden_sizes"]),
        (["--set", "sampler.backend=gpu"], ["sampler.backend"]),
        (["--config", "no/such/config.yaml"], ["no/such/config.yaml"]),
        (["--config", "launchers/configs"], ["launchers/configs"]),
        (["--config", "no-such-config.yaml"], ["no-such-config.yaml", "2d-navigation.yaml", "halfcheetah-vel.yaml"]),
        (["--set", "trpo.max_kl=.inf"], ["trpo.max_kl", "finite", "got inf", "--set trpo.max_kl="]),
        (["--set", "inner_lr=.inf"], ["inner_lr", "finite", "--set inner_lr="]),
        (["--set", "init_std=.inf"], ["init_std", "finite"]),
        (["--set", "gamma=.nan"], ["gamma", "finite", "got nan"]),
        (["--set", "seed=-1"], ["seed", "non-negative", "--set seed="]),
        (["--set", "device=cuda:foo"], ["device", "'cuda:foo'", "cuda:N", "--set device="]),
        (["--set", "inner_lr=[0.1"], ["--set inner_lr=[0.1", "not valid YAML"]),
        (["--set", "env_id=no_such_module:Point1D-v0"], ["no_such_module", "cannot be imported", "PYTHONPATH"]),
        (["--set", "env_id=tests.custom_env_for_tests:Point2D-v0"], ["registers no env", "Point1D-v0"]),
        (
            ["--set", "env_id=gymnasium.envs.classic_control:CartPole-v1"],
            ["not a task distribution", "sample_tasks", "set_task", "task attribute"],
        ),
        (
            ["--set", "meta_batch_size=1000000000"],
            ["an iteration needs at least", "available", "lower meta_batch_size"],
        ),
        (
            ["--set", "hidden_sizes=[1000000,1000000]"],
            ["an iteration needs at least", "available", "lower hidden_sizes"],
        ),
    ],
    ids=[
        "misspelled-key",
        "negative-lr",
        "zero-batch",
        "zero-meta-batch",
        "unknown-env",
        "wrong-type",
        "bad-backend",
        "missing-config",
        "config-is-a-directory",
        "unknown-config-name",
        "infinite-max-kl",
        "infinite-lr",
        "infinite-std",
        "nan-gamma",
        "negative-seed",
        "malformed-device",
        "yaml-error-in-set",
        "env-module-missing",
        "env-not-in-module",
        "env-without-tasks",
        "too-many-tasks-for-memory",
        "too-wide-for-memory",
    ],
)
def test_bad_input_is_one_error_line(train_here, tiny_run_args, tmp_path, args, fragments, assert_clean_error):
    """Each kind of bad input exits 2 with one line naming the problem, and creates no run directory."""
    run_dir = tmp_path / "run"
    # the tiny run's settings first, so that input wrongly accepted makes a short run, not a 300-iteration one
    assert_clean_error(train_here(*tiny_run_args(num_iterations=1), *args, "--output-dir", run_dir), *fragments)
    assert not run_dir.exists()


def test_resume_of_a_non_run_directory(train_here, tmp_path, assert_clean_error):
    """--resume of a directory that holds no run is a clean error."""
    assert_clean_error(train_here("--resume", tmp_path), "not a run directory")


def test_resume_with_corrupt_checkpoint(train_here, tiny_run_copy, directory_snapshot, assert_clean_error):
    """--resume with a garbage latest.pt is a clean error that names the file and changes nothing."""
    latest = tiny_run_copy / "checkpoints" / "latest.pt"
    latest.write_bytes(b"\x80\x02garbage" * 100)
    before = directory_snapshot(tiny_run_copy)
    assert_clean_error(train_here("--resume", tiny_run_copy), "latest.pt", "corrupt")
    assert directory_snapshot(tiny_run_copy) == before


@pytest.mark.parametrize(
    "args, fragments",
    [
        (["--set", "num_iterations=1"], ["already holds a run", "--resume"]),
        (["--set", "inner_lr=0"], ["inner_lr"]),
    ],
    ids=["existing-run", "bad-value"],
)
def test_failed_start_leaves_existing_run_unchanged(
    train_here, tiny_run, directory_snapshot, args, fragments, assert_clean_error
):
    """Starting a new run in an existing run's directory errors and leaves every file byte-for-byte intact."""
    run_dir, _ = tiny_run
    before = directory_snapshot(run_dir)
    assert_clean_error(train_here(*args, "--output-dir", run_dir), *fragments)
    assert directory_snapshot(run_dir) == before


@pytest.mark.parametrize(
    "overrides, fragments",
    [(["inner_lr=0.2"], ["inner_lr"]), (["num_iterations=0"], ["num_iterations"])],
    ids=["forbidden-change", "invalid-value"],
)
def test_failed_resume_leaves_run_unchanged(
    train_here, tiny_run_copy, directory_snapshot, overrides, fragments, assert_clean_error
):
    """A resume that cannot go ahead errors before writing anything into the run."""
    before = directory_snapshot(tiny_run_copy)
    args = [arg for override in overrides for arg in ("--set", override)]
    assert_clean_error(train_here("--resume", tiny_run_copy, *args), *fragments)
    assert directory_snapshot(tiny_run_copy) == before


def test_list_keys_prints_every_key_with_default_and_explanation(train_here):
    result = train_here("--list-keys")
    assert result.returncode == 0, result.stderr
    lines = {line.split()[0]: line for line in result.stdout.splitlines()}
    assert set(lines) == {key for key, _, _ in describe_keys(TrainConfig)}
    assert lines["inner_lr"].split()[1] == "0.5" and "Inner step size" in lines["inner_lr"]
    assert "Worker processes" in lines["sampler.num_workers"]


def test_help_says_where_the_keys_are(train_here):
    result = train_here("--help")
    assert result.returncode == 0 and "metarl/config.py" in result.stdout and "--list-keys" in result.stdout


def test_print_config_shows_the_resolved_config_and_writes_nothing(train_here, tmp_path):
    result = train_here(
        "--config", "halfcheetah-vel", "--set", "seed=7", "--print-config", "--output-dir", tmp_path / "run"
    )
    assert result.returncode == 0, result.stderr
    config = from_dict(TrainConfig, yaml.safe_load(result.stdout))
    assert config.env_id == "metarl/HalfCheetahVel-v0" and config.seed == 7
    assert not (tmp_path / "run").exists()


LAUNCHERS = ["train.py", "pretrain.py", "evaluate.py", "report.py", "plot_training.py", "sinusoid.py", "omniglot.py"]
LAUNCHERS += ["miniimagenet.py"]


@pytest.mark.parametrize("script", LAUNCHERS)
def test_help_comes_before_torch_is_imported(script):
    """Torch takes seconds to import (20 s on a loaded machine): --help must not wait for it."""
    code = (
        "import runpy, sys\n"
        f"sys.argv = ['launchers/{script}', '--help']\n"
        "try:\n"
        f"    runpy.run_path('launchers/{script}', run_name='__main__')\n"
        "except SystemExit:\n"
        "    pass\n"
        "print('imported:', sorted(m for m in ('torch', 'matplotlib', 'gymnasium') if m in sys.modules))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=Path(__file__).resolve().parents[1], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert "usage:" in result.stdout and result.stdout.splitlines()[-1] == "imported: []", result.stdout


@pytest.mark.parametrize("script", LAUNCHERS)
def test_help_shows_no_markup(launcher_here, script):
    """Docstrings' ``code`` markup does not leak into --help's description."""
    result = launcher_here(script, "--help")
    assert result.returncode == 0 and "usage:" in result.stdout
    assert "``" not in result.stdout


@pytest.mark.parametrize("script", ["train.py", "pretrain.py", "evaluate.py"])
def test_output_is_the_flag_and_output_dir_its_old_spelling(script):
    """Every launcher writes where --output says (report.py and plot_training.py too); --output-dir still works."""
    run = ["runs/x"] if script == "evaluate.py" else []
    parse = launcher_module(script).parse_args
    assert parse([*run, "--output", "out"]).output_dir == Path("out")
    assert parse([*run, "--output-dir", "out"]).output_dir == Path("out")
    assert "--output-dir" not in launcher_module(script).__doc__


def test_evaluate_takes_the_run_as_its_first_argument_and_run_still_works():
    """One form across evaluate, report and plot_training: the positional RUN_DIR; --run DIR still parses."""
    parse = launcher_module("evaluate.py").parse_args
    assert parse(["runs/x"]).run == Path("runs/x")
    assert parse(["--run", "runs/x"]).run == Path("runs/x")


DEFAULT_CONFIG = Path(__file__).resolve().parents[1] / "launchers" / "configs" / "2d-navigation.yaml"


def test_the_default_config_file_is_the_defaults_list_keys_shows():
    """One set of defaults: a run with no --config (2d-navigation.yaml, annotated with its sources) gets exactly
    TrainConfig's defaults, which --list-keys prints; a key a config file leaves out means the same thing."""
    assert load_config(TrainConfig, DEFAULT_CONFIG) == TrainConfig()
    lines = {line.split()[0]: line.split()[1] for line in keys_text(TrainConfig).splitlines()}
    assert (lines["horizon"], lines["inner_lr"], lines["num_iterations"]) == ("null", "0.5", "100")


@pytest.mark.parametrize(
    "overrides, horizon",
    [
        ([], 100),  # 2D navigation's registered horizon: the default run is the one it was
        ([f"env_id={ENV_ID}"], 20),  # a user's env: its own registered horizon, not navigation's 100
        ([f"env_id={ENV_ID}", "horizon=7"], 7),  # unless told otherwise
    ],
    ids=["navigation", "custom-env", "custom-env-with-horizon"],
)
def test_a_run_takes_its_env_s_registered_horizon_unless_told_otherwise(overrides, horizon):
    config = load_config(TrainConfig, DEFAULT_CONFIG, [*overrides, "hidden_sizes=[4]", "meta_batch_size=1"])
    experiment = build_experiment(config.validate())
    try:
        assert experiment.horizon == horizon
    finally:
        experiment.close()
