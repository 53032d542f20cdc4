"""The sinusoid experiment (MAML paper, section 5.1): meta-training, the pretrained baseline, evaluation on
fresh tasks, the Figure-2 plot and the paper's numbers it is compared with. ``launchers/sinusoid.py`` calls
``run_sinusoid``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import torch

from metarl.checkpoint import atomic_write_text
from metarl.config import to_dict
from metarl.heartbeat import Heartbeat
from metarl.policies import for_tasks, parameters_of
from metarl.run import CHECKPOINTS, open_logger
from metarl.run_loop import Progress
from metarl.seeding import EVAL_TASKS, POLICY_INIT, TRAIN_TASKS, task_rng, torch_generator
from metarl.supervised.config import SinusoidConfig
from metarl.supervised.evaluation import adaptation_curve, pretrain_jointly, summarize
from metarl.supervised.meta_learning import adapt, batched_forward, make_meta_learner, mse_per_task
from metarl.supervised.models import MLPRegressor
from metarl.supervised.tasks import SinusoidDistribution, TaskBatch
from metarl.supervised.training import BASELINE_INIT, BASELINE_TASKS, meta_train, restore

NAME = "sinusoid"
METHOD = {"method": NAME}
"""What its checkpoints say they are, so that another launcher's --resume refuses them."""

# Finn et al. (2017), section 5.1 / figure 3 text: MSE on K = 5 after 1 / 5 / 10 steps (no confidence intervals given).
PAPER_K5 = {
    "maml": {"step_1": 0.67, "step_5": 0.38, "step_10": 0.35},
    "pretrained": {"step_1": 2.41, "step_5": 2.23, "step_10": 2.19},
}


def fits_on_grid(
    model: MLPRegressor, batch: TaskBatch, lr: float, steps: list[int], grid: torch.Tensor
) -> dict[int, np.ndarray]:
    """Predictions [T, G] on ``grid`` after each number of inner steps in ``steps``."""
    params = {name: value.detach().requires_grad_() for name, value in parameters_of(model).items()}
    task_params, done, fits = for_tasks(params, len(batch)), 0, {}
    grid_T = grid.view(1, -1, 1).expand(len(batch), -1, -1)
    for step in sorted(steps):
        task_params = adapt(
            model,
            task_params,
            batch.support_inputs,
            batch.support_targets,
            mse_per_task,
            lr,
            step - done,
            first_order=True,
        )
        done = step
        with torch.no_grad():
            fits[step] = batch_predictions(model, task_params, grid_T)
    return fits


def batch_predictions(model: MLPRegressor, task_params: dict, inputs: torch.Tensor) -> np.ndarray:
    return batched_forward(model, task_params, inputs).squeeze(-1).numpy()


def plot_fits(
    path: Path,
    models: dict[str, MLPRegressor],
    batch: TaskBatch,
    distribution: SinusoidDistribution,
    amplitudes: list[float],
    phases: list[float],
    lr: float,
    max_steps: int,
) -> None:
    """Figure 2 of the paper: rows are models, columns tasks; true curve, K points, fits after 0, 1 and max steps."""
    grid = torch.linspace(*distribution.input_range, 200)
    steps = sorted({0, 1, max_steps})
    fig, axes = plt.subplots(
        len(models), len(batch), figsize=(4.2 * len(batch), 3.2 * len(models)), squeeze=False, sharex=True
    )
    styles = {0: ("tab:green", ":"), 1: ("tab:blue", "--"), max_steps: ("tab:red", "-")}
    for row, (name, model) in enumerate(models.items()):
        fits = fits_on_grid(model, batch, lr, steps, grid)
        for col in range(len(batch)):
            ax = axes[row][col]
            truth = amplitudes[col] * np.sin(grid.numpy() - phases[col])
            ax.plot(grid, truth, color="black", linewidth=2, label="ground truth")
            for step in steps:
                color, style = styles[step]
                ax.plot(
                    grid,
                    fits[step][col],
                    color=color,
                    linestyle=style,
                    label="pre-update" if step == 0 else f"{step} grad step{'s' if step > 1 else ''}",
                )
            ax.scatter(
                batch.support_inputs[col, :, 0],
                batch.support_targets[col, :, 0],
                marker="^",
                s=60,
                color="purple",
                zorder=5,
                label=f"{batch.support_inputs.shape[1]} points used for gradient",
            )
            ax.set_title(f"{name}, task {col + 1} (A={amplitudes[col]:.2f}, φ={phases[col]:.2f})", fontsize=10)
            ax.set_ylim(-6, 6)
    axes[0][0].legend(fontsize=8, loc="lower left")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def distribution_of(config: SinusoidConfig) -> SinusoidDistribution:
    (a_low, a_high), (p_low, p_high), (x_low, x_high) = config.amplitude_range, config.phase_range, config.input_range
    return SinusoidDistribution((a_low, a_high), (p_low, p_high), (x_low, x_high))


def new_model(config: SinusoidConfig, stream: int) -> MLPRegressor:
    return MLPRegressor(1, 1, config.hidden_sizes, generator=torch_generator(config.seed, stream))


def run_sinusoid(
    config: SinusoidConfig,
    run_dir: Path,
    progress: Progress | None = None,
    resume_from: tuple[dict[str, Any], Path] | None = None,
    quiet: bool = False,
) -> dict[str, Any]:
    """Train (from ``resume_from``, a checkpoint and its path, if given), pretrain the baseline, evaluate both and
    write evaluation.json and the plot into ``run_dir`` (already holding the config); returns what
    evaluation.json holds. ``progress`` follows the iterations done, for the launcher's message if the run is
    stopped. The baseline is not checkpointed: a resume trains it again, to the same numbers."""
    torch.set_num_threads(config.num_threads)
    distribution = distribution_of(config)

    def training_batch(iteration: int) -> TaskBatch:
        return distribution.sample(
            config.meta_batch_size, config.num_shots, config.num_query, task_rng(config.seed, TRAIN_TASKS, iteration)
        )

    model = new_model(config, POLICY_INIT)
    learner = make_meta_learner(config, model, mse_per_task)
    progress = progress if progress is not None else Progress()
    if resume_from is not None:
        restore(learner, *resume_from, progress)
    logger = open_logger(run_dir, progress.iteration, resume_from is not None, to_dict(config))
    try:
        timing = meta_train(
            learner, training_batch, config, run_dir, logger, quiet, progress=progress, extra_state=lambda: METHOD
        )

        baseline = new_model(config, BASELINE_INIT)
        heartbeat = Heartbeat.unless(quiet)
        heartbeat.begin("pretrained baseline")  # minutes without a progress line otherwise
        if config.baseline_iterations:
            pretrain_jointly(
                baseline,
                lambda it: distribution.sample(
                    config.meta_batch_size,
                    config.num_shots,
                    config.num_query,
                    task_rng(config.seed, BASELINE_TASKS, it),
                ),
                config.baseline_iterations,
                config.meta_lr,
                mse_per_task,
                heartbeat,
            )
            torch.save(baseline.state_dict(), run_dir / CHECKPOINTS / "baseline.pt")

        eval_rng = task_rng(config.seed, EVAL_TASKS, 0)
        tasks = distribution.sample_tasks(config.eval_tasks, eval_rng)
        batch = distribution.sample_batch(tasks, config.num_shots, config.eval_query, eval_rng)
        max_steps = max(config.eval_steps)
        models = {config.algorithm + ("-first-order" if config.first_order else ""): model}
        if config.baseline_iterations:
            models["pretrained"] = baseline
        results: dict[str, Any] = {
            "config": to_dict(config),
            "training": timing,
            "eval_tasks": config.eval_tasks,
            "num_shots": config.num_shots,
            "eval_query": config.eval_query,
            "mse": {},
        }
        for name, net in models.items():
            curve = adaptation_curve(net, parameters_of(net), batch, mse_per_task, config.inner_lr, max_steps)
            results["mse"][name] = summarize(curve, sorted({0, *config.eval_steps}))
            results["mse"][name]["curve_mean"] = curve.mean(axis=1).tolist()
            for step, value in enumerate(curve.mean(axis=1)):
                logger.record(f"eval/{name}_mse", float(value))
                logger.dump(step)
        if config.num_shots == 5:
            results["paper_k5"] = PAPER_K5
        atomic_write_text(run_dir / "evaluation.json", json.dumps(results, indent=2) + "\n")
        if config.plot_tasks:
            n = min(config.plot_tasks, len(tasks))
            plot_fits(
                run_dir / "sinusoid_fits.png",
                models,
                batch[:n],
                distribution,
                [t.amplitude for t in tasks[:n]],
                [t.phase for t in tasks[:n]],
                config.inner_lr,
                max_steps,
            )
    finally:
        logger.close()
    return results
