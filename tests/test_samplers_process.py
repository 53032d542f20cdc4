"""The process backend returns the in-process backend's episodes, survives killed workers, leaves no orphans."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import textwrap
import threading
import time

import gymnasium
import numpy as np
import pytest
import torch
from custom_env_for_tests import ENV_ID as CUSTOM_ENV_ID
from run_helpers import assert_same_policy, latest_policy
from sampler_helpers import (
    ENV_ID,
    REPO_ROOT,
    assert_same_episodes,
    gone,
    one_torch_thread,
    problem,
    reference,
    wait_until_gone,
    worker_env,
)

import envs  # noqa: F401  (registers the env ids)
from metarl.config import SamplerConfig
from metarl.policies import GaussianMLPPolicy
from metarl.samplers import WorkerError, make_sampler
from metarl.samplers.process import ProcessSampler
from metarl.samplers.rollout import slots_for
from metarl.samplers.vectorized import VectorizedSampler
from metarl.samplers.worker import split_slots


@pytest.fixture(scope="module")
def samplers():
    """Workers start once per module (spawning and importing torch takes seconds on 2 cores)."""
    policy, _, _ = problem(1)
    horizon = 2000
    pool = {n: ProcessSampler(ENV_ID, {}, policy, horizon, num_workers=n) for n in (1, 2)}
    yield pool
    for sampler in pool.values():
        sampler.close()


def test_shares_are_even_contiguous_and_cover_every_slot():
    slots = slots_for(5, 3)
    for num_workers in (1, 2, 4, 15, 20):
        shares = split_slots(slots, num_workers)
        assert [s for share in shares for s in share] == slots
        sizes = [len(share) for share in shares]
        assert max(sizes) - min(sizes) <= 1 and len(shares) == min(num_workers, len(slots))


@pytest.mark.slow
@pytest.mark.parametrize("num_workers", [1, 2])
def test_same_episodes_as_vectorized_whatever_the_number_of_workers(samplers, num_workers):
    # 5 tasks × 3 episodes split over 2 workers: task 2's episodes straddle the two workers.
    policy, tasks, params = problem(5, seed=num_workers)
    sampler = samplers[num_workers]
    for seed in [(1, 0, 0), (1, 0, 1)]:
        expected = reference(policy, tasks, params, 3, seed, horizon=2000)
        assert_same_episodes(expected, sampler.sample(tasks, params, 3, seed))
    # Same parameters for every task, same start state: the first actions differ only by their noise,
    # which must differ between all episodes of all tasks (pytorch-maml-rl's forked workers shared it).
    first_actions = torch.cat([b.actions_TBA[0] for b in sampler.sample(tasks, [params[0]] * 5, 3, (1, 0, 0))])
    assert len(torch.unique(first_actions, dim=0)) == 15


def custom_problem():
    """Four tasks of the test env, with parameters that differ between tasks."""
    policy = GaussianMLPPolicy(1, 1, [8], generator=torch.Generator().manual_seed(0))
    tasks = gymnasium.make(CUSTOM_ENV_ID).unwrapped.sample_tasks(4, np.random.default_rng(0))
    params = [{name: p.detach() + 0.05 * i for name, p in policy.named_parameters()} for i in range(4)]
    return policy, tasks, params


@pytest.mark.slow
def test_a_worker_that_dies_mid_call_is_replaced_and_its_share_rerun(tmp_path, capsys):
    """A worker dies at a chosen step of its share (injected, no timer): the call still returns every
    episode, the same as an in-process run of the same env, and the death is reported in one line."""
    marker = tmp_path / "died"
    env_kwargs = {"die_once_at": 7, "die_marker": str(marker)}
    policy, tasks, params = custom_problem()
    sampler = ProcessSampler(CUSTOM_ENV_ID, env_kwargs, policy, 20, num_workers=2)
    try:
        actual = sampler.sample(tasks, params, 3, (7, 1, 0))
    finally:
        sampler.close()
    assert marker.exists()  # it did die; in-process, the marker now keeps the env alive
    warning = r"warning: sampler worker \d \(pid \d+\) died with exit code 1; replaced it, re-running its 6 episodes\n"
    assert re.fullmatch(warning, capsys.readouterr().err)
    with one_torch_thread():
        expected = VectorizedSampler(CUSTOM_ENV_ID, env_kwargs, policy, 20).sample(tasks, params, 3, (7, 1, 0))
    assert_same_episodes(expected, actual)


@pytest.mark.slow
def test_a_stopped_worker_is_noticed_killed_replaced_and_its_share_rerun(tmp_path, capsys):
    """A worker stops itself with SIGSTOP at a chosen step of its share (a hung worker): after worker_timeout_s
    it is killed and replaced, and the call returns the episodes of an undisturbed in-process run."""
    marker = tmp_path / "stopped"
    env_kwargs = {"stop_once_at": 7, "stop_marker": str(marker)}
    policy, tasks, params = custom_problem()
    sampler = ProcessSampler(CUSTOM_ENV_ID, env_kwargs, policy, 20, num_workers=2, worker_timeout_s=2.0)
    try:
        actual = sampler.sample(tasks, params, 3, (7, 1, 0))
        stopped_pid = int(marker.read_text())
        assert stopped_pid not in sampler.worker_pids()
    finally:
        sampler.close()
    assert gone(stopped_pid), "the stopped worker was left behind"
    replaced = rf"warning: sampler worker \d \(pid {stopped_pid}\) gave no reply for 2 s; replaced it, re-running its 6"
    assert re.search(replaced, capsys.readouterr().err)
    with one_torch_thread():
        expected = VectorizedSampler(CUSTOM_ENV_ID, env_kwargs, policy, 20).sample(tasks, params, 3, (7, 1, 0))
    assert_same_episodes(expected, actual)


@pytest.mark.slow
def test_worker_that_keeps_dying_raises_a_one_line_worker_error(capsys):
    policy, tasks, params = problem(2)
    sampler = ProcessSampler(ENV_ID, {}, policy, 100, num_workers=1, max_failures=3)
    stop = threading.Event()

    def kill_every_worker():
        while not stop.is_set():
            for pid in sampler.worker_pids():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.02)

    killer = threading.Thread(target=kill_every_worker)
    killer.start()
    try:
        with pytest.raises(WorkerError) as error:
            sampler.sample(tasks, params, 2, (0,))
    finally:
        stop.set()
        killer.join()
        sampler.close()
    assert sampler.worker_pids() == []
    message = str(error.value)
    assert "\n" not in message
    assert re.fullmatch(
        r"sampler worker 0 failed 3 times in one sampling call \(last: pid \d+ died with exit code -9 \(SIGKILL\)\); "
        r"look for its crash message above, or for the OOM killer in the system log \(dmesg or journalctl -k\)",
        message,
    )
    assert capsys.readouterr().err.count("warning: sampler worker 0") == 2


SCRIPT = textwrap.dedent(
    """
    import signal
    import sys
    import time
    import numpy as np
    import gymnasium
    import envs
    from metarl.policies import GaussianMLPPolicy
    from metarl.samplers.process import ProcessSampler

    if __name__ == "__main__":
        # As in a terminal: a test runner started in the background (nohup, `&`) passes SIGINT down ignored.
        signal.signal(signal.SIGINT, signal.default_int_handler)
        policy = GaussianMLPPolicy(2, 2, [32, 32])
        tasks = gymnasium.make("metarl/Navigation2D-v0").unwrapped.sample_tasks(8, np.random.default_rng(0))
        params = [dict(policy.named_parameters())] * len(tasks)
        sampler = ProcessSampler("metarl/Navigation2D-v0", {}, policy, 2000, num_workers=2)
        print("pids", *sampler.worker_pids(), flush=True)
        sampler.sample(tasks, params, 1, (0,))
        print("sampling", flush=True)
        for i in range(int(sys.argv[1])):
            sampler.sample(tasks, params, 8, (i,))
        if sys.argv[2] == "idle":
            time.sleep(600)
        print("exiting without close()", flush=True)
    """
)


@pytest.mark.slow
@pytest.mark.parametrize("ending", ["exit", "ctrl-c", "sigkill", "sigkill-idle"])
def test_no_hang_and_no_orphans(tmp_path, ending):
    """Exit without close(), Ctrl-C mid-sampling, the parent SIGKILLed mid-sampling or between calls:
    every worker is gone soon after."""
    script = tmp_path / "sample.py"
    script.write_text(SCRIPT)
    calls = {"exit": 1, "sigkill-idle": 0}.get(ending, 1000)
    process = subprocess.Popen(
        [sys.executable, str(script), str(calls), "idle" if ending == "sigkill-idle" else "busy"],
        cwd=REPO_ROOT,
        env=worker_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group, so "Ctrl-C" reaches it and its workers only
    )
    try:
        pids = [int(p) for p in process.stdout.readline().split()[1:]]
        assert len(pids) == 2, process.stderr.read()
        assert process.stdout.readline().strip() == "sampling"
        time.sleep(1.0)  # inside a sampling call
        if ending == "ctrl-c":
            os.killpg(process.pid, signal.SIGINT)  # what a terminal sends to the foreground group
        elif ending.startswith("sigkill"):
            os.kill(process.pid, signal.SIGKILL)  # no atexit, no finalizer: workers must notice alone
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    assert wait_until_gone(pids, timeout_s=15) == [], f"orphaned workers after {ending}"
    if ending == "exit":
        assert process.returncode == 0, process.stderr.read()
    if ending == "ctrl-c":
        assert "KeyboardInterrupt" in process.stderr.read()


@pytest.mark.slow
def test_training_run_with_the_process_backend(tmp_path):
    command = [
        sys.executable, "launchers/train.py", "--quiet", "--output-dir", str(tmp_path / "run"),
        "--set", "sampler.backend=process", "--set", "sampler.num_workers=2", "--set", "num_iterations=2",
        "--set", "meta_batch_size=4", "--set", "episodes_per_task=4", "--set", "hidden_sizes=[16,16]",
    ]  # fmt: skip
    result = subprocess.run(command, cwd=REPO_ROOT, env=worker_env(), capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stderr
    assert "done: 2 iterations" in result.stdout
    # The same two iterations in process: a backend moves episodes, it never changes a number.
    in_process = [*command[: command.index("--set")], *command[command.index("--set") + 4 :]]
    in_process[in_process.index("--output-dir") + 1] = str(tmp_path / "in_process")
    result = subprocess.run(in_process, cwd=REPO_ROOT, env=worker_env(), capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stderr
    assert_same_policy(latest_policy(tmp_path / "run"), latest_policy(tmp_path / "in_process"))


@pytest.mark.slow
def test_a_worker_killed_again_and_again_stops_training_in_one_line_and_the_run_resumes(tmp_path):
    """A machine that kills a worker at every try (an env that ends its process while a file exists): the
    launcher stops with one error line naming the worker, how often and what to look at, exit 1, and the
    run's checkpoint is intact: once the file is gone, --resume finishes the run."""
    run_dir, killing = tmp_path / "run", tmp_path / "killing"

    def train(*args: str) -> subprocess.CompletedProcess:
        command = [sys.executable, "launchers/train.py", "--quiet", *args]
        return subprocess.run(command, cwd=REPO_ROOT, env=worker_env(), capture_output=True, text=True, timeout=180)

    result = train(
        "--output-dir", str(run_dir), "--set", f"env_id={CUSTOM_ENV_ID}", "--set", "num_iterations=1",
        "--set", f"env_kwargs={{die_at: 5, die_while: {killing}}}", "--set", "meta_batch_size=2",
        "--set", "episodes_per_task=2", "--set", "hidden_sizes=[8]",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    killing.touch()
    result = train("--resume", str(run_dir), "--set", "num_iterations=2", "--set", "sampler.backend=process")
    assert result.returncode == 1, result.stderr
    *warnings, error = result.stderr.splitlines()
    assert len(warnings) == 2 and all(w.startswith("warning: sampler worker 0 (pid ") for w in warnings), warnings
    assert error == (
        "error: sampler worker 0 failed 3 times in one sampling call (last: pid "
        f"{error.split('pid ')[1].split()[0]} died with exit code 1); look for its crash message above, or for the "
        "OOM killer in the system log (dmesg or journalctl -k); the run can be resumed from its last complete "
        f"checkpoint, checkpoints/latest.pt; continue with: python launchers/train.py --resume {run_dir}"
    )
    assert latest_iteration(run_dir) == 1
    killing.unlink()
    result = train("--resume", str(run_dir), "--set", "sampler.backend=vectorized")
    assert result.returncode == 0, result.stderr
    assert "done: 2 iterations" in result.stdout
    assert latest_iteration(run_dir) == 2


def latest_iteration(run_dir) -> int:
    return torch.load(run_dir / "checkpoints" / "latest.pt", weights_only=True)["iteration"]


def test_make_sampler_builds_the_process_backend():
    policy, tasks, params = problem(2)
    sampler = make_sampler(SamplerConfig(backend="process", num_workers=1), ENV_ID, {}, policy, 10)
    try:
        assert isinstance(sampler, ProcessSampler)
        batches = sampler.sample(tasks, params, 2, (0,))
        assert [b.num_episodes for b in batches] == [2, 2]
    finally:
        sampler.close()
    with pytest.raises(RuntimeError, match="closed"):
        sampler.sample(tasks, params, 2, (0,))


def default_sigint() -> None:
    """In the child before exec: a test runner started in the background passes SIGINT down ignored."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def wait_until_group_gone(pgid: int, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.1)
    return False


@pytest.mark.slow
def test_ctrl_c_while_the_workers_start_is_one_line_and_leaves_nothing(tmp_path):
    """Ctrl-C to the whole process group (as a terminal sends it) once the run directory is announced, while
    the workers are still importing: no worker's traceback, no --resume hint for a run without a checkpoint
    (its directory is removed, so the same command starts it again), and no process left behind."""
    run_dir = tmp_path / "run"
    command = [
        sys.executable, "launchers/train.py", "--output-dir", str(run_dir), "--set", "sampler.backend=process",
        "--set", "sampler.num_workers=2", "--set", "meta_batch_size=2", "--set", "episodes_per_task=2",
        "--set", "hidden_sizes=[8]", "--set", "num_iterations=2",
    ]  # fmt: skip
    process = subprocess.Popen(
        command,
        cwd=REPO_ROOT,
        env=worker_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        preexec_fn=default_sigint,
    )
    try:
        assert process.stdout.readline() == f"run directory: {run_dir}\n"
        os.killpg(process.pid, signal.SIGINT)
        _, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    assert process.returncode == 130, stderr
    assert "Traceback" not in stderr and "--resume" not in stderr, stderr
    assert stderr.startswith("interrupted before the first checkpoint, so there is nothing to resume")
    assert stderr.count("\n") == 1, stderr
    assert not run_dir.exists()
    assert wait_until_group_gone(process.pid, timeout_s=15), "a worker outlived the interrupted launcher"
