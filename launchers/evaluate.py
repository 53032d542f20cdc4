"""Evaluate a run with the MAML paper's k-shot test protocol, against random-init and pretrained baselines.

``python launchers/evaluate.py --run DIR [--checkpoint FILE] [--pretrained FILE] [--num-tasks 40] [--num-steps 3]
[--fast-batch-size K] [--seed S] [--device cpu|cuda] [--output-dir OUT]``

Writes OUT/evaluation.json, OUT/adaptation.png and TensorBoard scalars under eval/ (see docs/EVALUATION.md).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

from torch.utils.tensorboard import SummaryWriter

from metarl.checkpoint import LATEST, CheckpointError, atomic_write_text
from metarl.cli import environment_fault, is_disk_fault, require_writable_directory, usage_error
from metarl.config import DEVICE_NAMES, ConfigError, is_device_name, to_dict
from metarl.evaluation import (
    EvalSettings,
    checkpoint_summary,
    evaluate_policy,
    load_policy_checkpoint,
    load_policy_weights,
    load_run_config,
    method_results,
    sample_test_tasks,
    settings_dict,
)
from metarl.experiment import build_experiment, build_policy, make_task_env, resolve_device
from metarl.machine import machine_description
from metarl.plots import adaptation_plot
from metarl.reference import PaperReference, family_name, reference_for
from metarl.samplers import NonFiniteEpisodeError
from metarl.seeding import EVAL_POLICY_INIT
from metarl.trainer import CHECKPOINTS
from metarl.version import __version__

RESULTS_FILE = "evaluation.json"
PLOT_FILE = "adaptation.png"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, required=True, metavar="DIR", help="a training run directory")
    parser.add_argument("--checkpoint", type=Path, default=None, metavar="FILE",
                        help="checkpoint to evaluate (default: DIR/checkpoints/latest.pt)")
    parser.add_argument("--pretrained", type=Path, default=None, metavar="FILE",
                        help="checkpoint of launchers/pretrain.py to evaluate as the pretrained baseline")
    parser.add_argument("--num-tasks", type=int, default=40, help="test tasks (default 40, as in the paper)")
    parser.add_argument("--num-steps", type=int, default=3, help="inner gradient steps per test task (default 3)")
    parser.add_argument("--fast-batch-size", type=int, default=None, metavar="K",
                        help="episodes per step (default: as many as the paper's test scripts sampled for the family, "
                             "else the run's fast_batch_size)")
    parser.add_argument("--step-size", type=float, default=None,
                        help="first inner step size of every method (default: the run's fast_lr for MAML, and for "
                             "the baselines the step size the paper's test script gave them)")
    parser.add_argument("--later-step-size", type=float, default=None,
                        help="size of steps 2, 3, ... (default: half the first, as in the paper's test scripts)")
    parser.add_argument("--seed", type=int, default=None, help="test-task seed (default: the run's seed)")
    parser.add_argument("--device", default=None, help="cpu or cuda (default: the run's device)")
    parser.add_argument("--output-dir", type=Path, default=None,
                        help="where results go (default: DIR/evaluation/iter_NNNNNN for the checkpoint's iteration)")
    parser.add_argument("--quiet", action="store_true", help="no progress lines")
    return parser.parse_args(argv)


def finite_or_none(value: Any) -> Any:
    """JSON has no NaN: undefined statistics (one test task) are written as null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: finite_or_none(v) for key, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite_or_none(v) for v in value]
    return value


def default_episodes_per_step(config) -> int:
    """The paper's test scripts sampled a fixed number of env steps per step (4,000 for most families,
    i.e. 40 navigation or 20 locomotion episodes), not the training K: use theirs where there is one."""
    reference = reference_for(config.env_id)
    return reference.episodes_per_step if reference is not None else config.fast_batch_size


def baseline_settings(settings: EvalSettings, reference, args: argparse.Namespace) -> dict[str, EvalSettings]:
    """Each baseline's settings: the paper's test scripts adapted them with their own first step size
    (e.g. HalfCheetah velocity: pretrained 0.02, random 0.1; Ant: pretrained 0.2, random 1.0), later steps
    half of it. An explicit --step-size or --later-step-size applies to every method instead."""
    if reference is None or args.step_size is not None or args.later_step_size is not None:
        return {"random_init": settings, "pretrained": settings}
    return {
        name: dataclasses.replace(settings, step_size=size, later_step_size=size / 2).validate()
        for name, size in reference.first_step_sizes.items() if name != "maml"
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    say = (lambda message: None) if args.quiet else (lambda message: print(message, flush=True))
    try:
        if args.device is not None and not is_device_name(args.device):
            raise ConfigError(f"--device must be {DEVICE_NAMES}, got {args.device!r}")
        config = load_run_config(args.run)
        if args.device is not None:
            config = dataclasses.replace(config, device=args.device)
        config.validate()
        device = resolve_device(config.device, fix="pass --device cpu")
        # `is None`, not `or`: an explicit 0 is refused by validate(), never replaced by the run's value.
        step_size = config.fast_lr if args.step_size is None else args.step_size
        episodes_per_step = default_episodes_per_step(config) if args.fast_batch_size is None else args.fast_batch_size
        settings = EvalSettings(
            num_tasks=args.num_tasks,
            num_steps=args.num_steps,
            episodes_per_step=episodes_per_step,
            step_size=step_size,
            later_step_size=step_size / 2 if args.later_step_size is None else args.later_step_size,
            seed=config.seed if args.seed is None else args.seed,
        ).validate()
        checkpoint_path = args.checkpoint or args.run / CHECKPOINTS / LATEST
        state = load_policy_checkpoint(checkpoint_path, config.env_id, device)
        output_dir = args.output_dir or args.run / "evaluation" / f"iter_{int(state.get('iteration', 0)):06d}"
        if (output_dir / RESULTS_FILE).exists():
            raise ConfigError(f"{output_dir} already holds {RESULTS_FILE}; choose another --output-dir or delete it")
        require_writable_directory(output_dir, "--output-dir")  # before the evaluation, not after it

        experiment = build_experiment(config)
        load_policy_weights(experiment.policy, state, checkpoint_path)
        env = make_task_env(config.env_id, config.env_kwargs)
        policies = {"maml": experiment.policy, "random_init": build_policy(config, env, device, EVAL_POLICY_INIT)}
        pretrained_state = None
        if args.pretrained is not None:
            pretrained_state = load_policy_checkpoint(args.pretrained, config.env_id, device, "launchers/pretrain.py")
            policies["pretrained"] = build_policy(config, env, device)
            load_policy_weights(policies["pretrained"], pretrained_state, args.pretrained)
        env.close()
    except (ConfigError, CheckpointError) as error:
        return usage_error(error)

    tasks = sample_test_tasks(experiment.tasks, settings.num_tasks, settings.seed)
    reference = reference_for(config.env_id)
    method_settings = {"maml": settings, **baseline_settings(settings, reference, args)}
    methods: dict[str, list[dict[str, Any]]] = {}
    start = time.perf_counter()
    # "±" is the standard error here but the 95% half-width in report.py's tables: say which
    say(f"mean return over {settings.num_tasks} test tasks after each step, ± its standard error:")
    try:
        for name, policy in policies.items():
            task_returns = evaluate_policy(
                experiment.sampler, policy, tasks, method_settings[name], config.gamma, config.gae_lambda
            )
            methods[name] = method_results(task_returns)
            say(f"{name:>12}: " + "  ".join(f"step {e['step']} {e['mean']:8.2f} ± {e['std_error']:.2f}"
                                             for e in methods[name]))
    except NonFiniteEpisodeError as error:
        return usage_error(error)
    finally:
        experiment.close()
    wall_time_s = time.perf_counter() - start

    iteration = int(state.get("iteration", 0))
    results = {
        "metarl_version": __version__,
        "env_id": config.env_id,
        "family": family_name(config.env_id),
        "run_dir": str(args.run),
        "checkpoint": checkpoint_summary(state, checkpoint_path),
        "pretrained_checkpoint": checkpoint_summary(pretrained_state, args.pretrained) if pretrained_state else None,
        "config": {
            "evaluation": {
                **settings_dict(settings),
                "step_sizes_by_method": {name: method_settings[name].step_sizes() for name in policies},
            },
            "device": str(device),
            "run": to_dict(config),
        },
        "machine": machine_description(device),
        "evaluation_wall_time_s": wall_time_s,
        "test_tasks": tasks,
        "methods": methods,
        "paper": None if reference is None else {
            "family": reference.family, **{m: list(v) for m, v in reference.returns.items()},
            "oracle": reference.oracle, "episodes_per_step": reference.episodes_per_step,
        },
    }
    title = f"{family_name(config.env_id)}: {settings.num_tasks} test tasks, iteration {iteration}"
    try:
        write_outputs(output_dir, results, title, reference)
    except OSError as error:
        if not is_disk_fault(error):
            raise  # not the machine's storage: a bug, whose traceback is wanted
        return environment_fault(f"cannot write the evaluation to {output_dir} ({error.strerror}); free space "
                                 "or fix permissions, then run the same command again")
    say(f"wrote {output_dir / RESULTS_FILE}, {output_dir / PLOT_FILE} and TensorBoard scalars under eval/")
    return 0


def write_outputs(output_dir: Path, results: dict[str, Any], title: str, reference: PaperReference | None) -> None:
    """The plot and TensorBoard scalars first, evaluation.json last and atomically: it marks a complete
    evaluation (an existing one blocks reruns), so a full disk or a kill at any point leaves none, never a
    truncated one, and the rerun overwrites the rest."""
    output_dir.mkdir(parents=True, exist_ok=True)
    adaptation_plot(output_dir / PLOT_FILE, results["methods"], title, reference)
    write_tensorboard(output_dir, results["methods"], results["checkpoint"]["iteration"])
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


if __name__ == "__main__":
    sys.exit(main())
