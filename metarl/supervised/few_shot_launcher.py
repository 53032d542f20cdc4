"""The command line both image few-shot launchers share: a new run or ``--resume DIR``, the data loaded and
checked before anything is written, one line for every problem a user can fix, and the result at the end."""

from __future__ import annotations

import argparse
import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from metarl.cli import OneLineErrorParser, add_config_arguments, add_resume_argument
from metarl.supervised.config import FewShotConfig, MiniImagenetConfig, OmniglotConfig

RESUMABLE = "checkpoint_every, device, num_iterations"
"""What ``metarl.supervised.launch.RESUMABLE_KEYS`` holds, for --help (which imports no torch)."""

if TYPE_CHECKING:  # the rest imports torch: loaded once the command line is parsed, so --help takes no time
    from metarl.run import RunKind
    from metarl.supervised.image_classes import FewShotSplits


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
        from metarl.supervised.launch import supervised_kind

        return supervised_kind(self.name, self.title, f"launchers/{self.name}.py --data DIR")


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
    add_resume_argument(parser, RESUMABLE)
    return parser.parse_args(argv)


def describe(splits: FewShotSplits) -> str:
    return "; ".join(f"{name}: {classes.num_classes} classes" for name, classes in splits.named().items())


def run_benchmark(name: str, launcher: str, argv: list[str] | None = None) -> int:
    """``launchers/<name>.py``'s main (``launcher``: its file, beside which configs/<name>.yaml is the default
    config): parse the command line, run, and return the exit status (2 with one line for input the user can
    fix)."""
    benchmark = BENCHMARKS[name]
    default_config = Path(launcher).resolve().parent / "configs" / f"{name}.yaml"
    args = parse_args(benchmark, default_config, argv)
    from metarl.parts import resolve_device
    from metarl.run_loop import Progress
    from metarl.supervised.few_shot_memory import require_few_shot_memory
    from metarl.supervised.few_shot_run import run_few_shot
    from metarl.supervised.image_classes import DatasetError
    from metarl.supervised.launch import Launch, Resumed, Run, launch

    kind = benchmark.kind

    def prepare(config: FewShotConfig) -> Run:
        require_few_shot_memory(config, resolve_device(config.device))
        splits = benchmark.load(args.data, config)
        for classes in splits.named().values():  # fail now, not at the first episode
            classes.check_episodes(config.num_ways, config.num_shots, config.num_query)

        def run(run_dir: Path, progress: Progress, start: Resumed) -> dict[str, Any]:
            print(describe(splits), flush=True)
            return run_few_shot(config, splits, run_dir, kind, progress, start, args.quiet)

        return run

    return launch(
        kind,
        benchmark.config_class,
        default_config,
        Launch(args.config, args.output_dir, args.overrides, args.resume),
        prepare,
        lambda config, run_dir, results: print_results(config, results, run_dir, kind),
        (DatasetError,),
    )


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
