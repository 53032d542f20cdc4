"""A small Omniglot stand-in in its directory format, written by the tests (the package ships no data)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from metarl.supervised.omniglot import SUBSETS


def write_synthetic_omniglot(
    root: Path,
    num_alphabets: int = 3,
    characters_per_alphabet: int = 6,
    drawings_per_character: int = 8,
    seed: int = 0,
    image_size: int = 105,
    jitter: float = 0.03,
) -> Path:
    """A small stand-in for Omniglot in the same directory format, for tests and smoke runs without the dataset.

    Each character is a few random pen strokes; each drawing of it jitters the stroke ends by a few
    pixels (``jitter`` × image size, standard deviation), so drawings of one character look alike and
    characters differ. Returns ``root``.
    """
    rng = np.random.default_rng(seed)
    root = Path(root)
    for a in range(num_alphabets):
        subset = SUBSETS[a % 2]
        for c in range(characters_per_alphabet):
            strokes = rng.uniform(0.15, 0.85, size=(int(rng.integers(2, 5)), 2, 2)) * image_size
            folder = root / subset / f"Alphabet_{a:02d}" / f"character{c + 1:02d}"
            folder.mkdir(parents=True, exist_ok=True)
            for d in range(drawings_per_character):
                image = Image.new("L", (image_size, image_size), color=255)
                draw = ImageDraw.Draw(image)
                for (x0, y0), (x1, y1) in strokes + rng.normal(0, image_size * jitter, size=strokes.shape):
                    draw.line([(x0, y0), (x1, y1)], fill=0, width=max(1, image_size // 15))
                image.save(folder / f"{a:02d}{c:02d}_{d + 1:02d}.png")
    return root
