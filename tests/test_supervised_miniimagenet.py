"""MiniImagenet's split layout, its image cache, the episode sampler, and short runs of the launcher (and of
Omniglot's, which shares its run) on tiny generated datasets: learning, evaluation.json, bad input, resume."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from miniimagenet_data import write_tiny_miniimagenet
from omniglot_data import write_synthetic_omniglot

from metarl.config import load_config
from metarl.supervised.config import MiniImagenetConfig
from metarl.supervised.image_classes import DatasetError
from metarl.supervised.meta_learning import MAML
from metarl.supervised.miniimagenet import CACHE_DIR, MiniImagenetClasses, load_miniimagenet
from metarl.supervised.models import ConvClassifier, conv_classifier_size

CONFIGS = Path(__file__).resolve().parents[1] / "launchers" / "configs"
TINY = {
    "image_size": 16,
    "num_filters": 8,
    "num_steps": 1,
    "eval_steps": 2,
    "meta_batch_size": 2,
    "num_query": 2,
    "eval_tasks": 40,
    "eval_every": 4,
    "eval_every_tasks": 10,
    "log_every": 2,
    "checkpoint_every": 2,
    "num_iterations": 8,
}


def tiny_args(data: Path, run_dir: Path, **changes: object) -> list[str]:
    settings = {**TINY, **changes}
    return ["--data", str(data), "--output", str(run_dir), "--quiet"] + [
        arg for key, value in settings.items() for arg in ("--set", f"{key}={value}")
    ]


@pytest.fixture(scope="module")
def miniimagenet_dir(tmp_path_factory) -> Path:
    """8 / 5 / 5 classes of 6 JPEGs in train.csv / val.csv / test.csv, one random colour per class."""
    return write_tiny_miniimagenet(tmp_path_factory.mktemp("miniimagenet"))


def test_the_split_layout_is_read_and_its_images_cached(miniimagenet_dir):
    splits = load_miniimagenet(miniimagenet_dir, image_size=84)
    assert [splits.train.num_classes, splits.validation.num_classes, splits.test.num_classes] == [8, 5, 5]
    assert splits.train.images.shape == (48, 84, 84, 3) and splits.train.images.dtype == np.uint8
    assert all(splits.train.class_size(c) == 6 for c in range(8))
    cached = sorted(p.name for p in (miniimagenet_dir / CACHE_DIR).iterdir())
    assert [name.split("-")[:2] for name in cached] == [["test", "84px"], ["train", "84px"], ["val", "84px"]]
    again = load_miniimagenet(miniimagenet_dir, image_size=84)
    assert isinstance(again.train.images, np.memmap)  # read from the cache, not decoded again
    np.testing.assert_array_equal(again.train.images, splits.train.images)
    colour = splits.train.images[0].reshape(-1, 3).mean(axis=0)
    assert np.abs(splits.train.images[:6].reshape(6, -1, 3).mean(axis=1) - colour).max() < 20  # one class, one colour


def test_splits_share_no_class(miniimagenet_dir, tmp_path):
    splits = load_miniimagenet(miniimagenet_dir, image_size=84)
    names = [set(classes.class_names) for classes in (splits.train, splits.validation, splits.test)]
    assert not (names[0] & names[1] or names[0] & names[2] or names[1] & names[2])
    shutil.copytree(miniimagenet_dir, tmp_path / "data", ignore=shutil.ignore_patterns(CACHE_DIR))
    train_row = (tmp_path / "data" / "train.csv").read_text().splitlines()[1]
    with (tmp_path / "data" / "test.csv").open("a") as test_csv:
        test_csv.write(train_row + "\n")
    with pytest.raises(DatasetError, match=r"class n00000000 is in both train.csv and test.csv"):
        load_miniimagenet(tmp_path / "data")


@pytest.mark.parametrize("num_ways, num_shots, num_query", [(5, 1, 15), (3, 5, 2)])
def test_episodes_hold_distinct_classes_with_k_shots_each(num_ways, num_shots, num_query):
    """Each stored image is filled with its class and its index in the class, so an episode can be read back."""
    num_classes, per_class = 9, 20
    images = np.zeros((num_classes * per_class, 16, 16, 3), dtype=np.uint8)
    labels = []
    for c in range(num_classes):
        for i in range(per_class):
            images[c * per_class + i, ..., 0], images[c * per_class + i, ..., 1] = c, i
            labels.append(f"n{c:08d}")
    classes = MiniImagenetClasses(images, labels, "train.csv")
    batch = classes.sample_episodes(6, num_ways, num_shots, num_query, np.random.default_rng(0))
    assert batch.support_inputs.shape == (6, num_ways * num_shots, 3, 16, 16)
    assert (
        batch.query_inputs.shape == (6, num_ways * num_query, 3, 16, 16) and batch.query_inputs.dtype == torch.float32
    )
    for t in range(6):
        inputs = torch.cat([batch.support_inputs[t], batch.query_inputs[t]])
        targets = torch.cat([batch.support_targets[t], batch.query_targets[t]])
        stored = (inputs[:, :2, 0, 0] * 255).round().long()  # (class, index) of each image
        assert len({tuple(row) for row in stored.tolist()}) == len(stored)  # no image twice
        class_of_label = {}
        for (c, _), label in zip(stored.tolist(), targets.tolist(), strict=True):
            assert class_of_label.setdefault(label, c) == c  # one class per label
        assert len(set(class_of_label.values())) == num_ways
        for label in range(num_ways):
            assert (batch.support_targets[t] == label).sum() == num_shots
            assert (batch.query_targets[t] == label).sum() == num_query
    with pytest.raises(DatasetError, match="num_ways=10 is more than the 9 classes of train.csv; lower num_ways"):
        classes.sample_episodes(1, 10, 1, 1, np.random.default_rng(0))


def test_the_default_config_has_the_paper_values():
    config = load_config(MiniImagenetConfig, CONFIGS / "miniimagenet.yaml").validate()
    assert (config.num_ways, config.num_shots, config.num_query) == (5, 1, 15)
    assert (config.inner_lr, config.num_steps, config.eval_steps) == (0.01, 5, 10)
    assert (config.meta_batch_size, config.meta_lr, config.num_iterations) == (4, 0.001, 60000)
    assert (config.num_filters, config.image_size, config.algorithm, config.first_order) == (32, 84, "maml", False)
    reptile = load_config(MiniImagenetConfig, CONFIGS / "miniimagenet-reptile.yaml").validate()
    assert (reptile.algorithm, reptile.num_steps, reptile.meta_batch_size, reptile.eval_steps) == ("reptile", 19, 2, 55)


@pytest.mark.parametrize("image_size, num_filters, in_channels", [(84, 32, 3), (28, 64, 1), (21, 5, 3)])
def test_the_memory_check_counts_the_network_it_checks(image_size, num_filters, in_channels):
    model = ConvClassifier(5, in_channels, num_filters, image_size=image_size)
    parameters, _ = conv_classifier_size(5, in_channels, num_filters, image_size)
    assert parameters == sum(p.numel() for p in model.parameters())


def test_a_short_run_learns_above_chance_and_writes_evaluation_json(launcher_here, miniimagenet_dir, tmp_path):
    run_dir = tmp_path / "run"
    result = launcher_here("miniimagenet.py", *tiny_args(miniimagenet_dir, run_dir, num_iterations=20, eval_tasks=100))
    assert result.returncode == 0, result.stderr
    evaluation = json.loads((run_dir / "evaluation.json").read_text())
    accuracy, chance = evaluation["accuracy"]["step_2"], evaluation["chance"]
    assert chance == 0.2 and accuracy["mean"] - accuracy["ci95"] > 0.3, evaluation["accuracy"]
    assert accuracy["mean"] > evaluation["accuracy_before_meta_training"]["step_2"]["mean"]
    assert evaluation["classes"] == {"meta-train": 8, "validation": 5, "meta-test": 5}
    chosen = evaluation["chosen_checkpoint"]
    assert chosen["iteration"] in (4, 8, 12, 16, 20) and chosen["validation_tasks"] == 10
    assert f"checkpoint of iteration {chosen['iteration']} (best on validation)" in result.stdout
    state = torch.load(run_dir / "checkpoints" / "latest.pt", weights_only=True)
    assert state["method"] == "miniimagenet" and state["chosen"]["iteration"] == chosen["iteration"]


def omniglot_run(data: Path, run_dir: Path) -> list[str]:
    sizes = ["num_train_characters=20", "num_iterations=6", "meta_batch_size=2", "num_filters=8", "num_query=2"]
    sizes += ["eval_tasks=20", "eval_every=2", "eval_every_tasks=5", "log_every=2", "checkpoint_every=2"]
    return ["--data", str(data), "--output", str(run_dir), "--quiet"] + [a for s in sizes for a in ("--set", s)]


@pytest.mark.parametrize("script", ["miniimagenet.py", "omniglot.py"])
def test_a_run_stopped_and_resumed_gives_the_uninterrupted_run_s_numbers(
    script, launcher_here, miniimagenet_dir, tmp_path, monkeypatch
):
    """Ctrl-C injected in the 5th meta-step (after the checkpoint of iteration 4), then --resume."""
    if script == "omniglot.py":
        data = write_synthetic_omniglot(tmp_path / "omniglot", num_alphabets=2, characters_per_alphabet=12)
        args = lambda run_dir: omniglot_run(data, run_dir)  # noqa: E731
    else:
        data = miniimagenet_dir
        args = lambda run_dir: tiny_args(data, run_dir)  # noqa: E731
    assert launcher_here(script, *args(tmp_path / "whole")).returncode == 0

    meta_step, calls = MAML.meta_step, []

    def stopped_in_the_fifth(self, batch):
        calls.append(None)
        if len(calls) == 5:
            raise KeyboardInterrupt
        return meta_step(self, batch)

    with monkeypatch.context() as patch:
        patch.setattr(MAML, "meta_step", stopped_in_the_fifth)
        stopped = launcher_here(script, *args(tmp_path / "parts"))
    assert stopped.returncode == 130 and "interrupted after 4 iterations" in stopped.stderr, stopped.stderr
    assert f"--resume {tmp_path / 'parts'}" in stopped.stderr and not (tmp_path / "parts" / "evaluation.json").exists()
    resumed = launcher_here(script, "--data", data, "--resume", tmp_path / "parts", "--quiet")
    assert resumed.returncode == 0, resumed.stderr

    whole, parts = (json.loads((tmp_path / run / "evaluation.json").read_text()) for run in ("whole", "parts"))
    for key in ("accuracy", "accuracy_before_meta_training", "chosen_checkpoint"):
        assert whole.get(key) == parts.get(key), key
    first, second = (torch.load(tmp_path / run / "checkpoints" / "latest.pt") for run in ("whole", "parts"))
    for name in first["model"]:
        assert torch.equal(first["model"][name], second["model"][name]), name
    adam = first["learner"]["optimizer"]["state"], second["learner"]["optimizer"]["state"]
    assert all(torch.equal(adam[0][i]["exp_avg_sq"], adam[1][i]["exp_avg_sq"]) for i in adam[0])


def test_resume_refuses_a_setting_that_would_change_the_numbers(launcher_here, assert_clean_error, tmp_path):
    data = write_tiny_miniimagenet(tmp_path / "data", {"train": 5, "val": 5, "test": 5}, images_per_class=4)
    assert launcher_here("miniimagenet.py", *tiny_args(data, tmp_path / "run", num_iterations=2)).returncode == 0
    result = launcher_here("miniimagenet.py", "--data", data, "--resume", tmp_path / "run", "--set", "inner_lr=0.1")
    assert_clean_error(result, "cannot change inner_lr when resuming (only checkpoint_every, device, num_iterations)")


def break_first_image(root: Path) -> None:
    (root / "images" / "n0000000000000000.jpg").write_bytes(b"not a jpeg")


def drop_first_image(root: Path) -> None:
    (root / "images" / "n0000000000000000.jpg").unlink()


@pytest.mark.parametrize(
    "damage, overrides, fragments",
    [
        (lambda root: (root / "val.csv").unlink(), [], ["val.csv does not exist", "DIR must hold images/"]),
        (drop_first_image, [], ["n0000000000000000.jpg, named in train.csv line 2, does not exist", "put every"]),
        (break_first_image, [], ["n0000000000000000.jpg (train.csv line 2) cannot be read as an image", "replace"]),
        (lambda root: None, ["num_ways=6"], ["num_ways=6 is more than the 5 classes of val.csv; lower num_ways"]),
        (lambda root: None, ["meta_batch_size=100000000"], ["a meta-iteration needs at least", "lower meta_batch"]),
        (lambda root: None, ["device=cuda"], ["device 'cuda' was asked for but CUDA is not available here"]),
    ],
    ids=["missing-csv", "missing-image", "unreadable-image", "fewer-classes-than-ways", "memory", "no-cuda"],
)
def test_bad_input_is_one_line_naming_the_problem_and_the_fix(
    launcher_here, assert_clean_error, tmp_path, monkeypatch, damage, overrides, fragments
):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    data = write_tiny_miniimagenet(tmp_path / "data", images_per_class=4)
    damage(data)
    result = launcher_here(
        "miniimagenet.py", *tiny_args(data, tmp_path / "run"), *[a for o in overrides for a in ("--set", o)]
    )
    assert_clean_error(result, *fragments, started=True)  # started: the first run says it is decoding
    assert not (tmp_path / "run").exists()
