"""A user's own env, named ``module:EnvId`` as gymnasium.make accepts it, trains through the launcher."""

from custom_env_for_tests import ENV_ID


def test_trains_on_an_env_registered_by_a_user_module(train, tiny_run_args, tmp_path):
    run_dir = tmp_path / "run"
    result = train(*tiny_run_args(num_batches=2), "--set", f"env_id={ENV_ID}", "--output-dir", run_dir)
    assert result.returncode == 0, result.stderr
    assert (run_dir / "checkpoints" / "latest.pt").is_file()
