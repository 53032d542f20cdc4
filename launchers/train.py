"""Train a meta-learner on a task distribution: MAML-TRPO, or MAML-PPO or ProMP (config key algo).

``python launchers/train.py [--config FILE] [--set key=value ...] [--output DIR] [--resume DIR]``;
with no arguments it trains the default config, launchers/configs/2d-navigation.yaml.
``--list-keys`` lists every config key; ``--print-config`` shows the config a run would use.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from metarl.cli import OneLineErrorParser, add_config_arguments, launcher_imports
from metarl.config import ConfigError, TrainConfig, dump_yaml, find_config, keys_text, load_config

DEFAULT_CONFIG = Path(__file__).resolve().parent / "configs" / "2d-navigation.yaml"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = OneLineErrorParser(
        description=__doc__.splitlines()[0],
        epilog="Config keys are the fields of TrainConfig in metarl/config.py, each with a one-line explanation; "
        "--list-keys prints them with their defaults.",
    )
    add_config_arguments(parser, DEFAULT_CONFIG, "--set inner_lr=0.05 --set sampler.num_workers=2")
    parser.add_argument("--resume", type=Path, default=None, metavar="DIR", help="continue the run in DIR")
    parser.add_argument(
        "--list-keys", action="store_true", help="print every config key with its default and explanation, then exit"
    )
    parser.add_argument(
        "--print-config",
        action="store_true",
        help="print the config after --config and --set as YAML, then exit without training",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)  # before torch is imported: --help, --list-keys and bad flags take no time
    if args.list_keys:
        print(keys_text(TrainConfig))
        return 0
    with launcher_imports(__name__):
        from metarl.checkpoint import CheckpointError
        from metarl.experiment_run import run_name
        from metarl.run import CONFIG_FILE, RL_TRAINING, RunFinished, new_run_dir
        from metarl.samplers import NonFiniteEpisodeError, WorkerError
        from metarl.trainer import Trainer
        from metarl.user_env import EnvError
    run_dir: Path | None = args.resume
    trainer: Trainer | None = None
    try:
        if args.resume is not None:
            if args.config is not None or args.output_dir is not None:
                raise ConfigError("--resume takes the run's own config and directory; drop --config/--output")
            if args.print_config:
                raise ConfigError(f"--print-config shows a new run's config; the run's is {args.resume / CONFIG_FILE}")
            trainer = Trainer.resume(args.resume, args.overrides)
        else:
            config = load_config(TrainConfig, find_config(args.config, DEFAULT_CONFIG), args.overrides).validate()
            if args.print_config:
                print(dump_yaml(config), end="")
                return 0
            run_dir = new_run_dir(run_name(config), config.seed, args.output_dir, RL_TRAINING)
            trainer = Trainer.start(config, run_dir)
        print(f"run directory: {trainer.run_dir}", flush=True)
        print(trainer.experiment.sampler.describe(), flush=True)  # on a cluster: did actors spread?
        print(trainer.experiment.learner.describe(), flush=True)
        trainer.run(quiet=args.quiet)
    except RunFinished as finished:
        print(finished, flush=True)
        return 0
    except (ConfigError, CheckpointError, NonFiniteEpisodeError, EnvError) as error:
        return RL_TRAINING.refused(error, run_dir, started=trainer is not None, new_run=args.resume is None)
    except (OSError, KeyboardInterrupt, WorkerError) as error:
        done = None if trainer is None else trainer.progress.iteration
        return RL_TRAINING.stopped(error, run_dir, done, new_run=args.resume is None)
    print(
        f"done: {trainer.progress.iteration} iterations, {trainer.progress.env_steps:,} env steps, "
        f"{trainer.progress.wall_time_s:.1f} s; {RL_TRAINING.done_hint(trainer.run_dir)}",
        flush=True,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
