"""Runs compared on the same test tasks: each run's adaptation curve, and its one-step return against the first
run's (the control) paired task by task, which cancels the spread between tasks that unpaired intervals carry."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from metarl.reporting.statistics import summarize

Labelled = tuple[str, Mapping[str, Any]]
"""A run's label and its evaluation (``evaluation.json``, as launchers/evaluate.py writes it)."""


def _interval(values: np.ndarray) -> str:
    summary = summarize(values.tolist())
    return f"{summary.mean:+.1f} ({summary.ci_low:.1f} to {summary.ci_high:.1f})"


def _curve(entries: Sequence[Mapping[str, Any]]) -> list[str]:
    return [f"{entry['mean']:.1f} ± {entry['mean'] - entry['ci_low']:.1f}" for entry in entries]


def one_step_returns(evaluation: Mapping[str, Any]) -> np.ndarray:
    return np.asarray(evaluation["methods"]["maml"][1]["task_returns"], dtype=np.float64)


def check_same_tasks(runs: Sequence[Labelled]) -> None:
    """Refuse a paired comparison of evaluations on different test tasks, naming the first that differs."""
    (control_label, control), *others = runs
    for label, evaluation in others:
        if evaluation.get("test_tasks") != control.get("test_tasks"):
            raise ValueError(
                f"{label} was evaluated on other test tasks than {control_label}; evaluate both with the same "
                "evaluate.py --seed and --num-tasks to compare them"
            )


def comparison_table(runs: Sequence[Labelled]) -> str:
    """A Markdown table: per run, the MAML policy's return after 0..K steps (± the 95% interval's half-width),
    its one-step gain and its one-step difference from the first run, both paired over the test tasks."""
    if len(runs) < 2:
        raise ValueError("a comparison needs a control and at least one other run")
    check_same_tasks(runs)
    steps = min(len(evaluation["methods"]["maml"]) for _, evaluation in runs)
    control = one_step_returns(runs[0][1])
    header = ["run", "iteration", *(f"{k} step{'s' if k != 1 else ''}" for k in range(steps))]
    header += ["one step gains (paired, 95% CI)", f"one step against {runs[0][0]} (paired, 95% CI)"]
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    for index, (label, evaluation) in enumerate(runs):
        entries = evaluation["methods"]["maml"][:steps]
        gain = one_step_returns(evaluation) - np.asarray(entries[0]["task_returns"], dtype=np.float64)
        against = "control" if index == 0 else _interval(one_step_returns(evaluation) - control)
        row = [label, str(evaluation["checkpoint"]["iteration"]), *_curve(entries), _interval(gain), against]
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines) + "\n"
