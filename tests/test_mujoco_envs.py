"""The MuJoCo task envs: rewards by hand from the MuJoCo state, task sampling, termination, horizon,
batched == single step by step, Gymnasium's APIs, and no MuJoCo log file in the working directory."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import gymnasium
import mujoco
import numpy as np
import pytest

import envs
from envs.ant import ANT
from envs.batched_mujoco import BatchedMujoco
from envs.locomotion import terminated_batch
from envs.mujoco_model import ARENA_BYTES, load_model, model_path
from metarl.config import TrainConfig, load_config, read_config_file, to_dict

CHEETAH_IDS = ["metarl/HalfCheetahVel-v0", "metarl/HalfCheetahDir-v0"]
ANT_IDS = ["metarl/AntVel-v0", "metarl/AntDir-v0", "metarl/AntGoal-v0"]
ALL_IDS = CHEETAH_IDS + ANT_IDS
FRAME_SKIP = {"cheetah": 1, "ant": 2}  # the paper's code's control periods: 0.01 s and 0.02 s (two 0.01 s steps)


def dt(env_id: str) -> float:
    return 0.01 if "Cheetah" in env_id else 0.02


def make_single(env_id: str, **kwargs):
    return gymnasium.make(env_id, **kwargs)


def random_actions(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    # Beyond the control range on purpose: MuJoCo clamps the controls, and so must the control cost.
    return rng.uniform(-1.5, 1.5, size=shape).astype(np.float32)


def hand_reward(env_id: str, task: dict, x_before: float, qpos: np.ndarray, action: np.ndarray, cfrc_ext):
    """The issue's reward table, written out independently of envs/."""
    v = (qpos[0] - x_before) / dt(env_id)
    a2 = float(np.sum(np.clip(np.asarray(action, dtype=np.float64), -1.0, 1.0) ** 2))
    if env_id == "metarl/HalfCheetahVel-v0":
        return {"reward_task": -abs(v - task["velocity"]), "reward_ctrl": -0.05 * a2}
    if env_id == "metarl/HalfCheetahDir-v0":
        return {"reward_task": task["direction"] * v, "reward_ctrl": -0.05 * a2}
    terms = {
        "reward_ctrl": -0.005 * a2,
        "reward_contact": -0.0005 * float(np.sum(np.clip(cfrc_ext, -1.0, 1.0) ** 2)),
        "reward_survive": 0.05,
    }
    if env_id == "metarl/AntVel-v0":
        terms["reward_task"] = -abs(v - task["velocity"]) + 1.0
    elif env_id == "metarl/AntDir-v0":
        terms["reward_task"] = task["direction"] * v
    else:
        gx, gy = task["goal"]
        terms["reward_task"] = -(abs(qpos[0] - gx) + abs(qpos[1] - gy)) + 4.0
    return terms


@pytest.mark.parametrize("env_id", ALL_IDS)
def test_reward_components_match_hand_computation_from_mujoco_state(env_id):
    env = make_single(env_id)
    base = env.unwrapped
    rng = np.random.default_rng(0)
    contact_costs = []
    for task in base.sample_tasks(3, rng):
        base.set_task(task)
        env.reset(seed=int(rng.integers(1000)))
        for _ in range(8):
            action = random_actions(rng, env.action_space.shape)
            x_before = float(base.data.qpos[0])
            _, reward, _, _, info = env.step(action)
            expected = hand_reward(env_id, task, x_before, base.data.qpos.copy(), action, base.data.cfrc_ext.copy())
            for name, value in expected.items():
                assert info[name] == pytest.approx(value, rel=1e-12, abs=1e-12), name
            assert reward == pytest.approx(sum(expected.values()), rel=1e-12, abs=1e-12)
            assert info["x_velocity"] == pytest.approx((base.data.qpos[0] - x_before) / dt(env_id), rel=1e-12)
            contact_costs.append(info.get("reward_contact", 0.0))
    if env_id in ANT_IDS:
        assert min(contact_costs) < 0.0, "the contact forces were never computed"


@pytest.mark.parametrize("env_id", ["metarl/HalfCheetahVel-v0", "metarl/AntVel-v0"])
def test_x_position_is_the_torso_origin(env_id):
    """qpos[0] (our x) is where MuJoCo's kinematics put the torso body, for both robots."""
    base = make_single(env_id).unwrapped
    base.reset(seed=0)
    for _ in range(3):
        base.step(base.action_space.sample())
    data = mujoco.MjData(base.model)
    data.qpos[:], data.qvel[:] = base.data.qpos, base.data.qvel
    mujoco.mj_kinematics(base.model, data)
    assert data.body("torso").xpos[0] == pytest.approx(base.data.qpos[0], abs=1e-12)


@pytest.mark.parametrize("env_id", ALL_IDS)
def test_sample_tasks_is_deterministic_covers_its_range_and_is_picklable(env_id):
    base = make_single(env_id).unwrapped
    tasks = base.sample_tasks(2000, np.random.default_rng(7))
    assert tasks == base.sample_tasks(2000, np.random.default_rng(7))
    assert tasks != base.sample_tasks(2000, np.random.default_rng(8))
    assert pickle.loads(pickle.dumps(tasks)) == tasks
    (key,) = tasks[0].keys()
    values = np.array([t[key] for t in tasks], dtype=np.float64).reshape(len(tasks), -1)
    assert all(type(v) is float for t in tasks for v in (t[key] if key == "goal" else (t[key],)))
    if key == "direction":
        assert set(values.ravel()) == {-1.0, 1.0}
        assert np.mean(values > 0) == pytest.approx(0.5, abs=0.05)
        return
    low, high = {"metarl/HalfCheetahVel-v0": (0, 2), "metarl/AntVel-v0": (0, 3), "metarl/AntGoal-v0": (-3, 3)}[env_id]
    assert values.min() >= low and values.max() <= high
    span = high - low
    assert np.all(values.min(axis=0) < low + 0.01 * span) and np.all(values.max(axis=0) > high - 0.01 * span)
    assert np.all(np.abs(values.mean(axis=0) - (low + high) / 2) < 0.05 * span)


def test_set_task_changes_the_reward_a_cheetah_at_1_m_s_prefers_goal_1_over_2():
    base = make_single("metarl/HalfCheetahVel-v0").unwrapped
    rewards, velocities = {}, {}
    for goal in (1.0, 2.0):
        base.set_task({"velocity": goal})
        base.reset(seed=3)
        qvel = base.data.qvel.copy()
        qvel[0] = 1.0  # the torso slides forward at 1 m/s
        base.set_state(base.data.qpos.copy(), qvel)
        _, rewards[goal], _, _, info = base.step(np.zeros(6))
        velocities[goal] = info["x_velocity"]
    assert velocities[1.0] == velocities[2.0] == pytest.approx(1.0, abs=0.1)
    assert rewards[1.0] > rewards[2.0]
    assert rewards[1.0] - rewards[2.0] == pytest.approx(1.0, abs=0.2)


@pytest.mark.parametrize("env_id", ["metarl/HalfCheetahDir-v0", "metarl/AntDir-v0"])
def test_direction_task_flips_the_sign_of_the_forward_term(env_id):
    base = make_single(env_id).unwrapped
    task_terms = {}
    for direction in (1.0, -1.0):
        base.set_task({"direction": direction})
        base.reset(seed=5)
        qvel = base.data.qvel.copy()
        qvel[0] = 1.0
        base.set_state(base.data.qpos.copy(), qvel)
        task_terms[direction] = base.step(np.zeros(base.action_space.shape))[4]["reward_task"]
    assert task_terms[1.0] > 0.5 and task_terms[-1.0] == -task_terms[1.0]
    with pytest.raises(ValueError):
        base.set_task({"direction": 0.5})


def test_ant_goal_rewards_being_near_the_goal():
    base = make_single("metarl/AntGoal-v0").unwrapped
    base.reset(seed=0)
    x, y = base.data.qpos[:2]
    base.set_task({"goal": (float(x), float(y))})
    near = base.step(np.zeros(8))[4]["reward_task"]
    base.reset(seed=0)
    base.set_task({"goal": (3.0, -3.0)})
    far = base.step(np.zeros(8))[4]["reward_task"]
    assert near > 3.9 and far < -1.0


@pytest.mark.parametrize("vectorized", [False, True])
def test_ant_terminates_when_it_leaves_the_height_range_and_then_stays_ended(vectorized):
    if vectorized:
        env = gymnasium.make_vec("metarl/AntVel-v0", 2)
        sim = env.unwrapped.sim
        env.reset(seed=0)
        qpos = sim.qpos_NQ[1].copy()
        qpos[2] = 1.5  # thrown into the air: above the healthy range
        sim.set_state(1, qpos, sim.qvel_NV[1].copy())
        _, reward, terminated, truncated, _ = env.step(np.zeros((2, 8), dtype=np.float32))
        assert terminated.tolist() == [False, True] and not truncated.any() and reward[1] != 0.0
        time_after = sim.datas[1].time
        _, reward, terminated, truncated, _ = env.step(np.ones((2, 8), dtype=np.float32))
        assert reward[1] == 0.0 and not terminated[1] and not truncated[1]
        assert sim.datas[1].time == time_after, "an ended env was simulated"
    else:
        env = make_single("metarl/AntVel-v0")
        env.reset(seed=0)
        qpos = env.unwrapped.data.qpos.copy()
        qpos[2] = 1.5
        env.unwrapped.set_state(qpos, env.unwrapped.data.qvel.copy())
        assert env.step(np.zeros(8, dtype=np.float32))[2] is True
        env.reset(seed=0)
        assert env.step(np.zeros(8, dtype=np.float32))[2] is False


def test_termination_rule_is_the_torso_height_range():
    heights = np.array([0.19, 0.2, 0.5, 1.0, 1.01])
    qpos = np.zeros((5, 15))
    qpos[:, 2] = heights
    assert terminated_batch(ANT, qpos, np.zeros((5, 14))).tolist() == [True, False, False, False, True]
    qvel = np.zeros((5, 14))
    qvel[2, 0] = np.nan
    assert terminated_batch(ANT, qpos, qvel)[2]


@pytest.mark.parametrize("env_id", ["metarl/HalfCheetahDir-v0", "metarl/AntDir-v0"])
def test_episodes_are_truncated_at_the_horizon(env_id):
    assert gymnasium.spec(env_id).max_episode_steps == 200
    single = make_single(env_id)
    vector = gymnasium.make_vec(env_id, 2)
    single.reset(seed=1)
    vector.reset(seed=[1, 2])
    vector.unwrapped.set_attr("task", [{"direction": 1.0}] * 2)
    for t in range(1, 201):
        # Zero actions: the ant stands still and does not terminate.
        _, _, terminated, truncated, _ = single.step(np.zeros(single.action_space.shape, dtype=np.float32))
        _, _, v_terminated, v_truncated, _ = vector.step(np.zeros(vector.action_space.shape, dtype=np.float32))
        assert not terminated and not v_terminated.any()
        assert truncated == (t == 200) and v_truncated.tolist() == [t == 200] * 2
    short = gymnasium.make_vec(env_id, 2, max_episode_steps=3)
    short.reset(seed=0)
    truncations = [short.step(np.zeros(short.action_space.shape))[3].tolist() for _ in range(4)]
    assert truncations == [[False, False], [False, False], [True, True], [False, False]]


def _compare(step_single, step_vector, i):
    observation, reward, terminated, truncated, info = step_single
    v_observation, v_reward, v_terminated, v_truncated, v_info = step_vector
    assert np.array_equal(observation, v_observation[i])
    assert reward == v_reward[i]
    assert (terminated, truncated) == (v_terminated[i], v_truncated[i])
    for name, value in info.items():
        assert value == v_info[name][i], name


@pytest.mark.parametrize("env_id", ALL_IDS)
def test_batched_env_gives_the_registered_env_transitions_step_by_step(env_id):
    """Same seeds, tasks and actions: bit-identical observations, rewards, terminations, infos."""
    num_envs, horizon = 3, 12
    rng = np.random.default_rng(42)
    vector = gymnasium.make_vec(env_id, num_envs, max_episode_steps=horizon)
    assert type(vector).__name__.endswith("VectorEnv") and hasattr(vector.unwrapped, "sim")
    singles = [make_single(env_id, max_episode_steps=horizon) for _ in range(num_envs)]
    tasks = singles[0].unwrapped.sample_tasks(num_envs, rng)
    vector.set_attr("task", tasks)
    for single, task in zip(singles, tasks, strict=True):
        single.unwrapped.set_task(task)

    for seeds in ([11, 12, 13], None, [21, 22, 23]):  # None: every env goes on with its own generator
        v_observation, _ = vector.reset(seed=seeds)
        for i, single in enumerate(singles):
            observation, _ = single.reset(seed=None if seeds is None else seeds[i])
            assert np.array_equal(observation, v_observation[i])
        running = np.ones(num_envs, dtype=bool)
        for t in range(horizon + 2):
            if env_id in ANT_IDS and t == 4:  # throw env 1 into the air: it terminates on the next step
                qpos = singles[1].unwrapped.data.qpos.copy()
                qpos[2] = 1.5
                qvel = singles[1].unwrapped.data.qvel.copy()
                singles[1].unwrapped.set_state(qpos, qvel)
                vector.unwrapped.sim.set_state(1, qpos, qvel)
            actions = random_actions(rng, vector.action_space.shape)
            frozen = vector.unwrapped.sim.state_NS.copy()
            step_vector = vector.step(actions)
            for i, single in enumerate(singles):
                if running[i]:
                    _compare(single.step(actions[i]), step_vector, i)
                else:
                    assert step_vector[1][i] == 0.0 and not step_vector[2][i] and not step_vector[3][i]
                    assert np.array_equal(vector.unwrapped.sim.state_NS[i], frozen[i])
            running &= ~(step_vector[2] | step_vector[3])
        assert not running.any()
        if env_id in ANT_IDS:
            assert vector.unwrapped.elapsed_steps.tolist() == [horizon, 5, horizon]


def test_vectorized_sampler_returns_the_same_episodes_as_gymnasium_sync_vector_env():
    """The trainer's rollout code on our batched env and on Gymnasium's SyncVectorEnv of our single envs."""
    torch = pytest.importorskip("torch")
    from gymnasium.vector import AutoresetMode

    from metarl.policies import GaussianMLPPolicy, parameters_of
    from metarl.samplers.rollout import run_episodes, slots_for

    env_id, horizon = "metarl/AntGoal-v0", 15
    batched = envs.make_task_vector_env(env_id, 4, max_episode_steps=horizon)
    synced = gymnasium.make_vec(
        env_id,
        4,
        vectorization_mode="sync",
        vector_kwargs={"autoreset_mode": AutoresetMode.DISABLED},
        max_episode_steps=horizon,
    )
    torch.manual_seed(0)
    policy = GaussianMLPPolicy(107, 8, hidden_sizes=(16,))
    tasks = batched.unwrapped.sample_tasks(2, np.random.default_rng(0))
    params = [parameters_of(policy)] * 2
    slots = slots_for(2, 2)
    ours = run_episodes(batched, policy, tasks, params, slots, (1, 0, 0), horizon)
    theirs = run_episodes(synced, policy, tasks, params, slots, (1, 0, 0), horizon)
    for name in ("observations_TNO", "actions_TNA", "rewards_TN", "lengths_N"):
        assert np.array_equal(getattr(ours, name), getattr(theirs, name)), name


OBSERVATION_SHAPES = {**{i: (17,) for i in CHEETAH_IDS}, **{i: (105,) for i in ANT_IDS}, "metarl/AntGoal-v0": (107,)}


@pytest.mark.parametrize("vectorized", [False, True], ids=["single", "batched"])
def test_the_goal_position_ant_observes_where_its_torso_is(vectorized):
    """Its reward is the distance to a goal: a memoryless policy needs its own x and y to walk there
    (the paper's code observed the full qpos); the other Ant tasks keep Gymnasium's 105 dims."""
    if vectorized:
        env = envs.make_task_vector_env("metarl/AntGoal-v0", 2, max_episode_steps=20)
        qpos = lambda: env.unwrapped.sim.qpos_NQ  # noqa: E731
    else:
        env = gymnasium.make("metarl/AntGoal-v0")
        qpos = lambda: env.unwrapped.data.qpos[None]  # noqa: E731
    observation, _ = env.reset(seed=3)
    for _ in range(10):
        observation, *_ = env.step(env.action_space.sample())
    observation = np.atleast_2d(observation)
    assert observation.shape[-1] == 107
    np.testing.assert_array_equal(observation[:, :2], qpos()[:, :2])
    assert np.abs(observation[:, :2]).max() > 0.01  # it moved: the x, y are live, not zeros


@pytest.mark.parametrize("env_id", ALL_IDS)
def test_gymnasium_make_and_make_vec_work(env_id):
    env = gymnasium.make(env_id)
    observation, _ = env.reset(seed=0)
    assert env.observation_space.contains(observation)
    assert observation.shape == OBSERVATION_SHAPES[env_id]
    assert env.step(env.action_space.sample())[0].shape == observation.shape
    copy = pickle.loads(pickle.dumps(env.unwrapped))
    assert copy.task == env.unwrapped.task
    for mode in ("sync", "vector_entry_point"):
        vector = gymnasium.make_vec(env_id, 3, vectorization_mode=mode)
        observations, _ = vector.reset(seed=0)
        assert observations.shape == (3, *observation.shape)
        assert vector.step(vector.action_space.sample())[1].shape == (3,)
        vector.close()


def test_our_model_is_gymnasiums_model_array_for_array(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # MuJoCo's own compile of half_cheetah.xml writes its log file here
    for xml in ("half_cheetah.xml", "ant.xml"):
        ours, theirs = load_model(xml), mujoco.MjModel.from_xml_path(model_path(xml))
        for name in dir(theirs):
            value = getattr(theirs, name)
            if isinstance(value, np.ndarray):
                mine = getattr(ours, name)
                if name == "_sizes":  # every size but the arena's (see ARENA_BYTES)
                    arena = (value == theirs.narena) & (mine == ours.narena)
                    assert arena.sum() == 1
                    value, mine = value[~arena], mine[~arena]
                assert np.array_equal(mine, value), (xml, name)
        for name in ("meanmass", "meaninertia", "meansize", "extent"):
            assert getattr(ours.stat, name) == getattr(theirs.stat, name), (xml, name)


@pytest.mark.parametrize("xml", ["half_cheetah.xml", "ant.xml"])
def test_each_envs_arena_is_small_yet_far_more_than_violent_motion_uses(xml, tmp_path, monkeypatch):
    """MuJoCo's default arena (14 MiB per Ant) times 800 envs is what grew the heap; ours holds a flipped,
    flailing robot's contacts and solver with 10x to spare."""
    monkeypatch.chdir(tmp_path)  # MuJoCo's own compile of half_cheetah.xml writes its log file here
    model = load_model(xml)
    assert model.narena == ARENA_BYTES < mujoco.MjModel.from_xml_path(model_path(xml)).narena
    rng = np.random.default_rng(0)
    most_used = 0
    for episode in range(4):
        data = mujoco.MjData(model)
        if episode % 2 and xml == "ant.xml":
            data.qpos[3:7] = [0.0, 1.0, 0.0, 0.0]  # upside down
        for _ in range(300):
            data.ctrl[:] = 3 * rng.uniform(-1, 1, model.nu)
            mujoco.mj_step(model, data, 2)
        assert data.maxuse_con > 0
        most_used = max(most_used, data.maxuse_arena)
    assert 0 < most_used * 10 < ARENA_BYTES


def test_an_overflowed_arena_stops_the_batched_env_with_the_fix():
    sim = BatchedMujoco(ANT, 2)
    sim.reset([0, 1], [0, 1])
    sim.check_arena([0, 1])
    sim.datas[1].warning[mujoco.mjtWarning.mjWARN_CONTACTFULL].number = 1  # as mj_collision sets it
    sim.check_arena([0])
    with pytest.raises(RuntimeError, match="overflowed in env 1 of ant.xml.*raise envs.mujoco_model.ARENA_BYTES"):
        sim.check_arena([1])


@pytest.mark.parametrize(
    ("env_id", "gym_id"), [("metarl/HalfCheetahVel-v0", "HalfCheetah-v5"), ("metarl/AntVel-v0", "Ant-v5")]
)
def test_observations_are_those_of_gymnasiums_v5_env(env_id, gym_id, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    frame_skip = FRAME_SKIP["cheetah" if "Cheetah" in env_id else "ant"]
    ours, theirs = make_single(env_id), gymnasium.make(gym_id, frame_skip=frame_skip)
    assert ours.unwrapped.dt == pytest.approx(dt(env_id), rel=1e-12)
    assert np.array_equal(ours.reset(seed=9)[0], theirs.reset(seed=9)[0])
    rng = np.random.default_rng(0)
    for _ in range(10):
        action = random_actions(rng, ours.action_space.shape)
        observation, _, terminated, _, info = ours.step(action)
        g_observation, _, g_terminated, _, g_info = theirs.step(action)
        assert np.array_equal(observation, g_observation) and terminated == g_terminated
        if gym_id == "HalfCheetah-v5":  # Gymnasium's Ant reads a one-sub-step-old xpos; the cheetah reads qpos[0]
            assert info["x_velocity"] == g_info["x_velocity"]


def test_envs_leave_the_working_directory_empty(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for env_id in ALL_IDS:
        env = gymnasium.make(env_id)
        env.reset(seed=0)
        env.step(env.action_space.sample())
        vector = gymnasium.make_vec(env_id, 2)
        vector.reset(seed=0)
        vector.step(vector.action_space.sample())
    assert os.listdir(tmp_path) == []


def test_mujoco_writes_a_log_file_for_gymnasiums_cheetah_which_is_why_we_compile_it_ourselves(tmp_path, monkeypatch):
    """The control for the test above: compiling Gymnasium's XML directly litters the directory."""
    monkeypatch.chdir(tmp_path)
    mujoco.MjModel.from_xml_path(model_path("half_cheetah.xml"))
    if not os.listdir(tmp_path):
        pytest.skip("this MuJoCo no longer logs the settotalmass deprecation; load_model's workaround is moot")
    assert os.listdir(tmp_path) == ["MUJOCO_LOG.TXT"]


MAX_STATED_KEYS = 20
"""The most keys a locomotion config states: the rest come from base/locomotion.yaml and TrainConfig's defaults."""


@pytest.mark.parametrize(
    ("config", "env_id", "episodes_per_task", "max_kl"),
    [  # the settings of the checkpoints the paper's test scripts evaluated (maml_rl maml_examples/test_maml_*.py)
        ("halfcheetah-vel.yaml", "metarl/HalfCheetahVel-v0", 10, 0.01),  # maml1_fbs10_mbs40_flr_0.1_mlr0.01
        ("halfcheetah-dir.yaml", "metarl/HalfCheetahDir-v0", 20, 0.02),  # maml1_fbs20_mbs40_flr_0.1_mlr0.02
        ("ant-vel.yaml", "metarl/AntVel-v0", 20, 0.01),  # maml1_fbs20_mbs40_flr_0.1_mlr0.01
        ("ant-dir.yaml", "metarl/AntDir-v0", 40, 0.01),  # maml1_fbs40_mbs40_flr_0.1_mlr0.01
        ("ant-goal.yaml", "metarl/AntGoal-v0", 20, 0.01),  # no test script; cluster_maml_trpo_ant.py's defaults
    ],
)
def test_configs_hold_the_papers_settings_for_a_registered_env(config, env_id, episodes_per_task, max_kl):
    path = Path(__file__).resolve().parent.parent / "launchers" / "configs" / config
    assert len(read_config_file(path)) <= MAX_STATED_KEYS
    values = to_dict(load_config(TrainConfig, path))
    assert values["env_id"] == env_id and env_id in gymnasium.registry
    assert values["episodes_per_task"] == episodes_per_task and values["trpo"]["max_kl"] == max_kl
    assert values["batch_unit"] == "transitions"  # the paper's code counted env steps per task
    paper = {
        "horizon": 200,
        "meta_batch_size": 40,
        "num_steps": 1,
        "inner_lr": 0.1,
        "gamma": 0.99,
        "gae_lambda": 1.0,
        "hidden_sizes": [100, 100],
        "nonlinearity": "relu",
        "first_order": False,
    }
    assert {key: values[key] for key in paper} == paper
    trpo = {"cg_iters": 10, "cg_damping": 1e-5, "ls_max_steps": 15, "ls_backtrack_ratio": 0.8}
    assert {key: values["trpo"][key] for key in trpo} == trpo
    assert values["sampler"]["backend"] == "vectorized"
