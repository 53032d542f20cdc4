"""gym 0.17's ``HalfCheetahEnv`` rebuilt on Gymnasium's HalfCheetah-v5 physics, for pytorch-maml-rl.

pytorch-maml-rl's HalfCheetah tasks subclass ``gym.envs.mujoco.HalfCheetahEnv``, which needs mujoco-py
and MuJoCo 1.5/2.0 binaries. This class offers the same surface (``sim.data``, ``do_simulation``,
``get_body_com``, ``dt``, ``seed``, ``reset``, gym spaces) on top of the MuJoCo model metarl's
HalfCheetah envs step, with gym 0.17's reset noise (qpos ± U(0.1), qvel + 0.1·N(0, 1)), stepped as
metarl and the paper's code step it (one 0.01 s MuJoCo step per action; gym's env took five), so both
packages are timed on the same physics work per env step. ``install()`` puts it where pytorch-maml-rl
imports it from.
"""

from __future__ import annotations

import sys
import types

import gym
import numpy as np
from gym.utils import seeding
from gymnasium.envs.mujoco.half_cheetah_v5 import HalfCheetahEnv as GymnasiumHalfCheetah

FRAME_SKIP = 1
"""MuJoCo steps per action, as metarl's ``envs/half_cheetah.py`` (gym 0.17's HalfCheetah: 5)."""


class HalfCheetahEnv(gym.Env):
    def __init__(self):
        self._physics = GymnasiumHalfCheetah()
        self.model = self._physics.model
        self.sim = types.SimpleNamespace(data=self._physics.data, model=self.model)
        self.frame_skip = FRAME_SKIP
        self.init_qpos = self._physics.init_qpos.copy()
        self.init_qvel = self._physics.init_qvel.copy()
        bounds = self.model.actuator_ctrlrange.copy().astype(np.float32)
        self.action_space = gym.spaces.Box(low=bounds[:, 0], high=bounds[:, 1], dtype=np.float32)
        self.seed()
        observation = self._get_obs()
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, observation.shape, dtype=np.float32)

    @property
    def dt(self) -> float:
        return self.model.opt.timestep * self.frame_skip

    def seed(self, seed=None):
        self.np_random, seed = seeding.np_random(seed)
        return [seed]

    def do_simulation(self, action, n_frames):
        self._physics.do_simulation(np.asarray(action, dtype=np.float64), n_frames)

    def get_body_com(self, name):
        return self._physics.get_body_com(name)

    def reset(self):
        qpos = self.init_qpos + self.np_random.uniform(low=-0.1, high=0.1, size=self.model.nq)
        qvel = self.init_qvel + self.np_random.randn(self.model.nv) * 0.1
        self._physics.set_state(qpos, qvel)
        return self._get_obs()

    def _get_obs(self):
        data = self.sim.data
        return np.concatenate([data.qpos.flat[1:], data.qvel.flat])

    def close(self):
        self._physics.close()


def install() -> None:
    """Make ``from gym.envs.mujoco import HalfCheetahEnv`` give this class (gym's own module needs mujoco-py)."""
    module = types.ModuleType("gym.envs.mujoco")
    module.HalfCheetahEnv = HalfCheetahEnv
    sys.modules["gym.envs.mujoco"] = module
