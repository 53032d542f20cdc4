"""The "pretrained" baseline: one policy trained on all tasks jointly with ordinary policy gradient.

Each iteration samples ``meta_batch_size`` tasks from the training stream (the same tasks MAML sees),
``episodes_per_task`` episodes on each with the current policy, and takes one Adam step on the mean
over tasks of the REINFORCE-with-baseline loss the inner step uses. By default an iteration samples
as many episodes as a MAML iteration (episodes_per_task · (num_steps + 1) per task), so the two
baselines get the same number of env steps. No adaptation happens here; evaluation adapts it like MAML.

A run resumes from its latest checkpoint bit for bit, as RL training does: the checkpoint holds the policy,
Adam's state and these settings, and every random stream is derived from (seed, iteration).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import torch

from metarl.adaptation import policy_gradient_loss
from metarl.checkpoint import CheckpointError
from metarl.checkpoint_check import RESUMED_POLICY_KEYS, resume_checkpoint
from metarl.config import FLOAT32_MAX, ConfigError, TrainConfig, to_dict
from metarl.experiment import Experiment
from metarl.experiment_run import (
    RESUMABLE_KEYS,
    policy_checkpoint,
    restored_progress,
    resumed_config,
    started_experiment,
)
from metarl.heartbeat import Note, silent
from metarl.logger import Logger
from metarl.memory import PRETRAINING as PRETRAINING_MEMORY
from metarl.memory import MemoryEstimate, MemoryWording, iteration_memory
from metarl.meta_batch import to_cpu
from metarl.parts import MemoryNeed
from metarl.policies import parameters_of
from metarl.run import PRETRAINING, open_logger, release_run_dir
from metarl.run_loop import Cadence, Progress, Scalars, record_all, run_loop
from metarl.samplers.budget import EpisodeBudget
from metarl.samplers.rollout import hinted_divergence
from metarl.seeding import PRETRAIN_EPISODES, TRAIN_TASKS, task_rng

DEFAULT_LEARNING_RATE = 1e-3
# A pretraining run's length is its settings' num_iterations (--iterations), not its config's: a resume that
# changed the config's num_iterations would run no longer, so it is refused rather than ignored.
PRETRAIN_RESUMABLE_KEYS = RESUMABLE_KEYS - {"num_iterations"}
SETTING_FLAGS = {"num_iterations": "--iterations", "episodes_per_task": "--episodes-per-task", "learning_rate": "--lr"}


@dataclass(frozen=True)
class PretrainSettings:
    num_iterations: int
    """Policy-gradient iterations (default: the config's num_iterations)."""
    episodes_per_task: int
    """Episodes per task per iteration (default: what a MAML iteration samples per task)."""
    learning_rate: float = DEFAULT_LEARNING_RATE
    """Adam step size."""

    @classmethod
    def matching(
        cls,
        config: TrainConfig,
        num_iterations: int | None = None,
        learning_rate: float | None = None,
        episodes_per_task: int | None = None,
    ) -> PretrainSettings:
        """Settings with MAML's sample budget unless told otherwise."""
        return cls(
            num_iterations if num_iterations is not None else config.num_iterations,
            episodes_per_task if episodes_per_task is not None else config.episodes_per_task * (config.num_steps + 1),
            learning_rate if learning_rate is not None else DEFAULT_LEARNING_RATE,
        ).validated()

    @classmethod
    def saved(cls, state: dict[str, Any], path: Path) -> PretrainSettings:
        """The settings a pretraining checkpoint was written with."""
        try:
            return cls(**state["pretrain"]).validated()
        except (KeyError, TypeError, ConfigError):
            raise CheckpointError(
                f"checkpoint {path}: its pretrain settings {state.get('pretrain')!r} are missing or damaged"
            ) from None

    def validated(self) -> PretrainSettings:
        for name, value in asdict(self).items():
            if not value > 0:
                raise ConfigError(f"{SETTING_FLAGS[name]} must be positive, got {value}")
        if not self.learning_rate <= FLOAT32_MAX:  # inf, or an Adam step torch cannot convert: a traceback
            raise ConfigError(f"--lr must be a finite number of at most {FLOAT32_MAX:.3g}, got {self.learning_rate}")
        return self


def pretrain_iteration(
    experiment: Experiment,
    optimizer: torch.optim.Optimizer,
    settings: PretrainSettings,
    iteration: int,
    note: Note = silent,
) -> dict[str, float]:
    config, policy = experiment.config, experiment.policy
    tasks = experiment.tasks.sample_tasks(config.meta_batch_size, task_rng(config.seed, TRAIN_TASKS, iteration))
    params = to_cpu(parameters_of(policy))
    note(f"sampling {len(tasks)} tasks' episodes")
    with hinted_divergence("try a smaller --lr (a new run's; a resumed one keeps its own)"):
        batches = experiment.budget(settings.episodes_per_task).sample(
            experiment.sampler, tasks, [params] * len(tasks), (config.seed, PRETRAIN_EPISODES, iteration)
        )
    device = next(policy.parameters()).device
    note("policy-gradient step")
    losses = []
    for batch in batches:
        batch = batch.to(device)
        advantages_TB = experiment.learner.inner.advantages(batch)
        losses.append(policy_gradient_loss(policy, parameters_of(policy), batch, advantages_TB))
    loss = torch.stack(losses).mean()
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return {
        "pretrain/return": sum(b.mean_return() for b in batches) / len(batches),
        "pretrain/loss": float(loss.detach()),
        "pretrain/env_steps": float(sum(b.num_steps for b in batches)),
    }


def pretraining_memory(config: TrainConfig, settings: PretrainSettings) -> MemoryNeed:
    """A pretraining iteration's memory: one sampling of ``episodes_per_task`` per task, every step's activations
    kept for the one gradient, and the policy with its gradient and Adam's two moments."""

    def need(horizon: int, observation_dim: int, action_dim: int) -> tuple[MemoryEstimate, MemoryWording]:
        episodes = EpisodeBudget.of(config.batch_unit, settings.episodes_per_task, horizon).most_episodes
        estimate = iteration_memory(
            config.meta_batch_size, episodes, horizon, 0, observation_dim, action_dim, config.hidden_sizes
        )
        return estimate, PRETRAINING_MEMORY

    return need


def adam(experiment: Experiment, settings: PretrainSettings) -> torch.optim.Adam:
    return torch.optim.Adam(experiment.policy.parameters(), lr=settings.learning_rate)


class Pretraining:
    """A pretraining run: its experiment, settings and Adam optimizer, and where it stands; ``run_loop``'s
    ``Steps``."""

    label = "pretrain"

    def __init__(
        self,
        experiment: Experiment,
        settings: PretrainSettings,
        optimizer: torch.optim.Optimizer,
        run_dir: Path,
        progress: Progress | None = None,
        resumed: bool = False,
    ):
        self.experiment = experiment
        self.config = experiment.config
        self.settings = settings
        self.total = settings.num_iterations
        self.optimizer = optimizer
        self.run_dir = Path(run_dir)
        self.progress = progress or Progress()
        self.resumed = resumed
        """Whether an earlier process ran here: its TensorBoard events from this iteration on are superseded."""

    @classmethod
    def start(cls, config: TrainConfig, settings: PretrainSettings, run_dir: Path) -> Pretraining:
        """A new run in ``run_dir`` (see ``metarl.run.new_run_dir``)."""
        experiment, optimizer = started_experiment(
            config, run_dir, lambda experiment: adam(experiment, settings), pretraining_memory(config, settings)
        )
        return cls(experiment, settings, optimizer, run_dir)

    @classmethod
    def resume(cls, run_dir: Path, overrides: list[str], num_iterations: int | None = None) -> Pretraining:
        """Continue the run in ``run_dir`` from its latest checkpoint, with the settings saved there;
        ``num_iterations`` extends it (a finished run raises ``RunFinished`` otherwise, once its checkpoint is
        checked, writing nothing). Unlike RL training a run killed before its first checkpoint cannot resume: its
        settings were never saved."""
        run_dir = Path(run_dir)
        config = resumed_config(run_dir, overrides, PRETRAIN_RESUMABLE_KEYS)
        saved = resume_checkpoint(run_dir, PRETRAINING, RESUMED_POLICY_KEYS, config.env_id)
        if saved is None:
            raise CheckpointError(
                f"{run_dir} has no checkpoint to resume from: it stopped before its first, and a pretraining "
                "run's settings are saved in its checkpoints only; delete it and start a new run"
            )
        state, path = saved
        if "optimizer" not in state:
            raise CheckpointError(
                f"checkpoint {path} cannot be resumed bit for bit: it predates optimizer state in checkpoints; "
                "start a new run"
            )
        settings = PretrainSettings.saved(state, path)
        if num_iterations is not None:
            settings = replace(settings, num_iterations=num_iterations).validated()

        def restore(experiment: Experiment) -> tuple[Progress, torch.optim.Optimizer]:
            progress = restored_progress(state, path, experiment)
            if progress.iteration > settings.num_iterations:
                raise ConfigError(
                    f"--iterations {settings.num_iterations} is fewer than the {progress.iteration} "
                    "iterations the run has done"
                )
            optimizer = adam(experiment, settings)
            try:
                optimizer.load_state_dict(state["optimizer"])
            except (KeyError, TypeError, ValueError) as error:
                raise CheckpointError(
                    f"checkpoint {path}: its optimizer state does not fit the policy ({type(error).__name__})"
                ) from None
            if progress.iteration == settings.num_iterations:  # checked, and nothing written yet: leave it so
                raise PRETRAINING.finished(run_dir, settings.num_iterations)
            return progress, optimizer

        experiment, (progress, optimizer) = started_experiment(
            config, run_dir, restore, pretraining_memory(config, settings)
        )
        return cls(experiment, settings, optimizer, run_dir, progress, resumed=True)

    def checkpoint_state(self) -> dict[str, Any]:
        return policy_checkpoint(
            self.experiment,
            self.progress,
            method=PRETRAINING.method,
            pretrain=asdict(self.settings),
            optimizer=self.optimizer.state_dict(),
        )

    def step(self, note: Note = silent) -> Scalars:
        scalars = pretrain_iteration(self.experiment, self.optimizer, self.settings, self.progress.iteration, note)
        self.progress.env_steps += int(scalars["pretrain/env_steps"])
        return scalars

    def record(self, logger: Logger, scalars: Scalars) -> None:
        record_all(logger, scalars)

    def summary(self, scalars: Scalars) -> str:
        return f"return {scalars['pretrain/return']:9.2f}"

    def run(self, quiet: bool = False) -> None:
        settings = {**to_dict(self.config), "pretrain": asdict(self.settings)}
        logger = open_logger(self.run_dir, self.progress.iteration, self.resumed, settings)
        try:
            run_loop(self, self.run_dir, logger, Cadence(self.config.checkpoint_every), quiet)
        finally:
            logger.close()
            self.experiment.close()
            release_run_dir(self.run_dir)
