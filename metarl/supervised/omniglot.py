"""Omniglot in its directory format, split by character into meta-train and meta-test, and N-way K-shot episodes.

The layout is the one the dataset ships in (https://github.com/brendenlake/omniglot, ``python/images_background.zip``
and ``python/images_evaluation.zip``): ``<root>/images_background/<alphabet>/<character>/*.png`` and the same under
``images_evaluation``; 1623 characters with 20 drawings each, 105×105. A root that holds alphabet folders directly
(e.g. MAML's ``omniglot_resized``) works too.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from metarl.supervised.config import OmniglotConfig
from metarl.supervised.image_classes import DatasetError, FewShotSplits, ImageClasses

SUBSETS = ("images_background", "images_evaluation")
IMAGE_SUFFIXES = {".png"}


@dataclass(frozen=True)
class Character:
    alphabet: str
    name: str
    image_paths: tuple[Path, ...]


def find_characters(root: Path) -> list[Character]:
    """Every character folder under ``root``, sorted, so the same directory always gives the same list."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(
            f"{root} is not a directory; pass the folder holding images_background/ "
            "(see docs/SUPERVISED.md for where to get Omniglot)"
        )
    subsets = [root / name for name in SUBSETS if (root / name).is_dir()] or [root]
    characters = []
    for subset in subsets:
        for alphabet in sorted(p for p in subset.iterdir() if p.is_dir()):
            for character in sorted(p for p in alphabet.iterdir() if p.is_dir()):
                paths = tuple(sorted(p for p in character.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES))
                if paths:
                    characters.append(Character(alphabet.name, character.name, paths))
    if len(characters) < 2:  # a split needs a meta-training and a meta-test character
        found = "no <alphabet>/<character>/*.png folders" if not characters else "only one character folder"
        missing = "" if (root / SUBSETS[0]).is_dir() else f" and no {SUBSETS[0]}/ folder"
        raise DatasetError(
            f"{found}{missing} under {root}; expected {root}/images_background/<alphabet>/<character>/*.png"
        )
    return characters


def load_image(path: Path, image_size: int) -> np.ndarray:
    """Grayscale, resized, scaled to [0, 1] and inverted so strokes are 1 and paper 0 (as in MAML's code)."""
    with Image.open(path) as image:
        resized = image.convert("L").resize((image_size, image_size), resample=Image.Resampling.LANCZOS)
    return 1.0 - np.asarray(resized, dtype=np.float32) / 255.0


def split_characters(characters: list[Character], num_train: int, seed: int) -> tuple[list[Character], list[Character]]:
    """Shuffle the characters with ``seed`` and take ``num_train`` for meta-training, the rest for meta-test.

    MAML's code does the same with 1200 of the 1623 characters (its own shuffle, Python's ``random.seed(1)``,
    so the exact characters differ). Splitting characters, not rotated classes, keeps every rotation of a
    meta-test character out of meta-training.
    """
    if not 0 < num_train < len(characters):
        raise DatasetError(
            f"num_train_characters must be between 1 and {len(characters) - 1} for this dataset "
            f"of {len(characters)} characters, got {num_train}"
        )
    order = np.random.default_rng(seed).permutation(len(characters))
    shuffled = [characters[i] for i in order]
    return shuffled[:num_train], shuffled[num_train:]


class OmniglotClasses(ImageClasses):
    """The classes of one split: each character, and with ``rotations`` each of its 90° rotations, is a class."""

    unit = "drawings"

    def __init__(self, characters: list[Character], image_size: int = 28, rotations: bool = True):
        self.characters = characters
        self.rotations = (0, 1, 2, 3) if rotations else (0,)
        self.images = [np.stack([load_image(p, image_size) for p in c.image_paths]) for c in characters]

    @property
    def num_classes(self) -> int:
        return len(self.characters) * len(self.rotations)

    def class_images(self, class_index: int) -> np.ndarray:
        """All drawings of a class, [drawings, H, W]: class ``c·R + r`` is character c rotated by r·90°."""
        character, rotation = divmod(class_index, len(self.rotations))
        return np.rot90(self.images[character], k=self.rotations[rotation], axes=(1, 2))

    def class_size(self, class_index: int) -> int:
        return len(self.images[class_index // len(self.rotations)])

    def images_of(self, class_index: int, which: np.ndarray) -> np.ndarray:
        return self.class_images(class_index)[which]

    def as_inputs(self, images: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(images).unsqueeze(2)


def load_omniglot(
    root: Path, num_train_characters: int, split_seed: int, image_size: int = 28, rotations: bool = True
) -> tuple[OmniglotClasses, OmniglotClasses]:
    """(meta-train classes, meta-test classes) from an Omniglot-format directory."""
    train, test = split_characters(find_characters(root), num_train_characters, split_seed)
    return OmniglotClasses(train, image_size, rotations), OmniglotClasses(test, image_size, rotations)


def omniglot_splits(root: Path, config: OmniglotConfig) -> FewShotSplits:
    """The config's meta-train and meta-test classes; Omniglot's split has no validation classes."""
    train, test = load_omniglot(
        root, config.num_train_characters, config.split_seed, config.image_size, config.rotations
    )
    sizes = {"meta_train_characters": len(train.characters), "meta_test_characters": len(test.characters)}
    return FewShotSplits(train, None, test, sizes)
