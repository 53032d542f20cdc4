"""rllab's Ant (envs/ant_rllab.py): the model, reset, observation, reward and termination of the MAML
paper's code (cbfinn/maml_rl at 7fe27d7), checked against MuJoCo's state and independent references;
and the single env against the batched one."""

from __future__ import annotations

import os

import gymnasium
import mujoco
import numpy as np
import pytest

import envs  # noqa: F401  (registers the envs)
from envs.ant_rllab import ANT_RLLAB
from envs.mujoco_model import load_model, model_path
from metarl.config import load_yaml

IDS = ["metarl/AntVel-rllab-v0", "metarl/AntDir-rllab-v0"]
RLLAB_INIT_QPOS = [0.0, 0.0, 0.55, 1.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0, -1.0, 0.0, -1.0, 0.0, 1.0]
CONFIGS = os.path.join(os.path.dirname(__file__), "..", "launchers", "configs")


def rllab_comvel(model: mujoco.MjModel, data: mujoco.MjData, body: int) -> np.ndarray:
    """rllab's ``MjModel._compute_subtree`` (maml_rl rllab/mujoco_py/mjcore.py), written out: the bodies'
    ``mj_objectVelocity`` weighted by their masses, summed up the tree, divided by the subtree's mass."""
    velocity = np.zeros(6)
    momentum = np.zeros((model.nbody, 3))
    for b in range(model.nbody):
        mujoco.mj_objectVelocity(model, data, mujoco.mjtObj.mjOBJ_BODY, b, velocity, 0)
        momentum[b] = velocity[3:] * model.body_mass[b]
    mass = model.body_mass.copy()
    for b in range(model.nbody - 1, 0, -1):
        momentum[model.body_parentid[b]] += momentum[b]
        mass[model.body_parentid[b]] += mass[b]
    return momentum[body] / mass[body]


def test_model_is_gymnasiums_ant_with_rllabs_timestep_and_contacts(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    ours, gyms = load_model(ANT_RLLAB.xml_file), load_model(model_path("ant.xml"))
    assert ours.opt.timestep == 0.02 and ours.opt.integrator == mujoco.mjtIntegrator.mjINT_RK4
    assert ANT_RLLAB.frame_skip == 1
    np.testing.assert_array_equal(ours.geom_solimp[:, :3], np.tile([0.8, 0.8, 0.01], (ours.ngeom, 1)))
    np.testing.assert_array_equal(ours.geom_solref, np.tile([0.02, 1.0], (ours.ngeom, 1)))
    np.testing.assert_array_equal(ours.numeric("init_qpos").data, RLLAB_INIT_QPOS)
    for name in dir(gyms):  # everything else is Gymnasium's Ant, array for array
        value = getattr(gyms, name)
        if isinstance(value, np.ndarray) and name not in ("geom_solimp", "opt"):
            assert np.array_equal(getattr(ours, name), value), name
    assert gyms.opt.timestep == 0.01 and not np.array_equal(gyms.geom_solimp, ours.geom_solimp)


@pytest.mark.parametrize("env_id", IDS)
def test_observation_is_rllabs_125_dims_read_from_the_new_state(env_id):
    env = gymnasium.make(env_id)
    base = env.unwrapped
    assert env.observation_space.shape == (125,) and env.action_space.shape == (8,)
    env.reset(seed=0)
    rng = np.random.default_rng(0)
    for _ in range(6):
        observation, *_ = env.step(rng.uniform(-1, 1, 8))
    # Recompute from (qpos, qvel) alone on a fresh MjData: the env's readout must be the new state's.
    data = mujoco.MjData(base.model)
    data.qpos[:], data.qvel[:], data.ctrl[:] = base.data.qpos, base.data.qvel, base.data.ctrl
    data.qacc_warmstart[:] = base.data.qacc_warmstart
    mujoco.mj_forward(base.model, data)
    mujoco.mj_rnePostConstraint(base.model, data)
    torso = base.model.body("torso").id
    parts = np.split(observation, np.cumsum([15, 14, 84, 9]))
    np.testing.assert_array_equal(parts[0], data.qpos)
    np.testing.assert_array_equal(parts[1], data.qvel)
    np.testing.assert_allclose(parts[2], np.clip(data.cfrc_ext, -1, 1).ravel(), atol=1e-6)
    np.testing.assert_allclose(parts[3], data.xmat[torso], atol=1e-12)
    np.testing.assert_allclose(parts[4], data.subtree_com[torso], atol=1e-12)
    assert np.abs(parts[2]).max() > 0.0, "the contact forces were never computed"
    assert abs(observation[2] - observation[-1]) > 0.01, "the torso's height is not the ant's centre of mass"


@pytest.mark.parametrize("env_id", IDS)
def test_reward_is_the_papers_formula_on_the_centre_of_mass_velocity(env_id):
    env = gymnasium.make(env_id)
    base = env.unwrapped
    rng = np.random.default_rng(1)
    for task in base.sample_tasks(2, rng):
        base.set_task(task)
        env.reset(seed=int(rng.integers(1000)))
        for _ in range(10):
            action = rng.uniform(-1.5, 1.5, 8)  # beyond the control range: the cost is on the clipped action
            com_before = base.data.subtree_com[1].copy()
            _, reward, _, _, info = env.step(action)
            v = rllab_comvel(base.model, base.data, 1)[0]
            # The same velocity by a finite difference of the centre of mass, to first order in dt.
            assert v == pytest.approx((base.data.subtree_com[1, 0] - com_before[0]) / 0.02, abs=0.15)
            task_term = -abs(v - task["velocity"]) + 1.0 if "velocity" in task else task["direction"] * v
            ctrl = 0.5 * 1e-2 * np.sum(np.clip(action, -1, 1) ** 2)
            contact = 0.5 * 1e-3 * np.sum(np.clip(base.data.cfrc_ext, -1, 1) ** 2)
            assert info["x_velocity"] == pytest.approx(v, abs=1e-12)
            assert info["reward_task"] == pytest.approx(task_term, abs=1e-12)
            assert reward == pytest.approx(task_term - ctrl - contact + 0.05, abs=1e-12)


@pytest.mark.parametrize("vectorized", [False, True], ids=["single", "batched"])
@pytest.mark.parametrize("height", [0.15, 1.1])
def test_terminates_when_the_torso_leaves_the_height_range(vectorized, height):
    if vectorized:
        env = gymnasium.make_vec("metarl/AntVel-rllab-v0", 2)
        env.reset(seed=0)
        sim = env.unwrapped.sim
        qpos = sim.qpos_NQ[1].copy()
        qpos[2] = height
        sim.set_state(1, qpos, np.zeros(14))
        assert env.step(np.zeros((2, 8)))[2].tolist() == [False, True]
    else:
        env = gymnasium.make("metarl/AntVel-rllab-v0")
        env.reset(seed=0)
        qpos = env.unwrapped.data.qpos.copy()
        qpos[2] = height
        env.unwrapped.set_state(qpos, np.zeros(14))
        assert env.step(np.zeros(8))[2] is True
        env.reset(seed=0)
        assert env.step(np.zeros(8))[2] is False


def test_reset_is_the_crouched_pose_with_rllabs_noise():
    env = gymnasium.make_vec("metarl/AntVel-rllab-v0", 400)
    observation, _ = env.reset(seed=0)
    qpos, qvel = observation[:, :15], observation[:, 15:29]
    qpos_noise, qvel_noise = qpos - RLLAB_INIT_QPOS, qvel
    assert np.abs(qpos_noise.mean(axis=0)).max() < 0.003 and np.abs(qvel_noise.mean(axis=0)).max() < 0.03
    np.testing.assert_allclose(qpos_noise.std(axis=0), 0.01, rtol=0.15)  # normal noise, not U[-0.1, 0.1]
    np.testing.assert_allclose(qvel_noise.std(axis=0), 0.1, rtol=0.15)
    assert np.abs(qpos_noise).max() > 0.025  # normal tails, beyond a uniform of the same spread


@pytest.mark.parametrize("env_id", IDS)
def test_batched_env_gives_the_single_envs_transitions_bit_for_bit(env_id):
    num_envs, horizon = 3, 15
    rng = np.random.default_rng(2)
    vector = gymnasium.make_vec(env_id, num_envs, max_episode_steps=horizon)
    singles = [gymnasium.make(env_id, max_episode_steps=horizon) for _ in range(num_envs)]
    tasks = singles[0].unwrapped.sample_tasks(num_envs, rng)
    vector.set_attr("task", tasks)
    for single, task in zip(singles, tasks, strict=True):
        single.unwrapped.set_task(task)
    for seeds in ([5, 6, 7], None):
        v_observation, _ = vector.reset(seed=seeds)
        for i, single in enumerate(singles):
            assert np.array_equal(single.reset(seed=None if seeds is None else seeds[i])[0], v_observation[i])
        running = np.ones(num_envs, dtype=bool)
        for t in range(horizon):
            if t == 3:  # env 1 thrown into the air: it terminates on the next step
                qpos = singles[1].unwrapped.data.qpos.copy()
                qpos[2] = 1.5
                qvel = singles[1].unwrapped.data.qvel.copy()
                singles[1].unwrapped.set_state(qpos, qvel)
                vector.unwrapped.sim.set_state(1, qpos, qvel)
            actions = rng.uniform(-1.5, 1.5, (num_envs, 8))
            v_observation, v_reward, v_terminated, v_truncated, v_info = vector.step(actions)
            for i in np.flatnonzero(running):
                observation, reward, terminated, truncated, info = singles[i].step(actions[i])
                assert np.array_equal(observation, v_observation[i])
                assert reward == v_reward[i]
                assert (terminated, truncated) == (v_terminated[i], v_truncated[i])
                for name, value in info.items():
                    assert value == v_info[name][i], name
            running &= ~(v_terminated | v_truncated)
        assert vector.unwrapped.elapsed_steps.tolist() == [horizon, 4, horizon]


def test_direction_env_takes_the_backward_probability_like_ant_dir():
    single = gymnasium.make("metarl/AntDir-rllab-v0", backward_probability=3 / 7).unwrapped
    vector = gymnasium.make_vec("metarl/AntDir-rllab-v0", 2, backward_probability=3 / 7).unwrapped
    for env in (single, vector):
        tasks = env.sample_tasks(7000, np.random.default_rng(0))
        assert np.mean([task["direction"] < 0 for task in tasks]) == pytest.approx(3 / 7, abs=0.02)
    assert vector.sample_tasks(5, np.random.default_rng(1)) == single.sample_tasks(5, np.random.default_rng(1))


@pytest.mark.parametrize(("rllab", "gymnasium_config"), [("ant-vel-rllab", "ant-vel"), ("ant-dir-rllab", "ant-dir")])
def test_configs_are_the_gymnasium_ant_configs_but_for_the_env(rllab, gymnasium_config):
    ours, theirs = (load_yaml(os.path.join(CONFIGS, f"{name}.yaml")) for name in (rllab, gymnasium_config))
    assert ours.pop("env_id") == theirs.pop("env_id").replace("-v0", "-rllab-v0")
    assert ours == theirs
