"""Process backend: persistent worker processes, each owning a slice of the environments.

Workers are started once with the ``spawn`` method (no forked copies of the parent's torch threads,
RNG or open files) and get the env id, env kwargs, horizon and policy template once, cloudpickled.
Each sampling call sends every worker one message (its slots, their tasks and parameters, the seed
key) and gets one back (its ``RolloutArrays``): no per-step messaging. Episodes depend only on the
seed key, so the split between workers, and re-running a share after a crash, change nothing.

Liveness: the parent waits on the result pipes *and* the process sentinels together, so a worker
killed mid-call is noticed at once, replaced, and its share re-run. A worker that gives no reply for
``worker_timeout_s`` after it is up and has its share (stopped with SIGSTOP, hung) is killed and
handled the same way. Past ``max_failures`` in one call, ``WorkerError``. Workers start with SIGINT
blocked and then ignore it (the parent owns Ctrl-C and closes them), and exit on their own when the
parent disappears.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import time
import traceback
import warnings
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from multiprocessing import resource_tracker
from multiprocessing.connection import Connection, wait
from typing import Any

import cloudpickle
from torch import nn

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

PARENT_CHECK_S = 1.0
"""How often an idle worker checks that its parent is still there."""
WAIT_TICK_S = 1.0
"""How often the parent re-checks worker liveness while waiting (sentinels wake it at once anyway)."""
STOP_GRACE_S = 2.0
"""How long ``close`` lets workers finish before terminating them."""
START_TIMEOUT_S = 300.0
"""How long a new worker may take to come up (spawn, import torch and the env's modules: tens of seconds on a
loaded machine) before it counts as stalled; a share's ``worker_timeout_s`` starts only once it is up."""
READY = 0
"""The call number of the one message a worker sends once it is up, before any reply."""


def _worker_main(conn: Connection, spec_bytes: bytes, parent_pid: int, torch_threads: int | None) -> None:
    """A worker's loop: one request in, one reply out, until told to stop or orphaned."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle; it then closes us
    limit_threads(torch_threads)
    worker: RolloutWorker | None = None
    try:
        try:
            conn.send((READY, "ready", None))
        except (BrokenPipeError, OSError):
            return
        while True:
            if not conn.poll(PARENT_CHECK_S):
                if os.getppid() != parent_pid:
                    return
                continue
            try:
                message = conn.recv()
            except (EOFError, OSError):  # the parent's end closed: it is gone
                return
            if message is None:
                return
            call, request = message
            try:
                if worker is None:  # built here so a bad env id or kwargs comes back as an error reply
                    worker = RolloutWorker(cloudpickle.loads(spec_bytes))
                reply: tuple[int, str, Any] = (call, "ok", worker.run(request))
            except (NonFiniteEpisodeError, EnvError) as error:  # the user's env, not a bug: re-raised as it is
                reply = (call, "raise", error)
            except Exception:
                reply = (call, "error", traceback.format_exc())
            try:
                conn.send(reply)
            except (BrokenPipeError, OSError):
                return
    finally:
        if worker is not None:
            worker.close()


@contextmanager
def sigint_blocked() -> Iterator[None]:
    """Block SIGINT in this thread while a worker starts. The worker inherits the mask through fork and exec,
    so a Ctrl-C in its first seconds (importing torch, before it can ignore SIGINT) does not print its
    traceback; the parent still gets that Ctrl-C, through another thread or once the block ends."""
    if not hasattr(signal, "pthread_sigmask"):  # not POSIX
        yield
        return
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


@dataclass
class _Worker:
    process: multiprocessing.process.BaseProcess
    conn: Connection
    started_at: float
    """``time.monotonic()`` when it was started."""
    up_at: float | None = None
    """When its ready message was read; None until then."""

    def deadline(self, sent_at: float, timeout_s: float) -> float:
        """When a share sent at ``sent_at`` counts as stalled: ``timeout_s`` after the later of its sending and
        the worker coming up, or ``START_TIMEOUT_S`` after the start of a worker that is not up yet."""
        if self.up_at is None:
            return self.started_at + START_TIMEOUT_S
        return max(sent_at, self.up_at) + timeout_s

    def failure(self, stalled: bool, timeout_s: float) -> str:
        """What happened to it, for the warning and the error: its exit code, or how long it was silent."""
        if not stalled:
            code = self.process.exitcode
            signal_name = f" ({signal.Signals(-code).name})" if code is not None and code < 0 else ""
            return f"died with exit code {code}{signal_name}"
        if self.up_at is None:
            return f"did not start within {START_TIMEOUT_S:g} s"
        return f"gave no reply for {timeout_s:g} s"


def _shutdown(workers: list[_Worker | None]) -> None:
    """Ask every worker to stop, then terminate and kill stragglers; leaves no child behind."""
    live = [w for w in workers if w is not None]
    for worker in live:
        try:
            worker.conn.send(None)
        except (BrokenPipeError, OSError):
            pass
    deadline = time.monotonic() + STOP_GRACE_S
    for worker in live:
        worker.process.join(timeout=max(0.0, deadline - time.monotonic()))
    for worker in live:
        if worker.process.is_alive():
            worker.process.terminate()
            worker.process.join(timeout=1.0)
        if worker.process.is_alive():
            worker.process.kill()
            worker.process.join()
        worker.conn.close()
    workers[:] = [None] * len(workers)


class ProcessSampler(ShardedSampler):
    """Persistent worker processes; worker i runs the i-th contiguous share of each call's episodes."""

    def __init__(
        self,
        env_id: str,
        env_kwargs: dict[str, Any],
        policy: nn.Module,
        horizon: int,
        num_workers: int,
        max_failures: int = 3,
        start_method: str = "spawn",
        torch_threads: int | None = 1,
        worker_timeout_s: float = 1200.0,
    ):
        """``torch_threads=None`` leaves torch's default threads in the workers (for benchmarks only);
        ``worker_timeout_s`` is ``SamplerConfig.worker_timeout_s``."""
        if num_workers < 1:
            raise ValueError(f"num_workers must be positive, got {num_workers}")
        if not worker_timeout_s > 0:
            raise ValueError(f"worker_timeout_s must be positive, got {worker_timeout_s}")
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
        if num_workers > cores:
            warnings.warn(
                f"sampler.num_workers={num_workers} exceeds the {cores} cores available; workers will share cores",
                stacklevel=2,
            )
        self.horizon = horizon
        self.num_workers = num_workers
        self.max_failures = max_failures
        self.torch_threads = torch_threads
        self.worker_timeout_s = worker_timeout_s
        # The concrete context (spawn, fork, forkserver) has ``Process``; typeshed's BaseContext does not.
        self._context: Any = multiprocessing.get_context(start_method)
        if start_method != "fork":
            # spawn starts multiprocessing's resource tracker with a worker's start if it is not running yet, and
            # unblocks SIGINT when it does: started first, it cannot undo ``sigint_blocked``.
            resource_tracker.ensure_running()
        self._spec_bytes = cloudpickle.dumps(WorkerSpec(env_id, dict(env_kwargs), policy, horizon))
        self._workers: list[_Worker | None] = [None] * num_workers
        self._call = 0
        # Runs on close(), on garbage collection, or at interpreter exit, whichever comes first.
        self._finalizer = weakref.finalize(self, _shutdown, self._workers)
        for index in range(num_workers):
            self._workers[index] = self._start_worker()

    def _start_worker(self) -> _Worker:
        parent_conn, child_conn = self._context.Pipe(duplex=True)
        process = self._context.Process(
            target=_worker_main,
            args=(child_conn, self._spec_bytes, os.getpid(), self.torch_threads),
            daemon=True,
            name="metarl-sampler",
        )
        with sigint_blocked():
            process.start()
        child_conn.close()
        return _Worker(process, parent_conn, started_at=time.monotonic())

    def worker_pids(self) -> list[int]:
        """Process ids of the current workers (replaced workers get new ones)."""
        return [w.process.pid for w in self._workers if w is not None and w.process.pid is not None]

    def describe(self) -> str:
        plural = "es" if self.num_workers != 1 else ""
        return f"process sampler: {self.num_workers} worker process{plural} on this machine"

    def _worker(self, index: int) -> _Worker:
        worker = self._workers[index]
        assert worker is not None, "workers are started in __init__ and replaced at once"
        return worker

    def _submit(self, index: int, call: int, request: ShareRequest) -> float:
        """Send worker ``index`` its share; returns when, for its deadline."""
        worker = self._worker(index)
        try:
            worker.conn.send((call, request))
        except (BrokenPipeError, OSError):
            pass  # dead already: its sentinel is ready, the wait loop replaces it
        return time.monotonic()

    def run_shares(self, requests: list[ShareRequest]) -> list[RolloutArrays]:
        """Worker i runs requests[i]; a worker that dies or stalls is replaced and its request re-sent."""
        if not self._finalizer.alive:
            raise RuntimeError("this ProcessSampler is closed")
        self._call += 1
        call = self._call
        failures = [0] * len(requests)
        results: list[RolloutArrays | None] = [None] * len(requests)
        sent_at = [self._submit(index, call, request) for index, request in enumerate(requests)]
        pending = set(range(len(requests)))
        while pending:
            workers = {index: self._worker(index) for index in pending}
            deadlines = {index: w.deadline(sent_at[index], self.worker_timeout_s) for index, w in workers.items()}
            tick = min(WAIT_TICK_S, max(0.0, min(deadlines.values()) - time.monotonic()))
            ready = wait([w.conn for w in workers.values()] + [w.process.sentinel for w in workers.values()], tick)
            for index, worker in workers.items():
                if worker.conn in ready:
                    try:
                        reply_call, status, payload = worker.conn.recv()
                    except (EOFError, OSError):
                        pass  # died while replying: handled below as a death
                    else:
                        if status == "ready":
                            worker.up_at = time.monotonic()  # its share's clock starts now
                            continue
                        if reply_call != call:
                            continue  # a reply to an interrupted earlier call
                        if status == "raise":
                            raise payload
                        if status == "error":
                            raise RuntimeError(f"sampler worker {index} failed:\n{payload}")
                        results[index] = payload
                        pending.discard(index)
                        continue
                if worker.process.sentinel in ready or not worker.process.is_alive():
                    stalled = False
                elif time.monotonic() >= deadlines[index]:
                    stalled = True
                    worker.process.kill()  # SIGKILL ends a stopped (SIGSTOP) process too
                else:
                    continue
                self._replace(index, failures, stalled, len(requests[index].slots))
                sent_at[index] = self._submit(index, call, requests[index])
        return [r for r in results if r is not None]

    def _replace(self, index: int, failures: list[int], stalled: bool, num_episodes: int) -> None:
        worker = self._worker(index)
        worker.process.join(timeout=1.0)
        worker.conn.close()
        failures[index] += 1
        what = worker.failure(stalled, self.worker_timeout_s)
        self._workers[index] = self._start_worker()  # also before giving up: the pool stays whole for a retry
        if failures[index] >= self.max_failures:
            raise worker_failure(
                f"sampler worker {index}", failures[index], f"pid {worker.process.pid} {what}", stalled
            )
        who = f"sampler worker {index} (pid {worker.process.pid})"
        report_replaced(f"{who} {what}; replaced it, re-running its {num_episodes} episodes")

    def close(self) -> None:
        self._finalizer()
