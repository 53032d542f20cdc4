"""Seconds per full meta-iteration (sampling + meta-update) for launcher configs.

python benchmarks/iteration.py [--configs 2d-navigation halfcheetah-vel] [--iterations 3]
                               [--set key=value] [--json FILE]

``--set device=cuda`` runs the inner steps and the meta-update on the GPU, as training would; sampling
stays on the CPU. A config or device this machine cannot run stops with one line.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

from common import config_errors_exit, device_label, print_table, write_json

from metarl.config import TrainConfig, load_config
from metarl.memory import keep_freed_memory
from metarl.parts import resolve_device
from metarl.trainer import Trainer

CONFIGS = Path(__file__).resolve().parent.parent / "launchers" / "configs"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", nargs="+", default=["2d-navigation", "halfcheetah-vel"])
    parser.add_argument("--iterations", type=int, default=3, help="timed iterations (after one warm-up)")
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    keep_freed_memory()  # as launchers/train.py does

    rows = []
    device = None
    for name in args.configs:
        overrides = [*args.overrides, f"num_iterations={args.iterations + 1}"]
        with config_errors_exit():
            config = load_config(TrainConfig, CONFIGS / f"{name}.yaml", overrides).validate()
            device = resolve_device(config.device)
        print(f"{name}: meta-update on {device_label(device)}", flush=True)
        with tempfile.TemporaryDirectory() as run_dir:
            history = Trainer.start(config, Path(run_dir)).run(quiet=True)[1:]
        rows.append(
            {
                "config": name,
                "device": str(device),
                "sampling_s": statistics.median(h["time/sampling_s"] for h in history),
                "meta_update_s": statistics.median(h["time/meta_update_s"] for h in history),
                "iteration_s": statistics.median(h["time/iteration_s"] for h in history),
                "env_steps_per_s": statistics.median(h["perf/env_steps_per_s"] for h in history),
            }
        )
    print_table(rows, ["config", "device", "sampling_s", "meta_update_s", "iteration_s", "env_steps_per_s"])
    write_json(args.json, {"args": vars(args), "results": rows}, device)


if __name__ == "__main__":
    main()
