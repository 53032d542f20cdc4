"""One evaluation of a training run, end to end (what ``launchers/evaluate.py`` calls): load the run and its
checkpoint, build MAML's policy and the baselines, adapt each on the same test tasks, write the outputs.

Every check a user can fail (flags, run, checkpoint, output directory) runs before the first episode, so a
mistake costs seconds, not an evaluation.
"""

from __future__ import annotations

import dataclasses
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from metarl.checkpoint import LATEST
from metarl.checkpoint_check import load_policy_weights
from metarl.cli import is_disk_fault, require_writable_directory
from metarl.config import DEVICE_NAMES, ConfigError, is_device_name, max_workers
from metarl.evaluation import (
    EvalSettings,
    baseline_settings,
    default_episodes_per_task,
    evaluate_policy,
    load_policy_checkpoint,
    load_run_config,
    method_results,
    sample_test_tasks,
)
from metarl.heartbeat import Heartbeat
from metarl.memory import EVALUATION, MemoryEstimate, MemoryWording, evaluation_memory
from metarl.parts import MemoryNeed, build_policy, build_sampler, compute_device, open_task_env
from metarl.reporting.evaluation_output import RESULTS_FILE, results_document, write_outputs
from metarl.reporting.reference import reference_for
from metarl.run import CHECKPOINTS, PRETRAINING, RL_TRAINING
from metarl.samplers.budget import EpisodeBudget
from metarl.samplers.rollout import hinted_divergence
from metarl.seeding import EVAL_POLICY_INIT


@dataclass(frozen=True)
class EvaluationRequest:
    """What to evaluate and how; ``None`` takes the run's value or the paper's protocol (see evaluate.py)."""

    run_dir: Path
    checkpoint: Path | None = None
    pretrained: Path | None = None
    output_dir: Path | None = None
    device: str | None = None
    num_tasks: int = 40
    num_steps: int = 3
    episodes_per_task: int | None = None
    batch_unit: str | None = None
    inner_lr: float | None = None
    later_inner_lr: float | None = None
    seed: int | None = None


class OutputFault(Exception):
    """The machine's storage failed while the outputs were written (full disk, lost permissions)."""

    def __init__(self, output_dir: Path, error: OSError):
        super().__init__(
            f"cannot write the evaluation to {output_dir} ({error.strerror}); free space "
            "or fix permissions, then run the same command again"
        )


def evaluate_run(
    request: EvaluationRequest,
    say: Callable[[str], None] = lambda message: None,
    heartbeat: Heartbeat | None = None,
) -> Path:
    """Evaluate and write the outputs; returns the output directory. ``say`` gets the results of each method as
    they come, ``heartbeat`` lines within a method that takes minutes (None: none). Raises ``ConfigError`` or
    ``CheckpointError`` before any episode for a user's mistake, ``NonFiniteEpisodeError`` for an env or
    policy gone non-finite, ``OutputFault`` for a storage failure at the end."""
    heartbeat = heartbeat or Heartbeat.unless(quiet=True)
    if request.device is not None and not is_device_name(request.device):
        raise ConfigError(f"--device must be {DEVICE_NAMES}, got {request.device!r}")
    config = load_run_config(request.run_dir)
    if config.sampler.backend == "process":  # trained on a larger machine, it may have more workers than this takes
        workers = min(config.sampler.num_workers, max_workers())  # episodes are the same for any split
        config = dataclasses.replace(config, sampler=dataclasses.replace(config.sampler, num_workers=workers))
    if request.device is not None:
        config = dataclasses.replace(config, device=request.device)
    device = compute_device(config, fix="pass --device cpu")
    # `is None`, not `or`: an explicit 0 is refused by validate(), never replaced by the run's value.
    inner_lr = config.inner_lr if request.inner_lr is None else request.inner_lr
    settings = EvalSettings(
        num_tasks=request.num_tasks,
        num_steps=request.num_steps,
        episodes_per_task=default_episodes_per_task(config)
        if request.episodes_per_task is None
        else request.episodes_per_task,
        batch_unit=config.batch_unit if request.batch_unit is None else request.batch_unit,
        inner_lr=inner_lr,
        later_inner_lr=inner_lr / 2 if request.later_inner_lr is None else request.later_inner_lr,
        seed=config.seed if request.seed is None else request.seed,
    ).validate()
    checkpoint_path = request.checkpoint or request.run_dir / CHECKPOINTS / LATEST
    flag = "--checkpoint" if request.checkpoint is not None else f"RUN_DIR (whose {CHECKPOINTS}/{LATEST} it is)"
    state = load_policy_checkpoint(checkpoint_path, config.env_id, device, RL_TRAINING, flag)
    pretrained_state = None
    if request.pretrained is not None:  # checked in a second, before the sampler starts
        pretrained_state = load_policy_checkpoint(
            request.pretrained, config.env_id, device, PRETRAINING, "--pretrained"
        )
    output_dir = request.output_dir or request.run_dir / "evaluation" / f"iter_{int(state.get('iteration', 0)):06d}"
    if (output_dir / RESULTS_FILE).exists():
        raise ConfigError(f"{output_dir} already holds {RESULTS_FILE}; choose another --output or delete it")
    require_writable_directory(output_dir, "--output")  # before the evaluation, not after it

    task_env = open_task_env(config, device, evaluation_memory_need(settings, config.hidden_sizes))
    policies = {
        "maml": build_policy(config, task_env, device),
        "random_init": build_policy(config, task_env, device, EVAL_POLICY_INIT),
    }
    load_policy_weights(policies["maml"], state, checkpoint_path)
    pretrained: tuple[dict[str, Any], Path] | None = None
    if request.pretrained is not None and pretrained_state is not None:
        policies["pretrained"] = build_policy(config, task_env, device)
        load_policy_weights(policies["pretrained"], pretrained_state, request.pretrained)
        pretrained = (pretrained_state, request.pretrained)
    tasks = sample_test_tasks(task_env.tasks, settings.num_tasks, settings.seed)
    reference = reference_for(config.env_id)
    explicit = request.inner_lr is not None or request.later_inner_lr is not None
    method_settings = {"maml": settings, **baseline_settings(settings, reference, explicit)}
    methods: dict[str, list[dict[str, Any]]] = {}

    sampler = build_sampler(config, policies["maml"], task_env.horizon)
    start = time.perf_counter()
    try:
        # "±" is the standard error here but the 95% half-width in report.py's tables: say which
        say(f"mean return over {settings.num_tasks} test tasks after each step, ± its standard error:")
        for name, policy in policies.items():
            heartbeat.begin(f"evaluating {name}")
            with hinted_divergence(f"try a smaller --inner-lr or --later-inner-lr ({name}'s policy)"):
                task_returns = evaluate_policy(
                    sampler,
                    policy,
                    tasks,
                    method_settings[name],
                    config.gamma,
                    config.gae_lambda,
                    task_env.horizon,
                    heartbeat,
                )
            methods[name] = method_results(task_returns)
            steps = "  ".join(f"step {e['step']} {e['mean']:8.2f} ± {e['std_error']:.2f}" for e in methods[name])
            say(f"{name:>12}: {steps}")
    finally:
        sampler.close()
    wall_time_s = time.perf_counter() - start

    results = results_document(
        config=config,
        run_dir=request.run_dir,
        checkpoint=(state, checkpoint_path),
        pretrained=pretrained,
        settings=settings.to_dict(),
        step_sizes_by_method={name: method_settings[name].step_sizes() for name in methods},
        device=device,
        tasks=tasks,
        methods=methods,
        wall_time_s=wall_time_s,
        reference=reference,
    )
    new_directory = not output_dir.exists()
    earlier = set() if new_directory else set(output_dir.iterdir())
    try:
        write_outputs(output_dir, results, reference)
    except BaseException as error:  # Ctrl-C, SIGTERM, a full disk: no half-written evaluation is left
        if new_directory:
            shutil.rmtree(output_dir, ignore_errors=True)
        else:
            for path in set(output_dir.iterdir()) - earlier:
                path.unlink(missing_ok=True)
        if isinstance(error, OSError) and is_disk_fault(error):
            raise OutputFault(output_dir, error) from error
        raise  # an interruption, or not the machine's storage: a bug, whose traceback is wanted
    return output_dir


def evaluation_memory_need(settings: EvalSettings, hidden_sizes: list[int]) -> MemoryNeed:
    """What one method's evaluation needs in memory, at its own sizes (not the run's training sizes)."""

    def need(horizon: int, observation_dim: int, action_dim: int) -> tuple[MemoryEstimate, MemoryWording]:
        episodes = EpisodeBudget.of(settings.batch_unit, settings.episodes_per_task, horizon).most_episodes
        estimate = evaluation_memory(
            settings.num_tasks, episodes, horizon, settings.num_steps, observation_dim, action_dim, hidden_sizes
        )
        return estimate, EVALUATION

    return need
