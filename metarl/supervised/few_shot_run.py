"""Few-shot image classification end to end: meta-train on the training classes, choose the checkpoint on the
validation classes where the dataset has them, and report test accuracy with a 95% interval in evaluation.json.

Omniglot and MiniImagenet both run here (``metarl.supervised.few_shot_launcher`` calls ``run_few_shot``); they
differ only in their ``FewShotSplits`` and config.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from metarl.checkpoint import atomic_write_text
from metarl.config import to_dict
from metarl.experiment import resolve_device
from metarl.policies import parameters_of
from metarl.run import RunKind, open_logger
from metarl.run_loop import Progress
from metarl.seeding import EVAL_TASKS, POLICY_INIT, TRAIN_TASKS, task_rng, torch_generator
from metarl.supervised.config import FewShotConfig
from metarl.supervised.evaluation import adaptation_curve, summarize
from metarl.supervised.few_shot_memory import eval_chunk_tasks
from metarl.supervised.image_classes import FewShotSplits, ImageClasses
from metarl.supervised.meta_learning import accuracy_per_task, cross_entropy_per_task, make_meta_learner
from metarl.supervised.models import ConvClassifier
from metarl.supervised.tasks import TaskBatch
from metarl.supervised.training import meta_train, restore

Summary = dict[str, dict[str, float]]
"""{"step_k": {"mean": ..., "ci95": ...}} for k = 0..eval_steps."""


def evaluate(
    model: ConvClassifier,
    classes: ImageClasses,
    config: FewShotConfig,
    num_tasks: int,
    iteration: int,
    device: torch.device,
) -> Summary:
    """Query accuracy on fresh tasks of ``classes`` after 0..eval_steps inner steps (the same tasks at every call
    with the same ``iteration``). Tasks are drawn and adapted a chunk at a time: 600 MiniImagenet tasks would
    take gigabytes as one batch."""
    rng, chunk = task_rng(config.seed, EVAL_TASKS, iteration), eval_chunk_tasks(config)
    curves = []
    for start in range(0, num_tasks, chunk):
        size = min(chunk, num_tasks - start)
        batch = classes.sample_episodes(size, config.num_ways, config.num_shots, config.num_query, rng).to(device)
        curves.append(
            adaptation_curve(
                model,
                parameters_of(model),
                batch,
                cross_entropy_per_task,
                config.inner_lr,
                config.eval_steps,
                metric_fn=accuracy_per_task,
                chunk_size=chunk,
            )
        )
    return summarize(np.concatenate(curves, axis=1), list(range(config.eval_steps + 1)))


@dataclass
class Choice:
    """The checkpoint chosen on the validation classes so far: the first with the best accuracy after eval_steps."""

    iteration: int = 0
    accuracy: dict[str, float] = field(default_factory=dict)
    model: dict[str, torch.Tensor] = field(default_factory=dict)

    def consider(self, iteration: int, accuracy: dict[str, float], model: torch.nn.Module) -> None:
        if not self.accuracy or accuracy["mean"] > self.accuracy["mean"]:
            self.iteration, self.accuracy = iteration, accuracy
            self.model = {name: value.detach().cpu().clone() for name, value in model.state_dict().items()}

    def state(self) -> dict[str, Any]:
        return {"iteration": self.iteration, "accuracy": self.accuracy, "model": self.model}


def run_few_shot(
    config: FewShotConfig,
    splits: FewShotSplits,
    run_dir: Path,
    kind: RunKind,
    progress: Progress,
    resume_from: tuple[dict[str, Any], Path] | None = None,
    quiet: bool = False,
) -> dict[str, Any]:
    """Meta-train (from ``resume_from``, a checkpoint and its path, if given), choose, test, and write
    evaluation.json into ``run_dir`` (already holding the config); returns what it holds. ``progress`` follows
    the iterations done, for the launcher's message if the run is stopped."""
    torch.set_num_threads(config.num_threads)
    device = resolve_device(config.device)

    def training_batch(iteration: int) -> TaskBatch:
        rng = task_rng(config.seed, TRAIN_TASKS, iteration)
        return splits.train.sample_episodes(
            config.meta_batch_size, config.num_ways, config.num_shots, config.num_query, rng
        ).to(device)

    def periodic_eval(iteration: int) -> dict[str, float]:
        due = bool(config.eval_every) and iteration % config.eval_every == 0
        if splits.validation is None:
            if not due:
                return {}
            summary = evaluate(model, splits.test, config, config.eval_every_tasks, 0, device)
            return {f"eval/accuracy_step_{k}": summary[f"step_{k}"]["mean"] for k in (0, config.eval_steps)}
        if not due and iteration != config.num_iterations:  # the last checkpoint is a candidate too
            return {}
        summary = evaluate(model, splits.validation, config, config.eval_every_tasks, 0, device)
        choice.consider(iteration, summary[f"step_{config.eval_steps}"], model)
        return {f"validation/accuracy_step_{k}": summary[f"step_{k}"]["mean"] for k in (0, config.eval_steps)}

    model = ConvClassifier(
        config.num_ways,
        config.channels,
        config.num_filters,
        image_size=config.image_size,
        generator=torch_generator(config.seed, POLICY_INIT),
    ).to(device)
    learner = make_meta_learner(config, model, cross_entropy_per_task)
    choice = Choice()
    if resume_from is None:
        untrained = evaluate(model, splits.test, config, config.eval_tasks, 1, device)  # what meta-training adds
    else:
        state, path = resume_from
        restore(learner, state, path, progress)
        untrained = state["accuracy_before_meta_training"]
        choice = Choice(**state["chosen"]) if "chosen" in state else choice

    def extra_state() -> dict[str, Any]:
        chosen = {"chosen": choice.state()} if choice.accuracy else {}
        return {"method": kind.method, "accuracy_before_meta_training": untrained, **chosen}

    logger = open_logger(run_dir, progress.iteration, resume_from is not None, to_dict(config))
    try:
        timing = meta_train(
            learner, training_batch, config, run_dir, logger, quiet, periodic_eval, progress, extra_state
        )
        if choice.accuracy:
            model.load_state_dict(choice.model)
        accuracy = evaluate(model, splits.test, config, config.eval_tasks, 1, device)
    finally:
        logger.close()
    results = {
        "config": to_dict(config),
        "training": timing,
        "eval_tasks": config.eval_tasks,
        "chance": 1.0 / config.num_ways,
        "classes": {name: classes.num_classes for name, classes in splits.named().items()},
        **splits.sizes,
        "accuracy": accuracy,
        "accuracy_before_meta_training": untrained,
    }
    if choice.accuracy:
        results["chosen_checkpoint"] = {
            "iteration": choice.iteration,
            "validation_accuracy": choice.accuracy,
            "validation_tasks": config.eval_every_tasks,
        }
    atomic_write_text(run_dir / "evaluation.json", json.dumps(results, indent=2) + "\n")
    return results
