"""What the MAML locomotion envs share: the robot description, the reward, termination, and the
single-env mixin that puts a task family on top of Gymnasium's own v5 env class.

Definitions used everywhere (single envs, the batched vector envs and the tests):

- x-velocity ``v_x = (x_after − x_before) / dt`` with ``x = qpos[0]``, the x coordinate of the root
  joint, which sits at the torso's origin for both robots; ``dt = timestep · frame_skip``, the paper's
  code's control period (0.01 s for the cheetah, 0.02 s for the ant; see ``Robot.frame_skip``).
  We read ``qpos`` rather than ``data.xpos``: after ``mj_step`` MuJoCo's ``xpos`` still holds the
  kinematics of the last sub-step's *start*, one sub-step behind ``qpos``.
- the torso's xy position (Ant goal task) is ``qpos[0:2]`` after the step, by the same reasoning.
- the policy acts in the control range [−1, 1]; the control cost is computed on the action clipped to
  it, as in the paper's code, where rllab's ``normalize`` clipped actions before the env saw them.
- every reward term is computed on batches by the functions below; a single env is a batch of one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import mujoco
import numpy as np
from gymnasium.utils import EzPickle

from envs.base import Task
from envs.mujoco_model import load_model
from envs.task_families import DirectionTasks, TaskFamily


@dataclass(frozen=True)
class Robot:
    """The parts of a Gymnasium v5 MuJoCo env that the task envs keep, plus the paper's cost weights."""

    xml_file: str
    skipped_qpos: int
    """Leading ``qpos`` entries left out of the observation: the torso's x (cheetah) or x and y (ant), or none."""
    ctrl_cost_weight: float
    position_dims: int = 1
    """Leading ``qpos`` entries that are the torso's position (x; x and y), reported in step infos."""
    frame_skip: int = 5
    """MuJoCo steps per env step. The paper's code (rllab ``MujocoEnv``) stepped its models once per
    action: the cheetah at 0.01 s, the ant at 0.02 s; Gymnasium's v5 envs use 5 (0.05 s)."""
    reset_noise_scale: float = 0.1
    contact_cost_weight: float = 0.0
    """Zero means the robot has no contact cost and its contact forces are never computed."""
    contact_force_range: tuple[float, float] = (-1.0, 1.0)
    contact_forces_in_observation: bool = False
    survive_reward: float = 0.0
    healthy_z_range: tuple[float, float] | None = None
    """Torso height range outside which the episode terminates; ``None``: it never terminates."""

    @property
    def uses_contact_forces(self) -> bool:
        return self.contact_cost_weight > 0.0 or self.contact_forces_in_observation


def observation_batch(robot: Robot, qpos_NQ: np.ndarray, qvel_NV: np.ndarray, cfrc_ext_NB6: np.ndarray | None):
    """Observations exactly as Gymnasium's v5 ``_get_obs`` builds them, for a batch of states."""
    parts = [qpos_NQ[:, robot.skipped_qpos :], qvel_NV]
    if robot.contact_forces_in_observation:
        assert cfrc_ext_NB6 is not None, "a robot that observes contact forces gets them from its simulation"
        low, high = robot.contact_force_range
        parts.append(np.clip(cfrc_ext_NB6[:, 1:], low, high).reshape(len(qpos_NQ), -1))
    return np.concatenate(parts, axis=1)


def reward_batch(
    robot: Robot,
    tasks: TaskFamily,
    task_params_NK: np.ndarray,
    x_velocity: np.ndarray,
    qpos_after_NQ: np.ndarray,
    action_NA: np.ndarray,
    cfrc_ext_NB6: np.ndarray | None,
) -> dict[str, np.ndarray]:
    """The reward and its components, in the paper's code's order: task − ctrl − contact + survive.

    ``x_velocity`` is the env's forward velocity: ``root_x_velocity`` for the envs on Gymnasium's models,
    the centre-of-mass velocity for rllab's Ant (``envs/ant_rllab.py``)."""
    reward_task = tasks.reward(task_params_NK, x_velocity, qpos_after_NQ[:, :2])
    action_NA = np.clip(action_NA, -1.0, 1.0)  # the control range of both robots: what MuJoCo applies
    # einsum: one pass instead of square-then-sum; a row's sum does not depend on the batch size.
    ctrl_cost = robot.ctrl_cost_weight * np.einsum("ij,ij->i", action_NA, action_NA)
    reward = reward_task - ctrl_cost
    info = {"reward_task": reward_task, "reward_ctrl": -ctrl_cost}
    if robot.contact_cost_weight > 0.0:
        assert cfrc_ext_NB6 is not None, "a robot with a contact cost gets its contact forces from its simulation"
        low, high = robot.contact_force_range
        clipped = np.clip(cfrc_ext_NB6, low, high).reshape(len(action_NA), -1)
        contact_cost = robot.contact_cost_weight * np.einsum("ij,ij->i", clipped, clipped)
        reward = reward - contact_cost
        info["reward_contact"] = -contact_cost
    if robot.survive_reward != 0.0:
        reward = reward + robot.survive_reward
        info["reward_survive"] = np.full(len(action_NA), robot.survive_reward)
    info["x_velocity"] = x_velocity
    info["reward"] = reward
    return info


def root_x_velocity(x_before_N: np.ndarray, qpos_after_NQ: np.ndarray, dt: float) -> np.ndarray:
    """The x-velocity of the root joint over the last env step (module docstring)."""
    return (qpos_after_NQ[:, 0] - x_before_N) / dt


def terminated_batch(robot: Robot, qpos_NQ: np.ndarray, qvel_NV: np.ndarray) -> np.ndarray:
    """Gymnasium's ``is_healthy`` negated: a non-finite state or a torso height outside the range."""
    if robot.healthy_z_range is None:
        return np.zeros(len(qpos_NQ), dtype=bool)
    low, high = robot.healthy_z_range
    finite = np.isfinite(qpos_NQ).all(axis=1) & np.isfinite(qvel_NV).all(axis=1)
    height = qpos_NQ[:, 2]
    return ~(finite & (low <= height) & (height <= high))


class LocomotionTaskEnv:
    """Mixin over a Gymnasium v5 MuJoCo env class: same model, observations and reset; task rewards.

    Use as ``class HalfCheetahVelEnv(LocomotionTaskEnv, HalfCheetahEnv)`` with ``robot`` and
    ``task_family`` set. Only the task and the render mode are configurable (and, in a subclass, the
    task family's options, which the batched vector env takes too), so that the batched vector env
    simulates exactly the same thing.
    """

    robot: Robot
    task_family: TaskFamily
    """``robot``, ``task_family`` and ``gym_kwargs`` are set by the class; a subclass with options replaces
    them per instance, before calling this class's ``__init__``."""
    gym_kwargs: dict[str, Any] = {}

    def __init__(self, task: Task | None = None, render_mode: str | None = None):
        super().__init__(  # type: ignore[call-arg]
            frame_skip=self.robot.frame_skip,
            reset_noise_scale=self.robot.reset_noise_scale,
            render_mode=render_mode,
            **self.gym_kwargs,
        )
        EzPickle.__init__(self, task, render_mode)  # type: ignore[arg-type]
        self.task: Task = self.task_family.default_task() if task is None else dict(task)
        self.task_family.params([self.task])

    def _initialize_simulation(self) -> tuple[mujoco.MjModel, mujoco.MjData]:
        """Gymnasium's hook for building the model: ours avoids MuJoCo's deprecation log file."""
        model = load_model(self.fullpath)  # type: ignore[attr-defined]
        model.vis.global_.offwidth = max(model.vis.global_.offwidth, self.width)  # type: ignore[attr-defined]
        model.vis.global_.offheight = max(model.vis.global_.offheight, self.height)  # type: ignore[attr-defined]
        return model, mujoco.MjData(model)

    def sample_tasks(self, n: int, rng: np.random.Generator) -> list[Task]:
        return self.task_family.sample_tasks(n, rng)

    def set_task(self, task: Task) -> None:
        self.task_family.params([task])
        self.task = dict(task)

    def _x_velocity(self, x_before: np.ndarray, qpos_after: np.ndarray) -> np.ndarray:
        """The forward velocity the task rewards, as a batch of one."""
        return root_x_velocity(x_before, qpos_after, self.dt)  # type: ignore[attr-defined]

    def step(self, action: np.ndarray):
        action = np.asarray(action, dtype=np.float64)
        data = self.data  # type: ignore[attr-defined]
        x_before = np.array([data.qpos[0]])
        self.do_simulation(action, self.frame_skip)  # type: ignore[attr-defined]
        qpos, qvel = data.qpos[None].copy(), data.qvel[None].copy()
        cfrc_ext = data.cfrc_ext[None].copy() if self.robot.uses_contact_forces else None
        terms = reward_batch(
            self.robot,
            self.task_family,
            self.task_family.params([self.task]),
            self._x_velocity(x_before, qpos),
            qpos,
            action[None],
            cfrc_ext,
        )
        observation = self._get_obs()  # type: ignore[attr-defined]
        terminated = bool(terminated_batch(self.robot, qpos, qvel)[0])
        info: dict[str, Any] = {key: float(value[0]) for key, value in terms.items() if key != "reward"}
        for name, value in zip(("x_position", "y_position"), qpos[0, : self.robot.position_dims], strict=False):
            info[name] = float(value)
        if self.render_mode == "human":  # type: ignore[attr-defined]
            self.render()  # type: ignore[attr-defined]
        return observation, float(terms["reward"][0]), terminated, False, info


class DirectionTaskEnv(LocomotionTaskEnv):
    """A ``LocomotionTaskEnv`` whose tasks are directions, backward with probability ``backward_probability``
    (1/2 by default; ``envs.task_families.PAPER_CODE_BACKWARD_PROBABILITY`` = 3/7 draws as the paper's code did).
    Its vector counterpart (``envs.batched_mujoco.DirectionVectorEnv``) takes the same keyword, so a config's
    ``env_kwargs`` reach both and the single and vector envs draw the same tasks."""

    task_family: DirectionTasks

    def __init__(self, task: Task | None = None, render_mode: str | None = None, backward_probability: float = 0.5):
        self.task_family = DirectionTasks(backward_probability)
        super().__init__(task, render_mode)
        EzPickle.__init__(self, task, render_mode, backward_probability)  # type: ignore[arg-type]
