"""An experiment, not part of the package: how much do rllab's Ant model settings change the Ant's dynamics?

The paper's code simulated rllab's ``vendor/mujoco_models/ant.xml`` (cbfinn/maml_rl), which differs from
Gymnasium's ``ant.xml`` (what metarl's Ant envs use) in three ways besides the MuJoCo version:

- contacts: its default geom class sets ``solref=".02 1" solimp=".8 .8 .01"`` (softer, wider), where
  Gymnasium's leaves MuJoCo's defaults (solref 0.02 1, solimp 0.9 0.95 0.001);
- initial pose: rllab's ``MujocoEnv`` resets to the XML's ``init_qpos`` numeric (torso at 0.55, ankles bent
  ±1 rad, inside their joint ranges), Gymnasium to ``qpos0`` (torso at 0.75, ankles at 0, outside their
  ranges of 30–70°, so the first steps push them in);
- integration: one RK4 step of 0.02 s per action, where metarl takes two of 0.01 s (same control period).

This script steps N Ants with actions a ~ N(0, I) (the initial policy's) for one 200-step episode in
each variant, from the same seeds and actions, and prints what a policy would feel: the fraction of
episodes that terminate (torso height out of [0.2, 1.0]), the mean episode length, the mean |v_x| and
the AntDir return (direction +1):

    python docs/experiments/ant_rllab_model.py [num_envs]

Results are in docs/ENVIRONMENTS.md.
"""

from __future__ import annotations

import dataclasses
import sys

import numpy as np

import envs  # noqa: F401  (registers the envs)
from envs.ant import ANT, AntDirVectorEnv

RLLAB_INIT_QPOS = np.array([0.0, 0.0, 0.55, 1.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0, -1.0, 0.0, -1.0, 0.0, 1.0])
RLLAB_SOLIMP = (0.8, 0.8, 0.01)


class OneStepAntDir(AntDirVectorEnv):
    """AntDir stepped as rllab did: one MuJoCo step per action (the timestep is set to 0.02 s below)."""

    robot = dataclasses.replace(ANT, frame_skip=1)


def make_env(num_envs: int, contacts: bool, pose: bool, one_rk4_step: bool) -> AntDirVectorEnv:
    env = (OneStepAntDir if one_rk4_step else AntDirVectorEnv)(num_envs)
    sim = env.sim
    if one_rk4_step:
        sim.model.opt.timestep = 0.02
        sim.dt = 0.02
    if contacts:
        sim.model.geom_solimp[:, :3] = RLLAB_SOLIMP
    if pose:
        sim.init_qpos = RLLAB_INIT_QPOS.copy()
    env.set_attr("task", [{"direction": 1.0}] * num_envs)
    return env


def random_policy_statistics(env: AntDirVectorEnv, num_envs: int, seed: int = 0) -> dict[str, float]:
    rng = np.random.default_rng(seed)
    env.reset(seed=list(range(num_envs)))
    alive = np.ones(num_envs, dtype=bool)
    length = np.zeros(num_envs)
    episode_return = np.zeros(num_envs)
    speed = []
    for _ in range(200):
        _, reward, terminated, truncated, info = env.step(rng.standard_normal((num_envs, 8)))
        episode_return += reward * alive
        length += alive
        speed.append(np.abs(info["x_velocity"][alive]).mean())
        alive &= ~(terminated | truncated)
        if not alive.any():
            break
    return {
        "terminated": float(np.mean(length < 200)),
        "length": float(length.mean()),
        "mean |v_x|": float(np.mean(speed)),
        "AntDir return": float(episode_return.mean()),
    }


def main() -> None:
    num_envs = int(sys.argv[1]) if len(sys.argv) > 1 else 400
    variants = {
        "Gymnasium's model (metarl)": (False, False, False),
        "+ rllab contacts": (True, False, False),
        "+ rllab contacts and pose": (True, True, False),
        "+ rllab contacts, pose, one RK4 step of 0.02 s": (True, True, True),
    }
    print(f"{num_envs} episodes of a ~ N(0, I) per variant, same seeds and actions")
    for name, flags in variants.items():
        stats = random_policy_statistics(make_env(num_envs, *flags), num_envs)
        print(f"{name:48s} " + "  ".join(f"{key} {value:7.3f}" for key, value in stats.items()))


if __name__ == "__main__":
    main()
