"""The training loop: sample tasks → collect support and query episodes → meta-update → log → checkpoint."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from metarl.checkpoint import CheckpointError
from metarl.checkpoint_check import RESUMED_POLICY_KEYS, load_policy_weights, resume_checkpoint
from metarl.config import (
    ConfigError,
    TrainConfig,
    to_dict,
    upgrade_saved_config,
)
from metarl.experiment import Experiment, build_experiment, divergence_hint
from metarl.heartbeat import Heartbeat, Note, silent
from metarl.logger import EventLayout, Logger, print_progress, progress_line
from metarl.meta_batch import collect_meta_batch
from metarl.parts import MemoryNeed
from metarl.reporting.machine import machine_description
from metarl.run import (
    ETA,
    RL_TRAINING,
    checkpoint_state,
    open_logger,
    process_settings,
    release_run_dir,
    save_checkpoints,
    saved_run_config,
    write_config,
)
from metarl.samplers.rollout import hinted_divergence
from metarl.seeding import TRAIN_EPISODES, TRAIN_TASKS, task_rng

RESUME_FIX = "check the --resume path"
# Keys a resumed run may change: they alter how long it runs or where it samples, never its numbers.
RESUMABLE_KEYS = frozenset({"num_batches", "checkpoint_every", "sampler", "device"})
ADAPTATION_TAG = "adaptation/return"
"""``returns/step_k`` again, in run ``step_k`` below the run's own: one chart with a coloured line per k. Its
group sorts before ``meta/``, so TensorBoard's Scalars tab opens on the returns."""


@dataclass
class Progress:
    iteration: int = 0
    """The next iteration to run."""
    env_steps: int = 0
    wall_time_s: float = 0.0


def run_name(config: TrainConfig) -> str:
    """A new run's default directory name stem: the env's name (``runs/<name>-seed<seed>-<time>``)."""
    return config.env_id.split("/")[-1].lower()


T = TypeVar("T")


def started_experiment(
    config: TrainConfig, run_dir: Path, restore: Callable[[Experiment], T], memory: MemoryNeed | None = None
) -> tuple[Experiment, T]:
    """The experiment of ``config`` (built before anything is written, so a bad config fails first), what
    ``restore(experiment)`` returns (a resume loads its checkpoint there), and the config saved in ``run_dir``.
    If either of the last two fails the experiment is closed: no sampler worker outlives the error. ``memory``:
    what an iteration needs, if not an RL training iteration (see ``build_experiment``)."""
    experiment = build_experiment(config, memory)
    try:
        restored = restore(experiment)
        write_config(run_dir, config)
    except BaseException:
        experiment.close()  # no orphaned sampler workers after a full disk
        release_run_dir(run_dir)
        raise
    return experiment, restored


def restored_progress(state: dict[str, Any], path: Path, experiment: Experiment) -> Progress:
    """Load a checked checkpoint (see ``metarl.checkpoint_check``) into the experiment's policy and return where the
    run stood."""
    load_policy_weights(experiment.policy, state, path)
    return Progress(state["iteration"], state["env_steps"], float(state["wall_time_s"]))


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


def resumed_config(run_dir: Path, overrides: list[str], resumable: frozenset[str] = RESUMABLE_KEYS) -> TrainConfig:
    """The run's saved config with ``key=value`` overrides, refused for keys other than ``resumable``: those
    would change its results."""
    return saved_run_config(run_dir, TrainConfig, RESUME_FIX, overrides, resumable, upgrade_saved_config)


def policy_checkpoint(experiment: Experiment, progress: Progress, **payload: Any) -> dict[str, Any]:
    """A checkpoint of a policy trained on an env (MAML's, or the pretrained baseline's with its extra fields)."""
    return checkpoint_state(
        experiment.config,
        progress.iteration,
        progress.wall_time_s,
        policy=experiment.policy.state_dict(),
        env_steps=progress.env_steps,
        env_id=experiment.config.env_id,
        machine=machine_description(experiment.learner.device),  # for results tables
        **payload,
    )


class Trainer:
    def __init__(self, experiment: Experiment, run_dir: Path, progress: Progress | None = None, resumed: bool = False):
        self.experiment = experiment
        self.config = experiment.config
        self.run_dir = Path(run_dir)
        self.progress = progress or Progress()
        self.resumed = resumed
        """Whether an earlier process ran here: its TensorBoard events from this iteration on are superseded."""
        self.events = EventLayout.of(self.run_dir)

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
            if progress.iteration > config.num_batches:  # else the saved config.yaml would say fewer than were done
                raise ConfigError(
                    f"num_batches={config.num_batches} is fewer than the {progress.iteration} iterations the run "
                    f"has done; give at least {progress.iteration}, or start a new run"
                )
            if progress.iteration == config.num_batches:  # checked, and nothing written yet: leave it so
                raise RL_TRAINING.finished(run_dir, config.num_batches)
            return progress

        experiment, progress = started_experiment(config, run_dir, restore)
        return cls(experiment, run_dir, progress, resumed=True)

    def checkpoint_state(self) -> dict[str, Any]:
        return policy_checkpoint(self.experiment, self.progress, learner=self.experiment.learner.state_dict())

    def save(self) -> None:
        save_checkpoints(self.run_dir, self.checkpoint_state(), self.config.checkpoint_every)

    def iteration(self, note: Note = silent) -> dict[str, float]:
        """One meta-iteration; returns everything it logs. ``note`` hears each sampling and meta-update stage."""
        config, experiment, it = self.config, self.experiment, self.progress.iteration
        tasks = experiment.tasks.sample_tasks(config.meta_batch_size, task_rng(config.seed, TRAIN_TASKS, it))
        start = time.perf_counter()
        with hinted_divergence(divergence_hint(config)):
            batch = collect_meta_batch(
                experiment.sampler,
                experiment.policy,
                dict(experiment.policy.named_parameters()),
                tasks,
                budget=experiment.budget(config.fast_batch_size),
                inner=experiment.learner.inner,
                seed=(config.seed, TRAIN_EPISODES, it),
                note=note,
            )
        sampled = time.perf_counter()
        stats = experiment.learner.step(batch.tensors, note)
        updated = time.perf_counter()

        scalars = {f"returns/step_{k}": value for k, value in enumerate(batch.mean_returns())}
        scalars.update({f"meta/{key}": value for key, value in stats.items()})
        scalars["time/sampling_s"] = sampled - start
        scalars["time/meta_update_s"] = updated - sampled
        scalars["time/iteration_s"] = updated - start
        scalars["perf/env_steps_per_s"] = batch.env_steps / (sampled - start)
        scalars["perf/env_steps"] = self.progress.env_steps + batch.env_steps
        self.progress.env_steps += batch.env_steps
        self.progress.wall_time_s += updated - start
        self.progress.iteration += 1
        return scalars

    def open_logger(self) -> Logger:
        """The run's TensorBoard logger; a new run's settings and adaptation chart are written first."""
        config = self.config
        logger = open_logger(self.run_dir, self.progress.iteration, self.resumed)
        if self.progress.iteration == 0:
            logger.hyperparameters(to_dict(config))
            metrics = {f"returns/step_{k}": f"return after {k} inner steps" for k in range(config.num_steps + 1)}
            logger.hparams(to_dict(config), metrics, trial_id=self.run_dir.resolve().name)
            logger.multiline_chart("metarl", "adaptation", ADAPTATION_TAG)
        return logger

    def log(self, logger: Logger, scalars: dict[str, float]) -> None:
        """The scalars of the iteration just done, at its step."""
        for tag, value in scalars.items():
            logger.record(tag, value)
        for k in range(self.config.num_steps + 1):
            logger.record(ADAPTATION_TAG, scalars[f"returns/step_{k}"], run=f"step_{k}")
        logger.dump(self.events.step(self.progress.iteration))

    def run(
        self, quiet: bool = False, callback: Callable[[int, dict[str, float]], bool | None] | None = None
    ) -> list[dict[str, float]]:
        """Train to ``num_batches``; returns each iteration's scalars. ``callback(iteration, scalars)`` runs after
        each iteration is saved; returning False stops the run there (resumable)."""
        config = self.config
        process_settings()
        logger = self.open_logger()
        history = []
        eta = ETA(config.num_batches)
        heartbeat = Heartbeat.unless(quiet)  # lines within an iteration that takes minutes
        try:
            while self.progress.iteration < config.num_batches:
                heartbeat.begin(f"iter {self.progress.iteration + 1}/{config.num_batches}")
                scalars = self.iteration(heartbeat)
                self.log(logger, scalars)
                self.save()
                history.append(scalars)
                if not quiet:
                    print_progress(
                        progress_line(
                            self.progress.iteration,
                            config.num_batches,
                            scalars["returns/step_0"],
                            scalars[f"returns/step_{config.num_steps}"],
                            scalars["meta/kl"],
                            scalars["perf/env_steps_per_s"],
                            eta.after(self.progress.iteration, scalars["time/iteration_s"]),
                        )
                    )
                if callback is not None and callback(self.progress.iteration, scalars) is False:
                    break
        finally:
            logger.close()
            self.experiment.close()
            release_run_dir(self.run_dir)
        return history
