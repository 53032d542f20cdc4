"""The classes of one split of an image dataset and the N-way K-shot episodes drawn from them.

Omniglot and MiniImagenet differ in how their images are stored and what a network sees of them; how an
episode is drawn (N distinct classes, K support and Q query images per class, no image twice) is the same
and lives here once.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import torch

from metarl.supervised.tasks import TaskBatch


class DatasetError(ValueError):
    """The data directory cannot be used; the message says what was expected."""


class ImageClasses(ABC):
    """A split's classes. A subclass says how many images each class has, how to fetch some of them, and how
    stacked images become network inputs."""

    unit = "images"
    """How messages name one image of a class (Omniglot's are drawings)."""
    split_name = "this split"
    """How messages name the split, e.g. 'val.csv'."""

    @property
    @abstractmethod
    def num_classes(self) -> int: ...

    @abstractmethod
    def class_size(self, class_index: int) -> int:
        """How many images the class has."""

    @abstractmethod
    def images_of(self, class_index: int, which: np.ndarray) -> np.ndarray:
        """The class's images at the indices ``which`` (0 ≤ i < class_size), in that order, stacked."""

    @abstractmethod
    def as_inputs(self, images: np.ndarray) -> torch.Tensor:
        """Stacked episodes' images [T, n, *stored shape] as the network's float inputs [T, n, C, H, W]."""

    @cached_property
    def smallest_class(self) -> int:
        return min(self.class_size(c) for c in range(self.num_classes))

    def check_episodes(self, num_ways: int, num_shots: int, num_query: int) -> None:
        """Refuse episodes this split cannot serve, naming the setting to lower."""
        if num_ways > self.num_classes:
            raise DatasetError(
                f"num_ways={num_ways} is more than the {self.num_classes} classes of {self.split_name}; "
                "lower num_ways or use a split with more classes"
            )
        if num_shots + num_query > self.smallest_class:
            raise DatasetError(
                f"num_shots + num_query = {num_shots + num_query} {self.unit} per class are needed, but some "
                f"classes of {self.split_name} have only {self.smallest_class}; lower num_shots or num_query"
            )

    def sample_episodes(
        self, num_tasks: int, num_ways: int, num_shots: int, num_query: int, rng: np.random.Generator
    ) -> TaskBatch:
        """``num_tasks`` N-way K-shot tasks: N distinct classes labelled 0..N−1 in random order, K support and
        ``num_query`` query images per class, never the same image twice in a task.

        Inputs are [T, N·K, C, H, W] (support) and [T, N·Q, C, H, W] (query); targets are int64 labels.
        """
        self.check_episodes(num_ways, num_shots, num_query)
        support, query = [], []
        for _ in range(num_tasks):
            classes = rng.choice(self.num_classes, size=num_ways, replace=False)
            images = [
                self.images_of(c, rng.choice(self.class_size(c), size=num_shots + num_query, replace=False))
                for c in classes
            ]
            support.append(np.concatenate([i[:num_shots] for i in images]))
            query.append(np.concatenate([i[num_shots:] for i in images]))
        labels = np.arange(num_ways)
        support_labels = torch.as_tensor(np.repeat(labels, num_shots)).expand(num_tasks, -1)
        query_labels = torch.as_tensor(np.repeat(labels, num_query)).expand(num_tasks, -1)
        return TaskBatch(
            self.as_inputs(np.stack(support)),
            support_labels.contiguous(),
            self.as_inputs(np.stack(query)),
            query_labels.contiguous(),
        )


@dataclass(frozen=True)
class FewShotSplits:
    """A dataset's classes for meta-training, choosing the checkpoint, and the reported test."""

    train: ImageClasses
    validation: ImageClasses | None
    """None where the dataset has no validation classes (Omniglot's split): the last checkpoint is tested."""
    test: ImageClasses
    sizes: dict[str, int] = field(default_factory=dict)
    """What evaluation.json says about the split besides class counts, e.g. {"meta_train_characters": 1200}."""

    def named(self) -> dict[str, ImageClasses]:
        splits = {"meta-train": self.train, "validation": self.validation, "meta-test": self.test}
        return {name: classes for name, classes in splits.items() if classes is not None}
