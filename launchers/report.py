"""Results tables from evaluations, as Markdown (the paper's numbers beside them).

``python launchers/report.py EVAL [EVAL ...] [--output FILE]``: each EVAL is an ``evaluation.json`` or a directory
holding one (as written by launchers/evaluate.py). Prints Markdown, or writes it to FILE. With ``--compare`` the
runs (the first is the control) are compared on their shared test tasks, one row each, named by ``--label``.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

from metarl.cli import OneLineErrorParser, environment_fault, require_output_file, usage_error
from metarl.config import ConfigError


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = OneLineErrorParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "evaluations", type=Path, nargs="+", metavar="EVAL", help="evaluation.json files or directories holding one"
    )
    parser.add_argument("--output", type=Path, default=None, help="Markdown file to write (default: stdout)")
    parser.add_argument(
        "--compare",
        action="store_true",
        help="one table of the runs on their shared test tasks, each paired against the first (the control)",
    )
    parser.add_argument(
        "--label", action="append", default=[], help="a run's name in the --compare table, once per EVAL in order"
    )
    args = parser.parse_args(argv)
    if args.label and not args.compare:
        parser.error("--label names the rows of a --compare table; add --compare")
    if args.label and len(args.label) != len(args.evaluations):
        parser.error(f"give one --label per EVAL ({len(args.evaluations)}), or none, got {len(args.label)}")
    return args


def load_evaluation(path: Path) -> dict:
    from metarl.reporting.evaluation_output import RESULTS_FILE, current_results
    from metarl.reporting.report import report

    file = path / RESULTS_FILE if path.is_dir() else path
    if not file.is_file():
        raise ValueError(f"no {RESULTS_FILE} at {path}; run launchers/evaluate.py first")
    try:
        results = json.loads(file.read_text())
    except json.JSONDecodeError as error:
        raise ValueError(f"{file} is not valid JSON ({error.msg} at line {error.lineno})") from None
    if not isinstance(results, dict) or "methods" not in results or "family" not in results:
        raise ValueError(f"{file} is not an evaluation written by launchers/evaluate.py")
    results = current_results(results, str(file))
    try:  # the fields the report reads, each file on its own, so that the message can name the file
        report([results], "")
    except (AttributeError, KeyError, IndexError, TypeError, ValueError) as error:
        problem = f"{type(error).__name__}: {error}"
        raise ValueError(f"{file} is not an evaluation written by launchers/evaluate.py ({problem})") from None
    return results


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)  # before torch and matplotlib are imported: --help and bad flags take no time
    from metarl.checkpoint import atomic_write_text
    from metarl.reporting.report import report, splice_generated

    try:
        if args.output is not None:
            require_output_file(args.output, "--output", (".md", ".markdown", ".txt"))
        evaluations = [load_evaluation(path) for path in args.evaluations]
    except (ValueError, ConfigError) as error:
        return usage_error(error)
    command = "python launchers/report.py " + " ".join(shlex.quote(a) for a in (argv or sys.argv[1:]))
    if args.compare:
        from metarl.reporting.comparison import comparison_table

        labels = args.label or [Path(evaluation["run_dir"]).name for evaluation in evaluations]
        try:
            text = comparison_table(list(zip(labels, evaluations, strict=True)))
        except ValueError as error:
            return usage_error(error)
    else:
        text = report(evaluations, command.strip())
    if args.output is None:
        sys.stdout.write(text)
    else:
        try:
            args.output.parent.mkdir(parents=True, exist_ok=True)
            existing = args.output.read_text() if args.output.exists() else None
            atomic_write_text(args.output, splice_generated(existing, text))
        except OSError as error:
            return environment_fault(f"cannot write {args.output} ({error.strerror or type(error).__name__})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
