"""A user's own env, named ``module:EnvId`` as gymnasium.make accepts it, trains through the launcher with
every sampler backend; an env that returns NaN or inf is named in one error line."""

import shutil
from pathlib import Path

import pytest
import torch
import yaml
from custom_env_for_tests import ENV_ID
from run_helpers import assert_same_policy, latest_policy

from metarl.config import ConfigError
from metarl.parts import registered_env_id
from metarl.policies import GaussianMLPPolicy, parameters_of
from metarl.samplers import NonFiniteEpisodeError, VectorizedSampler


@pytest.fixture(scope="module")
def custom_env_run(train, tiny_run_args, tmp_path_factory):
    """A two-iteration run on the user's env (in-process sampler)."""
    run_dir = tmp_path_factory.mktemp("custom") / "run"
    result = train(*tiny_run_args(num_iterations=2), "--set", f"env_id={ENV_ID}", "--output-dir", run_dir)
    assert result.returncode == 0, result.stderr
    return run_dir


def test_trains_on_an_env_registered_by_a_user_module(custom_env_run):
    assert (custom_env_run / "checkpoints" / "latest.pt").is_file()


@pytest.mark.slow
def test_the_process_backend_trains_a_user_env_as_the_in_process_one_does(train, tiny_run_args, tmp_path):
    """Worker processes import the user's module themselves, and return the same episodes."""
    runs = {}
    for backend in ("vectorized", "process"):
        runs[backend] = tmp_path / backend
        result = train(
            *tiny_run_args(num_iterations=2),
            "--set",
            f"env_id={ENV_ID}",
            "--set",
            f"sampler.backend={backend}",
            "--set",
            "sampler.num_workers=2",
            "--output-dir",
            runs[backend],
            "--quiet",
        )
        assert result.returncode == 0, result.stderr
    assert_same_policy(latest_policy(runs["vectorized"]), latest_policy(runs["process"]))


@pytest.mark.parametrize(
    "backend, env_kwargs, fragments",
    [
        ("vectorized", "{nan_reward_at: 5}", ["non-finite reward (nan) at step 5 of episode 0 of task 0 {'goal': "]),
        ("process", "{inf_observation_at: 3}", ["non-finite observation (inf) at step 3 of episode 0 of task 0"]),
        ("vectorized", "{nan_reward_at: 4, inf_observation_at: 4}", ["non-finite reward (nan) at step 4"]),
    ],
    ids=["nan-reward", "inf-observation-from-a-worker", "reward-before-observation"],
)
def test_non_finite_env_output_is_one_line_naming_env_field_and_step(
    train, tiny_run_args, tmp_path, assert_clean_error, backend, env_kwargs, fragments
):
    """The launcher stops at the env's first bad value and names it, instead of a baseline-fit traceback
    that blames the observations; a NaN reward is not blamed on the observations."""
    result = train(
        *tiny_run_args(num_iterations=1),
        "--set",
        f"env_id={ENV_ID}",
        "--set",
        f"env_kwargs={env_kwargs}",
        "--set",
        f"sampler.backend={backend}",
        "--set",
        "sampler.num_workers=1",
        "--output-dir",
        tmp_path / "run",
        "--quiet",
    )
    assert_clean_error(result, f"env {ENV_ID} returned a", *fragments, started=True)


def test_evaluating_on_an_env_that_turned_non_finite_is_one_line(
    custom_env_run, launcher, tmp_path, assert_clean_error
):
    run_dir = tmp_path / "run"
    shutil.copytree(custom_env_run, run_dir)
    config = yaml.safe_load((run_dir / "config.yaml").read_text())
    (run_dir / "config.yaml").write_text(yaml.safe_dump({**config, "env_kwargs": {"nan_reward_at": 2}}))
    result = launcher(
        "evaluate.py",
        "--run",
        run_dir,
        "--num-tasks",
        2,
        "--num-steps",
        1,
        "--episodes-per-task",
        2,
        "--output-dir",
        tmp_path / "evaluation",
        "--quiet",
    )
    assert_clean_error(result, f"env {ENV_ID} returned a non-finite reward (nan) at step 2")
    assert not (tmp_path / "evaluation" / "evaluation.json").exists()


def test_a_diverged_policy_is_blamed_not_the_env():
    """NaN parameters give NaN actions from finite observations: the message says so, not 'the env'."""
    policy = GaussianMLPPolicy(1, 1, (4,), "tanh", 1.0, generator=torch.Generator().manual_seed(0))
    params = {name: torch.full_like(value, float("nan")) for name, value in parameters_of(policy).items()}
    sampler = VectorizedSampler(ENV_ID, {}, policy, 10)
    try:
        tasks = [{"goal": 0.5}]
        with pytest.raises(NonFiniteEpisodeError, match=r"^the policy chose a non-finite action \(nan\) for step 1"):
            sampler.sample(tasks, [params], 2, (0,))
        assert torch.isfinite(sampler.sample(tasks, [parameters_of(policy)], 2, (0,))[0].rewards_TB).all()
    finally:
        sampler.close()


@pytest.mark.parametrize(
    "env_id, suggestion",
    [
        ("custom_env_for_tests:Point1D-v1", "did you mean 'custom_env_for_tests:Point1D-v0'?"),
        ("envs.navigation:Hoper-v5", "did you mean 'Hopper-v5'?"),
    ],
    ids=["the-module-s-own-env", "a-built-in-env"],
)
def test_a_misspelled_env_of_a_module_suggests_an_id_that_works(env_id, suggestion, monkeypatch):
    """The module's own env keeps the module prefix; a Gymnasium or metarl id is suggested as it is registered."""
    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parent))
    with pytest.raises(ConfigError) as error:
        registered_env_id(env_id)
    assert str(error.value).endswith(suggestion), str(error.value)
