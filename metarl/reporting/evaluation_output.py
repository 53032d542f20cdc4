"""What an evaluation writes: ``evaluation.json`` (the schema ``metarl.reporting.report`` reads), the adaptation plot
and TensorBoard scalars. It takes plain values (settings as dicts, checkpoints as they were loaded), so that the
evaluation (``metarl.evaluation_run``), a layer above, calls it and is not called back."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch.utils.tensorboard import SummaryWriter

from envs import Task
from metarl.checkpoint import atomic_write_text
from metarl.config import ALIASES, EVALUATION_ALIASES, TrainConfig, current_names, to_dict
from metarl.reporting.machine import machine_description
from metarl.reporting.plots import adaptation_plot
from metarl.reporting.reference import PaperReference, family_name
from metarl.version import __version__

RESULTS_FILE = "evaluation.json"
PLOT_FILE = "adaptation.png"


def finite_or_none(value: Any) -> Any:
    """JSON has no NaN: undefined statistics (one test task) are written as null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: finite_or_none(v) for key, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite_or_none(v) for v in value]
    return value


def results_document(
    *,
    config: TrainConfig,
    run_dir: Path,
    checkpoint: tuple[dict[str, Any], Path],
    pretrained: tuple[dict[str, Any], Path] | None,
    settings: dict[str, Any],
    step_sizes_by_method: dict[str, list[float]],
    device: torch.device,
    tasks: Sequence[Task],
    methods: dict[str, list[dict[str, Any]]],
    wall_time_s: float,
    reference: PaperReference | None,
) -> dict[str, Any]:
    """The content of ``evaluation.json``: the methods' returns per step, the settings (``EvalSettings.to_dict()``)
    and checkpoints they came from, the machine, and the paper's row to compare with."""
    return {
        "metarl_version": __version__,
        "env_id": config.env_id,
        "family": family_name(config.env_id),
        "run_dir": str(run_dir),
        "checkpoint": checkpoint_summary(*checkpoint),
        "pretrained_checkpoint": checkpoint_summary(*pretrained) if pretrained else None,
        "config": {
            "evaluation": {**settings, "step_sizes_by_method": {name: step_sizes_by_method[name] for name in methods}},
            "device": str(device),
            "run": to_dict(config),
        },
        "machine": machine_description(device),
        "evaluation_wall_time_s": wall_time_s,
        "test_tasks": list(tasks),
        "methods": methods,
        "paper": None
        if reference is None
        else {
            "family": reference.family,
            **{m: list(v) for m, v in reference.returns.items()},
            "oracle": reference.oracle,
            "episodes_per_task": reference.episodes_per_task,
        },
    }


def current_results(results: dict[str, Any], source: str) -> dict[str, Any]:
    """The content of an ``evaluation.json`` (read from ``source``) in today's names: one written before one
    quantity got one name (issue 29) records its settings and the paper's row under ``EVALUATION_ALIASES``' earlier
    names and the run's config under ``ALIASES``'. Every reader of the files takes them through here."""
    upgraded = dict(results)
    config = results.get("config")
    if isinstance(config, dict):
        upgraded["config"] = {
            **config,
            **{
                part: current_names(config[part], source, aliases)
                for part, aliases in (("evaluation", EVALUATION_ALIASES), ("run", ALIASES))
                if isinstance(config.get(part), dict)
            },
        }
    if isinstance(results.get("paper"), dict):
        upgraded["paper"] = current_names(results["paper"], source, EVALUATION_ALIASES)
    return upgraded


def checkpoint_summary(state: Mapping[str, Any], path: Path) -> dict[str, Any]:
    """What ``evaluation.json`` records of a checkpoint: where it is, how far its run had come, and on what."""
    return {
        "path": str(path),
        "iteration": int(state.get("iteration", 0)),
        "env_steps": int(state.get("env_steps", 0)),
        "wall_time_s": float(state.get("wall_time_s", 0.0)),
        "metarl_version": state.get("metarl_version"),
        "method": state.get("method", "maml"),
        "machine": state.get("machine"),
    }


def write_outputs(output_dir: Path, results: dict[str, Any], reference: PaperReference | None) -> None:
    """The plot and TensorBoard scalars first, evaluation.json last and atomically: it marks a complete
    evaluation (an existing one blocks reruns), so a full disk or a kill at any point leaves none, never a
    truncated one, and the rerun overwrites the rest."""
    output_dir.mkdir(parents=True, exist_ok=True)
    iteration = results["checkpoint"]["iteration"]
    num_tasks = results["config"]["evaluation"]["num_tasks"]
    title = f"{results['family']}: {num_tasks} test tasks, iteration {iteration}"
    adaptation_plot(output_dir / PLOT_FILE, results["methods"], title, reference)
    write_tensorboard(output_dir, results["methods"], iteration)
    atomic_write_text(output_dir / RESULTS_FILE, json.dumps(finite_or_none(results), indent=2, default=float) + "\n")


def write_tensorboard(output_dir: Path, methods: dict[str, list[dict[str, Any]]], iteration: int) -> None:
    """eval/<method>/step_<k> at the checkpoint's iteration (curves over training when several are
    evaluated into one directory) and eval/<method>/adaptation against the number of steps."""
    writer = SummaryWriter(str(output_dir))
    try:
        for name, entries in methods.items():
            for entry in entries:
                writer.add_scalar(f"eval/{name}/step_{entry['step']}", entry["mean"], iteration)
                writer.add_scalar(f"eval/{name}/adaptation", entry["mean"], entry["step"])
        writer.add_custom_scalars(
            {"metarl eval": {"adaptation": ["Multiline", [f"eval/{name}/adaptation" for name in methods]]}}
        )
    finally:
        writer.close()
