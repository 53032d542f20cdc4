"""metarl from Python: configure a run, train it with a callback, load what it learned and adapt it to a new task.

The launchers do the same calls, so a run made here is a run like any other (same directory, checkpoints,
TensorBoard events and numbers; ``launchers/train.py --resume`` continues it). docs/API.md has the example.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from envs import Task
from metarl.adaptation import InnerStep
from metarl.checkpoint import LATEST
from metarl.config import ConfigError, TrainConfig, find_config, load_config
from metarl.evaluation import EvalSettings, load_policy_checkpoint, load_policy_weights, load_run_config
from metarl.evaluation_run import evaluation_memory_need
from metarl.experiment_run import run_name
from metarl.meta_batch import collect_meta_batch
from metarl.parts import build_policy, build_sampler, compute_device, open_task_env
from metarl.policies import GaussianMLPPolicy, Params, parameters_of
from metarl.run import CHECKPOINTS, RL_TRAINING, latest_checkpoint, new_run_dir
from metarl.samplers import Sampler
from metarl.samplers.budget import EpisodeBudget
from metarl.seeding import EVAL_EPISODES, task_rng
from metarl.trainer import Trainer

CONFIGS = Path(__file__).resolve().parent.parent / "launchers" / "configs"
"""The shipped configs, where ``make_config`` finds a config by name (a source checkout's)."""

Callback = Callable[[int, Mapping[str, float]], bool | None]
"""Called after each iteration with its number (from 1) and the scalars it logged (``returns/step_k``,
``meta/...``, ``perf/...``); returning False stops the run there, resumable."""

USER_STREAM = 7
"""The seed stream of the tasks and episodes ``TrainedPolicy`` draws: none of training's or evaluation's."""


def make_config(file: str | Path | None = None, **settings: Any) -> TrainConfig:
    """A validated config: ``file`` (a path, or the name of a shipped config such as 'halfcheetah-dir'; none: the
    defaults, 2D navigation's) with ``settings`` on top, sections as dicts (``trpo={"max_kl": 0.02}``). A
    misspelled key or bad value raises ``ConfigError`` naming it, as the launchers' ``--set`` does; a key's earlier
    name (``metarl.config.ALIASES``) is read as today's, with a note on stderr, as theirs are."""
    path = find_config(Path(file), CONFIGS / "2d-navigation.yaml") if file is not None else None
    return load_config(TrainConfig, path, settings=settings).validate()


def train(
    config: TrainConfig, output: str | Path | None = None, callback: Callback | None = None, quiet: bool = True
) -> Path:
    """Train a new run of ``config`` in ``output`` (default ``runs/<env>-seed<S>-<time>``); returns its directory.
    ``quiet=False`` prints the launcher's progress lines."""
    run_dir = new_run_dir(run_name(config), config.seed, Path(output) if output is not None else None, RL_TRAINING)
    Trainer.start(config, run_dir).run(quiet=quiet, callback=callback)
    return run_dir


def resume(run_dir: str | Path, callback: Callback | None = None, quiet: bool = True, **settings: Any) -> Path:
    """Continue the run in ``run_dir`` from its latest checkpoint, with the numbers of a run that never stopped;
    ``settings`` may change what does not alter them (``num_iterations=...`` extends it)."""
    overrides = [f"{key}={value}" for key, value in settings.items()]
    Trainer.resume(Path(run_dir), overrides).run(quiet=quiet, callback=callback)
    return Path(run_dir)


@dataclass(frozen=True)
class Adaptation:
    """What adapting to one task gave: the mean episode return before and after each inner step, and the
    adapted parameters (for ``TrainedPolicy.act``)."""

    returns: list[float]
    params: Params


class TrainedPolicy:
    """A run's meta-learned policy with its run's env and sampler: draw tasks, adapt to one, act."""

    def __init__(self, config: TrainConfig, policy: GaussianMLPPolicy, tasks: Any, sampler: Sampler, horizon: int):
        self.config, self.policy, self.tasks, self.sampler, self.horizon = config, policy, tasks, sampler, horizon

    def sample_tasks(self, n: int, seed: int = 0) -> list[Task]:
        """``n`` tasks of the run's distribution, from a stream no training or evaluation draws from."""
        return list(self.tasks.sample_tasks(n, task_rng(seed, USER_STREAM, 0)))

    def adapt(
        self, task: Task, num_steps: int | None = None, episodes: int | None = None, inner_lr: float | None = None,
        seed: int = 0,
    ) -> Adaptation:  # fmt: skip
        """Adapt to ``task`` as training did (its step size, K episodes per step, in its batch unit) or as told:
        sample episodes, take a policy-gradient step, ``num_steps`` times, then sample once more."""
        config = self.config
        inner = InnerStep.repeated(
            config.inner_lr if inner_lr is None else inner_lr,
            config.num_steps if num_steps is None else num_steps,
            gamma=config.gamma,
            gae_lambda=config.gae_lambda,
            first_order=True,
            objective=config.inner_objective,
        )
        budget = EpisodeBudget.of(config.batch_unit, episodes or config.episodes_per_task, self.horizon)
        batch = collect_meta_batch(
            self.sampler, self.policy, parameters_of(self.policy), [task], budget=budget, inner=inner,
            seed=(seed, USER_STREAM, EVAL_EPISODES),
        )  # fmt: skip
        params = {name: value[0] for name, value in batch.adapted.items()}
        return Adaptation(batch.mean_returns(), params)

    def act(self, observation: Sequence[float] | np.ndarray, params: Params | None = None) -> np.ndarray:
        """The mean action for ``observation`` with ``params`` (adapted ones, or the meta-learned θ)."""
        with torch.no_grad():
            observations = torch.as_tensor(np.asarray(observation, dtype=np.float32))
            distribution = torch.func.functional_call(self.policy, params or parameters_of(self.policy), observations)
            return distribution.mean.numpy()

    def close(self) -> None:
        self.sampler.close()

    def __enter__(self) -> TrainedPolicy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def load(path: str | Path) -> TrainedPolicy:
    """The policy of a training run's directory (its latest checkpoint) or of one of its checkpoints, ready to adapt
    on the CPU; a checkpoint that is not a training run's, or does not fit its config, raises ``CheckpointError``."""
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"{path} does not exist; pass a training run directory or one of its checkpoints")
    run_dir = path if path.is_dir() else path.parent.parent  # RUN/checkpoints/iter_NNNNNN.pt
    config = load_run_config(run_dir)
    checkpoint = latest_checkpoint(run_dir) if path.is_dir() else path
    if checkpoint is None:
        checkpoint = run_dir / CHECKPOINTS / LATEST  # load_policy_checkpoint says it is missing
    config = dataclasses.replace(config, device="cpu")
    device = compute_device(config)
    state = load_policy_checkpoint(checkpoint, config.env_id, device)
    one_task = EvalSettings(1, config.num_steps, config.episodes_per_task, config.batch_unit, config.inner_lr)
    task_env = open_task_env(config, device, evaluation_memory_need(one_task, config.hidden_sizes))
    policy = build_policy(config, task_env, device)
    load_policy_weights(policy, state, checkpoint)
    sampler = build_sampler(config, policy, task_env.horizon)
    return TrainedPolicy(config, policy, task_env.tasks, sampler, task_env.horizon)
