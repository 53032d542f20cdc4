"""The Omniglot-format loader and episode sampler on a small generated dataset, and a short training run."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from omniglot_data import write_synthetic_omniglot
from PIL import Image

from metarl.supervised.models import ConvClassifier
from metarl.supervised.omniglot import (
    DatasetError,
    OmniglotClasses,
    find_characters,
    load_omniglot,
    split_characters,
)


@pytest.fixture(scope="module")
def omniglot_dir(tmp_path_factory) -> Path:
    """4 alphabets × 8 characters × 6 drawings of 105×105 PNGs, in images_background/ and images_evaluation/."""
    return write_synthetic_omniglot(
        tmp_path_factory.mktemp("omniglot"), num_alphabets=4, characters_per_alphabet=8, drawings_per_character=6
    )


def test_directory_format_is_found(omniglot_dir):
    characters = find_characters(omniglot_dir)
    assert len(characters) == 32 and len({(c.alphabet, c.name) for c in characters}) == 32
    assert all(len(c.image_paths) == 6 for c in characters)
    assert {p.parts[-4] for c in characters for p in c.image_paths} == {"images_background", "images_evaluation"}
    with Image.open(characters[0].image_paths[0]) as image:
        assert image.size == (105, 105)
    assert find_characters(omniglot_dir / "images_background") != characters  # alphabet folders directly also work


def test_missing_or_empty_directory_is_a_clear_error(tmp_path):
    with pytest.raises(DatasetError, match="is not a directory"):
        find_characters(tmp_path / "nowhere")
    with pytest.raises(DatasetError, match="images_background/<alphabet>/<character>"):
        find_characters(tmp_path)


def test_class_counts_and_image_format(omniglot_dir):
    train, test = load_omniglot(omniglot_dir, num_train_characters=20, split_seed=1)
    assert (len(train.characters), len(test.characters)) == (20, 12)
    assert (train.num_classes, test.num_classes) == (80, 48)  # 4 rotations each
    assert OmniglotClasses(train.characters[:3], rotations=False).num_classes == 3
    images = train.images[0]
    assert images.shape == (6, 28, 28) and images.dtype == np.float32
    assert images.min() >= 0.0 and images.max() <= 1.0
    assert (images > 0.5).mean() < 0.5  # inverted: strokes are 1 on a background of 0


def test_rotations_are_90_degree_turns_of_the_same_drawings(omniglot_dir):
    classes = OmniglotClasses(find_characters(omniglot_dir)[:2])
    upright = classes.class_images(4)  # character 1, 0°
    for r in range(4):
        np.testing.assert_array_equal(classes.class_images(4 + r), np.rot90(upright, k=r, axes=(1, 2)))
    assert not np.array_equal(classes.class_images(5), upright)


def test_meta_train_and_meta_test_share_no_character(omniglot_dir):
    characters = find_characters(omniglot_dir)
    train, test = split_characters(characters, 20, seed=1)
    key = lambda c: (c.alphabet, c.name)  # noqa: E731
    assert not {key(c) for c in train} & {key(c) for c in test}
    assert {key(c) for c in train} | {key(c) for c in test} == {key(c) for c in characters}
    assert [key(c) for c in split_characters(characters, 20, seed=1)[0]] == [key(c) for c in train]
    assert [key(c) for c in split_characters(characters, 20, seed=2)[0]] != [key(c) for c in train]
    train_pixels = {c.image_paths[0] for c in train}
    assert not train_pixels & {c.image_paths[0] for c in test}
    with pytest.raises(DatasetError, match="num_train_characters"):
        split_characters(characters, 32, seed=1)


@pytest.mark.parametrize("num_ways, num_shots, num_query", [(5, 1, 1), (3, 2, 4)])
def test_episode_shapes_and_labels(omniglot_dir, num_ways, num_shots, num_query):
    train, _ = load_omniglot(omniglot_dir, 20, 1)
    batch = train.sample_episodes(7, num_ways, num_shots, num_query, np.random.default_rng(0))
    assert batch.support_inputs.shape == (7, num_ways * num_shots, 1, 28, 28)
    assert batch.query_inputs.shape == (7, num_ways * num_query, 1, 28, 28)
    assert batch.support_targets.shape == (7, num_ways * num_shots) and batch.support_targets.dtype == torch.int64
    for t in range(7):
        for label in range(num_ways):
            assert (batch.support_targets[t] == label).sum() == num_shots
            assert (batch.query_targets[t] == label).sum() == num_query
        images = torch.cat([batch.support_inputs[t], batch.query_inputs[t]]).flatten(1)
        assert torch.unique(images, dim=0).shape[0] == images.shape[0]  # no drawing twice in a task
    same = train.sample_episodes(7, num_ways, num_shots, num_query, np.random.default_rng(0))
    assert torch.equal(same.query_inputs, batch.query_inputs)
    logits = ConvClassifier(num_ways)(batch.support_inputs[0])
    assert logits.shape == (num_ways * num_shots, num_ways)


def test_episode_requests_the_split_cannot_serve_are_errors(omniglot_dir):
    train, _ = load_omniglot(omniglot_dir, 20, 1, rotations=False)
    with pytest.raises(DatasetError, match="drawings per class"):
        train.sample_episodes(1, 5, 4, 3, np.random.default_rng(0))
    with pytest.raises(DatasetError, match="num_ways=21"):
        train.sample_episodes(1, 21, 1, 1, np.random.default_rng(0))


@pytest.mark.slow
def test_short_omniglot_training_beats_chance(launcher, omniglot_dir, tmp_path):
    """5-way 1-shot on meta-test characters never seen in meta-training: chance is 0.2.

    On this easy stand-in a random conv net fine-tuned for 3 steps is already well above chance, so the
    run must also show meta-training at work: the post-adaptation query loss falls over the run.
    """
    run_dir = tmp_path / "run"
    result = launcher(
        "omniglot.py",
        "--data",
        str(omniglot_dir),
        "--output-dir",
        str(run_dir),
        "--set",
        "num_train_characters=20",
        "--set",
        "num_iterations=60",
        "--set",
        "meta_batch_size=4",
        "--set",
        "num_filters=16",
        "--set",
        "num_query=2",
        "--set",
        "eval_tasks=100",
        "--set",
        "eval_every=0",
        "--set",
        "log_every=20",
        timeout=400,
    )
    assert result.returncode == 0, result.stderr
    evaluation = json.loads((run_dir / "evaluation.json").read_text())
    assert evaluation["meta_train_characters"] == 20 and evaluation["meta_test_characters"] == 12
    accuracy = evaluation["accuracy"]["step_3"]
    assert accuracy["mean"] - accuracy["ci95"] > 0.4, evaluation["accuracy"]
    assert (run_dir / "checkpoints" / "latest.pt").is_file() and (run_dir / "config.yaml").is_file()
    post_losses = [
        float(re.search(r"query_post_adaptation ([0-9.]+)", line).group(1))
        for line in result.stdout.splitlines()
        if line.startswith("iter ")
    ]
    assert len(post_losses) == 3 and post_losses[-1] < 0.85 * post_losses[0], post_losses


def test_omniglot_launcher_reports_a_bad_data_directory_in_one_line(launcher, tmp_path):
    result = launcher("omniglot.py", "--data", str(tmp_path / "missing"), "--output-dir", str(tmp_path / "run"))
    assert result.returncode == 2 and result.stderr.startswith("error: ") and result.stderr.count("\n") == 1
    assert "is not a directory" in result.stderr and not (tmp_path / "run").exists()


def test_a_folder_without_images_background_is_named_in_one_line(launcher, tmp_path):
    """A folder holding a single character and no images_background/ was 'num_train_characters must be between
    1 and 0'; the one line now names the folder that is missing."""
    data = write_synthetic_omniglot(tmp_path / "omniglot", 1, characters_per_alphabet=1, drawings_per_character=2)
    result = launcher("omniglot.py", "--data", str(data / "images_background"), "--output", str(tmp_path / "run"))
    assert result.returncode == 2 and result.stderr.startswith("error: ") and result.stderr.count("\n") == 1
    assert "only one character folder and no images_background/ folder under" in result.stderr, result.stderr
    assert "between 1 and" not in result.stderr and not (tmp_path / "run").exists()
