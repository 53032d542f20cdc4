"""Bad input is refused before any work: one `error:` line, exit 2, no traceback, nothing written.

Each check is tested over every key it applies to, then once through each launcher's main() as a user meets
it (in-process: the same code path as the command, without a Python start-up per case), so a launcher that
skips the check fails here.
"""

import dataclasses
import math
import os
import typing
from pathlib import Path

import pytest
import torch

from metarl.cli import require_writable_directory
from metarl.config import ConfigError, TrainConfig, apply_overrides, find_config, load_config
from metarl.evaluation import EvalSettings
from metarl.parts import resolve_device
from metarl.supervised.config import OmniglotConfig, SinusoidConfig

CONFIGS = Path(__file__).resolve().parents[1] / "launchers" / "configs"
DEFAULT_CONFIG = CONFIGS / "2d-navigation.yaml"


def float_keys(cls: type, prefix: str = "") -> list[str]:
    """The dotted names of a config's float keys, nested sections included."""
    keys = []
    for name, hint in typing.get_type_hints(cls).items():
        if hint is float:
            keys.append(prefix + name)
        elif dataclasses.is_dataclass(hint):
            keys += float_keys(hint, f"{prefix}{name}.")
    return keys


FLOAT_KEYS = float_keys(TrainConfig)
NON_FINITE = [math.inf, -math.inf, math.nan]


# --- config values ------------------------------------------------------------------------------------


def test_every_float_key_is_covered():
    """The parametrization below is read from TrainConfig's fields: make sure it found them."""
    assert {"inner_lr", "trpo.max_kl", "init_std", "gamma", "trpo.cg_damping"} <= set(FLOAT_KEYS)


@pytest.mark.parametrize("value", NON_FINITE, ids=["inf", "-inf", "nan"])
@pytest.mark.parametrize("key", FLOAT_KEYS)
def test_non_finite_numbers_are_refused(key, value):
    """inf passes range checks such as max_kl > 0; it must be refused by name, with the fix."""
    config = TrainConfig()
    *sections, name = key.split(".")
    section = config
    for part in sections:
        section = getattr(section, part)
    setattr(section, name, value)
    with pytest.raises(ConfigError) as error:
        config.validate()
    message = str(error.value)
    assert message.startswith(f"{key} must be a finite number") and f"--set {key}=..." in message


@pytest.mark.parametrize(
    "config, key",
    [
        (SinusoidConfig(inner_lr=math.inf), "inner_lr"),
        (SinusoidConfig(meta_lr=math.nan), "meta_lr"),
        (SinusoidConfig(amplitude_range=[0.1, math.inf]), "amplitude_range"),
        (OmniglotConfig(reptile_step_size=math.inf), "reptile_step_size"),
    ],
    ids=["sinusoid-lr", "sinusoid-meta-lr", "float-in-a-list", "omniglot"],
)
def test_non_finite_numbers_are_refused_in_supervised_configs(config, key):
    with pytest.raises(ConfigError, match=f"^{key} must be a finite number"):
        config.validate()


@pytest.mark.parametrize(
    "config, key",
    [(TrainConfig(seed=-1), "seed"), (SinusoidConfig(seed=-1), "seed"), (OmniglotConfig(split_seed=-1), "split_seed")],
    ids=["train", "sinusoid", "omniglot-split"],
)
def test_negative_seeds_are_refused(config, key):
    """numpy refuses negative seeds with a traceback deep inside the first iteration."""
    with pytest.raises(ConfigError, match=f"^{key} must be non-negative, got -1"):
        config.validate()
    dataclasses.replace(config, **{key: 0}).validate()


@pytest.mark.parametrize("device", ["cpu", "cuda", "cuda:0", "cuda:12"])
def test_device_names_that_are_accepted(device):
    TrainConfig(device=device).validate()


@pytest.mark.parametrize("device", ["cuda:foo", "cuda:", "cuda:-1", "gpu", "CPU", "cudax", "cpu:0", ""])
def test_device_names_that_are_refused(device):
    with pytest.raises(ConfigError, match=r"^device must be 'cpu', 'cuda' or 'cuda:N'") as error:
        TrainConfig(device=device).validate()
    assert "--set device=..." in str(error.value)


def test_missing_cuda_names_the_fix_of_the_caller(monkeypatch):
    """A config says how to change a key; evaluate's flag is changed with --device, not `set device:`."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ConfigError, match="not available here; fix it in the config file or with --set device=cpu"):
        resolve_device("cuda")
    with pytest.raises(ConfigError, match="CUDA is not available here; pass --device cpu$"):
        resolve_device("cuda:0", fix="pass --device cpu")
    assert resolve_device("cpu") == torch.device("cpu")


def test_cuda_index_beyond_the_devices_is_refused(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert resolve_device("cuda:1") == torch.device("cuda:1")
    with pytest.raises(ConfigError, match="has 2 CUDA device"):
        resolve_device("cuda:2")


@pytest.mark.parametrize(
    "override", ["inner_lr=[0.1", "hidden_sizes={a: [1", "env_id=!!python/object/apply:os.system ['true']", "x=a: b: c"]
)
def test_yaml_error_in_set_names_the_argument(override):
    with pytest.raises(ConfigError) as error:
        apply_overrides({}, [override])
    message = str(error.value)
    assert message.startswith(f"--set {override} is not valid YAML") and "\n" not in message


# --- finding a config ----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["halfcheetah-vel.yaml", "halfcheetah-vel"])
def test_a_bare_config_name_finds_the_shipped_config(name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # from any directory
    assert find_config(Path(name), DEFAULT_CONFIG) == CONFIGS / "halfcheetah-vel.yaml"


def test_an_existing_path_is_taken_as_given(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("halfcheetah-vel.yaml").write_text("seed: 2\n")
    assert find_config(Path("halfcheetah-vel.yaml"), DEFAULT_CONFIG) == Path("halfcheetah-vel.yaml")
    assert find_config(None, DEFAULT_CONFIG) == DEFAULT_CONFIG


@pytest.mark.parametrize("name", ["halfcheetah-velocity.yaml", "no/such/dir/halfcheetah-vel.yaml"])
def test_a_config_that_matches_nothing_lists_the_configs(name):
    with pytest.raises(ConfigError) as error:
        find_config(Path(name), DEFAULT_CONFIG)
    message = str(error.value)
    assert name in message and "\n" not in message
    assert all(path.name in message for path in CONFIGS.glob("*.yaml"))


# --- evaluation settings and output directories ---------------------------------------------------------


@pytest.mark.parametrize(
    "setting, value, flag",
    [
        ("inner_lr", math.inf, "--inner-lr"),
        ("inner_lr", math.nan, "--inner-lr"),
        ("inner_lr", 0.0, "--inner-lr"),
        ("later_inner_lr", math.inf, "--later-inner-lr"),
        ("later_inner_lr", -0.1, "--later-inner-lr"),
        ("seed", -1, "--seed"),
        ("num_tasks", 0, "--num-tasks"),
        ("episodes_per_task", 0, "--episodes-per-task"),
    ],
)
def test_evaluation_settings_name_the_flag(setting, value, flag):
    with pytest.raises(ConfigError, match=f"^{flag} must be"):
        EvalSettings(**{setting: value}).validate()


def test_output_under_a_file_is_refused_and_nothing_is_created(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("keep me")
    with pytest.raises(ConfigError, match="is a file"):
        require_writable_directory(blocker / "out", "--output-dir")
    with pytest.raises(ConfigError, match="is a file"):
        require_writable_directory(blocker, "--output-dir")
    require_writable_directory(tmp_path / "new" / "nested", "--output-dir")
    assert sorted(tmp_path.iterdir()) == [blocker] and blocker.read_text() == "keep me"


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root writes into read-only directories")
def test_read_only_output_directory_is_refused(tmp_path):
    read_only = tmp_path / "read-only"
    read_only.mkdir()
    read_only.chmod(0o555)
    try:
        with pytest.raises(ConfigError, match="is not writable"):
            require_writable_directory(read_only / "out", "--output-dir")
    finally:
        read_only.chmod(0o755)


# --- through the launchers -------------------------------------------------------------------------------

# A run small enough that input wrongly accepted makes a test fail in seconds, not run an hour.
TINY_EVALUATION = ["--num-tasks", "1", "--num-steps", "1", "--episodes-per-task", "2", "--quiet"]


@pytest.mark.parametrize(
    "args, fragments",
    [
        (["--seed", "-1"], ["--seed", "non-negative"]),
        (["--inner-lr", "inf"], ["--inner-lr", "finite", "inf"]),
        (["--inner-lr", "nan"], ["--inner-lr", "finite", "nan"]),
        (["--inner-lr", "0"], ["--inner-lr", "got 0.0"]),
        (["--later-inner-lr", "inf"], ["--later-inner-lr", "finite"]),
        (["--device", "cuda:foo"], ["--device", "'cuda:foo'", "cuda:N"]),
        (["--num-tasks", "0"], ["--num-tasks", "at least 1"]),
        (["--episodes-per-task", "0"], ["--episodes-per-task", "at least 1, got 0"]),
        (["--pretrained", "{tmp}/missing.pt"], ["missing.pt", "launchers/pretrain.py"]),
    ],
    ids=[
        "negative-seed",
        "infinite-step",
        "nan-step",
        "zero-step",
        "infinite-later-step",
        "malformed-device",
        "no-tasks",
        "zero-episodes",
        "missing-pretrained",
    ],
)
def test_evaluate_bad_flags(launcher_here, assert_clean_error, tiny_run, tmp_path, args, fragments):
    """Explicit zeros are refused, never replaced by the run's values; nothing is written."""
    output_dir = tmp_path / "out"
    args = [arg.replace("{tmp}", str(tmp_path)) for arg in args]
    result = launcher_here("evaluate.py", "--run", tiny_run[0], *TINY_EVALUATION, "--output-dir", output_dir, *args)
    line = assert_clean_error(result, *fragments)
    assert "set device:" not in line
    assert not output_dir.exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_evaluate_device_hint_is_the_flag(launcher_here, assert_clean_error, tiny_run, tmp_path):
    result = launcher_here(
        "evaluate.py", "--run", tiny_run[0], *TINY_EVALUATION, "--device", "cuda", "--output-dir", tmp_path / "out"
    )
    line = assert_clean_error(result, "CUDA is not available", "--device cpu")
    assert "set device" not in line and not (tmp_path / "out").exists()


def test_evaluate_checks_the_output_directory_first(launcher_here, assert_clean_error, tiny_run, tmp_path):
    """An output directory that cannot be made is a usage error (exit 2: the user picks another one),
    refused before the evaluation runs rather than with a traceback after it; nothing is written."""
    blocker = tmp_path / "file"
    blocker.write_text("keep me")
    result = launcher_here("evaluate.py", "--run", tiny_run[0], *TINY_EVALUATION, "--output-dir", blocker / "out")
    assert_clean_error(result, "--output", "is a file")
    assert sorted(tmp_path.iterdir()) == [blocker] and blocker.read_text() == "keep me"


def test_train_finds_a_config_by_name(train_here, assert_clean_error, tmp_path):
    """The env in the error shows which file was read: launchers/configs/halfcheetah-vel.yaml."""
    run_dir = tmp_path / "run"
    result = train_here("--config", "halfcheetah-vel.yaml", "--set", "env_kwargs.bogus=1", "--output-dir", run_dir)
    assert_clean_error(result, "env_kwargs do not fit metarl/HalfCheetahVel-v0")
    assert not run_dir.exists()


@pytest.mark.parametrize(
    "config, fragments",
    [
        ("halfcheetah-vel", ["meta_batch_size must be positive"]),
        ("halfcheetah-velocity.yaml", ["halfcheetah-velocity.yaml", "halfcheetah-vel.yaml", "2d-navigation.yaml"]),
    ],
    ids=["found", "not-found"],
)
def test_pretrain_finds_a_config_by_name(launcher_here, assert_clean_error, tmp_path, config, fragments):
    run_dir = tmp_path / "run"
    result = launcher_here("pretrain.py", "--config", config, "--set", "meta_batch_size=0", "--output-dir", run_dir)
    assert_clean_error(result, *fragments)
    assert not run_dir.exists()


# --- YAML that would take a setting or the machine by surprise ----------------------------------------------

ALIAS_BOMB = "env_kwargs:\n  a0: &a0 [1, 1, 1, 1, 1, 1, 1, 1, 1]\n" + "".join(
    f"  a{level}: &a{level} [{', '.join([f'*a{level - 1}'] * 9)}]\n" for level in range(1, 9)
)


def test_an_alias_bomb_is_refused_before_it_is_expanded(launcher, assert_clean_error, tmp_path):
    """A few hundred bytes of nested aliases stand for 9**9 values: refused in a second, with a short line,
    both when printing the config and when training (which would save and echo it)."""
    config = tmp_path / "bomb.yaml"
    config.write_text(ALIAS_BOMB)
    assert len(ALIAS_BOMB) < 500
    for args in (["--print-config"], ["--output-dir", tmp_path / "run"]):
        # a subprocess with a time limit: a bomb that got through would take the machine's memory, not just fail
        line = assert_clean_error(launcher("train.py", "--config", config, *args, timeout=60), "YAML aliases")
        assert len(line) < 300
    assert not (tmp_path / "run").exists()


def test_aliases_of_ordinary_size_still_load(tmp_path):
    config = tmp_path / "aliases.yaml"
    config.write_text("hidden_sizes: &sizes [32, 32]\nenv_kwargs: {sizes: *sizes}\n")
    assert load_config(TrainConfig, config).hidden_sizes == [32, 32]


@pytest.mark.parametrize(
    "text, overrides, fragments",
    [
        ("inner_lr: 0.1\nseed: 2\ninner_lr: 0.5\n", [], ["gives key 'inner_lr' twice (lines 1 and 3)"]),
        ("trpo:\n  max_kl: 0.01\n  max_kl: 0.02\n", [], ["gives key 'max_kl' twice (lines 2 and 3)"]),
        ("", ["env_kwargs={a: 1, a: 2}"], ["--set env_kwargs gives key 'a' twice"]),
    ],
    ids=["top-level", "in-a-section", "in-a-set-value"],
)
def test_a_key_given_twice_is_refused(tmp_path, text, overrides, fragments):
    """YAML would take the second silently, dropping a setting the user wrote."""
    config = tmp_path / "twice.yaml"
    config.write_text(text)
    with pytest.raises(ConfigError) as error:
        load_config(TrainConfig, config, overrides)
    for fragment in fragments:
        assert fragment in str(error.value)


@pytest.mark.parametrize(
    "override", ["hidden_sizes=" + "x" * 5000, "x" * 5000, "inner_lr=" + "[" * 5000], ids=["value", "no-equals", "yaml"]
)
def test_a_long_bad_value_is_echoed_cut_short(override):
    with pytest.raises(ConfigError) as error:
        load_config(TrainConfig, None, [override]).validate()
    assert len(str(error.value)) < 400


def test_a_yaml_syntax_error_names_the_file_not_a_string(tmp_path):
    config = tmp_path / "tabs.yaml"
    config.write_text("inner_lr:\t0.1\n")
    with pytest.raises(ConfigError) as error:
        load_config(TrainConfig, config)
    assert f'in "config file {config}", line 1' in str(error.value) and "<unicode string>" not in str(error.value)
