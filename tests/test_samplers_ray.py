"""The Ray backend on real local clusters: same episodes as in-process, dead actors replaced, joining by address.

Two clusters: one started in this process with 2 CPUs, and one ``ray start --head`` process that a
training run joins by address and that is stopped by its own process group (never ``ray stop``,
which would end every Ray process on the machine). Both sides set ``RAY_AUTH_MODE=disabled``: with
Ray 2.60 a driver and a ``ray start`` cluster that disagree fail with ``InvalidAuthToken``.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import gymnasium
import numpy as np
import pytest
import torch
from custom_env_for_tests import ENV_ID as CUSTOM_ENV_ID
from run_helpers import assert_same_policy, latest_policy
from sampler_helpers import ENV_ID, REPO_ROOT, assert_same_episodes, gone, one_torch_thread, problem, reference

from metarl.config import ConfigError, SamplerConfig
from metarl.policies import GaussianMLPPolicy
from metarl.samplers import make_sampler
from metarl.samplers.ray_backend import actor_cpus
from metarl.samplers.vectorized import VectorizedSampler

needs_ray = pytest.mark.skipif(
    importlib.util.find_spec("ray") is None, reason="Ray is not installed: pip install -e '.[ray]'"
)
AUTH = {"RAY_AUTH_MODE": "disabled"}


@pytest.fixture(scope="module")
def local_ray():
    """A real in-process Ray cluster with 2 CPUs and a short private temp dir (Unix socket paths are short)."""
    import ray

    saved = {key: os.environ.get(key) for key in AUTH}
    os.environ.update(AUTH)
    temp_dir = tempfile.mkdtemp(prefix="ray", dir="/tmp")
    ray.init(num_cpus=2, include_dashboard=False, _temp_dir=temp_dir, log_to_driver=False)
    yield ray
    ray.shutdown()
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    shutil.rmtree(temp_dir, ignore_errors=True)


def test_actors_always_leave_a_cpu_free():
    assert actor_cpus(2.0, 2) == 0.5
    assert actor_cpus(2.0, 1) == 1.0
    assert actor_cpus(16.0, 4) == 1.0
    assert actor_cpus(1.0, 2) == 0.25
    for cpus in (1.0, 2.0, 3.0, 8.0):
        for actors in (1, 2, 3, 7):
            assert actors * actor_cpus(cpus, actors) <= cpus - min(1.0, cpus / 2) + 1e-9


def test_missing_ray_names_the_install_command(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` now raises ImportError
    policy, _, _ = problem(1)
    with pytest.raises(ConfigError, match=r'pip install -e "\.\[ray\]"'):
        make_sampler(SamplerConfig(backend="ray", num_workers=2), ENV_ID, {}, policy, 100)


@needs_ray
@pytest.mark.slow
def test_same_episodes_as_vectorized_and_an_actor_that_dies_is_replaced(local_ray, tmp_path, capsys):
    policy, tasks, params = problem(8, seed=5)
    sampler = make_sampler(SamplerConfig(backend="ray", num_workers=2), ENV_ID, {}, policy, 2000)
    try:
        # Two actors of 0.5 CPU on the 2-CPU node: a default 1-CPU task can still run (no deadlock).
        assert local_ray.get(local_ray.remote(lambda: 1).remote(), timeout=60) == 1
        node = local_ray.util.get_node_ip_address()
        assert sampler.actor_nodes() == [node, node]
        assert sampler.placement() == f"2 actors on 1 node: {node} (2); driver on {node}"

        seed = (3, 1, 0)
        expected = reference(policy, tasks, params, 8, seed, horizon=2000)
        assert_same_episodes(expected, sampler.sample(tasks, params, 8, seed))
        sampler.close()

        # An actor dies at a chosen step of its share (injected, no timer): replaced, its share re-sampled.
        marker = tmp_path / "died"
        env_kwargs = {"die_once_at": 7, "die_marker": str(marker)}
        policy = GaussianMLPPolicy(1, 1, [8], generator=torch.Generator().manual_seed(0))
        tasks = gymnasium.make(CUSTOM_ENV_ID).unwrapped.sample_tasks(4, np.random.default_rng(0))
        params = [{name: p.detach() + 0.05 * i for name, p in policy.named_parameters()} for i in range(4)]
        sampler = make_sampler(SamplerConfig(backend="ray", num_workers=2), CUSTOM_ENV_ID, env_kwargs, policy, 20)
        actual = sampler.sample(tasks, params, 3, (7, 1, 0))
        warning = r"warning: sampler actor \d died \(\w+\); replaced it, re-sampling its 6 episodes\n"
        assert re.fullmatch(warning, capsys.readouterr().err)
        assert marker.exists()  # it did die; in-process, the marker now keeps the env alive
        with one_torch_thread():
            expected = VectorizedSampler(CUSTOM_ENV_ID, env_kwargs, policy, 20).sample(tasks, params, 3, (7, 1, 0))
        assert_same_episodes(expected, actual)
    finally:
        sampler.close()
    assert local_ray.is_initialized(), "a sampler must not shut down a Ray instance it did not start"


@needs_ray
@pytest.mark.slow
def test_a_stopped_actor_is_noticed_killed_replaced_and_its_share_resampled(local_ray, tmp_path, capsys):
    """An actor stops itself with SIGSTOP at a chosen step of its share (a hung worker): worker_timeout_s after
    it came up, it is killed and replaced, and the call returns the episodes of an undisturbed in-process run."""
    marker = tmp_path / "stopped"
    env_kwargs = {"stop_once_at": 7, "stop_marker": str(marker)}
    policy = GaussianMLPPolicy(1, 1, [8], generator=torch.Generator().manual_seed(0))
    tasks = gymnasium.make(CUSTOM_ENV_ID).unwrapped.sample_tasks(4, np.random.default_rng(0))
    params = [{name: p.detach() + 0.05 * i for name, p in policy.named_parameters()} for i in range(4)]
    config = SamplerConfig(backend="ray", num_workers=2, worker_timeout_s=2.0)
    sampler = make_sampler(config, CUSTOM_ENV_ID, env_kwargs, policy, 20)
    try:
        actual = sampler.sample(tasks, params, 3, (7, 1, 0))
        stopped_pid = int(marker.read_text())
        assert stopped_pid not in sampler.worker_pids()
    finally:
        sampler.close()
    warning = r"warning: sampler actor \d gave no reply for 2 s; replaced it, re-sampling its 6 episodes"
    assert re.search(warning, capsys.readouterr().err)
    deadline = time.monotonic() + 30
    while not gone(stopped_pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert gone(stopped_pid), "the stopped actor's process was left behind"
    with one_torch_thread():
        expected = VectorizedSampler(CUSTOM_ENV_ID, env_kwargs, policy, 20).sample(tasks, params, 3, (7, 1, 0))
    assert_same_episodes(expected, actual)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cluster_processes(session_id: int, temp_dir: str) -> list[int]:
    """Live processes of the head's session, or naming its temp dir (gcs_server, raylet, agents)."""
    pids = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            sid = int((proc / "stat").read_text().rsplit(")", 1)[1].split()[3])
            mentions = temp_dir in (proc / "cmdline").read_bytes().decode(errors="replace")
        except (OSError, IndexError, ValueError):
            continue
        if (sid == session_id or mentions) and not gone(int(proc.name)):
            pids.append(int(proc.name))
    return pids


@needs_ray
@pytest.mark.slow
def test_an_actor_imports_a_user_env_and_its_nan_comes_back_named(local_ray):
    """Actors build a ``module:EnvId`` env by importing the user's module; its NaN reward is re-raised as the
    one-line NonFiniteEpisodeError, not wrapped in a RayTaskError."""
    from custom_env_for_tests import ENV_ID as USER_ENV_ID

    from metarl.policies import GaussianMLPPolicy, parameters_of
    from metarl.samplers import NonFiniteEpisodeError

    policy = GaussianMLPPolicy(1, 1, (4,), "tanh", 1.0, generator=torch.Generator().manual_seed(0))
    sampler = make_sampler(SamplerConfig(backend="ray", num_workers=1), USER_ENV_ID, {"nan_reward_at": 3}, policy, 10)
    try:
        with pytest.raises(
            NonFiniteEpisodeError,
            match=rf"^env {USER_ENV_ID} returned a non-finite reward "
            r"\(nan\) at step 3 of episode 0 of task 0",
        ):
            sampler.sample([{"goal": 0.5}], [parameters_of(policy)], 2, (0,))
    finally:
        sampler.close()


@needs_ray
def test_no_ray_address_starts_a_fresh_local_instance_whatever_ray_address_or_leftover_state_name(monkeypatch):
    """Ray's address=None joins the cluster RAY_ADDRESS or a stopped cluster's leftover state names, and retries
    a dead one for minutes ("Connecting to existing Ray cluster..."); metarl asks Ray for a new instance."""
    import ray

    import metarl.samplers.ray_backend as ray_backend

    asked = []

    def init(**kwargs):
        asked.append(kwargs["address"])
        raise RuntimeError("stop here: no Ray is started by this test")

    monkeypatch.setenv("RAY_ADDRESS", f"127.0.0.1:{free_port()}")  # a dead cluster, as leftover state would name
    monkeypatch.setattr(ray, "init", init)
    with pytest.raises(ConfigError, match="a local Ray instance"):
        ray_backend.init_ray(None)
    assert asked == ["local"]


@needs_ray
@pytest.mark.parametrize("address", ["127.0.0.1:{port}", "auto"])
def test_a_dead_cluster_address_is_one_line_in_bounded_time(
    address, monkeypatch, launcher_here, tiny_run_args, tmp_path
):
    """Joining nothing (a stopped head, RAY_ADDRESS naming one) ends in one line saying what to do within
    ANSWER_WAIT_S (shortened here), not after Ray's 12 minutes of retries."""
    import metarl.samplers.ray_backend as ray_backend

    port = free_port()
    monkeypatch.setenv("RAY_ADDRESS", f"127.0.0.1:{port}")  # what 'auto' finds
    monkeypatch.setattr(ray_backend, "ANSWER_WAIT_S", 2.0)
    start = time.monotonic()
    result = launcher_here(
        "train.py",
        *tiny_run_args(num_iterations=1),
        *("--set", "sampler.backend=ray", "--set", f"sampler.ray_address={address.format(port=port)}"),
        *("--output", tmp_path / "run"),
    )
    assert time.monotonic() - start < 60
    assert result.returncode == 2 and result.stdout == "", result
    [line] = result.stderr.splitlines()
    assert line.startswith("error: nothing answers at the Ray cluster address "), line
    assert f":{port}" in line and "Connection refused for " in line, line
    assert "leave sampler.ray_address null to start a fresh local Ray instance" in line and "`ray stop`" in line
    assert not (tmp_path / "run").exists()


@needs_ray
@pytest.mark.slow
def test_training_run_joins_a_separate_head_by_address(tmp_path):
    ray_bin = shutil.which("ray", path=str(Path(sys.executable).parent)) or shutil.which("ray")
    assert ray_bin, "the ray command line is missing"
    port, client_port, dashboard_port = free_port(), free_port(), free_port()
    temp_dir = tempfile.mkdtemp(prefix="rayhead", dir="/tmp")
    env = {**os.environ, **AUTH, "PYTHONPATH": str(REPO_ROOT)}
    head = subprocess.Popen(
        [ray_bin, "start", "--head", "--block", f"--port={port}", "--num-cpus=2", f"--temp-dir={temp_dir}",
         "--include-dashboard=false", "--disable-usage-stats",
         f"--ray-client-server-port={client_port}", f"--dashboard-port={dashboard_port}"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True,  # its own process group: stopped below without touching other Ray clusters
    )  # fmt: skip
    try:
        command = [
            sys.executable, "launchers/train.py", "--quiet", "--output-dir", str(tmp_path / "run"),
            "--set", "sampler.backend=ray", "--set", f"sampler.ray_address=127.0.0.1:{port}",
            "--set", "sampler.num_workers=2", "--set", "num_iterations=2", "--set", "meta_batch_size=4",
            "--set", "episodes_per_task=4", "--set", "hidden_sizes=[16,16]",
        ]  # fmt: skip
        # The head may take a while to come up; the launcher waits up to ray_backend.ANSWER_WAIT_S for it.
        result = subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=240)
        assert result.returncode == 0, result.stderr[-3000:]
        assert "done: 2 iterations" in result.stdout
        assert "ray sampler: 2 actors on 1 node: " in result.stdout  # where they run, for clusters
        assert head.poll() is None, "the head must outlive the training run that joined it"
        # The same two iterations in process: a backend moves episodes, it never changes a number.
        in_process = command[: command.index("--set")] + command[command.index("--set") + 6 :]
        in_process[in_process.index("--output-dir") + 1] = str(tmp_path / "in_process")
        result = subprocess.run(in_process, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=240)
        assert result.returncode == 0, result.stderr[-3000:]
        assert_same_policy(latest_policy(tmp_path / "run"), latest_policy(tmp_path / "in_process"))
    finally:
        os.killpg(head.pid, signal.SIGTERM)  # `ray start --block` stops its children on SIGTERM
        try:
            head.wait(timeout=20)
        except subprocess.TimeoutExpired:
            pass
        with contextlib.suppress(ProcessLookupError):
            os.killpg(head.pid, signal.SIGKILL)  # stragglers of the group, if any
        head.wait()
        deadline = time.monotonic() + 20
        while cluster_processes(head.pid, temp_dir) and time.monotonic() < deadline:
            time.sleep(0.5)
        leftovers = cluster_processes(head.pid, temp_dir)
        for pid in leftovers:
            os.kill(pid, signal.SIGKILL)
        shutil.rmtree(temp_dir, ignore_errors=True)
    assert leftovers == [], "Ray processes of the stopped head remain"
    assert torch.load(tmp_path / "run" / "checkpoints" / "latest.pt", weights_only=False)["iteration"] == 2
