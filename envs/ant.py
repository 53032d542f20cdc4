"""Ant task families of the MAML paper (section 5.3): goal velocity, goal direction, goal position.

Built on Gymnasium's ``Ant-v5`` model, reset noise and observation, *with* contact forces: 105 dims
= qpos without the torso's x and y (13), qvel (14) and the external contact forces on the 13 bodies
clipped to [−1, 1] (78). The paper's original code observed the clipped contact forces too, they are
Gymnasium v5's default, and the contact cost needs them computed anyway. The goal-position task
observes the torso's x and y as well (107 dims): its reward is the distance to a goal, which a
memoryless policy cannot walk to without knowing where it is, and the paper's code observed the full
``qpos`` in every Ant env. Velocity and direction keep Gymnasium's default, where x and y carry no
information about the reward.

Stepped every 0.02 s as in the paper's code (rllab's ``ant.xml``: one RK4 step of 0.02 s per action;
here two of Gymnasium's 0.01 s RK4 steps; Gymnasium's v5 env takes five).

Reward (the paper's original code): task term − 0.005·‖clip(a, −1, 1)‖² − 0.0005·‖clip(cfrc_ext, −1, 1)‖² + 0.05,
where the task term carries its own constant (+1.0 for velocity, +4.0 for goal position). The
episode terminates when the torso height qpos[2] leaves [0.2, 1.0] (or the state is not finite).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from gymnasium.envs.mujoco.ant_v5 import AntEnv

from envs.batched_mujoco import DirectionVectorEnv, LocomotionVectorEnv
from envs.locomotion import DirectionTaskEnv, LocomotionTaskEnv, Robot
from envs.task_families import DirectionTasks, GoalTasks, VelocityTasks

ANT = Robot(
    xml_file="ant.xml",
    skipped_qpos=2,
    position_dims=2,
    ctrl_cost_weight=0.005,
    frame_skip=2,
    contact_cost_weight=0.0005,
    contact_force_range=(-1.0, 1.0),
    contact_forces_in_observation=True,
    survive_reward=0.05,
    healthy_z_range=(0.2, 1.0),
)

ANT_OBSERVING_POSITION = dataclasses.replace(ANT, skipped_qpos=0)

ANT_VEL = VelocityTasks(low=0.0, high=3.0, offset=1.0)
ANT_DIR = DirectionTasks()
ANT_GOAL = GoalTasks(low=-3.0, high=3.0, offset=4.0)


def gym_kwargs(robot: Robot) -> dict[str, Any]:
    """Gymnasium's ``AntEnv`` settings for ``robot`` (its defaults match ANT's; stated so a change there
    cannot silently change ours)."""
    return {
        "include_cfrc_ext_in_observation": robot.contact_forces_in_observation,
        "exclude_current_positions_from_observation": robot.skipped_qpos > 0,
        "contact_force_range": robot.contact_force_range,
        "healthy_z_range": robot.healthy_z_range,
    }


class _AntTaskEnv(LocomotionTaskEnv, AntEnv):
    robot = ANT
    gym_kwargs: dict[str, Any] = gym_kwargs(ANT)


class AntVelEnv(_AntTaskEnv):
    """Run at a goal velocity v* ~ U[0, 3]: task term −|v_x − v*| + 1.0."""

    task_family = ANT_VEL


class AntDirEnv(DirectionTaskEnv, _AntTaskEnv):
    """Run forward or backward (d = ±1, backward with probability ``backward_probability``, default 1/2):
    task term d·v_x."""

    task_family = ANT_DIR


class AntGoalEnv(_AntTaskEnv):
    """Walk to a goal g ~ U[−3, 3]²: task term −‖xy_torso − g‖₁ + 4.0; observes the torso's x and y."""

    robot = ANT_OBSERVING_POSITION
    gym_kwargs: dict[str, Any] = gym_kwargs(ANT_OBSERVING_POSITION)
    task_family = ANT_GOAL


class AntVelVectorEnv(LocomotionVectorEnv):
    robot = ANT
    task_family = ANT_VEL


class AntDirVectorEnv(DirectionVectorEnv):
    robot = ANT
    task_family = ANT_DIR


class AntGoalVectorEnv(LocomotionVectorEnv):
    robot = ANT_OBSERVING_POSITION
    task_family = ANT_GOAL
