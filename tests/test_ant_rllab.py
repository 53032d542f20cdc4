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
from envs.ant_rllab import ANT_RLLAB, AntParts
from envs.base import EnvOptionError
from envs.mujoco_model import load_model, model_path
from metarl.config import ConfigError, load_yaml
from metarl.parts import make_task_env

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


PARTS = [
    {"model": "gymnasium"},
    {"observation": "gymnasium"},
    {"model": "gymnasium", "observation": "gymnasium"},
    {"model": "gymnasium", "velocity": "gymnasium"},
    {"model": "gymnasium", "observation": "gymnasium", "velocity": "rllab"},
]


def rollout(env: gymnasium.Env, task, seed: int, actions: np.ndarray) -> list:
    """The transitions of one episode of ``env`` on ``task`` from ``seed`` under the given actions."""
    env.unwrapped.set_task(task)
    transitions = [env.reset(seed=seed)[0]]
    for action in actions:
        transitions.append(env.step(action))
        if transitions[-1][2]:
            break
    return transitions


@pytest.mark.parametrize(("rllab_id", "gymnasium_id"), [(IDS[0], "metarl/AntVel-v0"), (IDS[1], "metarl/AntDir-v0")])
def test_with_both_parts_gymnasiums_the_env_is_the_gymnasium_ant_env(rllab_id, gymnasium_id):
    """The parts swap cleanly: nothing of rllab's is left once both are Gymnasium's."""
    both = {"model": "gymnasium", "observation": "gymnasium"}
    ours, theirs = gymnasium.make(rllab_id, **both), gymnasium.make(gymnasium_id)
    rng = np.random.default_rng(3)
    task = theirs.unwrapped.sample_tasks(1, rng)[0]
    actions = rng.uniform(-1.5, 1.5, (40, 8))
    ours_transitions, theirs_transitions = rollout(ours, task, 4, actions), rollout(theirs, task, 4, actions)
    assert len(ours_transitions) == len(theirs_transitions) == 41
    np.testing.assert_array_equal(ours_transitions[0], theirs_transitions[0])
    for mine, reference in zip(ours_transitions[1:], theirs_transitions[1:], strict=True):
        np.testing.assert_array_equal(mine[0], reference[0])
        assert mine[1:] == reference[1:]


def test_each_part_is_its_sources_alone():
    """Gymnasium's model: ant.xml at 0.01 s twice a step, reset around qpos0, rllab's 125-dim readout of it.
    Gymnasium's observation: rllab's model and crouched reset, the 105-dim observation and the torso's velocity."""
    model_swapped = gymnasium.make(IDS[0], model="gymnasium").unwrapped
    assert model_swapped.model.opt.timestep == 0.01 and model_swapped.frame_skip == 2
    assert model_swapped.model.geom_solimp[0, 0] == 0.9 and model_swapped.observation_space.shape == (125,)
    observation, _ = model_swapped.reset(seed=0)
    assert abs(observation[2] - 0.75) <= 0.1 and abs(observation[3] - 1.0) <= 0.1  # torso height, quaternion w
    observation_swapped = gymnasium.make(IDS[0], observation="gymnasium").unwrapped
    assert observation_swapped.model.opt.timestep == 0.02 and observation_swapped.frame_skip == 1
    observation, _ = observation_swapped.reset(seed=0)
    assert observation.shape == (105,) and abs(observation[0] - 0.55) < 0.05  # qpos[2:]: height first
    observation_swapped.set_task({"velocity": 1.0})
    x_before = observation_swapped.data.qpos[0]
    *_, info = observation_swapped.step(np.zeros(8))
    assert info["x_velocity"] == pytest.approx((observation_swapped.data.qpos[0] - x_before) / 0.02, abs=1e-12)


def test_the_velocity_is_its_own_part_and_defaults_to_the_observations():
    """rllab's 125 dims with the root's displacement rewarded, and Gymnasium's 105 dims with the centre of
    mass's velocity rewarded; left out, the velocity is the observation's source, as before the split."""
    assert AntParts(observation="gymnasium") == AntParts(observation="gymnasium", velocity="gymnasium")
    assert AntParts() == AntParts(velocity="rllab") and AntParts(model="gymnasium").velocity == "rllab"
    for observation, velocity, dim in (("rllab", "gymnasium", 125), ("gymnasium", "rllab", 105)):
        env = gymnasium.make(IDS[0], model="gymnasium", observation=observation, velocity=velocity).unwrapped
        env.set_task({"velocity": 1.0})
        assert env.reset(seed=0)[0].shape == (dim,)
        for _ in range(5):
            x_before = env.data.qpos[0]
            *_, info = env.step(np.full(8, 0.5))
            root = (env.data.qpos[0] - x_before) / env.dt
            centre_of_mass = rllab_comvel(env.model, env.data, 1)[0]
            assert abs(root - centre_of_mass) > 1e-6, "the two velocities must differ for the test to tell them apart"
            expected = centre_of_mass if velocity == "rllab" else root
            assert info["x_velocity"] == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize("env_id", IDS)
@pytest.mark.parametrize("parts", PARTS, ids=lambda parts: "+".join(f"{k}={v}" for k, v in parts.items()))
def test_batched_env_with_swapped_parts_gives_the_single_envs_transitions(env_id, parts):
    vector = gymnasium.make_vec(env_id, 2, max_episode_steps=12, **parts)
    singles = [gymnasium.make(env_id, max_episode_steps=12, **parts) for _ in range(2)]
    rng = np.random.default_rng(5)
    tasks = singles[0].unwrapped.sample_tasks(2, rng)
    vector.set_attr("task", tasks)
    actions = rng.uniform(-1.5, 1.5, (12, 2, 8))
    v_observation, _ = vector.reset(seed=[8, 9])
    steps = [vector.step(action) for action in actions]
    for i, single in enumerate(singles):
        transitions = rollout(single, tasks[i], 8 + i, actions[:, i])
        np.testing.assert_array_equal(transitions[0], v_observation[i])
        for (observation, reward, terminated, _, info), v_step in zip(transitions[1:], steps, strict=False):
            np.testing.assert_array_equal(observation, v_step[0][i])
            assert (reward, terminated) == (v_step[1][i], v_step[2][i])
            assert info["x_velocity"] == v_step[4]["x_velocity"][i]


def test_an_unknown_part_source_is_a_config_error_naming_the_choices():
    with pytest.raises(ConfigError, match="do not fit .*: model must be 'rllab' or 'gymnasium', got 'mujoco'"):
        make_task_env(IDS[0], {"model": "mujoco"})
    with pytest.raises(EnvOptionError, match="observation must be 'rllab' or 'gymnasium', got 'rlab'"):
        gymnasium.make_vec(IDS[1], 2, observation="rlab")
    with pytest.raises(EnvOptionError, match="velocity must be 'rllab' or 'gymnasium', got 'com'"):
        gymnasium.make(IDS[0], velocity="com")
