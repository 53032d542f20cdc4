"""What a few-shot meta-iteration and its evaluation hold, refused up front where they cannot fit.

Second-order MAML keeps the conv net's activations of every inner step on the support set (and of their
gradients, which it differentiates again), so 84×84 MiniImagenet with a large meta-batch can need more
memory than a machine has; ``meta_batch_size=10**6`` should be one line, not minutes of swapping.
"""

from __future__ import annotations

import torch

from metarl.memory import FLOAT_BYTES, PARAMETER_COPIES, MemoryEstimate, MemoryWording, require_memory
from metarl.supervised.config import FewShotConfig
from metarl.supervised.models import conv_classifier_size

EVAL_BUDGET_BYTES = 4 * 2**30
"""The most an evaluation chunk of tasks may hold (a fixed size, not the machine's: the chunking must not make
one machine's numbers differ from another's)."""
MAX_EVAL_CHUNK = 50
"""Tasks per evaluation chunk where they are small (Omniglot's 28×28 images)."""


def second_order(config: FewShotConfig) -> bool:
    return config.algorithm == "maml" and not config.first_order


def iteration_memory(config: FewShotConfig) -> MemoryEstimate:
    """The least one meta-iteration holds: activations of the support set once per inner step (twice when second
    order: the gradient's graph is kept to be differentiated) and of the query set, for every task; θ with one
    adapted copy per task and step."""
    parameters, floats_per_image = conv_classifier_size(
        config.num_ways, config.channels, config.num_filters, config.image_size
    )
    support_passes = config.num_steps * 2 if second_order(config) else 1
    images = config.meta_batch_size * config.num_ways * (config.num_shots * support_passes + config.num_query)
    return MemoryEstimate(
        images,
        images * floats_per_image * FLOAT_BYTES,
        parameters,
        parameters * (config.meta_batch_size * config.num_steps + PARAMETER_COPIES) * FLOAT_BYTES,
    )


def eval_chunk_tasks(config: FewShotConfig) -> int:
    """Evaluation tasks adapted together: as many as ``EVAL_BUDGET_BYTES`` holds, at most ``MAX_EVAL_CHUNK``."""
    _, floats_per_image = conv_classifier_size(config.num_ways, config.channels, config.num_filters, config.image_size)
    task_bytes = config.num_ways * (config.num_shots + config.num_query) * floats_per_image * FLOAT_BYTES
    return max(1, min(MAX_EVAL_CHUNK, EVAL_BUDGET_BYTES // task_bytes))


def wording(config: FewShotConfig) -> MemoryWording:
    if second_order(config):
        images = "meta_batch_size × num_ways × (num_shots × num_steps × 2 + num_query)"
        fix = "lower meta_batch_size, num_steps or num_query, or set first_order=true"
    else:
        images = "meta_batch_size × num_ways × (num_shots + num_query)"
        fix = "lower meta_batch_size or num_query"
    return MemoryWording(
        "a meta-iteration",
        f"{images}, each {config.image_size}×{config.image_size} through {config.num_filters} filters",
        f"{fix} (or image_size / num_filters)",
        "adapted once per task and inner step",
        "lower num_filters (or meta_batch_size)",
        unit="images",
    )


def require_few_shot_memory(config: FewShotConfig, device: torch.device) -> None:
    """Refuse a config whose meta-iteration cannot fit on ``device``, in one line naming what to lower."""
    require_memory(iteration_memory(config), device, wording(config))
