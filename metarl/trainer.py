"""RL meta-training's step: sample tasks → collect support and query episodes → meta-update. The loop around
it (logging, progress line, checkpoints) is ``metarl.run_loop``'s."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from metarl.checkpoint import CheckpointError
from metarl.checkpoint_check import RESUMED_POLICY_KEYS, resume_checkpoint
from metarl.config import ConfigError, TrainConfig, to_dict
from metarl.experiment import Experiment, divergence_hint
from metarl.experiment_run import policy_checkpoint, restored_progress, resumed_config, started_experiment
from metarl.heartbeat import Note, silent
from metarl.logger import Logger
from metarl.meta_batch import collect_meta_batch
from metarl.run import RL_TRAINING, open_logger, release_run_dir
from metarl.run_loop import Cadence, Progress, Scalars, record_all, run_loop
from metarl.samplers.rollout import hinted_divergence
from metarl.seeding import TRAIN_EPISODES, TRAIN_TASKS, task_rng

ADAPTATION_TAG = "adaptation/return"
"""``returns/step_k`` again, in run ``step_k`` below the run's own: one chart with a coloured line per k. Its
group sorts before ``meta/``, so TensorBoard's Scalars tab opens on the returns."""


def restored_training(state: dict[str, Any], path: Path, experiment: Experiment) -> Progress:
    """``restored_progress`` for a training run, with the meta-learner's state (Adam's moments, ProMP's KL
    coefficients): without it a resumed run would not give the numbers of one that never stopped. Checkpoints
    from before the key existed are MAML-TRPO's, which keeps no state."""
    progress = restored_progress(state, path, experiment)
    learner_state = state.get("learner", {})
    try:
        if not isinstance(learner_state, dict):
            raise ValueError(f"it is a {type(learner_state).__name__}, not a dict")
        experiment.learner.load_state_dict(learner_state)
    except ValueError as error:
        raise CheckpointError(
            f"checkpoint {path}: the meta-learner's state does not fit algo: {experiment.config.algo} ({error}); "
            "it was not written by this run, or is damaged"
        ) from None
    return progress


class Trainer:
    """A MAML training run (any ``algo``): its experiment and where it stands; ``run_loop``'s ``Steps``."""

    label = "iter"

    def __init__(self, experiment: Experiment, run_dir: Path, progress: Progress | None = None, resumed: bool = False):
        self.experiment = experiment
        self.config = experiment.config
        self.total = self.config.num_iterations
        self.run_dir = Path(run_dir)
        self.progress = progress or Progress()
        self.resumed = resumed
        """Whether an earlier process ran here: its TensorBoard events from this iteration on are superseded."""

    @classmethod
    def start(cls, config: TrainConfig, run_dir: Path) -> Trainer:
        experiment, _ = started_experiment(config, run_dir, lambda experiment: None)
        return cls(experiment, run_dir)

    @classmethod
    def resume(cls, run_dir: Path, overrides: list[str]) -> Trainer:
        """Continue the run in ``run_dir`` from its latest checkpoint, or from iteration 0 if it was killed
        before its first one (its config is all a fresh start needs, and gives the same numbers). A finished
        run raises ``RunFinished`` once its checkpoint is checked, before anything is written, unless ``overrides``
        extend it."""
        run_dir = Path(run_dir)
        config = resumed_config(run_dir, overrides)
        saved = resume_checkpoint(run_dir, RL_TRAINING, RESUMED_POLICY_KEYS, config.env_id)

        def restore(experiment: Experiment) -> Progress:
            progress = Progress() if saved is None else restored_training(*saved, experiment)
            if progress.iteration > config.num_iterations:  # else the saved config.yaml would say fewer than were done
                raise ConfigError(
                    f"num_iterations={config.num_iterations} is fewer than the {progress.iteration} iterations the run "
                    f"has done; give at least {progress.iteration}, or start a new run"
                )
            if progress.iteration == config.num_iterations:  # checked, and nothing written yet: leave it so
                raise RL_TRAINING.finished(run_dir, config.num_iterations)
            return progress

        experiment, progress = started_experiment(config, run_dir, restore)
        return cls(experiment, run_dir, progress, resumed=True)

    def checkpoint_state(self) -> dict[str, Any]:
        return policy_checkpoint(self.experiment, self.progress, learner=self.experiment.learner.state_dict())

    def step(self, note: Note = silent) -> Scalars:
        """Meta-iteration ``progress.iteration``; returns everything it logs. ``note`` hears each sampling and
        meta-update stage."""
        config, experiment, it = self.config, self.experiment, self.progress.iteration
        tasks = experiment.tasks.sample_tasks(config.meta_batch_size, task_rng(config.seed, TRAIN_TASKS, it))
        start = time.perf_counter()
        with hinted_divergence(divergence_hint(config)):
            batch = collect_meta_batch(
                experiment.sampler,
                experiment.policy,
                dict(experiment.policy.named_parameters()),
                tasks,
                budget=experiment.budget(config.episodes_per_task),
                inner=experiment.learner.inner,
                seed=(config.seed, TRAIN_EPISODES, it),
                note=note,
            )
        sampled = time.perf_counter()
        stats = experiment.learner.step(batch.tensors, note)
        updated = time.perf_counter()

        self.progress.env_steps += batch.env_steps
        scalars = {f"returns/step_{k}": value for k, value in enumerate(batch.mean_returns())}
        scalars.update({f"meta/{key}": value for key, value in stats.items()})
        scalars["time/sampling_s"] = sampled - start
        scalars["time/meta_update_s"] = updated - sampled
        scalars["time/iteration_s"] = updated - start
        scalars["perf/env_steps_per_s"] = batch.env_steps / (sampled - start)
        scalars["perf/env_steps"] = self.progress.env_steps
        return scalars

    def record(self, logger: Logger, scalars: Scalars) -> None:
        record_all(logger, scalars)
        for k in range(self.config.num_steps + 1):
            logger.record(ADAPTATION_TAG, scalars[f"returns/step_{k}"], run=f"step_{k}")

    def summary(self, scalars: Scalars) -> str:
        return (
            f"return {scalars['returns/step_0']:9.2f} -> {scalars[f'returns/step_{self.config.num_steps}']:9.2f} | "
            f"kl {scalars['meta/kl']:.4f} | {scalars['perf/env_steps_per_s']:9,.0f} env steps/s"
        )

    def open_logger(self) -> Logger:
        """The run's TensorBoard logger; a new run's settings and adaptation chart are written first."""
        config = self.config
        logger = open_logger(self.run_dir, self.progress.iteration, self.resumed, to_dict(config))
        if self.progress.iteration == 0:
            metrics = {f"returns/step_{k}": f"return after {k} inner steps" for k in range(config.num_steps + 1)}
            logger.hparams(to_dict(config), metrics, trial_id=self.run_dir.resolve().name)
            logger.multiline_chart("metarl", "adaptation", ADAPTATION_TAG)
        return logger

    def run(self, quiet: bool = False, callback: Callable[[int, Scalars], bool | None] | None = None) -> list[Scalars]:
        """Train to ``num_iterations``; returns each iteration's scalars. ``callback(iteration, scalars)`` runs after
        each iteration is saved; returning False stops the run there (resumable)."""
        logger = self.open_logger()
        try:
            return run_loop(self, self.run_dir, logger, Cadence(self.config.checkpoint_every), quiet, callback)
        finally:
            logger.close()
            self.experiment.close()
            release_run_dir(self.run_dir)
