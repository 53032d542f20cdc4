"""The allocator tuning the launcher applies really takes effect on glibc systems; an iteration's memory is
estimated up front, refusing sizes that cannot fit but no shipped config."""

import platform

import pytest
import torch

import metarl.memory
from metarl.config import ConfigError
from metarl.memory import available_memory, iteration_memory, keep_freed_memory, require_memory
from metarl.policies import GaussianMLPPolicy


@pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc", reason="glibc only")
def test_mallopt_settings_take_effect():
    assert keep_freed_memory()


GIB = 2**30


def shipped_config_estimates():
    """Each shipped RL config's full-size iteration estimate, by file name."""
    from test_configs_smoke import RL_CONFIGS

    from metarl.config import TrainConfig, load_config
    from metarl.parts import make_task_env, policy_dims

    estimates = {}
    for path in RL_CONFIGS:
        config = load_config(TrainConfig, path)
        env = make_task_env(config.env_id, config.env_kwargs)
        horizon = config.horizon or env.spec.max_episode_steps
        estimates[path.name] = iteration_memory(
            config.meta_batch_size,
            config.episodes_per_task,
            horizon,
            config.num_steps,
            *policy_dims(env),
            config.hidden_sizes,
        )
        env.close()
    return estimates


def test_no_shipped_config_is_refused_on_a_small_machine(monkeypatch):
    """Every config in launchers/configs fits a machine with 2 GiB free (the estimate is a lower bound: the
    largest, ant-dir, measured about 4 GiB resident in a real run against its 1.2 GiB estimate)."""
    monkeypatch.setattr(metarl.memory, "available_memory", lambda device: 2 * GIB)
    estimates = shipped_config_estimates()
    assert len(estimates) >= 6
    for name, estimate in estimates.items():
        require_memory(estimate, torch.device("cpu"))
        assert estimate.total_bytes > 100 * 2**20, name  # and the estimate is not vacuous


def test_the_parameter_count_is_the_policy_s():
    estimate = iteration_memory(3, 2, 10, 1, 7, 3, [11, 5])
    policy = GaussianMLPPolicy(7, 3, [11, 5])
    assert estimate.parameters == sum(p.numel() for p in policy.parameters())
    assert estimate.episode_steps == 3 * 2 * 10 * 2


@pytest.mark.parametrize(
    "sizes, fix",
    [
        (dict(meta_batch_size=10**9), "lower meta_batch_size, episodes_per_task or horizon"),
        (dict(hidden_sizes=[10**6, 10**6]), "lower hidden_sizes"),
    ],
)
def test_sizes_that_cannot_fit_are_refused_with_the_estimate_and_the_fix(monkeypatch, sizes, fix):
    monkeypatch.setattr(metarl.memory, "available_memory", lambda device: 16 * GIB)
    arguments = (
        dict(
            meta_batch_size=40,
            episodes_per_task=20,
            horizon=100,
            num_steps=1,
            observation_dim=2,
            action_dim=2,
            hidden_sizes=[100, 100],
        )
        | sizes
    )
    with pytest.raises(
        ConfigError,
        match=r"^an iteration needs at least [0-9.]+ [TPE]iB of memory .* but this "
        r"machine has 16\.0 GiB available; " + fix,
    ):
        require_memory(iteration_memory(**arguments), torch.device("cpu"))


def test_available_memory_is_read_from_the_system():
    available = available_memory(torch.device("cpu"))
    assert available is not None and 0 < available < 2**50
