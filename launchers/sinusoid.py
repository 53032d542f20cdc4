"""Meta-train and evaluate sinusoid regression: ``python launchers/sinusoid.py [--config FILE] [--set key=value ...]``.

Trains MAML (or first-order MAML, or Reptile) with the MAML paper's settings by default, then the
pretrained baseline, then evaluates both on fresh tasks: MSE after ``eval_steps`` inner steps with
95% confidence intervals (``evaluation.json``), and a plot of adapted fits (``sinusoid_fits.png``).
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
from metarl.run import CHECKPOINTS, new_run_dir, open_logger, write_config
from metarl.seeding import EVAL_TASKS, POLICY_INIT, TRAIN_TASKS, task_rng, torch_generator
from metarl.supervised.config import SinusoidConfig
from metarl.supervised.evaluation import adaptation_curve, pretrain_jointly, summarize
from metarl.supervised.meta_learning import make_meta_learner, mse_per_task
from metarl.supervised.models import MLPRegressor
from metarl.supervised.sinusoid import PAPER_K5, plot_fits
from metarl.supervised.tasks import SinusoidDistribution, TaskBatch
from metarl.supervised.training import BASELINE_INIT, BASELINE_TASKS, meta_train

DEFAULT_CONFIG = Path(__file__).resolve().parent / "configs" / "sinusoid.yaml"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_config_arguments(parser, DEFAULT_CONFIG, "--set num_iterations=1000 --set algorithm=reptile")
    return parser.parse_args(argv)


def distribution_of(config: SinusoidConfig) -> SinusoidDistribution:
    return SinusoidDistribution(tuple(config.amplitude_range), tuple(config.phase_range), tuple(config.input_range))


def new_model(config: SinusoidConfig, stream: int) -> MLPRegressor:
    return MLPRegressor(1, 1, config.hidden_sizes, generator=torch_generator(config.seed, stream))


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        config = load_config(SinusoidConfig, find_config(args.config, DEFAULT_CONFIG), args.overrides).validate()
        run_dir = new_run_dir("sinusoid", config.seed, args.output_dir, resumable=False)
    except ConfigError as error:
        return usage_error(error)
    torch.set_num_threads(config.num_threads)
    write_config(run_dir, config)
    print(f"run directory: {run_dir}", flush=True)
    distribution = distribution_of(config)

    def training_batch(iteration: int) -> TaskBatch:
        return distribution.sample(
            config.meta_batch_size, config.num_shots, config.num_query, task_rng(config.seed, TRAIN_TASKS, iteration)
        )

    model = new_model(config, POLICY_INIT)
    learner = make_meta_learner(config, model, mse_per_task)
    logger = open_logger(run_dir)
    logger.hyperparameters(to_dict(config))
    try:
        timing = meta_train(learner, training_batch, config, run_dir, logger, args.quiet)

        baseline = new_model(config, BASELINE_INIT)
        if config.baseline_iterations:
            pretrain_jointly(
                baseline,
                lambda it: distribution.sample(
                    config.meta_batch_size,
                    config.num_shots,
                    config.num_query,
                    task_rng(config.seed, BASELINE_TASKS, it),
                ),
                config.baseline_iterations,
                config.meta_lr,
                mse_per_task,
            )
            torch.save(baseline.state_dict(), run_dir / CHECKPOINTS / "baseline.pt")

        eval_rng = task_rng(config.seed, EVAL_TASKS, 0)
        tasks = distribution.sample_tasks(config.eval_tasks, eval_rng)
        batch = distribution.sample_batch(tasks, config.num_shots, config.eval_query, eval_rng)
        max_steps = max(config.eval_steps)
        models = {config.algorithm + ("-first-order" if config.first_order else ""): model}
        if config.baseline_iterations:
            models["pretrained"] = baseline
        results: dict = {
            "config": to_dict(config),
            "training": timing,
            "eval_tasks": config.eval_tasks,
            "num_shots": config.num_shots,
            "eval_query": config.eval_query,
            "mse": {},
        }
        for name, net in models.items():
            curve = adaptation_curve(net, parameters_of(net), batch, mse_per_task, config.inner_lr, max_steps)
            results["mse"][name] = summarize(curve, sorted({0, *config.eval_steps}))
            results["mse"][name]["curve_mean"] = curve.mean(axis=1).tolist()
            for step, value in enumerate(curve.mean(axis=1)):
                logger.record(f"eval/{name}_mse", float(value))
                logger.dump(step)
        if config.num_shots == 5:
            results["paper_k5"] = PAPER_K5
        atomic_write_text(run_dir / "evaluation.json", json.dumps(results, indent=2) + "\n")
        if config.plot_tasks:
            n = min(config.plot_tasks, len(tasks))
            plot_fits(
                run_dir / "sinusoid_fits.png",
                models,
                batch[:n],
                distribution,
                [t.amplitude for t in tasks[:n]],
                [t.phase for t in tasks[:n]],
                config.inner_lr,
                max_steps,
            )
    finally:
        logger.close()
    for name, summary in results["mse"].items():
        cells = ", ".join(
            f"{key.replace('_', ' ')}: {value['mean']:.3f} ± {value['ci95']:.3f}"
            for key, value in summary.items()
            if key.startswith("step_")
        )
        print(f"{name} MSE on {config.eval_tasks} tasks, K={config.num_shots}: {cells}", flush=True)
    print(
        f"done: {timing['iterations']} iterations in {timing['wall_time_s']:.1f} s; results in "
        f"{run_dir / 'evaluation.json'}; tensorboard --logdir {run_dir}",
        flush=True,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
