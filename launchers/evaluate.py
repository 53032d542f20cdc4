"""Evaluate a run with the MAML paper's k-shot test protocol, against random-init and pretrained baselines.

``python launchers/evaluate.py --run DIR [--checkpoint FILE] [--pretrained FILE] [--num-tasks 40] [--num-steps 3]
[--fast-batch-size K] [--seed S] [--device cpu|cuda] [--output-dir OUT]``

Writes OUT/evaluation.json, OUT/adaptation.png and TensorBoard scalars under eval/ (see docs/EVALUATION.md).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path
from typing import Any

from metarl.checkpoint import LATEST, CheckpointError
from metarl.cli import environment_fault, is_disk_fault, require_writable_directory, usage_error
from metarl.config import DEVICE_NAMES, ConfigError, is_device_name
from metarl.evaluation import (
    EvalSettings,
    baseline_settings,
    default_episodes_per_step,
    evaluate_policy,
    load_policy_checkpoint,
    load_policy_weights,
    load_run_config,
    method_results,
    sample_test_tasks,
)
from metarl.experiment import build_experiment, build_policy, make_task_env, resolve_device
from metarl.reporting.evaluation_output import PLOT_FILE, RESULTS_FILE, results_document, write_outputs
from metarl.reporting.reference import reference_for
from metarl.run import CHECKPOINTS
from metarl.samplers import NonFiniteEpisodeError
from metarl.seeding import EVAL_POLICY_INIT


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, required=True, metavar="DIR", help="a training run directory")
    parser.add_argument(
        "--checkpoint",
        type=Path,
        default=None,
        metavar="FILE",
        help="checkpoint to evaluate (default: DIR/checkpoints/latest.pt)",
    )
    parser.add_argument(
        "--pretrained",
        type=Path,
        default=None,
        metavar="FILE",
        help="checkpoint of launchers/pretrain.py to evaluate as the pretrained baseline",
    )
    parser.add_argument("--num-tasks", type=int, default=40, help="test tasks (default 40, as in the paper)")
    parser.add_argument("--num-steps", type=int, default=3, help="inner gradient steps per test task (default 3)")
    parser.add_argument(
        "--fast-batch-size",
        type=int,
        default=None,
        metavar="K",
        help="episodes per step (default: as many as the paper's test scripts sampled for the family, "
        "else the run's fast_batch_size)",
    )
    parser.add_argument(
        "--step-size",
        type=float,
        default=None,
        help="first inner step size of every method (default: the run's fast_lr for MAML, and for "
        "the baselines the step size the paper's test script gave them)",
    )
    parser.add_argument(
        "--later-step-size",
        type=float,
        default=None,
        help="size of steps 2, 3, ... (default: half the first, as in the paper's test scripts)",
    )
    parser.add_argument("--seed", type=int, default=None, help="test-task seed (default: the run's seed)")
    parser.add_argument("--device", default=None, help="cpu or cuda (default: the run's device)")
    parser.add_argument(
        "--output-dir",
        type=Path,
        default=None,
        help="where results go (default: DIR/evaluation/iter_NNNNNN for the checkpoint's iteration)",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress lines")
    return parser.parse_args(argv)


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
    explicit = args.step_size is not None or args.later_step_size is not None
    method_settings = {"maml": settings, **baseline_settings(settings, reference, explicit)}
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
            say(
                f"{name:>12}: "
                + "  ".join(f"step {e['step']} {e['mean']:8.2f} ± {e['std_error']:.2f}" for e in methods[name])
            )
    except NonFiniteEpisodeError as error:
        return usage_error(error)
    finally:
        experiment.close()
    wall_time_s = time.perf_counter() - start

    results = results_document(
        config=config,
        run_dir=args.run,
        checkpoint=(state, checkpoint_path),
        pretrained=(pretrained_state, args.pretrained) if pretrained_state else None,
        settings=settings,
        method_settings=method_settings,
        device=device,
        tasks=tasks,
        methods=methods,
        wall_time_s=wall_time_s,
        reference=reference,
    )
    try:
        write_outputs(output_dir, results, reference)
    except OSError as error:
        if not is_disk_fault(error):
            raise  # not the machine's storage: a bug, whose traceback is wanted
        return environment_fault(
            f"cannot write the evaluation to {output_dir} ({error.strerror}); free space "
            "or fix permissions, then run the same command again"
        )
    say(f"wrote {output_dir / RESULTS_FILE}, {output_dir / PLOT_FILE} and TensorBoard scalars under eval/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
