"""Meta-train few-shot Omniglot: ``python launchers/omniglot.py --data DIR [--config FILE] [--set key=value ...]
[--output RUN_DIR]``, or ``--data DIR --resume RUN_DIR`` to continue a run from its latest checkpoint.

DIR holds Omniglot in its directory format (``images_background/<alphabet>/<character>/*.png``, and
``images_evaluation/`` likewise); see docs/SUPERVISED.md for where to get it. Characters are split into
meta-train and meta-test; the run reports meta-test accuracy after ``eval_steps`` inner steps with a
95% confidence interval in ``evaluation.json``.
"""

from __future__ import annotations

import sys

from metarl.cli import launcher_imports

with launcher_imports(__name__):
    from metarl.supervised.few_shot_launcher import run_benchmark


def main(argv: list[str] | None = None) -> int:
    return run_benchmark("omniglot", __file__, argv)


if __name__ == "__main__":
    sys.exit(main())
