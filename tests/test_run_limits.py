"""Sizes no run can use are refused up front, in one line, before anything is written: more sampler workers
than the machine takes, a pretraining batch that cannot fit in memory, and a resume that would shrink a run
below the iterations it has done."""

import os

import pytest

import metarl.memory
from metarl.config import ConfigError, SamplerConfig, TrainConfig
from metarl.memory import evaluation_memory, iteration_memory


@pytest.mark.parametrize(
    "sampler",
    [SamplerConfig("process", 1_000_000), SamplerConfig("ray", 1_000_000)],
    ids=["process", "local-ray"],
)
def test_more_workers_than_the_machine_takes_are_refused(sampler):
    with pytest.raises(ConfigError) as error:
        TrainConfig(sampler=sampler).validate()
    cpus = os.cpu_count()
    assert f"sampler.num_workers must be at most {4 * cpus} (4 × the {cpus} CPUs of this machine)" in str(error.value)


@pytest.mark.parametrize(
    "sampler",
    [SamplerConfig("ray", 10_000, "head:6379"), SamplerConfig("vectorized", 10_000), SamplerConfig("process", 2)],
    ids=["ray-cluster", "in-process-ignores-it", "a-few"],
)
def test_worker_counts_that_are_accepted(sampler):
    """A Ray cluster may have more CPUs than this machine; the in-process backend starts no workers."""
    TrainConfig(sampler=sampler).validate()


def test_train_refuses_a_million_workers_before_writing(train_here, tiny_run_args, tmp_path, assert_clean_error):
    run_dir = tmp_path / "run"
    result = train_here(
        *tiny_run_args(), "--set", "sampler.backend=process", "--set", "sampler.num_workers=1000000",
        "--output-dir", run_dir,
    )  # fmt: skip
    assert_clean_error(result, "sampler.num_workers must be at most", "got 1000000")
    assert not run_dir.exists()


def test_pretraining_episodes_that_cannot_fit_are_refused_with_the_estimate(
    launcher_here, tiny_run_args, tmp_path, monkeypatch, assert_clean_error
):
    """Its own batch, not training's: --episodes-per-task is named, and no run is left that cannot resume."""
    monkeypatch.setattr(metarl.memory, "available_memory", lambda device: 16 * 2**30)
    run_dir = tmp_path / "run"
    result = launcher_here(
        "pretrain.py", *tiny_run_args(), "--episodes-per-task", "1000000000", "--output-dir", run_dir
    )
    assert_clean_error(result, "a pretraining iteration needs at least", "lower --episodes-per-task")
    assert not run_dir.exists()


def test_resume_refuses_fewer_iterations_than_done(train_here, tiny_run_copy, directory_snapshot, assert_clean_error):
    """The saved config.yaml would otherwise say num_iterations: 2 for a run of 3 iterations."""
    before = directory_snapshot(tiny_run_copy)
    result = train_here("--resume", tiny_run_copy, "--set", "num_iterations=2")
    assert_clean_error(result, "num_iterations=2 is fewer than the 3 iterations the run has done", "at least 3")
    assert directory_snapshot(tiny_run_copy) == before


def test_resume_to_as_many_iterations_as_done_is_accepted(train_here, tiny_run_copy):
    assert train_here("--resume", tiny_run_copy, "--set", "num_iterations=3", "--quiet").returncode == 0


def test_the_evaluation_estimate_counts_one_sampling_s_activations():
    """First-order inner steps free each sampling's activations; the episodes of every sampling are kept."""
    sizes = dict(horizon=100, observation_dim=2, action_dim=2, hidden_sizes=[100, 100])
    evaluation = evaluation_memory(40, 20, num_steps=3, **sizes)
    training = iteration_memory(40, 20, num_steps=3, **sizes)
    assert evaluation.episode_steps == training.episode_steps == 40 * 20 * 100 * 4
    assert evaluation.parameters == training.parameters
    assert evaluation.episode_bytes < training.episode_bytes / 2


# --- found by trying bad input (issue 30, round 2) --------------------------------------------------------------


@pytest.mark.parametrize(
    "lr, fragment",
    [("inf", "--lr must be a finite number of at most 3.4e+38, got inf"), ("1e300", "got 1e+300")],
    ids=["infinite", "past-float32"],
)
def test_pretraining_refuses_an_lr_adam_cannot_take(
    launcher_here, tiny_run_args, tmp_path, assert_clean_error, lr, fragment
):
    """inf trained on (NaN at once); 1e300 ended in torch's 'cannot be converted to type float' traceback."""
    run_dir = tmp_path / "run"
    assert_clean_error(launcher_here("pretrain.py", *tiny_run_args(), "--lr", lr, "--output-dir", run_dir), fragment)
    assert not run_dir.exists()


@pytest.mark.parametrize("key", ["ppo.lr", "promp.lr"])
def test_adam_step_sizes_past_float32_are_refused(key):
    section, name = key.split(".")
    config = TrainConfig()
    setattr(getattr(config, section), name, 1e300)
    with pytest.raises(ConfigError, match=f"^{key} must be at most 3.4e\\+38"):
        config.validate()


@pytest.mark.parametrize(
    "text, written",
    [("1e-40", "1.0e-40"), ("2.5E3", "2.5e+3"), ("-3e+2", "-3.0e+2")],
)
def test_exponent_notation_yaml_reads_as_text_gets_the_spelling_it_reads(train_here, assert_clean_error, text, written):
    """YAML 1.1 (PyYAML) reads 1e-40 as a string: 'must be of type float, got '1e-40'' left the user puzzled."""
    result = train_here("--set", f"init_std={text}", "--print-config")
    assert_clean_error(result, f"init_std must be a number, got the text '{text}'", f"write {written}")


def test_resume_of_a_file_says_it_is_a_file(train_here, tiny_run, assert_clean_error):
    result = train_here("--resume", tiny_run[0] / "config.yaml")
    assert_clean_error(result, "config.yaml is a file, not a run directory; check the --resume path")
