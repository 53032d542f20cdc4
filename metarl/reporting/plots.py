"""The adaptation plot: return against the number of inner gradient steps, one line per method."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only, no display needed
import matplotlib.pyplot as plt  # noqa: E402

from metarl.reporting.reference import PaperReference  # noqa: E402

LABELS = {"maml": "MAML", "pretrained": "pretrained", "random_init": "random init"}
COLORS = {"maml": "tab:blue", "pretrained": "tab:orange", "random_init": "tab:green"}


def adaptation_plot(
    path: Path,
    methods: Mapping[str, Sequence[Mapping[str, Any]]],
    title: str,
    reference: PaperReference | None = None,
) -> Path:
    """Mean return with its 95% confidence band per method, the paper's numbers dashed where it has them.

    ``methods[name]`` is the list of per-step entries of ``evaluation.json`` (keys step, mean, ci_low, ci_high).
    """
    figure, axes = plt.subplots(figsize=(8.4, 4.4), dpi=120)
    num_steps = max(len(entries) for entries in methods.values()) - 1
    for index, (name, entries) in enumerate(methods.items()):
        color = COLORS.get(name, f"C{index + 3}")
        steps = [entry["step"] for entry in entries]
        axes.plot(steps, [e["mean"] for e in entries], "o-", color=color, label=f"{LABELS.get(name, name)} (ours)")
        axes.fill_between(
            steps, [e["ci_low"] for e in entries], [e["ci_high"] for e in entries], color=color, alpha=0.2, linewidth=0
        )
        if reference is not None and name in reference.returns:
            paper = reference.returns[name][: num_steps + 1]  # compared only where we have numbers
            axes.plot(
                range(len(paper)),
                paper,
                "s--",
                color=color,
                alpha=0.7,
                markersize=4,
                label=f"{LABELS.get(name, name)} (paper)",
            )
    if reference is not None and reference.oracle is not None:
        axes.axhline(reference.oracle, color="black", linestyle=":", linewidth=1, label="oracle (paper)")
    axes.set_xticks(range(num_steps + 1))
    return _save(figure, axes, path, title, "number of gradient steps", "mean return over test tasks")


def training_curve_plot(
    path: Path,
    returns_by_step: Mapping[int, Sequence[tuple[int, float]]],
    title: str,
    reference: PaperReference | None = None,
) -> Path:
    """Mean training return per meta-iteration after 0..K inner steps; the paper's test returns as lines.

    ``returns_by_step[k]`` is a list of (iteration, return) pairs, as TensorBoard's ``returns/step_k``.
    """
    figure, axes = plt.subplots(figsize=(8.4, 4.4), dpi=120)
    for k, points in sorted(returns_by_step.items()):
        iterations, values = zip(*points, strict=True)
        color = f"C{k}"
        plural = "s" if k != 1 else ""
        axes.plot(iterations, values, color=color, label=f"{k} inner step{plural} (ours, training tasks)")
        if reference is not None and k < len(reference.returns["maml"]):
            axes.axhline(
                reference.returns["maml"][k],
                color=color,
                linestyle="--",
                alpha=0.7,
                label=f"{k} step{plural}: paper (test tasks)",
            )
    return _save(figure, axes, path, title, "meta-iteration", "mean return per episode")


def comparison_plot(
    path: Path,
    curves: Mapping[str, Sequence[tuple[int, float]]],
    title: str,
    ylabel: str,
    reference: float | None = None,
    window: int = 10,
) -> Path:
    """Several runs' training returns on one axis: each run's raw curve faint, its moving average over ``window``
    iterations solid (one iteration's tasks make a noisy point), and the paper's test return dashed."""
    figure, axes = plt.subplots(figsize=(8.4, 4.4), dpi=120)
    for index, (label, points) in enumerate(curves.items()):
        iterations, values = zip(*points, strict=True)
        color = f"C{index}"
        axes.plot(iterations, values, color=color, alpha=0.25, linewidth=0.8)
        width = min(window, len(values))
        smoothed = [sum(values[i - width + 1 : i + 1]) / width for i in range(width - 1, len(values))]
        axes.plot(iterations[width - 1 :], smoothed, color=color, label=f"{label} ({width}-iteration mean)")
    if reference is not None:
        axes.axhline(reference, color="black", linestyle="--", alpha=0.7, label="paper (test tasks)")
    return _save(figure, axes, path, title, "meta-iteration", ylabel)


def _save(figure: Any, axes: Any, path: Path, title: str, xlabel: str, ylabel: str) -> Path:
    """Labels, grid, a legend outside the axes (it never hides a curve), then the PNG."""
    axes.set_xlabel(xlabel)
    axes.set_ylabel(ylabel)
    axes.set_title(title)
    axes.grid(alpha=0.3)
    axes.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.02, 0.5))
    figure.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)
    plt.close(figure)
    return path
