"""Plot a run's training curve (returns before and after adaptation per meta-iteration) from its TensorBoard files.

``python launchers/plot_training.py RUN_DIR --output PNG``
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from metarl.cli import usage_error
from metarl.config import ConfigError
from metarl.evaluation import load_run_config
from metarl.logger import read_returns
from metarl.reporting.plots import training_curve_plot
from metarl.reporting.reference import family_name, reference_for


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, help="training run directory")
    parser.add_argument("--output", type=Path, required=True, help="PNG file to write")
    args = parser.parse_args(argv)
    try:
        config = load_run_config(args.run)
        returns = read_returns(args.run)
    except ConfigError as error:
        return usage_error(error)
    iterations = max(len(points) for points in returns.values())
    title = f"{family_name(config.env_id)}: MAML-TRPO training, {iterations} iterations"
    training_curve_plot(args.output, returns, title, reference_for(config.env_id))
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
