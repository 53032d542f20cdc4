"""Meta-train few-shot Omniglot: ``python launchers/omniglot.py --data DIR [--config FILE] [--set key=value ...]``.

DIR holds Omniglot in its directory format (``images_background/<alphabet>/<character>/*.png``, and
``images_evaluation/`` likewise); see docs/SUPERVISED.md for where to get it. Characters are split into
meta-train and meta-test; the run reports meta-test accuracy after ``eval_steps`` inner steps with a
95% confidence interval in ``evaluation.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

from metarl.checkpoint import atomic_write_text
from metarl.cli import add_config_arguments, usage_error
from metarl.config import ConfigError, find_config, load_config, to_dict
from metarl.policies import parameters_of
from metarl.run import new_run_dir, open_logger, write_config
from metarl.seeding import EVAL_TASKS, POLICY_INIT, TRAIN_TASKS, task_rng, torch_generator
from metarl.supervised.config import OmniglotConfig
from metarl.supervised.evaluation import adaptation_curve, summarize
from metarl.supervised.meta_learning import accuracy_per_task, cross_entropy_per_task, make_meta_learner
from metarl.supervised.models import ConvClassifier
from metarl.supervised.omniglot import DatasetError, OmniglotClasses, load_omniglot
from metarl.supervised.tasks import TaskBatch
from metarl.supervised.training import meta_train

DEFAULT_CONFIG = Path(__file__).resolve().parent / "configs" / "omniglot.yaml"
EVAL_CHUNK = 50  # tasks per evaluation forward pass


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="Omniglot directory (holding images_background/)")
    add_config_arguments(parser, DEFAULT_CONFIG, "--set num_shots=5 --set num_iterations=1000")
    return parser.parse_args(argv)


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


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        config = load_config(OmniglotConfig, find_config(args.config, DEFAULT_CONFIG), args.overrides).validate()
        run_dir = new_run_dir("omniglot", config.seed, args.output_dir, resumable=False)
        train_classes, test_classes = load_omniglot(
            args.data, config.num_train_characters, config.split_seed, config.image_size, config.rotations
        )
        for classes in (train_classes, test_classes):  # fail now, not at the first episode
            classes.sample_episodes(1, config.num_ways, config.num_shots, config.num_query, task_rng(0, 0, 0))
    except (ConfigError, DatasetError) as error:
        return usage_error(error)
    torch.set_num_threads(config.num_threads)
    write_config(run_dir, config)
    print(
        f"run directory: {run_dir}\nmeta-train: {len(train_classes.characters)} characters, "
        f"{train_classes.num_classes} classes; meta-test: {len(test_classes.characters)} characters, "
        f"{test_classes.num_classes} classes",
        flush=True,
    )

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
        timing = meta_train(learner, training_batch, config, run_dir, logger, args.quiet, periodic_eval)
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
    final = accuracy[f"step_{config.eval_steps}"]
    print(
        f"{config.num_ways}-way {config.num_shots}-shot meta-test accuracy after {config.eval_steps} steps on "
        f"{config.eval_tasks} tasks: {final['mean']:.3f} ± {final['ci95']:.3f} (chance {chance:.3f}; "
        f"before meta-training {untrained[f'step_{config.eval_steps}']['mean']:.3f})",
        flush=True,
    )
    print(
        f"done: {timing['iterations']} iterations in {timing['wall_time_s']:.1f} s; results in "
        f"{run_dir / 'evaluation.json'}; tensorboard --logdir {run_dir}",
        flush=True,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
