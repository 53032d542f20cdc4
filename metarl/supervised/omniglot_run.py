"""Few-shot Omniglot meta-training and its evaluation on held-out characters; ``launchers/omniglot.py`` calls
``run_omniglot``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from metarl.checkpoint import atomic_write_text
from metarl.config import to_dict
from metarl.policies import parameters_of
from metarl.run import open_logger
from metarl.seeding import EVAL_TASKS, POLICY_INIT, TRAIN_TASKS, task_rng, torch_generator
from metarl.supervised.config import OmniglotConfig
from metarl.supervised.evaluation import adaptation_curve, summarize
from metarl.supervised.meta_learning import accuracy_per_task, cross_entropy_per_task, make_meta_learner
from metarl.supervised.models import ConvClassifier
from metarl.supervised.omniglot import OmniglotClasses
from metarl.supervised.tasks import TaskBatch
from metarl.supervised.training import meta_train

EVAL_CHUNK = 50  # tasks per evaluation forward pass


def evaluate(
    model: ConvClassifier, classes: OmniglotClasses, config: OmniglotConfig, num_tasks: int, iteration: int
) -> dict[str, dict[str, float]]:
    """Query accuracy on fresh meta-test tasks after 0..eval_steps inner steps (the same tasks at every call)."""
    batch = classes.sample_episodes(
        num_tasks, config.num_ways, config.num_shots, config.num_query, task_rng(config.seed, EVAL_TASKS, iteration)
    )
    curve = adaptation_curve(
        model,
        parameters_of(model),
        batch,
        cross_entropy_per_task,
        config.inner_lr,
        config.eval_steps,
        metric_fn=accuracy_per_task,
        chunk_size=EVAL_CHUNK,
    )
    return summarize(curve, list(range(config.eval_steps + 1)))


def run_omniglot(
    config: OmniglotConfig,
    train_classes: OmniglotClasses,
    test_classes: OmniglotClasses,
    run_dir: Path,
    quiet: bool = False,
) -> dict[str, Any]:
    """Meta-train on ``train_classes``, evaluate on ``test_classes`` before and after, write evaluation.json
    into ``run_dir`` (already holding the config); returns what it holds."""
    torch.set_num_threads(config.num_threads)

    def training_batch(iteration: int) -> TaskBatch:
        return train_classes.sample_episodes(
            config.meta_batch_size,
            config.num_ways,
            config.num_shots,
            config.num_query,
            task_rng(config.seed, TRAIN_TASKS, iteration),
        )

    def periodic_eval(iteration: int) -> dict[str, float]:
        if not config.eval_every or iteration % config.eval_every:
            return {}
        summary = evaluate(model, test_classes, config, config.eval_every_tasks, 0)
        return {f"eval/accuracy_step_{k}": summary[f"step_{k}"]["mean"] for k in (0, config.eval_steps)}

    model = ConvClassifier(
        config.num_ways,
        1,
        config.num_filters,
        image_size=config.image_size,
        generator=torch_generator(config.seed, POLICY_INIT),
    )
    learner = make_meta_learner(config, model, cross_entropy_per_task)
    logger = open_logger(run_dir)
    logger.hyperparameters(to_dict(config))
    try:
        untrained = evaluate(model, test_classes, config, config.eval_tasks, 1)  # what meta-training adds
        timing = meta_train(learner, training_batch, config, run_dir, logger, quiet, periodic_eval)
        accuracy = evaluate(model, test_classes, config, config.eval_tasks, 1)
    finally:
        logger.close()
    chance = 1.0 / config.num_ways
    results = {
        "config": to_dict(config),
        "training": timing,
        "eval_tasks": config.eval_tasks,
        "chance": chance,
        "meta_train_characters": len(train_classes.characters),
        "meta_test_characters": len(test_classes.characters),
        "accuracy": accuracy,
        "accuracy_before_meta_training": untrained,
    }
    atomic_write_text(run_dir / "evaluation.json", json.dumps(results, indent=2) + "\n")
    return results
