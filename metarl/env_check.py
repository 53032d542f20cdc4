"""Check a task-distributed env before training on it (as Stable-Baselines3's ``check_env`` does for plain envs).

metarl relies on more than Gymnasium's API: tasks drawn from an explicit generator, picklable (they travel to
rollout workers), set through the ``task`` attribute of a vector env, changing the rewards, and episodes that
repeat exactly for the same task, seed and actions (seeded runs give the same numbers). A user env that breaks one
of these trains without an error and learns nothing, or gives numbers no rerun reproduces; the checker names each
broken promise in one line.

``python -m metarl.env_check module:EnvId [--env-kwargs YAML]`` checks from the shell (exit 1 if a check fails).
"""

from __future__ import annotations

import argparse
import sys
import typing
from collections.abc import Mapping, Sequence
from typing import Any

import cloudpickle
import gymnasium
import numpy as np
from gymnasium import spaces

from envs import Task, make_task_vector_env
from metarl.config import ConfigError
from metarl.user_env import describe_exception

CHECK_STEPS = 20
"""Steps of each checked episode (fewer if it ends): enough to see rewards depend on the task."""


class EnvCheckError(ValueError):
    """The env breaks what metarl relies on; the message lists every failed check, one per line."""


def check_env(env_id: str, env_kwargs: Mapping[str, Any] | None = None, seed: int = 0) -> None:
    """Raise ``EnvCheckError`` listing each way ``env_id`` breaks what metarl relies on; return if none."""
    problems = env_problems(env_id, env_kwargs or {}, seed)
    if problems:
        raise EnvCheckError(f"{env_id} fails {len(problems)} check(s):\n" + "\n".join(f"- {p}" for p in problems))


def env_problems(env_id: str, env_kwargs: Mapping[str, Any], seed: int = 0) -> list[str]:
    """Each broken promise of ``env_id``, as a sentence saying what to fix; empty if it passes."""
    from metarl.parts import make_task_env  # imports torch: not for `--help`

    try:
        env = make_task_env(env_id, dict(env_kwargs))  # the task interface, as a run checks it
    except (ConfigError, gymnasium.error.Error) as error:
        return [str(error)]
    try:
        problems = space_problems(env)
        if problems:
            return problems  # episodes cannot be checked with spaces metarl's policy does not take
        tasks, task_problems = drawn_tasks(env)
        problems += task_problems
        if tasks:
            repeatable = same(episode(env, tasks[0], seed), episode(env, tasks[0], seed))
            problems += episode_problems(env, tasks, seed, repeatable)
            if repeatable:  # else a vector env's episode could not be compared with the env's
                problems += vector_problems(env_id, env_kwargs, env, tasks[0], seed)
        assert env.spec is not None  # gymnasium.make always sets it
        if env.spec.max_episode_steps is None:
            problems.append("it registers no max_episode_steps: give horizon in the config, or register one")
        return problems
    finally:
        env.close()


def space_problems(env: gymnasium.Env) -> list[str]:
    """metarl's Gaussian MLP policy reads a flat Box observation and writes a flat Box action."""
    problems = []
    for name, space in (("observation", env.observation_space), ("action", env.action_space)):
        if not isinstance(space, spaces.Box) or len(space.shape) != 1:
            problems.append(f"its {name} space is {space}, not a flat Box: metarl's Gaussian MLP policy needs one")
    return problems


def drawn_tasks(env: gymnasium.Env) -> tuple[list[Task], list[str]]:
    """Three tasks from a seeded generator, and what is wrong with how they are drawn."""
    tasks = distribution(env).sample_tasks(3, np.random.default_rng(0))
    if not isinstance(tasks, Sequence) or len(tasks) != 3:
        return [], [f"sample_tasks(3, rng) returned {shown(tasks)}, not a list of 3 tasks"]
    problems = []
    again = distribution(env).sample_tasks(3, np.random.default_rng(0))
    if not same(tasks, again):
        problems.append(
            "sample_tasks draws other tasks from an equally seeded generator: draw only from its rng argument"
        )
    try:
        cloudpickle.loads(cloudpickle.dumps(tasks))
    except Exception as error:  # what pickling raises depends on the object
        problems.append(f"its tasks cannot be pickled ({describe_exception(error)}); rollout workers receive them")
    return list(tasks), problems


def episode(env: gymnasium.Env, task: Task, seed: int) -> tuple[list[float], list[np.ndarray]]:
    """The rewards and observations of one episode of ``task`` with actions from a generator keyed by ``seed``."""
    distribution(env).set_task(task)
    observation, _ = env.reset(seed=seed)
    actions, space = np.random.default_rng(seed), box(env.action_space)
    rewards, observations = [], [np.asarray(observation)]
    for _ in range(CHECK_STEPS):
        action = np.asarray(actions.uniform(space.low, space.high), dtype=space.dtype)
        observation, reward, terminated, truncated, _ = env.step(action)
        rewards.append(float(reward))
        observations.append(np.asarray(observation))
        if terminated or truncated:
            break
    return rewards, observations


def episode_problems(env: gymnasium.Env, tasks: list[Task], seed: int, repeatable: bool) -> list[str]:
    problems = []
    distribution(env).set_task(tasks[1])
    if not same(getattr(env.unwrapped, "task", None), tasks[1]):
        problems.append("set_task(task) leaves env.task another value: the samplers set tasks through that attribute")
    rewards, observations = episode(env, tasks[0], seed)
    if not all(np.isfinite(rewards)) or not all(np.isfinite(o).all() for o in observations):
        problems.append("an episode gives a non-finite reward or observation")
    outside = [i for i, o in enumerate(observations) if not env.observation_space.contains(o.astype(np.float32))]
    if outside:
        problems.append(f"observation {outside[0]} of an episode lies outside its observation space")
    if not repeatable:
        problems.append(
            "the same task, seed and actions give another episode: draw randomness only from reset's seed "
            "(self.np_random), or seeded runs will not repeat"
        )
    if all(same(rewards, episode(env, task, seed)[0]) for task in tasks[1:]):
        problems.append("rewards are the same whatever the task: set_task does not reach the reward")
    return problems


def vector_problems(env_id: str, env_kwargs: Mapping[str, Any], env: gymnasium.Env, task: Task, seed: int) -> list[str]:
    """Samplers step the env as a vector env with its task set through ``set_attr``: it must step as the env."""
    rewards, _ = episode(env, task, seed)
    vector = make_task_vector_env(env_id, 1, **env_kwargs)
    try:
        typing.cast(Any, vector).set_attr("task", [task])
        vector.reset(seed=seed)
        actions, space = np.random.default_rng(seed), box(env.action_space)
        vector_rewards = []
        for _ in rewards:
            action = np.asarray(actions.uniform(space.low, space.high), dtype=space.dtype)[None]
            _, reward, _, _, _ = vector.step(action)
            vector_rewards.append(float(reward[0]))
    finally:
        vector.close()
    if not np.allclose(vector_rewards, rewards, rtol=1e-6, atol=1e-6):
        return [
            "its vector env (gymnasium.make_vec, the task set with set_attr('task', ...)) gives other rewards than "
            "the env for the same task, seed and actions: the samplers would train on another env"
        ]
    return []


def distribution(env: gymnasium.Env) -> Any:
    """The env under its wrappers, where a task env's sample_tasks and set_task are (checked to exist)."""
    return env.unwrapped


def box(space: spaces.Space) -> spaces.Box:
    assert isinstance(space, spaces.Box)  # space_problems refused the env otherwise
    return space


def same(first: Any, second: Any) -> bool:
    """Equality through nested sequences, mappings and arrays (tasks and episodes hold numpy values)."""
    if isinstance(first, Mapping) and isinstance(second, Mapping):
        return first.keys() == second.keys() and all(same(first[key], second[key]) for key in first)
    if isinstance(first, (list, tuple)) and isinstance(second, (list, tuple)):
        return len(first) == len(second) and all(same(a, b) for a, b in zip(first, second, strict=True))
    if isinstance(first, np.ndarray) or isinstance(second, np.ndarray):
        return bool(np.array_equal(first, second))
    return bool(first == second)


def shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("env_id", help="a registered id, or module:EnvId for a module that registers it")
    parser.add_argument("--env-kwargs", default="{}", help="keyword arguments for the env, as YAML")
    args = parser.parse_args(argv)
    from metarl.config import safe_load_config

    try:
        env_kwargs = safe_load_config(args.env_kwargs, "--env-kwargs") or {}
        if not isinstance(env_kwargs, dict):
            raise ConfigError(f"--env-kwargs must be a mapping, got {shown(env_kwargs)}")
        check_env(args.env_id, env_kwargs)
    except (EnvCheckError, ConfigError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"{args.env_id} passes every check metarl relies on")
    return 0


if __name__ == "__main__":
    sys.exit(main())
