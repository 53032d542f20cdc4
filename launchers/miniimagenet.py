"""Meta-train few-shot MiniImagenet: ``python launchers/miniimagenet.py --data DIR [--config FILE]
[--set key=value ...] [--output RUN_DIR]``, or ``--data DIR --resume RUN_DIR`` to continue a run.

DIR holds the Ravi & Larochelle split: ``images/*.jpg`` and ``train.csv``, ``val.csv``, ``test.csv`` (see
docs/SUPERVISED.md for where to get it); the images are decoded once into DIR/metarl-cache/. The run
meta-trains on train.csv's classes, chooses its checkpoint on val.csv's and reports test.csv's accuracy
after ``eval_steps`` inner steps with a 95% confidence interval in ``evaluation.json``.
"""

from __future__ import annotations

import sys

from metarl.cli import launcher_imports

with launcher_imports(__name__):
    from metarl.supervised.few_shot_launcher import run_benchmark


def main(argv: list[str] | None = None) -> int:
    return run_benchmark("miniimagenet", __file__, argv)


if __name__ == "__main__":
    sys.exit(main())
