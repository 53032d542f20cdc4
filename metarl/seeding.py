"""Named random streams. Every generator is keyed by (seed, stream, ...) so no two uses overlap.

Training and evaluation draw tasks from different streams, so test tasks are never training tasks
for the same seed (up to the continuous distributions' zero-probability collisions).
"""

from __future__ import annotations

import numpy as np
import torch

TRAIN_TASKS = 0
TRAIN_EPISODES = 1
EVAL_TASKS = 2
EVAL_EPISODES = 3
POLICY_INIT = 4
EVAL_POLICY_INIT = 5
"""The randomly initialised baseline of an evaluation: a policy no run starts from."""
PRETRAIN_EPISODES = 6
"""Episodes of joint policy-gradient pretraining (its tasks come from TRAIN_TASKS, like MAML's)."""


def task_rng(seed: int, stream: int, iteration: int) -> np.random.Generator:
    return np.random.default_rng([seed, stream, iteration])


def torch_generator(seed: int, stream: int) -> torch.Generator:
    entropy = np.random.SeedSequence([seed, stream]).generate_state(1, dtype=np.uint64)[0]
    return torch.Generator().manual_seed(int(entropy))


EXTRA_ROUND = 2**31 - 1
"""Marks the seed keys of a batch's extra rounds, ``(*key, EXTRA_ROUND, round)``. Numpy's SeedSequence
treats a key and the same key with zeros appended alike, so the marker must differ from any task index:
then no extra round's key equals a first round's key padded with zeros."""
