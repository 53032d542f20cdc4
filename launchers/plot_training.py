"""Plot a run's training curve (returns before and after adaptation per meta-iteration) from its TensorBoard files.

``python launchers/plot_training.py RUN_DIR --output PNG``
"""

from __future__ import annotations

import sys
from pathlib import Path

from metarl.cli import OneLineErrorParser, environment_fault, require_output_file, usage_error
from metarl.config import ConfigError
from metarl.evaluation import load_run_config
from metarl.logger import read_returns
from metarl.reporting.plots import training_curve_plot
from metarl.reporting.reference import family_name, reference_for

IMAGE_SUFFIXES = (".png", ".svg", ".pdf", ".jpg", ".jpeg")


def main(argv: list[str] | None = None) -> int:
    parser = OneLineErrorParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, help="training run directory")
    parser.add_argument("--output", type=Path, required=True, help="image file to write (.png, .svg, .pdf)")
    args = parser.parse_args(argv)
    try:
        require_output_file(args.output, "--output", IMAGE_SUFFIXES)
        config = load_run_config(args.run)
        returns = read_returns(args.run)
    except ConfigError as error:
        return usage_error(error)
    iterations = max(len(points) for points in returns.values())
    title = f"{family_name(config.env_id)}: MAML-TRPO training, {iterations} iterations"
    try:
        training_curve_plot(args.output, returns, title, reference_for(config.env_id))
    except OSError as error:
        return environment_fault(f"cannot write {args.output} ({error.strerror or type(error).__name__})")
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
