"""Each benchmark script runs end to end on a tiny problem and writes its JSON (no timing is asserted)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"

TINY = {
    "meta_update.py": ["--tasks", "2", "--episodes", "2", "--horizon", "5", "--repeats", "1", "--subsamples", "0.5"],
    "meta_steps.py": ["--tasks", "2", "--episodes", "2", "--horizon", "5", "--repeats", "1"],
    "sampling.py": [
        "--env-id",
        "metarl/HalfCheetahVel-v0",
        "--tasks",
        "2",
        "--episodes",
        "2",
        "--horizon",
        "5",
        "--rounds",
        "1",
        "--hidden-sizes",
        "8",
        "--no-ray",
    ],
    "iteration.py": [
        "--configs",
        "2d-navigation",
        "--iterations",
        "1",
        "--set",
        "meta_batch_size=2",
        "--set",
        "episodes_per_task=2",
        "--set",
        "horizon=5",
        "--set",
        "hidden_sizes=[8]",
    ],
    "curvature_floor.py": [
        *("--tasks", "2", "--episodes", "2", "--horizon", "5", "--hidden", "8", "--repeats", "1"),
        *("--task-chunks", "1"),
    ],
    "mujoco_step_rate.py": ["--num-envs", "2", "--steps", "5", "--repeats", "1"],
    "few_shot_iteration.py": [
        *("--variants", "1-shot", "1-shot reptile", "--iterations", "1", "--eval-tasks", "2"),
        *("--set", "image_size=16", "--set", "num_filters=4", "--set", "num_query=2", "--set", "eval_steps=2"),
    ],
}


def run_benchmark(script: str, output: Path) -> dict:
    completed = subprocess.run(
        [sys.executable, str(BENCHMARKS / script), *TINY[script], "--json", str(output)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert completed.stdout.strip()
    results = json.loads(output.read_text())
    assert results["machine"]["cpu_count"] >= 1
    return results


@pytest.mark.parametrize("script", sorted(set(TINY) - {"sampling.py"}))
def test_benchmark_runs_and_writes_results(script, tmp_path):
    run_benchmark(script, tmp_path / "results.json")


def test_sampling_benchmark_rates_every_row_against_the_replayed_physics(tmp_path):
    """The ratios are taken against raw mj_step replaying the sampled episodes (the first limit row)."""
    rows = {row["what"]: row for row in run_benchmark("sampling.py", tmp_path / "sampling.json")["results"]}
    replay = rows["physics limit, 1 core (raw mj_step replaying the episodes)"]
    assert replay["of 1-core limit"] == 1.0
    for row in rows.values():
        assert row["of 1-core limit"] == pytest.approx(row["env_steps_per_s"] / replay["env_steps_per_s"])


def test_curvature_floor_counts_sixteen_gemms_per_product(tmp_path):
    """2 support HVPs × 6 + a Fisher product × 4 matrix products of 2·K·n·H² FLOP each (K=2, n=2·5, H=8)."""
    rows = run_benchmark("curvature_floor.py", tmp_path / "floor.json")["results"]
    gemm_row = next(row for row in rows if row["what"].startswith("the 16 unavoidable GEMMs"))
    assert gemm_row["gflop"] * 1e9 == pytest.approx(16 * 2 * 2 * (2 * 5) * 8 * 8)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal on a machine without CUDA")
@pytest.mark.parametrize(
    ("script", "device_flag"),
    [
        ("meta_update.py", ["--device", "cuda"]),
        ("iteration.py", ["--set", "device=cuda"]),
        ("few_shot_iteration.py", ["--set", "device=cuda"]),
    ],
)
def test_gpu_benchmarks_refuse_in_one_line_without_cuda(script, device_flag, tmp_path):
    """The GPU path is one flag away; where there is no GPU it says so in one line instead of a traceback."""
    completed = subprocess.run(
        [sys.executable, str(BENCHMARKS / script), *TINY[script], *device_flag, "--json", str(tmp_path / "r.json")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    lines = completed.stderr.strip().splitlines()
    assert completed.returncode != 0
    assert len(lines) == 1 and "CUDA is not available" in lines[0], completed.stderr
    assert not (tmp_path / "r.json").exists()


@pytest.mark.parametrize("script", ["meta_update.py", "iteration.py"])
def test_gpu_capable_benchmarks_record_the_device_they_measured_on(script, tmp_path):
    results = run_benchmark(script, tmp_path / "r.json")
    expected = "cuda" if torch.cuda.is_available() and script == "meta_update.py" else "cpu"
    assert results["machine"]["device"].startswith(expected)
    assert all(row.get("device", expected).startswith(expected) for row in results["results"])
