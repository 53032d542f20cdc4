"""Meta-train and evaluate sinusoid regression.

``python launchers/sinusoid.py [--config FILE] [--set key=value ...] [--output RUN_DIR]``, or
``--resume RUN_DIR`` to continue a stopped run from its latest checkpoint.

Trains MAML (or first-order MAML, or Reptile) with the MAML paper's settings by default, then the
pretrained baseline, then evaluates both on fresh tasks: MSE after ``eval_steps`` inner steps with
95% confidence intervals (``evaluation.json``), and a plot of adapted fits (``sinusoid_fits.png``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from metarl.cli import add_config_arguments, add_resume_argument, launcher_imports, stop_on_sigterm
from metarl.supervised.config import SinusoidConfig

DEFAULT_CONFIG = Path(__file__).resolve().parent / "configs" / "sinusoid.yaml"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_config_arguments(parser, DEFAULT_CONFIG, "--set num_iterations=1000 --set algorithm=reptile")
    add_resume_argument(parser, "checkpoint_every, device, num_iterations")
    return parser.parse_args(argv)


def print_results(config: SinusoidConfig, run_dir: Path, results: dict[str, Any]) -> None:
    for name, summary in results["mse"].items():
        cells = ", ".join(
            f"{key.replace('_', ' ')}: {value['mean']:.3f} ± {value['ci95']:.3f}"
            for key, value in summary.items()
            if key.startswith("step_")
        )
        print(f"{name} MSE on {config.eval_tasks} tasks, K={config.num_shots}: {cells}", flush=True)
    timing = results["training"]
    print(
        f"done: {timing['iterations']} iterations in {timing['wall_time_s']:.1f} s; results in "
        f"{run_dir / 'evaluation.json'}; tensorboard --logdir {run_dir}",
        flush=True,
    )


def main(argv: list[str] | None = None) -> int:
    stop_on_sigterm()
    args = parse_args(argv)  # before torch is imported: --help and bad flags take no time
    with launcher_imports(__name__):
        from metarl.supervised import sinusoid
        from metarl.supervised.launch import Launch, Run, launch, supervised_kind

    def prepare(config: SinusoidConfig) -> Run:
        return lambda run_dir, progress, start: sinusoid.run_sinusoid(config, run_dir, progress, start, args.quiet)

    return launch(
        supervised_kind(sinusoid.NAME, "sinusoid", "launchers/sinusoid.py"),
        SinusoidConfig,
        DEFAULT_CONFIG,
        Launch(args.config, args.output_dir, args.overrides, args.resume),
        prepare,
        print_results,
    )


if __name__ == "__main__":
    sys.exit(main())
