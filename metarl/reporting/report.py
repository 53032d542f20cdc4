"""Results tables in the MAML paper's form, generated from ``evaluation.json`` files."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from metarl.logger import format_duration
from metarl.reporting.plots import LABELS
from metarl.reporting.reference import METHODS
from metarl.reporting.statistics import summarize


def _cell(entry: Mapping[str, Any]) -> str:
    if entry.get("ci_low") is None:
        return f"{entry['mean']:.2f}"
    return f"{entry['mean']:.2f} ± {entry['mean'] - entry['ci_low']:.2f}"


def _run_line(label: str, checkpoint: Mapping[str, Any] | None) -> str:
    if checkpoint is None:
        return f"- {label}: not evaluated"
    machine = checkpoint.get("machine")
    where = f"; trained on {describe_machine(machine)}" if machine else "; machine not recorded in the checkpoint"
    return (
        f"- {label}: `{checkpoint['path']}`, {checkpoint['iteration']} iterations, "
        f"{checkpoint['env_steps']:,} env steps, {format_duration(checkpoint['wall_time_s'])} wall time{where}"
    )


def describe_machine(machine: Mapping[str, Any]) -> str:
    text = f"{machine.get('cpu', '?')} ({machine.get('cpu_count', '?')} cores), torch {machine.get('torch', '?')}"
    if machine.get("gpu"):
        text += f", {machine['gpu']}"
    return f"{text}, device {machine.get('device', '?')}"


def shortfalls(results: Mapping[str, Any]) -> list[str]:
    """Plain sentences for every step where our MAML's confidence interval lies below the paper's number."""
    paper = results.get("paper")
    ours = results["methods"].get("maml")
    if not paper or not ours:
        return []
    lines = []
    for entry, paper_value in zip(ours, paper["maml"], strict=False):  # the paper has steps 0-3 only
        high = entry["ci_high"] if entry.get("ci_high") is not None else entry["mean"]
        step = entry["step"]
        if high < paper_value:
            lines.append(
                f"After {step} step{'s' if step != 1 else ''} our MAML falls short of the paper: "
                f"{entry['mean']:.2f} (95% CI up to {high:.2f}) against {paper_value:.2f}, "
                f"{paper_value - entry['mean']:.2f} worse."
            )
        elif entry.get("ci_low") is not None and entry["ci_low"] > paper_value:
            lines.append(
                f"After {step} step{'s' if step != 1 else ''} our MAML beats the paper's number: "
                f"{entry['mean']:.2f} against {paper_value:.2f}."
            )
        else:
            lines.append(
                f"After {step} step{'s' if step != 1 else ''} our MAML matches the paper within its "
                f"95% CI: {entry['mean']:.2f} against {paper_value:.2f}."
            )
    return lines


def adaptation_gain(results: Mapping[str, Any]) -> list[str]:
    """Paired (same task) improvement from 0 to 1 step, per method: the evidence that adaptation helps."""
    lines = []
    for name in METHODS:
        entries = results["methods"].get(name)
        if not entries or len(entries) < 2:
            continue
        gain = np.asarray(entries[1]["task_returns"]) - np.asarray(entries[0]["task_returns"])
        summary = summarize(gain) if gain.size > 1 else None
        interval = f" (95% CI {summary.ci_low:.2f} to {summary.ci_high:.2f})" if summary else ""
        lines.append(
            f"{LABELS[name]}: one gradient step changes the return by {gain.mean():+.2f}{interval}, "
            f"paired over the {gain.size} test tasks."
        )
    return lines


def step_sizes_text(settings: Mapping[str, Any]) -> str:
    """The step sizes, per method where the methods were adapted with different ones."""

    def sizes(values: Sequence[float]) -> str:
        return ", ".join(f"{v:g}" for v in values)

    by_method = settings.get("step_sizes_by_method") or {}
    if len({tuple(v) for v in by_method.values()}) <= 1:
        return sizes(settings["step_sizes"])
    return "; ".join(f"{LABELS[name]} {sizes(by_method[name])}" for name in METHODS if name in by_method)


def batch_text(settings: Mapping[str, Any]) -> str:
    """What each step sampled per task: K episodes, or whole episodes until K × horizon env steps."""
    if settings.get("batch_unit", "episodes") == "transitions":
        return f"whole episodes until {settings['episodes_per_task']} × horizon env steps"
    return f"{settings['episodes_per_task']} episodes"


def family_labels(evaluations: Sequence[Mapping[str, Any]]) -> list[str]:
    """Each evaluation's family, with its env id where the report holds the family on more than one env
    (the MuJoCo 3 Ant and rllab's, say), so that no two rows or sections read alike."""
    env_ids: dict[str, set[str | None]] = {}
    for results in evaluations:
        env_ids.setdefault(results["family"], set()).add(results.get("env_id"))
    return [f"{r['family']} on {r['env_id']}" if len(env_ids[r["family"]]) > 1 else r["family"] for r in evaluations]


def family_table(results: Mapping[str, Any], label: str | None = None) -> str:
    """One family's section: the paper-form table, then the runs, the machine and the plain comparison."""
    methods, paper = results["methods"], results.get("paper")
    settings = results["config"]["evaluation"]
    num_steps = max(len(entries) for entries in methods.values()) - 1
    header = ["method"] + [f"{k} step{'s' if k != 1 else ''}" for k in range(num_steps + 1)]
    title = f"### {label or results['family']}, MAML iteration {results['checkpoint']['iteration']}"
    lines = [title, "", "| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    for name in METHODS:
        if name in methods:
            lines.append(f"| {LABELS[name]} (ours) | " + " | ".join(_cell(e) for e in methods[name]) + " |")
        if paper and name in paper:
            values = [f"{v:.2f}" for v in paper[name][: num_steps + 1]]
            values += [""] * (num_steps + 1 - len(values))
            lines.append(f"| {LABELS[name]} (paper) | " + " | ".join(values) + " |")
    if paper and paper.get("oracle") is not None:
        lines.append(f"| oracle (paper) | {paper['oracle']:.2f} |" + " |" * num_steps)
    lines += [
        "",
        f"Mean return over {settings['num_tasks']} test tasks ± the half-width of its 95% confidence interval "
        f"(Student t over tasks); {batch_text(settings)} per step, step sizes "
        f"{step_sizes_text(settings)}, test-task seed {settings['seed']}.",
        "",
        _run_line("MAML run", results["checkpoint"]),
        _run_line("pretrained baseline", results.get("pretrained_checkpoint")),
        f"- evaluated on: {describe_machine(results['machine'])}, in "
        f"{format_duration(results['evaluation_wall_time_s'])}",
    ]
    if paper and paper.get("episodes_per_task") not in (None, settings["episodes_per_task"]):
        lines.append(
            f"- note: the paper used {paper['episodes_per_task']} episodes per step, we used "
            f"{settings['episodes_per_task']}"
        )
    comparison = shortfalls(results)
    if comparison:
        lines += ["", "Against the paper: " + " ".join(comparison)]
    gains = adaptation_gain(results)
    if gains:
        lines += ["", "Does adaptation help? " + " ".join(gains)]
    return "\n".join(lines) + "\n"


HEADLINE_STEPS = 4
"""The paper's tables report 0, 1, 2 and 3 gradient steps."""


def headline_table(evaluations: Sequence[Mapping[str, Any]]) -> str:
    """One row per evaluation: our MAML ± the 95% half-width after 0-3 steps, the paper's number beside it."""
    header = ["task family", "iteration"] + [f"{k} step{'s' if k != 1 else ''}" for k in range(HEADLINE_STEPS)]
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    for results, label in zip(evaluations, family_labels(evaluations), strict=True):
        ours = results["methods"].get("maml", [])
        paper = (results.get("paper") or {}).get("maml", [])
        cells = []
        for step in range(HEADLINE_STEPS):
            cell = _cell(ours[step]) if step < len(ours) else "–"
            if step < len(paper):
                cell += f" (paper {paper[step]:.2f})"
            cells.append(cell)
        lines.append(f"| {label} | {results['checkpoint']['iteration']} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "MAML (ours): mean return over the test tasks ± the half-width of its 95% confidence interval; "
        "the paper's MAML number in brackets. Details per family below.",
    ]
    return "\n".join(lines) + "\n"


def report(evaluations: Sequence[Mapping[str, Any]], command: str = "") -> str:
    """The headline table, then every family's section, in the order given."""
    generated = f" by `{command}`" if command else ""
    head = [
        "## Evaluation results",
        "",
        f"Generated{generated} from `evaluation.json` files; do not edit by hand.",
        "",
        headline_table(evaluations),
        "",
    ]
    labels = family_labels(evaluations)
    sections = (family_table(results, label) for results, label in zip(evaluations, labels, strict=True))
    return "\n".join(head) + "\n".join(sections)


BEGIN_GENERATED = "<!-- BEGIN GENERATED by launchers/report.py: do not edit by hand -->"
END_GENERATED = "<!-- END GENERATED -->"


def splice_generated(existing: str | None, generated: str) -> str:
    """The file's text with ``generated`` between its markers, so hand-written sections around them survive.

    A file without the markers (or no file) becomes the generated text alone, inside the markers.
    """
    block = f"{BEGIN_GENERATED}\n{generated.rstrip()}\n{END_GENERATED}"
    if existing and BEGIN_GENERATED in existing and END_GENERATED in existing:
        before, rest = existing.split(BEGIN_GENERATED, 1)
        after = rest.split(END_GENERATED, 1)[1]
        return f"{before}{block}{after}"
    return block + "\n"
