"""Many copies of one MuJoCo robot stepped in a tight loop, and the task vector env built on it.

Gymnasium's per-env ``step`` spends about half its time in Python around the physics. Here one
``MjModel`` is shared by one ``MjData`` per environment; a vector step sets each running env's
controls, calls ``mj_step`` for ``frame_skip`` sub-steps and copies its state into batch arrays;
everything else (observations, rewards, terminations) is computed once for the whole batch by the
same functions the single envs use. Finished environments are not simulated.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import mujoco
import numpy as np
from gymnasium import spaces
from gymnasium.utils import seeding
from gymnasium.vector.utils import batch_space

from envs.base import Task, TaskVectorEnv, seeds_for
from envs.locomotion import Robot, observation_batch, reward_batch, root_x_velocity, terminated_batch
from envs.mujoco_model import load_model
from envs.task_families import DirectionTasks, TaskFamily

_QPOS_QVEL = int(mujoco.mjtState.mjSTATE_QPOS | mujoco.mjtState.mjSTATE_QVEL)
_ARENA_FULL = (int(mujoco.mjtWarning.mjWARN_CONTACTFULL), int(mujoco.mjtWarning.mjWARN_CNSTRFULL))


class BatchedMujoco:
    """The physics of ``num_envs`` copies of a robot, with their state mirrored in batch arrays.

    ``qpos_NQ``, ``qvel_NV`` (and ``cfrc_ext_NB6`` where the robot uses contact forces) always hold
    the current state of every environment. Resets draw their noise exactly as Gymnasium's
    ``MujocoEnv.reset`` does, from a per-env generator made by ``gymnasium.utils.seeding.np_random``.
    """

    def __init__(self, robot: Robot, num_envs: int):
        self.robot = robot
        self.model = load_model(robot.xml_file)
        self.datas = [mujoco.MjData(self.model) for _ in range(num_envs)]
        self.dt = self.model.opt.timestep * robot.frame_skip
        self.init_qpos = self.datas[0].qpos.ravel().copy()
        self.init_qvel = self.datas[0].qvel.ravel().copy()
        nq, nv = self.model.nq, self.model.nv
        self.state_NS = np.zeros((num_envs, nq + nv))
        self.qpos_NQ = self.state_NS[:, :nq]
        self.qvel_NV = self.state_NS[:, nq:]
        self.cfrc_ext_NB6 = np.zeros((num_envs, self.model.nbody, 6)) if robot.uses_contact_forces else None
        self._rngs: list[np.random.Generator | None] = [None] * num_envs
        # Views into each MjData stay valid for its lifetime; making them once saves attribute lookups.
        self._ctrl = [data.ctrl for data in self.datas]
        self._cfrc_ext = [data.cfrc_ext for data in self.datas]

    def reset(self, indices: Sequence[int], seeds: Sequence[int | None]) -> None:
        """Reset the listed envs, each drawing from its generator (re-made from its seed where one is given)."""
        for i, seed in zip(indices, seeds, strict=True):
            if seed is not None or self._rngs[i] is None:
                self._rngs[i], _ = seeding.np_random(seed)
            rng = self._rngs[i]
            assert rng is not None
            self._reset_data(self.datas[i], rng)
            self._read_state(i)

    def _reset_data(self, data: mujoco.MjData, rng: np.random.Generator) -> None:
        """``mj_resetData``, uniform qpos noise, normal qvel noise, ``mj_forward``: as ``MujocoEnv.reset``."""
        noise = self.robot.reset_noise_scale
        mujoco.mj_resetData(self.model, data)
        data.qpos[:] = self.init_qpos + rng.uniform(low=-noise, high=noise, size=self.model.nq)
        data.qvel[:] = self.init_qvel + noise * rng.standard_normal(self.model.nv)
        mujoco.mj_forward(self.model, data)

    def set_state(self, i: int, qpos: np.ndarray, qvel: np.ndarray) -> None:
        """Put env ``i`` in a given state, as ``MujocoEnv.set_state`` does (for tests and debugging)."""
        data = self.datas[i]
        data.qpos[:] = qpos
        data.qvel[:] = qvel
        mujoco.mj_forward(self.model, data)
        self._read_state(i)

    def step(self, indices: Sequence[int], actions_NA: np.ndarray) -> None:
        """Advance the listed environments by ``frame_skip`` sub-steps with their row of ``actions_NA``."""
        model, frame_skip, datas, ctrl, state = self.model, self.robot.frame_skip, self.datas, self._ctrl, self.state_NS
        mj_step, mj_get_state = mujoco.mj_step, mujoco.mj_getState
        if self.cfrc_ext_NB6 is None:
            for i in indices:
                ctrl[i][:] = actions_NA[i]
                mj_step(model, datas[i], frame_skip)
                mj_get_state(model, datas[i], state[i], _QPOS_QVEL)
        else:
            # Gymnasium's MujocoEnv computes the contact forces (cfrc_ext) after every step.
            post_constraint, cfrc_ext, cfrc_ext_NB6 = mujoco.mj_rnePostConstraint, self._cfrc_ext, self.cfrc_ext_NB6
            for i in indices:
                ctrl[i][:] = actions_NA[i]
                mj_step(model, datas[i], frame_skip)
                post_constraint(model, datas[i])
                mj_get_state(model, datas[i], state[i], _QPOS_QVEL)
                cfrc_ext_NB6[i] = cfrc_ext[i]

    def check_arena(self, indices: Sequence[int]) -> None:
        """Raise if a listed env's arena filled up: MuJoCo then drops contacts or constraints with only a
        warning, and the physics would differ from Gymnasium's without a word (see ``ARENA_BYTES``)."""
        for i in indices:
            warning = self.datas[i].warning
            if any(warning[kind].number for kind in _ARENA_FULL):
                raise RuntimeError(
                    f"MuJoCo's arena of {self.model.narena:,} bytes overflowed in env {i} of {self.robot.xml_file} "
                    "(contacts or constraints were dropped); raise envs.mujoco_model.ARENA_BYTES"
                )

    def _read_state(self, i: int) -> None:
        mujoco.mj_getState(self.model, self.datas[i], self.state_NS[i], _QPOS_QVEL)
        if self.cfrc_ext_NB6 is not None:
            self.cfrc_ext_NB6[i] = self.datas[i].cfrc_ext


class LocomotionVectorEnv(TaskVectorEnv):
    """The batched counterpart of a ``LocomotionTaskEnv``: identical transitions, no per-env Python step.

    Subclasses set ``robot`` and ``task_family`` to those of the single env they mirror. Autoreset
    is disabled (see ``TaskVectorEnv``); ``reset(options={"reset_mask": mask})`` resets only some envs.
    Step infos hold per-env arrays of the reward components (zero for envs that had already ended).
    """

    robot: Robot
    task_family: TaskFamily
    """``robot`` and ``task_family`` are set by the class; a subclass with options replaces them per
    instance, before calling this class's ``__init__``."""

    def __init__(self, num_envs: int, max_episode_steps: int | None = 200, task: Task | None = None):
        super().__init__(num_envs, max_episode_steps)
        self.sim = self._simulation(num_envs)
        ctrl_low, ctrl_high = self.sim.model.actuator_ctrlrange.copy().astype(np.float32).T
        self.single_action_space = spaces.Box(low=ctrl_low, high=ctrl_high, dtype=np.float32)
        observation_dim = self._observation().shape[1]
        self.single_observation_space = spaces.Box(-np.inf, np.inf, shape=(observation_dim,), dtype=np.float64)
        self.action_space = batch_space(self.single_action_space, num_envs)
        self.observation_space = batch_space(self.single_observation_space, num_envs)
        self.set_attr("task", [self.task_family.default_task() if task is None else dict(task)] * num_envs)

    def sample_tasks(self, n: int, rng: np.random.Generator) -> list[Task]:
        return self.task_family.sample_tasks(n, rng)

    def set_attr(self, name: str, values: Any) -> None:
        super().set_attr(name, values)
        self._task_params_NK = self.task_family.params(self._require_tasks())

    def _simulation(self, num_envs: int) -> BatchedMujoco:
        """The physics behind this env: ``num_envs`` copies of ``robot`` stepped as Gymnasium steps them."""
        return BatchedMujoco(self.robot, num_envs)

    def _observation(self) -> np.ndarray:
        return observation_batch(self.robot, self.sim.qpos_NQ, self.sim.qvel_NV, self.sim.cfrc_ext_NB6)

    def _x_velocity(self, x_before_N: np.ndarray) -> np.ndarray:
        """The forward velocity the task rewards, of every env over its last step."""
        return root_x_velocity(x_before_N, self.sim.qpos_NQ, self.sim.dt)

    def reset(self, *, seed: int | Sequence[int] | None = None, options: dict[str, Any] | None = None):
        seeds = seeds_for(seed, self.num_envs)
        mask = np.ones(self.num_envs, dtype=bool)
        if options is not None and "reset_mask" in options:
            mask = np.asarray(options["reset_mask"], dtype=bool)
        indices = np.flatnonzero(mask).tolist()
        self.sim.reset(indices, [seeds[i] for i in indices])
        self.elapsed_steps[mask] = 0
        self.done[mask] = False
        observation = self._observation()
        return observation, {"x_position": self.sim.qpos_NQ[:, 0].copy()}

    def step(self, actions):
        actions_NA = np.asarray(actions, dtype=np.float64)
        if actions_NA.shape != (self.num_envs, *self.single_action_space.shape):
            raise ValueError(f"expected actions of shape {self.action_space.shape}, got {actions_NA.shape}")
        running = ~self.done
        x_before_N = self.sim.qpos_NQ[:, 0].copy()
        self.sim.step(np.flatnonzero(running).tolist(), actions_NA)
        qpos_NQ, qvel_NV = self.sim.qpos_NQ, self.sim.qvel_NV
        terms = reward_batch(
            self.robot,
            self.task_family,
            self._task_params_NK,
            self._x_velocity(x_before_N),
            qpos_NQ,
            actions_NA,
            self.sim.cfrc_ext_NB6,
        )
        if not running.all():
            terms = {key: np.where(running, value, 0.0) for key, value in terms.items()}
        reward = terms.pop("reward")
        terminated = running & terminated_batch(self.robot, qpos_NQ, qvel_NV)
        truncated = self._advance_clock(terminated)
        self.sim.check_arena(np.flatnonzero(terminated | truncated).tolist())
        terms["x_position"] = qpos_NQ[:, 0].copy()
        if self.robot.position_dims >= 2:
            terms["y_position"] = qpos_NQ[:, 1].copy()
        return self._observation(), reward, terminated, truncated, terms


class DirectionVectorEnv(LocomotionVectorEnv):
    """The vector counterpart of ``envs.locomotion.DirectionTaskEnv``, with the same ``backward_probability``."""

    task_family: DirectionTasks

    def __init__(
        self,
        num_envs: int,
        max_episode_steps: int | None = 200,
        task: Task | None = None,
        backward_probability: float = 0.5,
    ):
        self.task_family = DirectionTasks(backward_probability)
        super().__init__(num_envs, max_episode_steps, task)
