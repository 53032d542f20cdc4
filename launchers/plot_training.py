"""Plot training curves (returns before and after adaptation per meta-iteration) from runs' TensorBoard files.

``python launchers/plot_training.py RUN_DIR --output PNG``: one run, its return after 0..K inner steps.
``python launchers/plot_training.py RUN_DIR RUN_DIR ... --output PNG [--label NAME ...] [--iterations N]``:
several runs of one task family on one axis, each one's return after its K inner steps.
"""

from __future__ import annotations

import sys
from pathlib import Path

from metarl.cli import OneLineErrorParser, environment_fault, require_output_file, usage_error
from metarl.config import ConfigError

IMAGE_SUFFIXES = (".png", ".svg", ".pdf", ".jpg", ".jpeg")


def main(argv: list[str] | None = None) -> int:
    parser = OneLineErrorParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", type=Path, nargs="+", metavar="RUN_DIR", help="training run directories")
    parser.add_argument("--output", type=Path, required=True, help="image file to write (.png, .svg, .pdf)")
    parser.add_argument(
        "--label", action="append", default=[], help="a name per run, in order (default: the directory names)"
    )
    parser.add_argument("--iterations", type=int, default=None, help="plot the first N iterations only")
    args = parser.parse_args(argv)  # before torch and matplotlib are imported: --help and bad flags take no time
    from metarl.evaluation import load_run_config
    from metarl.logger import read_returns
    from metarl.reporting.plots import comparison_plot, training_curve_plot
    from metarl.reporting.reference import family_name, reference_for

    try:
        require_output_file(args.output, "--output", IMAGE_SUFFIXES)
        if args.label and len(args.label) != len(args.runs):
            raise ConfigError(f"--label was given {len(args.label)} times for {len(args.runs)} runs; give one per run")
        if args.iterations is not None and args.iterations < 1:
            raise ConfigError(f"--iterations must be positive, got {args.iterations}")
        configs = [load_run_config(run) for run in args.runs]
        returns = [first_iterations(read_returns(run), args.iterations) for run in args.runs]
        families = {family_name(config.env_id) for config in configs}  # one family may have two envs (rllab's Ant)
        if len(families) > 1:
            raise ConfigError(f"the runs are of different envs ({', '.join(sorted(families))}); plot one family")
    except ConfigError as error:
        return usage_error(error)
    env_id = configs[0].env_id
    reference = reference_for(env_id)
    try:
        if len(args.runs) == 1:
            iterations = max(len(points) for points in returns[0].values())
            algorithm = configs[0].algo.replace("_", "-").upper()
            title = f"{family_name(env_id)}: {algorithm} training, {iterations} iterations"
            training_curve_plot(args.output, returns[0], title, reference)
        else:
            labels = args.label or [run.resolve().name for run in args.runs]
            steps = {max(by_step) for by_step in returns}
            curves = {label: by_step[max(by_step)] for label, by_step in zip(labels, returns, strict=True)}
            after = "after adaptation" if len(steps) > 1 else f"after {steps.pop()} inner step(s)"
            paper = None if reference is None else reference.returns["maml"][min(max(r) for r in returns)]
            comparison_plot(
                args.output, curves, f"{family_name(env_id)}: training return {after}", "mean return", paper
            )
    except OSError as error:
        return environment_fault(f"cannot write {args.output} ({error.strerror or type(error).__name__})")
    print(f"wrote {args.output}")
    return 0


def first_iterations(
    returns: dict[int, list[tuple[int, float]]], limit: int | None
) -> dict[int, list[tuple[int, float]]]:
    if limit is None:
        return returns
    return {k: [(i, v) for i, v in points if i <= limit] for k, points in returns.items()}


if __name__ == "__main__":
    sys.exit(main())
