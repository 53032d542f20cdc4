"""The command line both image few-shot launchers share: a new run or ``--resume DIR``, the data loaded and
checked before anything is written, one line for every problem a user can fix, and the result at the end."""

from __future__ import annotations

import argparse
import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from metarl.cli import OneLineErrorParser, add_config_arguments
from metarl.config import ConfigError, find_config, load_config
from metarl.supervised.config import FewShotConfig, MiniImagenetConfig, OmniglotConfig

if TYPE_CHECKING:  # the rest imports torch: loaded once the command line is parsed, so --help takes no time
    from metarl.run import RunKind
    from metarl.supervised.image_classes import FewShotSplits

RESUMABLE_KEYS = frozenset({"num_iterations", "checkpoint_every", "device"})
"""Keys a resume may change: they change how long and where it runs, not what a finished run's numbers are."""


@dataclass(frozen=True)
class Benchmark:
    """What one image few-shot launcher adds to the shared command line."""

    name: str
    """The launcher's, its config's, its runs' and its checkpoints' name: launchers/<name>.py."""
    title: str
    config_class: type[FewShotConfig]
    splits: str
    """The module whose ``<name>_splits(--data, config)`` gives the splits (raising DatasetError with the fix)."""
    data_help: str
    example: str
    """A ``--set`` example for ``--help``."""

    def load(self, data: Path, config: FewShotConfig) -> FewShotSplits:
        module = importlib.import_module(self.splits)
        return getattr(module, f"{self.name}_splits")(data, config)

    @property
    def kind(self) -> RunKind:
        from metarl.run import RunKind

        return RunKind(
            f"{self.title} meta-training",
            self.name,
            f"launchers/{self.name}.py --data DIR",
            from_scratch=True,
            extend="--set num_iterations=N",
            next_steps="its results: {run}/evaluation.json; its curves: tensorboard --logdir {run}",
        )


BENCHMARKS = {
    benchmark.name: benchmark
    for benchmark in [
        Benchmark(
            "omniglot",
            "Omniglot",
            OmniglotConfig,
            "metarl.supervised.omniglot",
            "Omniglot directory (holding images_background/)",
            "--set num_shots=5 --set num_iterations=1000",
        ),
        Benchmark(
            "miniimagenet",
            "MiniImagenet",
            MiniImagenetConfig,
            "metarl.supervised.miniimagenet",
            "MiniImagenet split directory (holding images/, train.csv, val.csv and test.csv)",
            "--set num_shots=5 --set meta_batch_size=2",
        ),
    ]
}


def parse_args(benchmark: Benchmark, default_config: Path, argv: list[str] | None) -> argparse.Namespace:
    parser = OneLineErrorParser(description=f"Meta-train few-shot {benchmark.title} and test it (docs/SUPERVISED.md)")
    parser.add_argument("--data", type=Path, required=True, metavar="DIR", help=benchmark.data_help)
    add_config_arguments(parser, default_config, benchmark.example)
    parser.add_argument(
        "--resume",
        type=Path,
        default=None,
        metavar="RUN_DIR",
        help="continue the run in RUN_DIR from its latest checkpoint with its saved config "
        f"(--set may change only {', '.join(sorted(RESUMABLE_KEYS))})",
    )
    return parser.parse_args(argv)


def resume_point(benchmark: Benchmark, run_dir: Path, config: FewShotConfig) -> tuple[dict[str, Any], Path] | None:
    """The checkpoint a resume continues from (None: the run stopped before its first, so it starts at 0)."""
    from metarl.checkpoint_check import resume_checkpoint

    saved = resume_checkpoint(run_dir, benchmark.kind)
    if saved is None:
        return None
    state, path = saved
    done = int(state.get("iteration", 0))
    if done > config.num_iterations:
        raise ConfigError(
            f"num_iterations={config.num_iterations} is fewer than the {done} iterations the run has done; "
            f"--set num_iterations={done} or more"
        )
    if done == config.num_iterations and (run_dir / "evaluation.json").is_file():
        raise benchmark.kind.finished(run_dir, done)
    return saved


def describe(splits: FewShotSplits) -> str:
    return "; ".join(f"{name}: {classes.num_classes} classes" for name, classes in splits.named().items())


def run_benchmark(name: str, launcher: str, argv: list[str] | None = None) -> int:
    """``launchers/<name>.py``'s main (``launcher``: its file, beside which configs/<name>.yaml is the default
    config): parse the command line, run, and return the exit status (2 with one line for input the user can
    fix)."""
    benchmark = BENCHMARKS[name]
    default_config = Path(launcher).resolve().parent / "configs" / f"{name}.yaml"
    args = parse_args(benchmark, default_config, argv)
    from metarl.checkpoint import CheckpointError
    from metarl.parts import resolve_device
    from metarl.run import RunFinished, new_run_dir, release_run_dir, saved_run_config, write_config
    from metarl.run_loop import Progress
    from metarl.supervised.few_shot_memory import require_few_shot_memory
    from metarl.supervised.few_shot_run import run_few_shot
    from metarl.supervised.image_classes import DatasetError

    kind, new_run = benchmark.kind, args.resume is None
    run_dir: Path | None = args.resume
    progress: Progress | None = None
    try:
        if new_run:
            config = load_config(
                benchmark.config_class, find_config(args.config, default_config), args.overrides
            ).validate()
            run_dir = new_run_dir(benchmark.name, config.seed, args.output_dir, kind)
            start = None
        else:
            run_dir = Path(args.resume)
            if args.config is not None or args.output_dir is not None:
                raise ConfigError("--resume takes the run's own config and directory; drop --config/--output")
            config = saved_run_config(
                run_dir, benchmark.config_class, "check the --resume path", args.overrides, RESUMABLE_KEYS
            ).validate()
            start = resume_point(benchmark, run_dir, config)
        require_few_shot_memory(config, resolve_device(config.device))
        splits = benchmark.load(args.data, config)
        for classes in splits.named().values():  # fail now, not at the first episode
            classes.check_episodes(config.num_ways, config.num_shots, config.num_query)
        write_config(run_dir, config)
        progress = Progress()
        print(f"run directory: {run_dir}\n{describe(splits)}", flush=True)
        results = run_few_shot(config, splits, run_dir, kind, progress, start, args.quiet)
    except RunFinished as finished:
        print(finished, flush=True)
        return 0
    except (ConfigError, DatasetError, CheckpointError) as error:
        return kind.refused(error, run_dir, started=progress is not None, new_run=new_run)
    except (OSError, KeyboardInterrupt) as error:
        return kind.stopped(error, run_dir, None if progress is None else progress.iteration, new_run)
    finally:
        if run_dir is not None:
            release_run_dir(run_dir)
    print_results(config, results, run_dir, kind)
    return 0


def print_results(config: FewShotConfig, results: dict[str, Any], run_dir: Path, kind: RunKind) -> None:
    final = results["accuracy"][f"step_{config.eval_steps}"]
    untrained = results["accuracy_before_meta_training"][f"step_{config.eval_steps}"]["mean"]
    chosen = results.get("chosen_checkpoint")
    where = "" if chosen is None else f"checkpoint of iteration {chosen['iteration']} (best on validation), "
    print(
        f"{config.num_ways}-way {config.num_shots}-shot meta-test accuracy, {where}after {config.eval_steps} steps "
        f"on {config.eval_tasks} tasks: {final['mean']:.3f} ± {final['ci95']:.3f} (chance {results['chance']:.3f}; "
        f"before meta-training {untrained:.3f})",
        flush=True,
    )
    timing = results["training"]
    print(
        f"done: {timing['iterations']} iterations in {timing['wall_time_s']:.1f} s; {kind.done_hint(run_dir)}",
        flush=True,
    )
