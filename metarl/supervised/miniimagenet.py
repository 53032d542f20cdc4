"""MiniImagenet in the split layout of Ravi & Larochelle (2017), with its images decoded once and cached.

The layout is the one the split files are used in: ``DIR/images/*.jpg`` and ``DIR/train.csv``, ``val.csv`` and
``test.csv``, each with a ``filename,label`` header and one line per image (64, 16 and 20 classes of 600 images).
Decoding and resizing 60,000 JPEGs takes minutes, and a user runs the benchmark many times: each split's images
are kept as one uint8 array ``DIR/metarl-cache/<split>-<size>px-<hash of the CSV>.npy`` that later runs map
from disk in a second.
"""

from __future__ import annotations

import csv
import hashlib
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from metarl.checkpoint import atomic_write_bytes
from metarl.supervised.config import MiniImagenetConfig
from metarl.supervised.image_classes import DatasetError, FewShotSplits, ImageClasses

SPLITS = {"train": "meta-train", "val": "validation", "test": "meta-test"}
CACHE_DIR = "metarl-cache"
LAYOUT = "DIR must hold images/ and the split files train.csv, val.csv and test.csv (see docs/SUPERVISED.md)"


class MiniImagenetClasses(ImageClasses):
    """One split's classes, from its images (uint8 [n, H, W, 3], possibly mapped from the cache) and labels."""

    def __init__(self, images: np.ndarray, labels: Sequence[str], split_name: str):
        self.images = images
        self.split_name = split_name
        self.class_names = sorted(set(labels))
        index = {name: i for i, name in enumerate(self.class_names)}
        label_ids = np.array([index[label] for label in labels])
        self.members = [np.flatnonzero(label_ids == c) for c in range(len(self.class_names))]

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def class_size(self, class_index: int) -> int:
        return len(self.members[class_index])

    def images_of(self, class_index: int, which: np.ndarray) -> np.ndarray:
        return self.images[self.members[class_index][which]]

    def as_inputs(self, images: np.ndarray) -> torch.Tensor:
        """uint8 [T, n, H, W, 3] → float [T, n, 3, H, W] in [0, 1], as MAML's code scales them."""
        return torch.from_numpy(np.ascontiguousarray(images)).permute(0, 1, 4, 2, 3).float().div_(255).contiguous()


def read_split(root: Path, split: str) -> tuple[list[str], list[str], bytes]:
    """(file names, labels, the CSV's bytes) of ``root/<split>.csv``."""
    path = root / f"{split}.csv"
    if not path.is_file():
        raise DatasetError(f"{path} does not exist; {LAYOUT}")
    try:
        raw = path.read_bytes()
        rows = list(csv.reader(raw.decode("utf-8-sig").splitlines()))
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise DatasetError(f"{path} cannot be read ({type(error).__name__}); {LAYOUT}") from None
    if not rows or [cell.strip().lower() for cell in rows[0]] != ["filename", "label"]:
        raise DatasetError(f"{path} must start with the header line 'filename,label'; {LAYOUT}")
    names, labels = [], []
    for line, row in enumerate(rows[1:], start=2):
        if len(row) != 2 or not row[0].strip() or not row[1].strip():
            raise DatasetError(f"{path} line {line} is not 'filename,label': {row!r}")
        names.append(row[0].strip())
        labels.append(row[1].strip())
    if not names:
        raise DatasetError(f"{path} names no images; {LAYOUT}")
    return names, labels, raw


def load_image(path: Path, image_size: int) -> np.ndarray:
    """RGB, resized to image_size × image_size (Lanczos, as MAML's preprocessing script), uint8 [H, W, 3]."""
    with Image.open(path) as image:
        resized = image.convert("RGB").resize((image_size, image_size), resample=Image.Resampling.LANCZOS)
    return np.asarray(resized, dtype=np.uint8)


def decode_split(root: Path, split: str, names: list[str], image_size: int) -> np.ndarray:
    """Every image the split names, checked to exist before minutes of decoding start."""
    images_dir = root / "images"
    missing = [line for line, name in enumerate(names, start=2) if not (images_dir / name).is_file()]
    if missing:
        others = f" (nor {len(missing) - 1} more files {split}.csv names)" if len(missing) > 1 else ""
        first = images_dir / names[missing[0] - 2]
        raise DatasetError(
            f"{first}, named in {split}.csv line {missing[0]}, does not exist{others}; "
            f"put every image the split files name in {images_dir}"
        )
    images = np.empty((len(names), image_size, image_size, 3), dtype=np.uint8)
    for row, name in enumerate(names):
        try:
            images[row] = load_image(images_dir / name, image_size)
        except (OSError, ValueError, Image.DecompressionBombError) as error:
            raise DatasetError(
                f"{images_dir / name} ({split}.csv line {row + 2}) cannot be read as an image "
                f"({type(error).__name__}); replace it with the dataset's file"
            ) from None
    return images


def cached_split(
    root: Path, split: str, names: list[str], csv_bytes: bytes, image_size: int, log: Callable[[str], None]
) -> np.ndarray:
    """The split's images from the cache, decoded and cached first if the cache lacks them. The cache's name
    holds a hash of the CSV and the size, so an edited split file or another image_size is decoded afresh; a
    cache that cannot be written (a read-only DIR) only costs the decoding again next time."""
    digest = hashlib.sha256(csv_bytes + str(image_size).encode()).hexdigest()[:12]
    path = root / CACHE_DIR / f"{split}-{image_size}px-{digest}.npy"
    shape = (len(names), image_size, image_size, 3)
    if path.is_file():
        try:
            images = np.load(path, mmap_mode="r")
            if images.shape == shape and images.dtype == np.uint8:
                return images
        except (OSError, ValueError):
            pass  # damaged: decoded again below
    log(f"decoding {split}.csv: {len(names)} images to {image_size}×{image_size} (once; later runs read {path})")
    images = decode_split(root, split, names, image_size)
    try:
        atomic_write_bytes(path, lambda file: np.save(file, images))
    except OSError as error:
        log(f"warning: cannot write the cache {path} ({error.strerror}); the next run decodes the images again")
    return images


def load_miniimagenet(root: Path, image_size: int = 84, log: Callable[[str], None] = lambda _: None) -> FewShotSplits:
    """Meta-train, validation and meta-test classes from a MiniImagenet split directory; ``log`` hears of
    decoding (the first run) and of a cache that cannot be written."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"{root} is not a directory; {LAYOUT}")
    read = {split: read_split(root, split) for split in SPLITS}
    owner: dict[str, str] = {}
    for split, (_, labels, _) in read.items():
        for label in sorted(set(labels)):
            if owner.setdefault(label, split) != split:
                raise DatasetError(
                    f"class {label} is in both {owner[label]}.csv and {split}.csv; the splits must not share "
                    "classes (use the Ravi & Larochelle split files)"
                )
    classes = {
        split: MiniImagenetClasses(cached_split(root, split, names, raw, image_size, log), labels, f"{split}.csv")
        for split, (names, labels, raw) in read.items()
    }
    return FewShotSplits(classes["train"], classes["val"], classes["test"])


def miniimagenet_splits(root: Path, config: MiniImagenetConfig) -> FewShotSplits:
    """The config's splits, saying on the console when the images are decoded (the first run only)."""
    return load_miniimagenet(root, config.image_size, log=lambda line: print(line, flush=True))
