"""Every shipped launcher config trains for two iterations with tiny batches, writes a checkpoint, and
gives the numbers pinned in ``pinned_two_iterations.json``.

The pin is what lets refactors and speed work prove they change no result: the returns, the meta-step's
statistics and the policy parameters after two iterations of each family's config are
recorded once and compared on every run. Float32 kernels round differently on another CPU family (vendor and
vector instruction set: MKL and torch choose kernels by them), and two iterations of line search and MuJoCo
contacts grow that into differences far past the pins' tolerance, so the numbers are pinned per CPU family and a
machine of an unrecorded family skips the comparison, saying how to record it. Regenerate this machine's record
(only for a change that is *meant* to change the numbers, and say so in the commit) with
``python tests/test_configs_smoke.py --record``, or add a new config's with ``--record NAME`` (its file's stem),
which keeps the others'. Record another family's numbers from a commit whose numbers a recorded family confirms.

Recorded: 'GenuineIntel AVX512'. The 'AuthenticAMD' record (the AVX2 EPYC that trained results/) was removed when
the default curvature product became r_operator (issue 29): every MAML-TRPO config's numbers changed with it, and
they can only be recorded on such a machine, which then runs ``--record`` once.
"""

from __future__ import annotations

import json
import platform
import sys
import tempfile
from pathlib import Path

import pytest
import torch

from metarl.checkpoint import LATEST
from metarl.config import TrainConfig, load_config, load_yaml
from metarl.run import CHECKPOINTS
from metarl.trainer import Trainer

CONFIGS = sorted((Path(__file__).resolve().parent.parent / "launchers" / "configs").glob("*.yaml"))
RL_CONFIGS = [path for path in CONFIGS if "env_id" in load_yaml(path)]
TINY = ["num_iterations=2", "meta_batch_size=2", "episodes_per_task=2", "horizon=20", "hidden_sizes=[8]"]
PINNED_FILE = Path(__file__).resolve().parent / "pinned_two_iterations.json"
PINNED_STATISTICS = (
    "returns/step_0",
    "returns/step_1",
    "meta/surrogate_after",
    "meta/kl",
    "meta/line_search_steps",  # MAML-TRPO's
    "meta/clip_fraction",  # MAML-PPO's and ProMP's
    "meta/inner_kl",  # ProMP's
    "perf/env_steps",
)
# A rerun on a machine of the recorded CPU family reproduces them bit for bit; the tolerance only admits
# last-bits differences within a family. A change to the algorithm, an env or a random stream moves these
# numbers by orders of magnitude more.
RELATIVE_TOLERANCE = 1e-5


def cpu_family() -> str:
    """This machine's CPU vendor and the vector instruction set torch's kernels use, e.g. 'GenuineIntel AVX512'."""
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            vendor = next(line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("vendor_id"))
    except (OSError, StopIteration):
        vendor = platform.processor() or platform.machine()
    return f"{vendor} {torch.backends.cpu.get_cpu_capability()}"


def pinned_for_this_cpu() -> dict:
    """The pinned numbers of this machine's CPU family: its own record, else its vendor's record where the
    instruction set was not noted; skips the test, saying how to record them, where there is neither."""
    records = json.loads(PINNED_FILE.read_text())
    family = cpu_family()
    for key in (family, family.split()[0]):
        if key in records:
            return records[key]
    pytest.skip(
        f"no pinned numbers for this CPU family ({family}; recorded: {', '.join(records)}); record them with "
        "python tests/test_configs_smoke.py --record on a commit a recorded family confirms"
    )


def two_iterations(path: Path, run_dir: Path) -> dict:
    """The pinned quantities of a tiny two-iteration run of the config at ``path``."""
    config = load_config(TrainConfig, path, TINY).validate()
    history = Trainer.start(config, run_dir).run(quiet=True)
    state = torch.load(run_dir / CHECKPOINTS / LATEST, weights_only=True)
    parameters = {
        name: {
            "sum": float(value.double().sum()),
            "norm": float(value.double().norm()),
            "first": [float(v) for v in value.flatten()[:4]],
        }
        for name, value in sorted(state["policy"].items())
    }
    return {
        "env_id": config.env_id,
        "iteration": state["iteration"],
        "history": [{key: float(entry[key]) for key in PINNED_STATISTICS if key in entry} for entry in history],
        "parameters": parameters,
    }


def assert_close(actual, expected, where: str) -> None:
    if isinstance(expected, dict):
        assert actual.keys() == expected.keys(), where
        for key in expected:
            assert_close(actual[key], expected[key], f"{where}/{key}")
    elif isinstance(expected, list):
        assert len(actual) == len(expected), where
        for index, (a, e) in enumerate(zip(actual, expected, strict=True)):
            assert_close(a, e, f"{where}[{index}]")
    elif isinstance(expected, float):
        assert actual == pytest.approx(expected, rel=RELATIVE_TOLERANCE, abs=1e-7), where
    else:
        assert actual == expected, where


def test_every_env_family_has_a_config():
    names = {path.stem for path in RL_CONFIGS}
    assert {"2d-navigation", "halfcheetah-vel", "halfcheetah-dir", "ant-vel", "ant-dir", "ant-goal"} <= names


@pytest.mark.slow
@pytest.mark.parametrize("path", RL_CONFIGS, ids=[path.stem for path in RL_CONFIGS])
def test_two_iteration_run_gives_the_pinned_numbers(path, tmp_path):
    result = two_iterations(path, tmp_path)
    assert len(result["history"]) == 2 and result["iteration"] == 2
    assert all(torch.isfinite(torch.tensor(list(h.values()))).all() for h in result["history"])
    pinned = pinned_for_this_cpu()
    record_it = f"python tests/test_configs_smoke.py --record {path.stem}"
    assert path.stem in pinned, f"no pinned numbers for {path.name}: {record_it}"
    assert_close(result, pinned[path.stem], path.stem)


def test_the_pin_would_catch_a_changed_number():
    """The comparison is not vacuous: a change in the sixth significant digit of one number fails it."""
    pinned = next(iter(json.loads(PINNED_FILE.read_text()).values()))["2d-navigation"]
    changed = json.loads(json.dumps(pinned))
    changed["history"][1]["returns/step_1"] *= 1 + 1e-4
    with pytest.raises(AssertionError, match="returns/step_1"):
        assert_close(changed, pinned, "2d-navigation")
    changed = json.loads(json.dumps(pinned))
    changed["parameters"]["log_std"]["first"][0] += 1e-3
    with pytest.raises(AssertionError, match="log_std"):
        assert_close(changed, pinned, "2d-navigation")


def record(names: list[str]) -> None:
    """Write the pinned numbers of the configs named (file stems), or of every config if none is; the other
    configs' numbers are kept (run from the repository root)."""
    torch.set_num_threads(1)
    records = json.loads(PINNED_FILE.read_text())
    pinned = records.get(cpu_family(), {}) if names else {}
    unknown = set(names) - {path.stem for path in RL_CONFIGS}
    if unknown:
        sys.exit(f"no such config: {', '.join(sorted(unknown))}")
    for path in RL_CONFIGS:
        if names and path.stem not in names:
            continue
        with tempfile.TemporaryDirectory() as directory:
            pinned[path.stem] = two_iterations(path, Path(directory) / "run")
    records[cpu_family()] = pinned
    PINNED_FILE.write_text(json.dumps(records, indent=1) + "\n")
    print(f"wrote {cpu_family()}'s numbers to {PINNED_FILE}")


if __name__ == "__main__":
    if sys.argv[1:2] != ["--record"]:
        sys.exit("usage: python tests/test_configs_smoke.py --record [CONFIG_NAME ...]")
    record(sys.argv[2:])
