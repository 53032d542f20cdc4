"""``extends:`` in config files: a family's configs state only what differs from their base, and resolve to the
whole config a run saves."""

import pytest
from conftest import run_launcher

from metarl.config import ConfigError, TrainConfig, load_config, load_yaml


def write(path, text):
    path.write_text(text)
    return path


def test_a_config_overrides_its_base_key_by_key_and_section_by_section(tmp_path):
    write(tmp_path / "base.yaml", "horizon: 200\ninner_lr: 0.1\ntrpo: {max_kl: 0.02, cg_iters: 5}\n")
    write(tmp_path / "middle.yaml", "extends: base.yaml\ninner_lr: 0.2\nenv_kwargs: {a: 1}\n")
    leaf = write(tmp_path / "leaf.yaml", "extends: middle.yaml\ntrpo: {cg_iters: 7}\nenv_kwargs: {b: 2}\n")
    assert load_yaml(leaf) == {
        "horizon": 200,
        "inner_lr": 0.2,
        "trpo": {"max_kl": 0.02, "cg_iters": 7},
        "env_kwargs": {"a": 1, "b": 2},
    }


def test_the_base_is_found_beside_the_extending_file_whatever_the_working_directory(tmp_path, monkeypatch):
    (tmp_path / "configs" / "base").mkdir(parents=True)
    write(tmp_path / "configs" / "base" / "common.yaml", "meta_batch_size: 3\n")
    leaf = write(tmp_path / "configs" / "leaf.yaml", "extends: base/common.yaml\n")
    monkeypatch.chdir(tmp_path.parent)
    assert load_config(TrainConfig, leaf).meta_batch_size == 3


@pytest.mark.parametrize(
    "files, fragments",
    [
        ({"leaf.yaml": "extends: nowhere.yaml\n"}, ["extends nowhere.yaml", "does not exist"]),
        ({"leaf.yaml": "extends: [a.yaml]\n"}, ["extends must name a config file", "['a.yaml']"]),
        ({"leaf.yaml": "extends: leaf.yaml\n"}, ["cycle", "leaf.yaml -> leaf.yaml"]),
        (
            {"leaf.yaml": "extends: a.yaml\n", "a.yaml": "extends: b.yaml\n", "b.yaml": "extends: a.yaml\n"},
            ["cycle", "a.yaml -> b.yaml -> a.yaml", "remove one extends"],
        ),
        ({"leaf.yaml": "extends: base.yaml\n", "base.yaml": "inner_lrr: 0.1\n"}, ["inner_lrr", "inner_lr"]),
    ],
    ids=["missing-base", "not-a-name", "extends-itself", "cycle", "bad-key-in-base"],
)
def test_a_bad_extends_is_one_error_naming_it(tmp_path, files, fragments):
    for name, text in files.items():
        write(tmp_path / name, text)
    with pytest.raises(ConfigError) as error:
        load_config(TrainConfig, tmp_path / "leaf.yaml")
    for fragment in fragments:
        assert fragment in str(error.value)


def test_extends_is_a_config_file_key_not_a_setting():
    with pytest.raises(ConfigError, match="unknown config key 'extends'"):
        load_config(TrainConfig, None, ["extends=halfcheetah-dir.yaml"])


def test_print_config_shows_the_resolved_whole():
    result = run_launcher("train.py", "--config", "halfcheetah-dir-promp", "--print-config")
    assert result.returncode == 0, result.stderr
    printed = result.stdout
    for line in ["env_id: metarl/HalfCheetahDir-v0", "horizon: 200", "meta_batch_size: 40", "algo: promp"]:
        assert line in printed
    assert "extends" not in printed
