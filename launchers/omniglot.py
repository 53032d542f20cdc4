"""Meta-train few-shot Omniglot: ``python launchers/omniglot.py --data DIR [--config FILE] [--set key=value ...]``.

DIR holds Omniglot in its directory format (``images_background/<alphabet>/<character>/*.png``, and
``images_evaluation/`` likewise); see docs/SUPERVISED.md for where to get it. Characters are split into
meta-train and meta-test; the run reports meta-test accuracy after ``eval_steps`` inner steps with a
95% confidence interval in ``evaluation.json``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from metarl.cli import add_config_arguments, stop_on_sigterm, usage_error
from metarl.config import ConfigError, find_config, load_config
from metarl.run import discard_unresumable_run, new_run_dir, release_run_dir, write_config
from metarl.seeding import task_rng
from metarl.supervised.config import OmniglotConfig
from metarl.supervised.omniglot import DatasetError, load_omniglot
from metarl.supervised.omniglot_run import run_omniglot

DEFAULT_CONFIG = Path(__file__).resolve().parent / "configs" / "omniglot.yaml"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="Omniglot directory (holding images_background/)")
    add_config_arguments(parser, DEFAULT_CONFIG, "--set num_shots=5 --set num_iterations=1000")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    stop_on_sigterm()
    args = parse_args(argv)
    try:
        config = load_config(OmniglotConfig, find_config(args.config, DEFAULT_CONFIG), args.overrides).validate()
        run_dir = new_run_dir("omniglot", config.seed, args.output_dir, kind=None)
        train_classes, test_classes = load_omniglot(
            args.data, config.num_train_characters, config.split_seed, config.image_size, config.rotations
        )
        for classes in (train_classes, test_classes):  # fail now, not at the first episode
            classes.sample_episodes(1, config.num_ways, config.num_shots, config.num_query, task_rng(0, 0, 0))
    except (ConfigError, DatasetError) as error:
        return usage_error(error)
    try:
        write_config(run_dir, config)
        print(
            f"run directory: {run_dir}\nmeta-train: {len(train_classes.characters)} characters, "
            f"{train_classes.num_classes} classes; meta-test: {len(test_classes.characters)} characters, "
            f"{test_classes.num_classes} classes",
            flush=True,
        )
        results = run_omniglot(config, train_classes, test_classes, run_dir, args.quiet)
    except ConfigError as error:  # another process took the directory
        return usage_error(error)
    except KeyboardInterrupt as stop:
        return discard_unresumable_run(run_dir, stop)
    finally:
        release_run_dir(run_dir)
    timing, accuracy, untrained, chance = (
        results["training"],
        results["accuracy"],
        results["accuracy_before_meta_training"],
        results["chance"],
    )
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
