"""One name per quantity (issue 29): the earlier names (num_batches, fast_batch_size, fast_lr; evaluate's
--fast-batch-size, --step-size, --later-step-size) keep working wherever a user or a committed file says them."""

import json
from pathlib import Path

import pytest
import torch
import yaml
from conftest import REPO_ROOT
from run_helpers import launcher_main, launcher_module

from metarl.api import make_config
from metarl.config import ALIASES, ConfigError, TrainConfig, load_config, to_dict
from metarl.evaluation import load_policy_checkpoint, load_run_config
from metarl.experiment_run import resumed_config

RESULTS = REPO_ROOT / "results"
DEFAULT_CONFIG = REPO_ROOT / "launchers" / "configs" / "2d-navigation.yaml"
OLD_NAMES = {new: old for old, new in ALIASES.items()}


def with_old_names(config: dict) -> dict:
    return {OLD_NAMES.get(key, key): value for key, value in config.items()}


def test_a_committed_run_s_old_name_config_loads_as_its_renamed_version(tmp_path):
    committed = RESULTS / "halfcheetah-dir"
    saved = yaml.safe_load((committed / "config.yaml").read_text())
    assert {"num_batches", "fast_batch_size", "fast_lr"} <= saved.keys()  # what every committed run says
    renamed = tmp_path / "renamed"
    renamed.mkdir()
    (renamed / "config.yaml").write_text(yaml.safe_dump({ALIASES.get(key, key): v for key, v in saved.items()}))
    config = load_run_config(committed)
    assert config == load_run_config(renamed)
    assert (config.num_iterations, config.episodes_per_task, config.inner_lr) == (200, 20, 0.1)


@pytest.mark.parametrize("old, new, value", [(old, new, 3) for old, new in ALIASES.items()])
def test_set_under_either_name_gives_the_same_config(old, new, value):
    notes: list[str] = []
    assert load_config(TrainConfig, DEFAULT_CONFIG, [f"{old}={value}"], notes.append) == load_config(
        TrainConfig, DEFAULT_CONFIG, [f"{new}={value}"], notes.append
    )
    assert notes == [f"note: {old} is now called {new} (read as {new}; the run's config.yaml says {new})"]


def test_a_config_file_under_old_names_extended_under_new_ones(tmp_path):
    """Each file is read in today's names before its base is merged beneath it: no key appears twice."""
    (tmp_path / "base.yaml").write_text("fast_lr: 0.2\nnum_batches: 7\n")
    (tmp_path / "leaf.yaml").write_text("extends: base.yaml\ninner_lr: 0.3\n")
    notes: list[str] = []
    config = load_config(TrainConfig, tmp_path / "leaf.yaml", ["fast_lr=0.4"], notes.append)
    assert (config.inner_lr, config.num_iterations) == (0.4, 7)
    assert [note.split()[1] for note in notes] == ["fast_lr", "num_batches"]  # one line per old name


@pytest.mark.parametrize(
    "text, overrides",
    [("fast_lr: 0.1\ninner_lr: 0.2\n", []), ("", ["num_batches=3", "num_iterations=4"])],
    ids=["config-file", "set"],
)
def test_a_key_under_both_names_is_an_error_naming_both(tmp_path, text, overrides):
    (tmp_path / "config.yaml").write_text(text)
    with pytest.raises(ConfigError, match=r"gives both (fast_lr and inner_lr|num_batches and num_iterations)"):
        load_config(TrainConfig, tmp_path / "config.yaml", overrides)
    with pytest.raises(ConfigError, match="gives both fast_batch_size and episodes_per_task"):
        make_config(fast_batch_size=2, episodes_per_task=3)


def test_a_new_run_under_an_old_name_says_so_once_and_saves_the_new_one(train, tiny_run_args, tmp_path):
    both = train(*tiny_run_args(inner_lr=0.3), "--set", "fast_lr=0.2", "--output-dir", tmp_path / "both")
    assert both.returncode == 2 and "gives both fast_lr and inner_lr" in both.stderr
    run_dir = tmp_path / "run"
    result = train(*tiny_run_args(num_iterations=1), "--set", "fast_lr=0.2", "--output-dir", run_dir, "--quiet")
    assert result.returncode == 0, result.stderr
    note = "note: fast_lr is now called inner_lr (read as inner_lr; the run's config.yaml says inner_lr)"
    assert result.stderr.splitlines() == [note]
    saved = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert saved["inner_lr"] == 0.2 and "fast_lr" not in saved


def test_the_list_of_keys_and_the_printed_config_say_the_new_names(capsys):
    assert launcher_main("train.py")(["--list-keys"]) == 0
    keys = {line.split()[0] for line in capsys.readouterr().out.splitlines()}
    assert {"num_iterations", "episodes_per_task", "inner_lr"} <= keys and not keys & ALIASES.keys()
    assert launcher_main("train.py")(["--print-config", "--set", "num_batches=3"]) == 0
    printed = capsys.readouterr()
    assert yaml.safe_load(printed.out)["num_iterations"] == 3
    assert printed.err.startswith("note: num_batches is now called num_iterations")


def test_an_old_name_run_resumes_extended_by_the_old_name_without_a_note(tiny_run_copy, train_here):
    """A committed run's config.yaml says num_batches; --set num_batches=N extends it, as before the rename."""
    config_file = tiny_run_copy / "config.yaml"
    config_file.write_text(yaml.safe_dump(with_old_names(yaml.safe_load(config_file.read_text()))))
    assert resumed_config(tiny_run_copy, ["num_batches=5"]) == resumed_config(tiny_run_copy, ["num_iterations=5"])
    with pytest.raises(ConfigError, match="cannot change inner_lr when resuming"):
        resumed_config(tiny_run_copy, ["fast_lr=0.2"])
    result = train_here("--resume", tiny_run_copy, "--set", "num_batches=4", "--quiet")
    assert result.returncode == 0 and result.stderr == "", result.stderr
    assert torch.load(tiny_run_copy / "checkpoints" / "latest.pt", weights_only=True)["iteration"] == 4
    assert yaml.safe_load(config_file.read_text())["num_iterations"] == 4


def test_a_committed_checkpoint_s_config_is_read_in_the_new_names():
    state = load_policy_checkpoint(RESULTS / "ant-vel" / "checkpoints" / "latest.pt", "metarl/AntVel-v0", "cpu")
    assert state["config"]["num_iterations"] == 375 and "num_batches" not in state["config"]


@pytest.mark.parametrize(
    "old, new",
    [
        ("--fast-batch-size", "--episodes-per-task"),
        ("--step-size", "--inner-lr"),
        ("--later-step-size", "--later-inner-lr"),
    ],
)
def test_evaluate_takes_each_flag_under_either_name(old, new, capsys):
    parse = launcher_module("evaluate.py").parse_args
    assert vars(parse(["run", old, "3"])) == vars(parse(["run", new, "3"]))
    assert parse(["run", old, "3", old, "4"]) is not None  # one name twice: the last, as for any flag
    with pytest.raises(SystemExit):
        parse(["run", old, "3", new, "4"])
    assert f"{old} and {new} are two names of one flag" in capsys.readouterr().err


def test_an_old_evaluation_json_is_read_by_the_report_in_the_new_names(capsys):
    """Committed evaluations record episodes_per_step, step_size and the run's config under their old names."""
    committed = RESULTS / "ant-dir" / "evaluation" / "iter_000575-paper-protocol"
    raw = json.loads((committed / "evaluation.json").read_text())
    assert {"episodes_per_step", "step_size", "later_step_size"} <= raw["config"]["evaluation"].keys()
    results = launcher_module("report.py").load_evaluation(committed)
    assert (results["config"]["evaluation"]["episodes_per_task"], results["paper"]["episodes_per_task"]) == (40, 40)
    assert results["config"]["evaluation"]["later_inner_lr"] == raw["config"]["evaluation"]["later_step_size"]
    assert results["config"]["run"]["num_iterations"] == 575
    assert launcher_main("report.py")([str(committed)]) == 0
    assert "whole episodes until 40 × horizon env steps per step" in capsys.readouterr().out


def test_the_api_reads_old_names_too(capsys):
    config = make_config("halfcheetah-dir", num_batches=7, fast_lr=0.05)
    assert (config.num_iterations, config.inner_lr) == (7, 0.05)
    assert len(capsys.readouterr().err.splitlines()) == 2
    assert to_dict(config) == to_dict(make_config("halfcheetah-dir", num_iterations=7, inner_lr=0.05))


def test_no_committed_config_file_uses_an_old_name():
    configs = sorted(Path(REPO_ROOT / "launchers" / "configs").rglob("*.yaml"))
    assert configs
    for path in configs:
        assert not yaml.safe_load(path.read_text()).keys() & ALIASES.keys(), path
