"""Pretrain the joint-policy baseline that launchers/evaluate.py compares MAML with (its --pretrained).

``python launchers/pretrain.py [--config FILE] [--set key=value ...] [--output DIR] [--iterations N] [--lr LR]
[--episodes-per-task E]``, or ``--resume DIR [--iterations N] [--set key=value ...]`` to continue a run from its
latest checkpoint.

One policy trained on all tasks jointly with ordinary policy gradient (Adam), on the same training
tasks and by default the same env-step budget as MAML. The checkpoint (DIR/checkpoints/latest.pt)
goes to ``launchers/evaluate.py --pretrained``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from metarl.cli import OneLineErrorParser, add_config_arguments, launcher_imports
from metarl.config import ConfigError, TrainConfig, find_config, load_config

DEFAULT_CONFIG = Path(__file__).resolve().parent / "configs" / "2d-navigation.yaml"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = OneLineErrorParser(description=__doc__.splitlines()[0])
    add_config_arguments(parser, DEFAULT_CONFIG, "--config halfcheetah-vel.yaml --set seed=2")
    parser.add_argument(
        "--resume",
        type=Path,
        default=None,
        metavar="DIR",
        help="continue the pretraining run in DIR from its latest checkpoint, with the settings saved there",
    )
    parser.add_argument(
        "--iterations",
        type=int,
        default=None,
        help="iterations (default: the config's num_iterations); with --resume, the total to extend the run to",
    )
    parser.add_argument("--lr", type=float, default=None, help="Adam step size (default 0.001)")
    parser.add_argument(
        "--episodes-per-task",
        type=int,
        default=None,
        help="episodes per task per iteration (default: episodes_per_task · (num_steps + 1), MAML's budget)",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)  # before torch is imported: --help and bad flags take no time
    with launcher_imports(__name__):
        from metarl.experiment_run import run_name
        from metarl.pretraining import Pretraining, PretrainSettings
        from metarl.run import PRETRAINING, Attempt, new_run_dir
        from metarl.samplers import NonFiniteEpisodeError
        from metarl.user_env import EnvError

    def pretrain(attempt: Attempt) -> None:
        if args.resume is not None:
            attempt.run_dir = args.resume
            saved = {
                "--config": args.config,
                "--output": args.output_dir,
                "--lr": args.lr,
                "--episodes-per-task": args.episodes_per_task,
            }
            if given := [flag for flag, value in saved.items() if value is not None]:
                raise ConfigError(
                    "--resume continues the run with the config, directory and settings it saved; "
                    f"drop {', '.join(given)}"
                )
            run = Pretraining.resume(args.resume, args.overrides, args.iterations)
        else:
            config = load_config(TrainConfig, find_config(args.config, DEFAULT_CONFIG), args.overrides).validate()
            settings = PretrainSettings.matching(config, args.iterations, args.lr, args.episodes_per_task)
            attempt.run_dir = new_run_dir(run_name(config) + "-pretrained", config.seed, args.output_dir, PRETRAINING)
            run = Pretraining.start(config, settings, attempt.run_dir)
        attempt.progress = run.progress
        print(f"run directory: {run.run_dir}", flush=True)
        run.run(quiet=args.quiet)
        print(PRETRAINING.done_line(run.progress, run.run_dir), flush=True)

    return PRETRAINING.launch(args.resume is None, pretrain, (NonFiniteEpisodeError, EnvError))


if __name__ == "__main__":
    sys.exit(main())
