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
        from metarl.experiment_run import run_name
        from metarl.run import CONFIG_FILE, RL_TRAINING, Attempt, new_run_dir
        from metarl.samplers import NonFiniteEpisodeError
        from metarl.trainer import Trainer
        from metarl.user_env import EnvError

    def train(attempt: Attempt) -> None:
        if args.resume is not None:
            attempt.run_dir = args.resume
            if args.config is not None or args.output_dir is not None:
                raise ConfigError("--resume takes the run's own config and directory; drop --config/--output")
            if args.print_config:
                raise ConfigError(f"--print-config shows a new run's config; the run's is {args.resume / CONFIG_FILE}")
            trainer = Trainer.resume(args.resume, args.overrides)
        else:
            config = load_config(TrainConfig, find_config(args.config, DEFAULT_CONFIG), args.overrides).validate()
            if args.print_config:
                print(dump_yaml(config), end="")
                return
            attempt.run_dir = new_run_dir(run_name(config), config.seed, args.output_dir, RL_TRAINING)
            trainer = Trainer.start(config, attempt.run_dir)
        attempt.progress = trainer.progress
        print(f"run directory: {trainer.run_dir}", flush=True)
        print(trainer.experiment.sampler.describe(), flush=True)  # on a cluster: did actors spread?
        print(trainer.experiment.learner.describe(), flush=True)
        trainer.run(quiet=args.quiet)
        print(RL_TRAINING.done_line(trainer.progress, trainer.run_dir), flush=True)

    return RL_TRAINING.launch(args.resume is None, train, (NonFiniteEpisodeError, EnvError))


if __name__ == "__main__":
    sys.exit(main())
