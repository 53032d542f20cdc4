"""rllab's Ant, whole, as the MAML paper's code trained its Ant velocity and direction families on it.

The paper's code (github.com/cbfinn/maml_rl, commit 7fe27d7, "ICML deadline final state") ran the
classes ``AntEnvRand`` and ``AntEnvRandDirec`` (``rllab/envs/mujoco/ant_env_rand*.py``) on rllab's
``MujocoEnv`` and ``vendor/mujoco_models/ant.xml``, under MuJoCo 1.31. What differs from
``envs/ant.py`` (Gymnasium's Ant-v5 with the paper's rewards), source by source:

- model (``assets/ant_rllab.xml``): one RK4 step of 0.02 s per action, softer contacts
  (``solimp .8 .8 .01``); see the XML's header.
- reset (``mujoco_env.py`` ``reset_mujoco``): the XML's ``init_qpos`` (torso at 0.55, ankles at ±1 rad)
  plus 0.01·N(0, 1) on every qpos, and 0.1·N(0, 1) on every qvel (Gymnasium: ``qpos0`` plus U[−0.1, 0.1]).
- each step (``mujoco_env.py`` ``forward_dynamics``): ``mj_step`` and then ``mj_forward``, so that
  everything read afterwards belongs to the new state. MuJoCo 1.31's ``mj_forward`` also computed the
  contact forces ``cfrc_ext``; since MuJoCo 2.0 only ``mj_rnePostConstraint`` does (openai/gym#1541),
  so we call it after ``mj_forward``, as rllab's values were. Without the ``mj_forward``, ``xmat``,
  ``subtree_com`` and ``cvel`` would hold the state at the start of the RK4 step's last evaluation.
- observation, 125 dims (``ant_env_rand.py`` ``get_current_obs``): qpos (15, torso x and y included),
  qvel (14), ``clip(cfrc_ext, −1, 1)`` of all 14 bodies, the world's included (84), the torso's
  rotation matrix ``xmat`` (9), and rllab's ``get_body_com("torso")``, which is ``com_subtree`` of the
  torso: the centre of mass of the whole ant, not of the torso body alone (3).
- the velocity the task rewards (``get_body_comvel("torso")``, ``mjcore.py`` ``_compute_subtree``):
  the x-velocity of that centre of mass, the mass-weighted mean of the bodies' ``mj_objectVelocity``,
  which is MuJoCo's ``subtree_linvel`` (``mj_subtreeVel``), not the torso's displacement over the step.

The rewards' costs and constants and the termination are ``envs/ant.py``'s, which were read off the
same files; the task distributions are ``envs/ant.py``'s ``ANT_VEL`` and ``ANT_DIR``.

Which part of the bundle matters is an experiment (docs/RESULTS.md), so the two parts can be swapped for
Gymnasium's one at a time with env kwargs:

- ``model="gymnasium"``: Gymnasium's ``ant.xml`` stepped as ``envs/ant.py`` steps it (two RK4 steps of
  0.01 s) and Gymnasium's reset, in place of the model, integration and reset above;
- ``observation="gymnasium"``: what ``envs/ant.py`` reads after a step (no ``mj_forward``), its 105-dim
  observation, and the reward on the torso's displacement, in place of the readout, the 125-dim
  observation and the centre-of-mass velocity above;
- ``velocity="rllab"`` or ``"gymnasium"`` splits the rewarded velocity off the observation: the
  centre-of-mass velocity or the root's displacement over the step, whatever the observation (default:
  the observation's source, so the two kwargs above mean what they meant before the split). rllab's
  readout after each step comes with either part of rllab's: it changes what is read, not the state.

With all of them Gymnasium's, the env is ``metarl/AntVel-v0`` / ``metarl/AntDir-v0`` transition for
transition (a test says so).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from typing import Any

import mujoco
import numpy as np
from gymnasium.envs.mujoco.ant_v5 import AntEnv
from gymnasium.spaces import Box
from gymnasium.utils import EzPickle

from envs.ant import ANT, ANT_DIR, ANT_VEL, gym_kwargs
from envs.base import EnvOptionError, Task
from envs.batched_mujoco import BatchedMujoco, DirectionVectorEnv, LocomotionVectorEnv
from envs.locomotion import DirectionTaskEnv, LocomotionTaskEnv, Robot

ANT_RLLAB = dataclasses.replace(
    ANT,
    xml_file=os.path.join(os.path.dirname(os.path.abspath(__file__)), "assets", "ant_rllab.xml"),
    skipped_qpos=0,
    frame_skip=1,
)
"""``ANT``'s costs, survive reward and height range on rllab's model. Its ``reset_noise_scale`` and
observation settings are Gymnasium's and unused: ``reset_as_rllab`` and ``observation_rllab`` replace them."""

QPOS_NOISE = 0.01
QVEL_NOISE = 0.1
TORSO = 1
"""The torso's body id (the world is 0)."""
TORSO_READOUT = 15
"""Per env, read after each step: the torso's ``xmat`` (9), ``subtree_com`` (3) and ``subtree_linvel`` (3)."""
OBSERVATION_DIM = 125
PART_SOURCES = ("rllab", "gymnasium")


@dataclasses.dataclass(frozen=True)
class AntParts:
    """Whose model (XML, integration, reset), observation and rewarded velocity an rllab Ant env uses:
    rllab's, as the paper's code, or Gymnasium's (``envs/ant.py``). ``velocity=None`` is the observation's."""

    model: str = "rllab"
    observation: str = "rllab"
    velocity: str | None = None

    def __post_init__(self) -> None:
        if self.velocity is None:
            object.__setattr__(self, "velocity", self.observation)
        for part in ("model", "observation", "velocity"):
            if getattr(self, part) not in PART_SOURCES:
                raise EnvOptionError(f"{part} must be 'rllab' or 'gymnasium', got {getattr(self, part)!r}")

    @property
    def robot(self) -> Robot:
        """The model's file and integration, and (Gymnasium's observation) the torso's x and y left out of the
        observation; the costs and termination are the same in both."""
        robot = ANT_RLLAB if self.model == "rllab" else ANT
        return robot if self.observation == "rllab" else dataclasses.replace(robot, skipped_qpos=ANT.skipped_qpos)

    @property
    def rllab_observation(self) -> bool:
        return self.observation == "rllab"

    @property
    def rllab_velocity(self) -> bool:
        return self.velocity == "rllab"

    @property
    def rllab_readout(self) -> bool:
        """Whether each step ends with rllab's ``mj_forward``: both the 125 dims and the centre-of-mass
        velocity are read off the new state."""
        return self.rllab_observation or self.rllab_velocity


def step_as_rllab(model: mujoco.MjModel, data: mujoco.MjData, ctrl: np.ndarray, n_frames: int) -> None:
    """rllab's ``forward_dynamics``: controls, ``n_frames`` steps, then the derived quantities of the new state."""
    data.ctrl[:] = ctrl
    mujoco.mj_step(model, data, n_frames)
    read_as_rllab(model, data)


def read_as_rllab(model: mujoco.MjModel, data: mujoco.MjData) -> None:
    """What rllab's MuJoCo 1.31 had computed after a step or reset: the new state's kinematics and contact forces."""
    mujoco.mj_forward(model, data)
    mujoco.mj_rnePostConstraint(model, data)


def reset_as_rllab(model: mujoco.MjModel, data: mujoco.MjData, rng: np.random.Generator) -> None:
    """rllab's ``reset``: the XML's ``init_qpos`` plus normal noise on qpos, then on qvel; ``mj_forward``."""
    mujoco.mj_resetData(model, data)  # qvel, ctrl and the warm start to zero, as rllab's init_qvel and init_ctrl
    data.qpos[:] = model.numeric("init_qpos").data + QPOS_NOISE * rng.standard_normal(model.nq)
    data.qvel[:] = QVEL_NOISE * rng.standard_normal(model.nv)
    mujoco.mj_forward(model, data)


def torso_readout(model: mujoco.MjModel, data: mujoco.MjData) -> np.ndarray:
    """The torso's ``xmat`` (9), ``subtree_com`` (3) and ``subtree_linvel`` (3), of the current state."""
    mujoco.mj_subtreeVel(model, data)
    return np.concatenate([data.xmat[TORSO], data.subtree_com[TORSO], data.subtree_linvel[TORSO]])


def observation_rllab(
    qpos_NQ: np.ndarray, qvel_NV: np.ndarray, cfrc_ext_NB6: np.ndarray, torso_NT: np.ndarray
) -> np.ndarray:
    """rllab's ``get_current_obs`` for a batch: qpos, qvel, clipped cfrc_ext of all bodies, xmat, com."""
    contact_forces = np.clip(cfrc_ext_NB6, -1.0, 1.0).reshape(len(qpos_NQ), -1)
    return np.concatenate([qpos_NQ, qvel_NV, contact_forces, torso_NT[:, :12]], axis=1)


class _AntRllabEnv(LocomotionTaskEnv, AntEnv):
    parts: AntParts

    def _use_parts(self, model: str, observation: str, velocity: str | None) -> None:
        """Called by each env's ``__init__`` before ``LocomotionTaskEnv``'s, which builds the model."""
        self.parts = AntParts(model, observation, velocity)
        self.robot = self.parts.robot
        self.gym_kwargs = {"xml_file": self.robot.xml_file, **gym_kwargs(self.robot)}

    def __init__(self, task: Any = None, render_mode: str | None = None):
        super().__init__(task, render_mode)
        if self.parts.rllab_observation:
            self.observation_space = Box(-np.inf, np.inf, shape=(OBSERVATION_DIM,), dtype=np.float64)

    def _step_mujoco_simulation(self, ctrl: np.ndarray, n_frames: int) -> None:
        if self.parts.rllab_readout:
            step_as_rllab(self.model, self.data, ctrl, n_frames)
        else:
            super()._step_mujoco_simulation(ctrl, n_frames)

    def reset_model(self) -> np.ndarray:
        if self.parts.model == "rllab":
            reset_as_rllab(self.model, self.data, self.np_random)
        else:
            super().reset_model()
        if self.parts.rllab_readout:
            mujoco.mj_rnePostConstraint(self.model, self.data)
        return self._get_obs()

    def _get_obs(self) -> np.ndarray:
        if not self.parts.rllab_observation:
            return super()._get_obs()
        data = self.data
        torso = torso_readout(self.model, data)[None]
        return observation_rllab(data.qpos[None], data.qvel[None], data.cfrc_ext[None], torso)[0]

    def _x_velocity(self, x_before: np.ndarray, qpos_after: np.ndarray) -> np.ndarray:
        if not self.parts.rllab_velocity:
            return super()._x_velocity(x_before, qpos_after)
        return torso_readout(self.model, self.data)[None, 12]


class AntVelRllabEnv(_AntRllabEnv):
    """Run at a goal velocity v* ~ U[0, 3]: task term −|v_com − v*| + 1.0."""

    task_family = ANT_VEL

    def __init__(
        self,
        task: Any = None,
        render_mode: str | None = None,
        model: str = "rllab",
        observation: str = "rllab",
        velocity: str | None = None,
    ):
        self._use_parts(model, observation, velocity)
        super().__init__(task, render_mode)
        EzPickle.__init__(self, task, render_mode, model, observation, velocity)


class AntDirRllabEnv(DirectionTaskEnv, _AntRllabEnv):
    """Run forward or backward (d = ±1, backward with probability ``backward_probability``, default 1/2):
    task term d·v_com."""

    task_family = ANT_DIR

    def __init__(
        self,
        task: Any = None,
        render_mode: str | None = None,
        backward_probability: float = 0.5,
        model: str = "rllab",
        observation: str = "rllab",
        velocity: str | None = None,
    ):
        self._use_parts(model, observation, velocity)
        super().__init__(task, render_mode, backward_probability)
        EzPickle.__init__(self, task, render_mode, backward_probability, model, observation, velocity)


class RllabAntSimulation(BatchedMujoco):
    """``BatchedMujoco`` with rllab's model and reset or Gymnasium's, read as rllab read it (``read_as_rllab``
    and the torso's readout per env) or as Gymnasium does."""

    def __init__(self, parts: AntParts, num_envs: int):
        super().__init__(parts.robot, num_envs)
        self.parts = parts
        self.torso_NT = np.zeros((num_envs, TORSO_READOUT))

    def _reset_data(self, data: mujoco.MjData, rng: np.random.Generator) -> None:
        if self.parts.model == "rllab":
            reset_as_rllab(self.model, data, rng)
        else:
            super()._reset_data(data, rng)
        if self.parts.rllab_readout:
            mujoco.mj_rnePostConstraint(self.model, data)

    def step(self, indices: Sequence[int], actions_NA: np.ndarray) -> None:
        if not self.parts.rllab_readout:
            super().step(indices, actions_NA)
            return
        for i in indices:
            step_as_rllab(self.model, self.datas[i], actions_NA[i], self.robot.frame_skip)
            self._read_state(i)

    def _read_state(self, i: int) -> None:
        super()._read_state(i)
        if self.parts.rllab_readout:
            self.torso_NT[i] = torso_readout(self.model, self.datas[i])


class _AntRllabVectorEnv(LocomotionVectorEnv):
    sim: RllabAntSimulation
    parts: AntParts

    def _use_parts(self, model: str, observation: str, velocity: str | None) -> None:
        """Called by each env's ``__init__`` before ``LocomotionVectorEnv``'s, which builds the simulation."""
        self.parts = AntParts(model, observation, velocity)
        self.robot = self.parts.robot

    def _simulation(self, num_envs: int) -> RllabAntSimulation:
        return RllabAntSimulation(self.parts, num_envs)

    def _observation(self) -> np.ndarray:
        if not self.parts.rllab_observation:
            return super()._observation()
        sim = self.sim
        assert sim.cfrc_ext_NB6 is not None
        return observation_rllab(sim.qpos_NQ, sim.qvel_NV, sim.cfrc_ext_NB6, sim.torso_NT)

    def _x_velocity(self, x_before_N: np.ndarray) -> np.ndarray:
        if not self.parts.rllab_velocity:
            return super()._x_velocity(x_before_N)
        return self.sim.torso_NT[:, 12].copy()


class AntVelRllabVectorEnv(_AntRllabVectorEnv):
    task_family = ANT_VEL

    def __init__(
        self,
        num_envs: int,
        max_episode_steps: int | None = 200,
        task: Task | None = None,
        model: str = "rllab",
        observation: str = "rllab",
        velocity: str | None = None,
    ):
        self._use_parts(model, observation, velocity)
        super().__init__(num_envs, max_episode_steps, task)


class AntDirRllabVectorEnv(DirectionVectorEnv, _AntRllabVectorEnv):
    def __init__(
        self,
        num_envs: int,
        max_episode_steps: int | None = 200,
        task: Task | None = None,
        backward_probability: float = 0.5,
        model: str = "rllab",
        observation: str = "rllab",
        velocity: str | None = None,
    ):
        self._use_parts(model, observation, velocity)
        super().__init__(num_envs, max_episode_steps, task, backward_probability)
