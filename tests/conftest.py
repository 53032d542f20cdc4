"""Shared fixtures: a tiny float64 policy, synthetic episode batches, and tiny training runs.

Training runs go through ``launchers/train.py`` in a subprocess, exactly as a user starts them. The
subprocess gets the repository on PYTHONPATH, so the tests work with and without an editable install.
"""

import functools
import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from run_helpers import launcher_main

import envs  # noqa: F401  (registers the Gymnasium ids)
from metarl.episodes import EpisodeBatch
from metarl.policies import GaussianMLPPolicy

REPO_ROOT = Path(__file__).resolve().parent.parent
LAUNCHERS = REPO_ROOT / "launchers"

# The tests' networks are tiny: extra intra-op threads only add synchronisation, and on a shared
# 2-core CI machine oversubscription made the suite over ten times slower. Subprocesses get the same.
torch.set_num_threads(1)

# A run small enough to take seconds: 2 tasks × 2 episodes of 20 steps, one hidden layer of 8 units.
TINY_RUN_OVERRIDES = [
    "meta_batch_size=2",
    "episodes_per_task=2",
    "horizon=20",
    "hidden_sizes=[8]",
    "num_iterations=3",
    "checkpoint_every=2",
]


def subprocess_env():
    """The environment for a child Python: the repository importable, one thread (tiny nets, shared cores)."""
    path = os.pathsep.join(p for p in [str(REPO_ROOT), os.environ.get("PYTHONPATH", "")] if p)
    return {**os.environ, "PYTHONPATH": path, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}


def run_launcher(script, *args, timeout=300):
    """Run ``launchers/SCRIPT ARGS`` to completion, as a user would; returns the CompletedProcess (text mode)."""
    command = [sys.executable, str(LAUNCHERS / script), *map(str, args)]
    return subprocess.run(
        command, check=False, cwd=REPO_ROOT, env=subprocess_env(), capture_output=True, text=True, timeout=timeout
    )


def run_train(*args, timeout=300):
    """Run ``launchers/train.py ARGS`` to completion; returns the CompletedProcess (text mode)."""
    return run_launcher("train.py", *args, timeout=timeout)


def check_clean_error(result, *fragments, status=2, started=False):
    """Exit ``status``, a single stderr line starting with 'error:' that holds every fragment, no traceback;
    nothing on stdout unless the run had ``started`` (then it printed its run directory)."""
    assert result.returncode == status, (result.returncode, result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert started or result.stdout == ""
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    return lines[0]


def set_args(overrides):
    return [arg for override in overrides for arg in ("--set", override)]


@pytest.fixture(scope="session")
def train():
    """``train(*args)``: run the training launcher in a subprocess."""
    return run_train


@pytest.fixture(scope="session")
def launcher():
    """``launcher(script, *args)``: run any launcher in a subprocess."""
    return run_launcher


@pytest.fixture
def launcher_here(capsys):
    """``launcher_here(script, *args)``: a launcher's main() in-process; returns what a subprocess would
    (returncode, stdout, stderr)."""

    def run(script, *args):
        try:
            returncode = launcher_main(script)([str(arg) for arg in args])
        except SystemExit as exit:  # argparse's errors
            returncode = exit.code
        captured = capsys.readouterr()
        return SimpleNamespace(returncode=returncode, stdout=captured.out, stderr=captured.err)

    return run


@pytest.fixture
def train_here(launcher_here):
    """``train_here(*args)``: launchers/train.py's main() in-process (see ``launcher_here``)."""
    return functools.partial(launcher_here, "train.py")


@pytest.fixture(scope="session")
def assert_clean_error():
    """``assert_clean_error(result, *fragments, status=2, started=False)``: the launcher failed with one clean
    line; returns it."""
    return check_clean_error


@pytest.fixture(scope="session")
def tiny_run_args():
    """``tiny_run_args(**overrides)``: the ``--set`` arguments of the tiny run, with keys replaced."""

    def build(**changes):
        overrides = dict(override.split("=", 1) for override in TINY_RUN_OVERRIDES)
        overrides.update({key: str(value) for key, value in changes.items()})
        return set_args(f"{key}={value}" for key, value in overrides.items())

    return build


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory, tiny_run_args):
    """A finished tiny run (3 iterations): its directory and the launcher's stdout. Do not modify it."""
    run_dir = tmp_path_factory.mktemp("tiny") / "run"
    result = run_train(*tiny_run_args(), "--output-dir", run_dir)
    assert result.returncode == 0, result.stderr
    return run_dir, result.stdout


@pytest.fixture
def tiny_run_copy(tiny_run, tmp_path):
    """A private copy of the tiny run directory that a test may modify."""
    copy = tmp_path / "run"
    shutil.copytree(tiny_run[0], copy)
    return copy


def snapshot(directory):
    """Every file under ``directory`` with its bytes, to check that nothing changed."""
    return {str(p.relative_to(directory)): p.read_bytes() for p in sorted(Path(directory).rglob("*")) if p.is_file()}


@pytest.fixture(scope="session")
def directory_snapshot():
    return snapshot


def make_tiny_policy(seed=0, hidden_sizes=(5,), nonlinearity="tanh", init_std=0.8, dtype=torch.float64):
    policy = GaussianMLPPolicy(
        2, 2, hidden_sizes, nonlinearity, init_std, generator=torch.Generator().manual_seed(seed)
    ).to(dtype)
    # Non-zero biases and an uneven log-std so no parameter sits at a special point.
    with torch.no_grad():
        for parameter in policy.parameters():
            parameter.add_(
                0.1 * torch.randn(parameter.shape, generator=torch.Generator().manual_seed(seed + 1), dtype=dtype)
            )
    return policy


@pytest.fixture
def tiny_policy():
    """A float64 Gaussian MLP policy: obs 2, act 2, hidden (5,), tanh (smooth for finite differences)."""
    return make_tiny_policy()


def make_episode_batch(seed, lengths, observation_dim=2, action_dim=2, dtype=torch.float64):
    """Random episodes of the given lengths, padded time-major with zeros and a mask, like a sampler's."""
    generator = torch.Generator().manual_seed(seed)
    lengths_B = torch.as_tensor(lengths, dtype=torch.int64)
    num_steps, num_episodes = int(lengths_B.max()), len(lengths)
    mask_TB = (torch.arange(num_steps)[:, None] < lengths_B[None, :]).to(dtype)
    observations = 0.3 * torch.randn(num_steps, num_episodes, observation_dim, generator=generator, dtype=dtype)
    actions = 0.5 * torch.randn(num_steps, num_episodes, action_dim, generator=generator, dtype=dtype)
    rewards = -torch.rand(num_steps, num_episodes, generator=generator, dtype=dtype)
    return EpisodeBatch(
        observations_TBO=observations * mask_TB[..., None],
        actions_TBA=actions * mask_TB[..., None],
        rewards_TB=rewards * mask_TB,
        mask_TB=mask_TB,
        lengths_B=lengths_B,
    )


@pytest.fixture(scope="session")
def episode_batch():
    """``episode_batch(seed, lengths)``: a float64 EpisodeBatch of random masked episodes."""
    return make_episode_batch


@pytest.fixture
def synthetic_meta_batch():
    """Support (one inner step) and query episodes for 2 tasks, float64, with uneven episode lengths."""
    support = [[make_episode_batch(10, [6, 4, 5])], [make_episode_batch(11, [5, 6, 2])]]
    query = [make_episode_batch(20, [6, 3, 6]), make_episode_batch(21, [4, 6, 5])]
    return support, query


NAVIGATION = "metarl/Navigation2D-v0"


@pytest.fixture
def navigation_sampler():
    """``navigation_sampler(policy, horizon)``: an in-process sampler on 2D navigation, closed after the test."""
    from metarl.samplers import VectorizedSampler

    samplers = []

    def make(policy, horizon=20):
        samplers.append(VectorizedSampler(NAVIGATION, {}, policy, horizon))
        return samplers[-1]

    yield make
    for sampler in samplers:
        sampler.close()


@pytest.fixture
def navigation_meta_batch(navigation_sampler):
    """A float32 policy (hidden (16,)) and real support/query episodes for 4 navigation tasks."""
    import numpy as np

    from metarl.adaptation import InnerStep
    from metarl.meta_batch import collect_meta_batch
    from metarl.policies import parameters_of
    from metarl.samplers.budget import EpisodeBudget

    policy = GaussianMLPPolicy(2, 2, (16,), "relu", 1.0, generator=torch.Generator().manual_seed(3))
    tasks = [{"goal": (0.3, -0.2)}, {"goal": (-0.4, 0.1)}, {"goal": (0.1, 0.45)}, {"goal": (-0.2, -0.35)}]
    assert np.all(np.abs([t["goal"] for t in tasks]) <= 0.5)
    batch = collect_meta_batch(
        navigation_sampler(policy),
        policy,
        parameters_of(policy),
        tasks,
        budget=EpisodeBudget(8),
        inner=InnerStep((0.1,), 0.99, 1.0),
        seed=(7, 1, 0),
    )
    return policy, batch


def read_event_files(run_dir):
    """An EventAccumulator over a run directory's own TensorBoard run (either layout), loaded (every event kept)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from metarl.logger import EventLayout

    accumulator = EventAccumulator(str(EventLayout.of(run_dir).directory), size_guidance={"scalars": 0, "tensors": 0})
    accumulator.Reload()
    return accumulator


def scalars(run_dir):
    """Every scalar tag of a run as {tag: [(step, value), ...]}, read back from its event files."""
    accumulator = read_event_files(run_dir)
    return {tag: [(e.step, e.value) for e in accumulator.Scalars(tag)] for tag in accumulator.Tags()["scalars"]}


@pytest.fixture(scope="session")
def event_files():
    """``event_files(run_dir)``: a loaded EventAccumulator for the run."""
    return read_event_files


@pytest.fixture(scope="session")
def run_scalars():
    """``run_scalars(run_dir)``: {tag: [(step, value), ...]} from the run's event files."""
    return scalars
