"""The adaptation plot: return against the number of inner gradient steps, one line per method."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only, no display needed
import matplotlib.pyplot as plt  # noqa: E402

from metarl.reference import PaperReference  # noqa: E402

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
        axes.fill_between(steps, [e["ci_low"] for e in entries], [e["ci_high"] for e in entries], color=color,
                          alpha=0.2, linewidth=0)
        if reference is not None and name in reference.returns:
            paper = reference.returns[name][: num_steps + 1]  # compared only where we have numbers
            axes.plot(range(len(paper)), paper, "s--", color=color, alpha=0.7, markersize=4,
                      label=f"{LABELS.get(name, name)} (paper)")
    if reference is not None and reference.oracle is not None:
        axes.axhline(reference.oracle, color="black", linestyle=":", linewidth=1, label="oracle (paper)")
    axes.set_xticks(range(num_steps + 1))
    axes.set_xlabel("number of gradient steps")
    axes.set_ylabel("mean return over test tasks")
    axes.set_title(title)
    axes.grid(alpha=0.3)
    axes.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.02, 0.5))  # outside: never hides a curve
    figure.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)
    plt.close(figure)
    return path
