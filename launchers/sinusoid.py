"""Meta-train and evaluate sinusoid regression.

``python launchers/sinusoid.py [--config FILE] [--set key=value ...] [--output RUN_DIR]``.

Trains MAML (or first-order MAML, or Reptile) with the MAML paper's settings by default, then the
pretrained baseline, then evaluates both on fresh tasks: MSE after ``eval_steps`` inner steps with
95% confidence intervals (``evaluation.json``), and a plot of adapted fits (``sinusoid_fits.png``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from metarl.cli import add_config_arguments, launcher_imports, stop_on_sigterm, usage_error
from metarl.config import ConfigError, find_config, load_config
from metarl.supervised.config import SinusoidConfig

DEFAULT_CONFIG = Path(__file__).resolve().parent / "configs" / "sinusoid.yaml"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_config_arguments(parser, DEFAULT_CONFIG, "--set num_iterations=1000 --set algorithm=reptile")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    stop_on_sigterm()
    args = parse_args(argv)  # before torch is imported: --help and bad flags take no time
    with launcher_imports(__name__):
        from metarl.run import discard_unresumable_run, new_run_dir, release_run_dir, write_config
        from metarl.supervised.sinusoid import run_sinusoid
    try:
        config = load_config(SinusoidConfig, find_config(args.config, DEFAULT_CONFIG), args.overrides).validate()
        run_dir = new_run_dir("sinusoid", config.seed, args.output_dir, kind=None)
    except ConfigError as error:
        return usage_error(error)
    try:
        write_config(run_dir, config)
        print(f"run directory: {run_dir}", flush=True)
        results = run_sinusoid(config, run_dir, args.quiet)
    except ConfigError as error:  # another process took the directory
        return usage_error(error)
    except KeyboardInterrupt as stop:
        return discard_unresumable_run(run_dir, stop)
    finally:
        release_run_dir(run_dir)
    timing = results["training"]
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
