"""Pretrain the joint-policy baseline: ``python launchers/pretrain.py [--config FILE] [--set key=value ...]
[--output-dir DIR] [--iterations N] [--lr LR] [--episodes-per-task E]``.

One policy trained on all tasks jointly with ordinary policy gradient (Adam), on the same training
tasks and by default the same env-step budget as MAML. The checkpoint (DIR/checkpoints/latest.pt)
goes to ``launchers/evaluate.py --pretrained``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from metarl.checkpoint import LATEST
from metarl.cli import OneLineErrorParser, add_config_arguments, usage_error
from metarl.config import ConfigError, TrainConfig, find_config, load_config
from metarl.pretraining import PretrainSettings, pretrain
from metarl.run import CHECKPOINTS, new_run_dir
from metarl.samplers import NonFiniteEpisodeError
from metarl.trainer import run_name

DEFAULT_CONFIG = Path(__file__).resolve().parent / "configs" / "2d-navigation.yaml"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = OneLineErrorParser(description=__doc__.splitlines()[0])
    add_config_arguments(parser, DEFAULT_CONFIG, "--config halfcheetah-vel.yaml --set seed=2")
    parser.add_argument("--iterations", type=int, default=None, help="iterations (default: the config's num_batches)")
    parser.add_argument("--lr", type=float, default=1e-3, help="Adam step size (default 1e-3)")
    parser.add_argument(
        "--episodes-per-task",
        type=int,
        default=None,
        help="episodes per task per iteration (default: fast_batch_size · (num_steps + 1), MAML's budget)",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        config = load_config(TrainConfig, find_config(args.config, DEFAULT_CONFIG), args.overrides).validate()
        settings = PretrainSettings.matching(config, args.iterations, args.lr, args.episodes_per_task)
        run_dir = new_run_dir(run_name(config) + "-pretrained", config.seed, args.output_dir, kind=None)
        print(f"run directory: {run_dir}", flush=True)
        state = pretrain(config, settings, run_dir, quiet=args.quiet)
    except (ConfigError, NonFiniteEpisodeError) as error:
        return usage_error(error)
    print(
        f"done: {state['iteration']} iterations, {state['env_steps']:,} env steps, {state['wall_time_s']:.1f} s; "
        f"evaluate with --pretrained {run_dir / CHECKPOINTS / LATEST}",
        flush=True,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
