"""HalfCheetah task families of the MAML paper (section 5.3): goal velocity and goal direction.

Built on Gymnasium's ``HalfCheetah-v5`` model (the same model file as the paper's code's rllab
``half_cheetah.xml``), observations (17 dims: qpos without the torso's x, and qvel) and reset noise,
stepped as the paper's code stepped it: one 0.01 s MuJoCo step per action, so a 200-step episode is
2 s of motion (Gymnasium's v5 env takes 5 steps per action). The reward follows the paper's code:
the task term minus ``0.05·‖clip(a, −1, 1)‖²`` (``0.5 · 1e-1 · ‖a‖²`` there, after rllab's
``normalize`` clipped the action). The cheetah never terminates; episodes end at the horizon.
"""

from __future__ import annotations

from gymnasium.envs.mujoco.half_cheetah_v5 import HalfCheetahEnv

from envs.batched_mujoco import DirectionVectorEnv, LocomotionVectorEnv
from envs.locomotion import DirectionTaskEnv, LocomotionTaskEnv, Robot
from envs.task_families import DirectionTasks, VelocityTasks

HALF_CHEETAH = Robot(xml_file="half_cheetah.xml", skipped_qpos=1, ctrl_cost_weight=0.05, frame_skip=1, position_dims=1)

HALF_CHEETAH_VEL = VelocityTasks(low=0.0, high=2.0)
HALF_CHEETAH_DIR = DirectionTasks()


class HalfCheetahVelEnv(LocomotionTaskEnv, HalfCheetahEnv):
    """Run at a goal velocity v* ~ U[0, 2]: reward −|v_x − v*| − 0.05·‖a‖²."""

    robot = HALF_CHEETAH
    task_family = HALF_CHEETAH_VEL


class HalfCheetahDirEnv(DirectionTaskEnv, HalfCheetahEnv):
    """Run forward or backward (d = ±1, backward with probability ``backward_probability``, default 1/2):
    reward d·v_x − 0.05·‖a‖²."""

    robot = HALF_CHEETAH
    task_family = HALF_CHEETAH_DIR


class HalfCheetahVelVectorEnv(LocomotionVectorEnv):
    robot = HALF_CHEETAH
    task_family = HALF_CHEETAH_VEL


class HalfCheetahDirVectorEnv(DirectionVectorEnv):
    robot = HALF_CHEETAH
    task_family = HALF_CHEETAH_DIR
