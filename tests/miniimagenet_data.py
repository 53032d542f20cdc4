"""A tiny MiniImagenet stand-in in the Ravi & Larochelle layout, written by the tests (the package ships no data)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

CLASSES = {"train": 8, "val": 5, "test": 5}


def write_tiny_miniimagenet(
    root: Path, classes: dict[str, int] = CLASSES, images_per_class: int = 6, seed: int = 0
) -> Path:
    """``root/images/*.jpg`` and ``root/{train,val,test}.csv``. Each class is one random colour, each image that
    colour with pixel noise and a random size (the loader resizes), so a classifier can learn them."""
    rng = np.random.default_rng(seed)
    images = Path(root) / "images"
    images.mkdir(parents=True, exist_ok=True)
    first = 0
    for split, count in classes.items():
        rows = ["filename,label"]
        for label in range(first, first + count):
            colour = rng.integers(0, 256, size=3)
            for i in range(images_per_class):
                height, width = rng.integers(24, 48, size=2)
                pixels = np.clip(colour + rng.normal(0, 20, size=(height, width, 3)), 0, 255).astype(np.uint8)
                name = f"n{label:08d}{i:08d}.jpg"
                Image.fromarray(pixels).save(images / name, quality=90)
                rows.append(f"{name},n{label:08d}")
        (Path(root) / f"{split}.csv").write_text("\n".join(rows) + "\n")
        first += count
    return Path(root)
