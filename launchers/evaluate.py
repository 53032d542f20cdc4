"""Evaluate a run with the MAML paper's k-shot test protocol, against random-init and pretrained baselines.

``python launchers/evaluate.py RUN_DIR [--checkpoint FILE] [--pretrained FILE] [--num-tasks 40] [--num-steps 3]
[--episodes-per-task K] [--seed S] [--device cpu|cuda] [--output OUT]``

Writes OUT/evaluation.json, OUT/adaptation.png and TensorBoard scalars under eval/ (see docs/EVALUATION.md).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from metarl.cli import (
    OneLineErrorParser,
    Terminated,
    add_output_argument,
    add_run_argument,
    environment_fault,
    interrupted_status,
    launcher_imports,
    parsed_run,
    usage_error,
)
from metarl.config import ConfigError


class OneFlagTwoNames(argparse.Action):
    """A flag that also answers to its earlier name (its second option string); giving both is an error naming
    both, as a config key under both its names is. One parser parses once (``parse_args`` builds its own)."""

    given: str | None = None

    def __call__(
        self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: object, option: str | None = None
    ) -> None:
        if self.given not in (None, option):
            parser.error(f"{self.given} and {option} are two names of one flag; give one")
        self.given = option
        setattr(namespace, self.dest, values)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = OneLineErrorParser(description=__doc__.splitlines()[0])
    add_run_argument(parser, "a training run directory (the one train.py printed)")
    parser.add_argument(
        "--checkpoint",
        type=Path,
        default=None,
        metavar="FILE",
        help="checkpoint to evaluate (default: RUN_DIR/checkpoints/latest.pt)",
    )
    parser.add_argument(
        "--pretrained",
        type=Path,
        default=None,
        metavar="FILE",
        help="checkpoint of launchers/pretrain.py to evaluate as the pretrained baseline",
    )
    parser.add_argument("--num-tasks", type=int, default=40, help="test tasks (default 40, as in the paper)")
    parser.add_argument("--num-steps", type=int, default=3, help="inner gradient steps per test task (default 3)")
    parser.add_argument(
        "--episodes-per-task",
        "--fast-batch-size",
        action=OneFlagTwoNames,
        type=int,
        default=None,
        metavar="K",
        help="episodes per task and step (default: as many as the paper's test scripts sampled for the family, "
        "else the run's episodes_per_task; --fast-batch-size: its earlier name)",
    )
    parser.add_argument(
        "--batch-unit",
        choices=["episodes", "transitions"],
        default=None,
        help="'transitions': each step samples whole episodes until K × horizon env steps, as the paper's "
        "test scripts did (default: the run's batch_unit)",
    )
    parser.add_argument(
        "--inner-lr",
        "--step-size",
        action=OneFlagTwoNames,
        type=float,
        default=None,
        help="first inner step size of every method (default: the run's inner_lr for MAML, and for "
        "the baselines the step size the paper's test script gave them; --step-size: its earlier name)",
    )
    parser.add_argument(
        "--later-inner-lr",
        "--later-step-size",
        action=OneFlagTwoNames,
        type=float,
        default=None,
        help="size of steps 2, 3, ... (default: half the first, as in the paper's test scripts; "
        "--later-step-size: its earlier name)",
    )
    parser.add_argument("--seed", type=int, default=None, help="test-task seed (default: the run's seed)")
    parser.add_argument("--device", default=None, help="cpu or cuda (default: the run's device)")
    add_output_argument(
        parser, "where results go (default: RUN_DIR/evaluation/iter_NNNNNN, NNNNNN the checkpoint's iteration)"
    )
    parser.add_argument("--quiet", action="store_true", help="no progress lines")
    args = parser.parse_args(argv)
    args.run = parsed_run(parser, args)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)  # before torch is imported: --help and bad flags take no time
    with launcher_imports(__name__):
        from metarl.checkpoint import CheckpointError
        from metarl.evaluation_run import EvaluationRequest, OutputFault, evaluate_run
        from metarl.heartbeat import Heartbeat
        from metarl.reporting.evaluation_output import PLOT_FILE, RESULTS_FILE
        from metarl.samplers import NonFiniteEpisodeError, WorkerError
        from metarl.user_env import EnvError
    say = (lambda message: None) if args.quiet else (lambda message: print(message, flush=True))
    request = EvaluationRequest(
        run_dir=args.run,
        checkpoint=args.checkpoint,
        pretrained=args.pretrained,
        output_dir=args.output_dir,
        device=args.device,
        num_tasks=args.num_tasks,
        num_steps=args.num_steps,
        episodes_per_task=args.episodes_per_task,
        batch_unit=args.batch_unit,
        inner_lr=args.inner_lr,
        later_inner_lr=args.later_inner_lr,
        seed=args.seed,
    )
    try:
        output_dir = evaluate_run(request, say, Heartbeat.unless(args.quiet))
    except (ConfigError, CheckpointError, NonFiniteEpisodeError, EnvError) as error:
        return usage_error(error)
    except (OutputFault, WorkerError) as fault:  # a fault of the machine: exit 1
        return environment_fault(str(fault))
    except KeyboardInterrupt as stop:  # evaluate_run writes its outputs only at the end, and removes them if cut off
        how = "terminated (SIGTERM)" if isinstance(stop, Terminated) else "interrupted"
        print(
            f"error: {how} before the evaluation was complete; nothing of it was kept (its outputs are written "
            "only at the end, and removed if cut off); run the same command again",
            file=sys.stderr,
            flush=True,
        )
        return interrupted_status(stop)
    say(f"wrote {output_dir / RESULTS_FILE}, {output_dir / PLOT_FILE} and TensorBoard scalars under eval/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
