"""A user's own env (``env_id: module:EnvId``) failing in its own code: one line naming the env and the error.

metarl calls a user's env at a few boundaries: importing its module, constructing it, drawing its tasks,
resetting, stepping and closing it. An exception raised there is the env's, not metarl's, so it is turned
into ``EnvError``, which launchers print as one ``error:`` line (exit 2) and sampler workers send back to
the parent as it is. Only those calls are wrapped, and only for a ``module:EnvId``: a bug in metarl's own
code, or in its own envs, keeps its traceback.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import gymnasium
import numpy as np

from metarl.config import shortened


class EnvError(ValueError):
    """A user's env raised in its own code; the message names the env, the call and the exception."""


def is_user_env(env_id: str) -> bool:
    """Whether ``env_id`` names an env of a user's module (``module:EnvId``) rather than one of metarl's own."""
    return ":" in env_id


def describe_exception(error: BaseException) -> str:
    """``Type: message`` on one line, shortened, for echoing a user's exception."""
    message = " ".join(str(error).split())
    return f"{type(error).__name__}: {shortened(message)}" if message else type(error).__name__


@contextmanager
def env_code(env_id: str, call: str, keep: tuple[type[Exception], ...] = ()) -> Iterator[None]:
    """Run a call into ``env_id``'s own code (``call``: 'import', 'construction', 'reset', ...), turning its
    exceptions into ``EnvError`` where the env is a user's; metarl's own envs keep their tracebacks. Exceptions
    of the types in ``keep`` pass as they are, for a caller with a more precise message."""
    try:
        yield
    except Exception as error:
        if isinstance(error, (EnvError, *keep)) or not is_user_env(env_id):
            raise
        raise EnvError(
            f"env {env_id} raised {describe_exception(error)} in its {call}; fix the env (or its env_kwargs)"
        ) from error


class GuardedVectorEnv(gymnasium.vector.VectorWrapper):
    """A user env's vector env whose reset, step, task setting and close go through ``env_code``."""

    def __init__(self, env: gymnasium.vector.VectorEnv, env_id: str):
        super().__init__(env)
        self.env_id = env_id

    def reset(self, *, seed: Any = None, options: dict[str, Any] | None = None) -> tuple[Any, dict[str, Any]]:
        with env_code(self.env_id, "reset"):
            return self.env.reset(seed=seed, options=options)

    def step(self, actions: Any) -> tuple[Any, Any, Any, Any, dict[str, Any]]:
        with env_code(self.env_id, "step"):
            return self.env.step(actions)

    def set_attr(self, name: str, values: Any) -> None:
        with env_code(self.env_id, f"set_attr({name!r})"):
            self.env.set_attr(name, values)  # type: ignore[attr-defined]  # every vector env has it

    def close(self, **kwargs: Any) -> None:
        with env_code(self.env_id, "close"):
            self.env.close(**kwargs)


def guarded_vector_env(env: gymnasium.vector.VectorEnv, env_id: str) -> gymnasium.vector.VectorEnv:
    """``env`` as it is for metarl's own envs; for a user's, wrapped in ``GuardedVectorEnv``."""
    return GuardedVectorEnv(env, env_id) if is_user_env(env_id) else env


class GuardedTasks:
    """A user env's task distribution whose ``sample_tasks`` goes through ``env_code``."""

    def __init__(self, tasks: Any, env_id: str):
        self.tasks = tasks
        self.env_id = env_id

    def sample_tasks(self, n: int, rng: np.random.Generator) -> list[Any]:
        with env_code(self.env_id, "sample_tasks"):
            return self.tasks.sample_tasks(n, rng)
