"""Every shipped launcher config trains for two iterations with tiny batches, writes a checkpoint, and
gives the numbers pinned in ``pinned_two_iterations.json``.

The pin is what lets refactors and speed work prove they change no result: the returns, the meta-step's
statistics and the policy parameters after two iterations of each family's config are
recorded once and compared on every run. Regenerate the file (only for a change that is *meant* to
change the numbers, and say so in the commit) with ``python tests/test_configs_smoke.py --record``, or add a new
config's with ``--record NAME`` (its file's stem), which keeps the others'.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

import pytest
import torch

from metarl.checkpoint import LATEST
from metarl.config import TrainConfig, load_config
from metarl.run import CHECKPOINTS
from metarl.trainer import Trainer

CONFIGS = sorted((Path(__file__).resolve().parent.parent / "launchers" / "configs").glob("*.yaml"))
RL_CONFIGS = [path for path in CONFIGS if "env_id" in path.read_text()]
TINY = ["num_batches=2", "meta_batch_size=2", "fast_batch_size=2", "horizon=20", "hidden_sizes=[8]"]
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
# Recorded on this project's machine, where a rerun reproduces them bit for bit. The tolerance only
# admits the last-bits differences another CPU's float32 kernels can make; a change to the algorithm,
# an env or a random stream moves these numbers by orders of magnitude more.
RELATIVE_TOLERANCE = 1e-5


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
    pinned = json.loads(PINNED_FILE.read_text())
    record_it = f"python tests/test_configs_smoke.py --record {path.stem}"
    assert path.stem in pinned, f"no pinned numbers for {path.name}: {record_it}"
    assert_close(result, pinned[path.stem], path.stem)


def test_the_pin_would_catch_a_changed_number():
    """The comparison is not vacuous: a change in the sixth significant digit of one number fails it."""
    pinned = json.loads(PINNED_FILE.read_text())["2d-navigation"]
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
    pinned = json.loads(PINNED_FILE.read_text()) if names else {}
    unknown = set(names) - {path.stem for path in RL_CONFIGS}
    if unknown:
        sys.exit(f"no such config: {', '.join(sorted(unknown))}")
    for path in RL_CONFIGS:
        if names and path.stem not in names:
            continue
        with tempfile.TemporaryDirectory() as directory:
            pinned[path.stem] = two_iterations(path, Path(directory) / "run")
    PINNED_FILE.write_text(json.dumps(pinned, indent=1) + "\n")
    print(f"wrote {PINNED_FILE}")


if __name__ == "__main__":
    if sys.argv[1:2] != ["--record"]:
        sys.exit("usage: python tests/test_configs_smoke.py --record [CONFIG_NAME ...]")
    record(sys.argv[2:])
