"""The sinusoid experiment's figure and the paper's numbers it is compared with (section 5.1)."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch

from metarl.policies import for_tasks, parameters_of
from metarl.supervised.meta_learning import adapt, batched_forward, mse_per_task
from metarl.supervised.models import MLPRegressor
from metarl.supervised.tasks import SinusoidDistribution, TaskBatch

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
