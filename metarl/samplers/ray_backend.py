"""Ray backend: Ray actors, each owning a slice of the environments, on a local or remote cluster.

Named ``ray_backend`` so that it never shadows the ``ray`` package. Ray is imported only when this
backend is built. Actors wrap the same ``RolloutWorker`` as the process backend's workers, get the
same one-request-per-call shares, and return the same episodes for the same seed key.

Starting: ``sampler.ray_address: null`` starts a fresh local Ray instance, never the cluster that ``RAY_ADDRESS``
or leftover local state names (Ray's own ``address=None`` joins those, and retries a dead one for minutes); an
address to join is checked to answer first, and Ray's connection attempts are capped, so a dead cluster is one
line within seconds, saying what to do.

Sizing: actors ask for a fractional CPU share that always leaves at least one CPU of the cluster
free (or half of it on a one-CPU cluster), so Ray's default one-CPU tasks can still be scheduled
and sampling can never deadlock waiting for resources the actors themselves hold.

An actor that dies during a call (its process killed, its node lost), or gives no reply for
``worker_timeout_s`` once it is up, is killed and replaced by a new actor and its share is re-sampled;
since episodes depend only on the seed key, nothing is lost or changed. Past ``max_failures`` in one
call, ``WorkerError``.
"""

from __future__ import annotations

import math
import os
import socket
import time
import warnings
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from torch import nn

from metarl.config import ConfigError
from metarl.samplers.base import report_replaced, worker_failure
from metarl.samplers.rollout import NonFiniteEpisodeError, RolloutArrays
from metarl.samplers.worker import (
    RolloutWorker,
    ShardedSampler,
    ShareRequest,
    WorkerSpec,
    limit_threads,
)
from metarl.user_env import EnvError

INSTALL_HINT = "the ray sampler backend needs Ray: pip install -e \".[ray]\" (or pip install 'ray[default]==2.60.0')"
WAIT_TICK_S = 1.0
START_TIMEOUT_S = 300.0
"""How long a new actor may take to come up (placement, a worker process, imports) before it counts as
stalled; a share's ``worker_timeout_s`` starts only once its actor is up."""
ANSWER_WAIT_S = 60.0
"""How long a cluster's address may take to answer (a head that is coming up) before the join is given up."""
GCS_CONNECT_ATTEMPTS = "3"
"""Ray's attempts to reach a cluster's GCS (each up to about 35 s) while joining: Ray's default, 20, waits 12 minutes
on a cluster that is gone. An operator's own ``RAY_gcs_server_port_wait_time_s`` is kept."""
GCS_WAIT_VARIABLE = "RAY_gcs_server_port_wait_time_s"
LOCAL_RAY_HINT = (
    "leave sampler.ray_address null to start a fresh local Ray instance, or start the cluster (ray start --head) "
    "and give its address; leftover processes of a stopped one: `ray stop` (it ends every Ray process here)"
)
SOURCE_ROOT = str(Path(__file__).resolve().parents[2])
"""The directory holding ``metarl`` and ``envs``: put on the actors' PYTHONPATH for same-host clusters."""


def import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise ConfigError(INSTALL_HINT) from None
    return ray


def init_ray(address: str | None, log_to_driver: bool = True) -> None:
    """Start a fresh local Ray instance (``address`` None) or join the cluster at ``address`` ('auto' or
    host:port), within a bounded wait; a ``ConfigError`` in one line with what to do otherwise."""
    ray = import_ray()
    if address is not None:
        require_answering(address)
    try:
        with capped_gcs_attempts(joining=address is not None):
            # "local": a new instance even where RAY_ADDRESS or a stopped cluster's state names another
            ray.init(
                address=address or "local",
                ignore_reinit_error=True,
                include_dashboard=False,
                log_to_driver=log_to_driver,
            )
    except Exception as error:  # unreachable address, token mismatch, ...
        where = f"the Ray cluster at {address}" if address else "a local Ray instance"
        raise ConfigError(
            f"could not start or join {where}: {type(error).__name__}: {str(error).splitlines()[0]}; "
            "check sampler.ray_address (see `ray status` on the head node) and that RAY_AUTH_MODE "
            "(and the auth token) agree between this machine and the cluster"
        ) from error


def require_answering(address: str) -> None:
    """Refuse a cluster address nothing listens at, in seconds, before Ray retries it for minutes; 'auto' is the
    address Ray would take (RAY_ADDRESS, or the last ``ray start`` on this machine)."""
    from ray._private.services import canonicalize_bootstrap_address  # how ray.init reads an address

    try:
        resolved = canonicalize_bootstrap_address(address)
    except (ConnectionError, ValueError) as error:
        raise ConfigError(
            f"sampler.ray_address {address!r} names no Ray cluster ({str(error).splitlines()[0]}); {LOCAL_RAY_HINT}"
        ) from None
    host, _, port = str(resolved).rpartition(":")
    started = time.monotonic()
    deadline = started + ANSWER_WAIT_S
    while True:
        try:
            socket.create_connection((host, int(port)), timeout=max(deadline - time.monotonic(), 0.1)).close()
            return
        except (OSError, ValueError) as error:
            if time.monotonic() < deadline and isinstance(error, ConnectionRefusedError):
                time.sleep(WAIT_TICK_S)  # a head that is coming up opens its port within seconds
                continue
            shown = (
                address if address != "auto" else f"{resolved} (found by 'auto': RAY_ADDRESS or the last `ray start`)"
            )
            reason = getattr(error, "strerror", None) or type(error).__name__
            waited = time.monotonic() - started
            waited_for = f" for {waited:.0f} s" if waited >= 1 else ""
            raise ConfigError(
                f"nothing answers at the Ray cluster address {shown} ({reason}{waited_for}); {LOCAL_RAY_HINT}"
            ) from None


@contextmanager
def capped_gcs_attempts(joining: bool) -> Iterator[None]:
    """While joining a cluster, Ray tries its GCS at most ``GCS_CONNECT_ATTEMPTS`` times (see there)."""
    if not joining or GCS_WAIT_VARIABLE in os.environ:
        yield
        return
    os.environ[GCS_WAIT_VARIABLE] = GCS_CONNECT_ATTEMPTS
    try:
        yield
    finally:
        os.environ.pop(GCS_WAIT_VARIABLE, None)


class RolloutActor:
    """The Ray actor: a ``RolloutWorker`` plus its process id and node (so tests and tools can find it)."""

    def __init__(self, spec: WorkerSpec):
        limit_threads()
        self.worker = RolloutWorker(spec)

    def pid(self) -> int:
        return os.getpid()

    def node_ip(self) -> str:
        return import_ray().util.get_node_ip_address()

    def run(self, request: ShareRequest) -> RolloutArrays:
        return self.worker.run(request)


def actor_cpus(available_cpus: float, num_actors: int) -> float:
    """A CPU share per actor that leaves one CPU free (half the cluster if it has fewer than two)."""
    reserve = 1.0 if available_cpus >= 2 else available_cpus / 2
    share = min(1.0, (available_cpus - reserve) / num_actors)
    return math.floor(share * 1e4) / 1e4  # Ray's resource granularity


class RaySampler(ShardedSampler):
    """Ray actors; actor i runs the i-th contiguous share of each call's episodes."""

    def __init__(
        self,
        env_id: str,
        env_kwargs: dict[str, Any],
        policy: nn.Module,
        horizon: int,
        num_workers: int,
        address: str | None = None,
        max_failures: int = 3,
        num_cpus_per_actor: float | None = None,
        runtime_env: dict[str, Any] | None = None,
        worker_timeout_s: float = 1200.0,
    ):
        if not worker_timeout_s > 0:
            raise ValueError(f"worker_timeout_s must be positive, got {worker_timeout_s}")
        self.ray = ray = import_ray()
        self.num_workers = num_workers
        self.max_failures = max_failures
        self.worker_timeout_s = worker_timeout_s
        self._owns_ray = not ray.is_initialized()
        if self._owns_ray:
            init_ray(address)
        elif address is not None:  # Ray is up in this process already (a test, the Python API): still refuse
            require_answering(address)  # an address nothing answers at, rather than sample elsewhere unasked
        if num_cpus_per_actor is None:
            num_cpus_per_actor = actor_cpus(ray.available_resources().get("CPU", 0.0), num_workers)
        if num_cpus_per_actor <= 0:
            warnings.warn("the Ray cluster has no free CPU: sampler actors reserve none and share cores", stacklevel=2)
        if runtime_env is None:
            # Same-host or shared-filesystem clusters import this very checkout; on other nodes the
            # entry is absent and the installed package (e.g. the Docker image's) is used.
            runtime_env = {"env_vars": {"PYTHONPATH": f"{SOURCE_ROOT}{os.pathsep}${{PYTHONPATH}}"}}
        self._actor_class = ray.remote(RolloutActor).options(
            num_cpus=max(num_cpus_per_actor, 0.0),
            max_restarts=0,  # we replace dead actors ourselves, so that it is reported and bounded
            scheduling_strategy="SPREAD",
            runtime_env=runtime_env,
        )
        self._spec = WorkerSpec(env_id, dict(env_kwargs), policy, horizon)
        self._spec_ref = ray.put(self._spec)
        self._actors: list[Any] = [self._actor_class.remote(self._spec_ref) for _ in range(num_workers)]
        self._started_at = [time.monotonic()] * num_workers
        self._up: list[Any] = [actor.pid.remote() for actor in self._actors]
        """Per actor: its first ``pid()`` call, which returns once it is up; then the time that was noticed."""
        self._closed = False

    def _start_actor(self, index: int) -> None:
        self._actors[index] = self._actor_class.remote(self._spec_ref)
        self._started_at[index] = time.monotonic()
        self._up[index] = self._actors[index].pid.remote()

    def _deadline(self, index: int, sent_at: float) -> float:
        """As the process backend's: ``worker_timeout_s`` after the later of sending and the actor being up."""
        up = self._up[index]
        if not isinstance(up, float):
            if not self.ray.wait([up], timeout=0)[0]:
                return self._started_at[index] + START_TIMEOUT_S
            up = self._up[index] = time.monotonic()
        return max(sent_at, up) + self.worker_timeout_s

    def worker_pids(self) -> list[int]:
        """Process ids of the current actors (waits for them to start)."""
        return self.ray.get([actor.pid.remote() for actor in self._actors])

    def actor_nodes(self) -> list[str]:
        """The IP address of the node each actor runs on (waits for them to start)."""
        return self.ray.get([actor.node_ip.remote() for actor in self._actors])

    def placement(self) -> str:
        """Where the actors run, for a cluster's console: a node's IP and its number of actors.

        E.g. ``4 actors on 2 nodes: 172.18.0.3 (2), 172.18.0.4 (2); driver on 172.18.0.5``.
        """
        counts = Counter(self.actor_nodes())
        nodes = ", ".join(f"{ip} ({count})" for ip, count in sorted(counts.items()))
        plural = "s" if len(counts) != 1 else ""
        driver = self.ray.util.get_node_ip_address()
        return f"{len(self._actors)} actors on {len(counts)} node{plural}: {nodes}; driver on {driver}"

    def describe(self) -> str:
        return f"ray sampler: {self.placement()}"

    def run_shares(self, requests: list[ShareRequest]) -> list[RolloutArrays]:
        if self._closed:
            raise RuntimeError("this RaySampler is closed")
        ray = self.ray
        failures = [0] * len(requests)
        results: list[RolloutArrays | None] = [None] * len(requests)
        index_of = {self._actors[i].run.remote(request): i for i, request in enumerate(requests)}
        sent_at = dict.fromkeys(index_of, time.monotonic())
        while index_of:
            ready, _ = ray.wait(list(index_of), num_returns=1, timeout=WAIT_TICK_S)
            for ref in ready:
                index = index_of.pop(ref)
                try:
                    results[index] = ray.get(ref)
                except ray.exceptions.RayActorError as error:
                    self._replace(index, failures, len(requests[index].slots), f"died ({type(error).__name__})")
                    ref = self._actors[index].run.remote(requests[index])
                    index_of[ref], sent_at[ref] = index, time.monotonic()
                except ray.exceptions.RayTaskError as error:
                    if isinstance(error.cause, (NonFiniteEpisodeError, EnvError)):  # the user's env, not a bug
                        raise error.cause from None
                    raise RuntimeError(f"sampler actor {index} failed:\n{error}") from None
            for ref, index in list(index_of.items()):
                if time.monotonic() < self._deadline(index, sent_at[ref]):
                    continue
                del index_of[ref]
                up = isinstance(self._up[index], float)
                what = (
                    f"gave no reply for {self.worker_timeout_s:g} s"
                    if up
                    else f"did not start within {START_TIMEOUT_S:g} s"
                )
                self._replace(index, failures, len(requests[index].slots), what, stalled=True)
                ref = self._actors[index].run.remote(requests[index])
                index_of[ref], sent_at[ref] = index, time.monotonic()
        return [r for r in results if r is not None]

    def _replace(self, index: int, failures: list[int], num_episodes: int, what: str, stalled: bool = False) -> None:
        failures[index] += 1
        try:
            self.ray.kill(self._actors[index], no_restart=True)
        except Exception:  # already gone
            pass
        self._start_actor(index)
        if failures[index] >= self.max_failures:
            raise worker_failure(f"sampler actor {index}", failures[index], what, stalled)
        report_replaced(f"sampler actor {index} {what}; replaced it, re-sampling its {num_episodes} episodes")

    def close(self) -> None:
        """Kill the actors; leave Ray running if it was already up when this sampler started."""
        if self._closed:
            return
        self._closed = True
        for actor in self._actors:
            try:
                self.ray.kill(actor, no_restart=True)
            except Exception:
                pass
        self._actors = []
        if self._owns_ray and self.ray.is_initialized():
            self.ray.shutdown()
