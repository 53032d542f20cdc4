"""Meta-iterations per second of few-shot MiniImagenet (MAML second and first order, 1- and 5-shot; Reptile).

python benchmarks/few_shot_iteration.py [--variants 1-shot ...] [--iterations 3] [--eval-tasks 10]
                                        [--set key=value] [--json FILE]

Each iteration is what training does: draw a meta-batch of episodes (84×84 RGB images from a split held in
memory, as the launcher's cache is) and take one meta-step; the evaluation row adapts test tasks for
eval_steps steps. The images are random: the cost does not depend on what they show. On a shared machine the
wall time depends on the other processes, so each row also gives the CPU time the iteration took and the
share of a core it got (CPU / wall): 1 / CPU seconds is about what an idle core would do. ``--set device=cuda``
runs on the GPU; without one it stops with one line.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
from common import config_errors_exit, device_label, print_table, timed, write_json

from metarl.config import load_config
from metarl.memory import human_bytes, keep_freed_memory
from metarl.parts import resolve_device
from metarl.supervised.config import MiniImagenetConfig
from metarl.supervised.few_shot_memory import iteration_memory
from metarl.supervised.few_shot_run import evaluate
from metarl.supervised.meta_learning import cross_entropy_per_task, make_meta_learner
from metarl.supervised.miniimagenet import MiniImagenetClasses
from metarl.supervised.models import ConvClassifier

CONFIGS = Path(__file__).resolve().parent.parent / "launchers" / "configs"
VARIANTS = {
    "1-shot": ("miniimagenet", []),
    "1-shot first-order": ("miniimagenet", ["first_order=true"]),
    "5-shot": ("miniimagenet", ["num_shots=5", "meta_batch_size=2"]),
    "5-shot first-order": ("miniimagenet", ["num_shots=5", "meta_batch_size=2", "first_order=true"]),
    "1-shot reptile": ("miniimagenet-reptile", []),
}


def random_split(config: MiniImagenetConfig, num_classes: int = 64, per_class: int = 30) -> MiniImagenetClasses:
    rng = np.random.default_rng(0)
    size = config.image_size
    images = rng.integers(0, 256, size=(num_classes * per_class, size, size, 3), dtype=np.uint8)
    return MiniImagenetClasses(images, [f"n{i // per_class:08d}" for i in range(len(images))], "random")


def cpu_timed(function, repeats: int) -> tuple[float, float]:
    """(median wall seconds, mean CPU seconds) of one call of ``function``."""
    cpu_start = time.process_time()
    seconds, _ = timed(function, repeats)
    return seconds, (time.process_time() - cpu_start) / (repeats + 1)  # timed() calls it once more, to warm up


def measure(name: str, config: MiniImagenetConfig, device: torch.device, iterations: int, eval_tasks: int) -> dict:
    """One variant's row: its meta-iteration's wall and CPU time, and the evaluation's time per test task."""
    torch.set_num_threads(config.num_threads)
    classes = random_split(config)
    model = ConvClassifier(config.num_ways, 3, config.num_filters, image_size=config.image_size).to(device)
    learner = make_meta_learner(config, model, cross_entropy_per_task)
    rng = np.random.default_rng(1)

    def iteration() -> None:
        batch = classes.sample_episodes(
            config.meta_batch_size, config.num_ways, config.num_shots, config.num_query, rng
        )
        learner.meta_step(batch.to(device))

    seconds, cpu = cpu_timed(iteration, iterations)
    eval_seconds, _ = timed(lambda: evaluate(model, classes, config, eval_tasks, 0, device), 1)
    return {
        "variant": name,
        "iterations_per_s": 1 / seconds,
        "s_per_iteration": seconds,
        "cpu_s_per_iteration": cpu,
        "core_share": cpu / seconds,
        "memory_estimate": human_bytes(iteration_memory(config).total_bytes),
        "eval_steps": config.eval_steps,
        "eval_s_per_task": eval_seconds / eval_tasks,
        "device": str(device),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--iterations", type=int, default=3, help="timed iterations (after one warm-up)")
    parser.add_argument("--eval-tasks", type=int, default=10, help="test tasks adapted for the evaluation row")
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    keep_freed_memory()  # as the launchers do
    rows = []
    device = torch.device("cpu")
    for name in args.variants:
        config_name, overrides = VARIANTS[name]
        with config_errors_exit():
            config = load_config(MiniImagenetConfig, CONFIGS / f"{config_name}.yaml", [*overrides, *args.overrides])
            device = resolve_device(config.validate().device)
        print(f"{name}: {device_label(device)}", flush=True)
        rows.append(measure(name, config, device, args.iterations, args.eval_tasks))
    print(f"device {device_label(device)}, {torch.get_num_threads()} torch thread(s)")
    print_table(rows, [key for key in rows[0] if key != "device"])
    write_json(args.json, {"args": vars(args), "results": rows}, device)


if __name__ == "__main__":
    main()
