"""Running episodes on a vector env with one batched policy forward per time step.

Shared by every sampler backend: a backend only decides which environments a worker owns.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import gymnasium
import numpy as np
import torch
from torch import nn
from torch.func import functional_call

from envs import Task
from metarl.episodes import EpisodeBatch
from metarl.policies import Params
from metarl.samplers.base import SeedKey, episode_rng


@dataclass(frozen=True)
class EpisodeSlot:
    """Which task an environment serves and which of that task's episodes it runs."""

    task_index: int
    episode_index: int


@dataclass
class RolloutArrays:
    """Episodes of many environments, time-major: [T, N, ...] with N environments."""

    observations_TNO: np.ndarray
    actions_TNA: np.ndarray
    rewards_TN: np.ndarray
    lengths_N: np.ndarray


class NonFiniteEpisodeError(ValueError):
    """An env returned NaN or inf (or the policy chose such an action): stopped where it first happens, since
    later the baseline fit fails with a message that can only guess at the cause. A user's env is at fault,
    so launchers report this as a usage error; workers send it back to the parent as it is."""


class DivergedPolicyError(NonFiniteEpisodeError):
    """A non-finite action from finite observations: the policy's parameters diverged, not the env. Its message
    names no setting: the caller, which knows the settings behind the parameters, adds them (``hinted_divergence``)."""


@contextmanager
def hinted_divergence(hint: str) -> Iterator[None]:
    """Add ``hint`` (the settings of the run at hand that set the policy's steps) to a ``DivergedPolicyError``."""
    try:
        yield
    except DivergedPolicyError as error:
        raise DivergedPolicyError(f"{error}; {hint}") from None


@dataclass(frozen=True)
class FiniteCheck:
    """Names the first non-finite value of a step: which env, field, step, episode and task."""

    env_id: str
    slots: Sequence[EpisodeSlot]
    tasks: Mapping[int, Task] | Sequence[Task]

    def __call__(self, field: str, values_N: np.ndarray, running_N: np.ndarray, step: int) -> None:
        """Raise if a running env's ``field`` (reward, observation or action) at env step ``step`` is not
        finite; step 0 is the reset."""
        if np.isfinite(values_N).all():  # the common case, in a few microseconds per step
            return
        flat_NX = np.asarray(values_N, dtype=np.float64).reshape(len(running_N), -1)
        bad_N = running_N & ~np.isfinite(flat_NX).all(axis=1)
        if not bad_N.any():
            return
        n = int(np.argmax(bad_N))
        value = flat_NX[n][~np.isfinite(flat_NX[n])][0]
        slot = self.slots[n]
        episode = f"episode {slot.episode_index} of task {slot.task_index} {dict(self.tasks[slot.task_index])}"
        if field == "action":
            raise DivergedPolicyError(
                f"the policy chose a non-finite action ({value}) for step {step} of {episode} on env "
                f"{self.env_id}, from finite observations: its parameters diverged"
            )
        when = "from reset" if step == 0 else f"at step {step}"
        raise NonFiniteEpisodeError(
            f"env {self.env_id} returned a non-finite {field} ({value}) {when} of {episode}; "
            "metarl needs finite rewards and observations: fix the env"
        )


def slots_for(num_tasks: int, episodes_per_task: int) -> list[EpisodeSlot]:
    return [EpisodeSlot(t, e) for t in range(num_tasks) for e in range(episodes_per_task)]


def stack_params(params: Sequence[Params]) -> Params:
    """Per-task parameter dicts stacked along a new leading task axis."""
    return {name: torch.stack([p[name].detach() for p in params]) for name in params[0]}


MIN_GROUP_ROWS = 8
"""Each task's group of environments is padded to at least this many rows. A float32 matmul with fewer
rows (1 to 3 on this project's machine) takes another kernel, which rounds differently and depends on
the other groups; from 4 rows on, a row's result is the same whatever the batch's shape. So a backend
that holds only some of a call's tasks or episodes acts exactly as the in-process one does
(tests/test_batch_budget.py, a chaotic Ant amplifying any last-bit difference). 8 leaves a margin."""


class BatchedPolicy:
    """Evaluates a policy with different parameters per task in one call per time step.

    Environments are grouped by task and padded to the largest group (at least ``MIN_GROUP_ROWS``); the
    policy takes parameters with a leading task axis (see ``GaussianMLPPolicy.forward``), so one batched
    forward serves all environments.
    """

    def __init__(self, policy: nn.Module, params: Mapping[int, Params] | Sequence[Params], task_of_env: np.ndarray):
        self.policy = policy
        groups, self.group_of_env = np.unique(task_of_env, return_inverse=True)
        self.params = stack_params([params[g] for g in groups])
        counts = np.bincount(self.group_of_env, minlength=len(groups))
        self.slot_of_env = np.zeros_like(self.group_of_env)
        for g in range(len(groups)):
            self.slot_of_env[self.group_of_env == g] = np.arange(counts[g])
        self.shape = (len(groups), max(int(counts.max()), MIN_GROUP_ROWS))

    @torch.no_grad()
    def mean_std(self, observations_NO: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        grouped = np.zeros((*self.shape, observations_NO.shape[-1]), dtype=np.float32)
        grouped[self.group_of_env, self.slot_of_env] = observations_NO
        distribution = functional_call(self.policy, self.params, (torch.from_numpy(grouped),))
        index = (self.group_of_env, self.slot_of_env)
        return distribution.mean.numpy()[index], distribution.stddev.numpy()[index]


def episode_randomness(
    seed: SeedKey, slots: Sequence[EpisodeSlot], horizon: int, action_dim: int
) -> tuple[list[int], np.ndarray]:
    """Each slot's reset seed and action noise [T, N, A], drawn from its own episode generator."""
    rngs = [episode_rng(seed, s.task_index, s.episode_index) for s in slots]
    reset_seeds = [int(rng.integers(2**31)) for rng in rngs]
    noise_TNA = np.stack([rng.standard_normal((horizon, action_dim)) for rng in rngs], axis=1).astype(np.float32)
    return reset_seeds, noise_TNA


def run_episodes(
    env: gymnasium.vector.VectorEnv,
    policy: nn.Module,
    tasks: Mapping[int, Task] | Sequence[Task],
    params: Mapping[int, Params] | Sequence[Params],
    slots: Sequence[EpisodeSlot],
    seed: SeedKey,
    horizon: int,
    env_id: str = "(unnamed)",
) -> RolloutArrays:
    """Run one episode per environment of ``env`` (``len(slots)`` of them) to its end or the horizon.

    Raises ``NonFiniteEpisodeError`` at the first NaN or inf; ``env_id`` names the env in its message.
    """
    num_envs = len(slots)
    assert env.num_envs == num_envs, (env.num_envs, num_envs)
    action_dim = gymnasium.spaces.flatdim(env.single_action_space)
    observation_dim = gymnasium.spaces.flatdim(env.single_observation_space)
    reset_seeds, noise_TNA = episode_randomness(seed, slots, horizon, action_dim)

    task_of_env = np.array([s.task_index for s in slots])
    env.set_attr("task", [tasks[s.task_index] for s in slots])  # type: ignore[attr-defined]  # every vector env has it
    policy_batch = BatchedPolicy(policy, params, task_of_env)

    observations_TNO = np.zeros((horizon, num_envs, observation_dim), dtype=np.float32)
    actions_TNA = np.zeros((horizon, num_envs, action_dim), dtype=np.float32)
    rewards_TN = np.zeros((horizon, num_envs), dtype=np.float32)
    lengths_N = np.zeros(num_envs, dtype=np.int64)
    running_N = np.ones(num_envs, dtype=bool)
    check_finite = FiniteCheck(env_id, slots, tasks)

    observation_NO, _ = env.reset(seed=reset_seeds)  # type: ignore[arg-type]  # vector envs take one seed per env
    check_finite("observation", observation_NO, running_N, 0)
    for t in range(horizon):
        mean_NA, std_NA = policy_batch.mean_std(observation_NO.reshape(num_envs, -1))
        action_NA = mean_NA + std_NA * noise_TNA[t]
        check_finite("action", action_NA, running_N, t + 1)
        observations_TNO[t, running_N] = observation_NO.reshape(num_envs, -1)[running_N]
        actions_TNA[t, running_N] = action_NA[running_N]
        next_observation_NO, reward_N, terminated_N, truncated_N, _ = env.step(action_NA)
        check_finite("reward", reward_N, running_N, t + 1)
        rewards_TN[t, running_N] = reward_N[running_N]
        lengths_N[running_N] += 1
        running_N &= ~(terminated_N | truncated_N)
        check_finite("observation", next_observation_NO, running_N, t + 1)  # only those the policy will see
        if not running_N.any():
            break
        observation_NO = next_observation_NO
    return RolloutArrays(observations_TNO, actions_TNA, rewards_TN, lengths_N)


def to_episode_batches(arrays: RolloutArrays, slots: Sequence[EpisodeSlot], num_tasks: int) -> list[EpisodeBatch]:
    """Split environments into one padded batch per task, episodes in ``episode_index`` order."""
    batches = []
    for task_index in range(num_tasks):
        envs_of_task = sorted((s.episode_index, n) for n, s in enumerate(slots) if s.task_index == task_index)
        columns = [n for _, n in envs_of_task]
        lengths_B = arrays.lengths_N[columns]
        steps = int(lengths_B.max())
        mask_TB = (np.arange(steps)[:, None] < lengths_B[None, :]).astype(np.float32)
        batches.append(
            EpisodeBatch(
                observations_TBO=torch.from_numpy(arrays.observations_TNO[:steps, columns]),
                actions_TBA=torch.from_numpy(arrays.actions_TNA[:steps, columns]),
                rewards_TB=torch.from_numpy(arrays.rewards_TN[:steps, columns]),
                mask_TB=torch.from_numpy(mask_TB),
                lengths_B=torch.from_numpy(lengths_B),
            )
        )
    return batches
