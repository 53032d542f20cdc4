"""2D navigation: rewards, clipping, termination and truncation by hand; task sampling; vector = single env."""

import math
import pickle

import gymnasium
import numpy as np
import pytest

from envs import make_task_vector_env
from envs.navigation import Navigation2DEnv

NAVIGATION = "metarl/Navigation2D-v0"


def make_single(goal):
    env = gymnasium.make(NAVIGATION)
    env.unwrapped.set_task({"goal": goal})
    env.reset(seed=0)
    return env


def test_reward_is_minus_distance_after_scaled_clipped_move():
    """An action a moves the point by 0.1·clip(a, −1, 1) (rllab's normalize over the paper's point env);
    the reward is minus the distance to the goal after the move."""
    env = make_single((0.05, 0.0))
    assert env.action_space.low.tolist() == [-1.0, -1.0] and env.action_space.high.tolist() == [1.0, 1.0]
    observation, reward, terminated, truncated, _ = env.step(np.array([5.0, -0.3], dtype=np.float32))
    # move 0.1·(1, −0.3) = (0.1, −0.03): distance to (0.05, 0) is √(0.05² + 0.03²)
    np.testing.assert_allclose(observation, [0.1, -0.03], rtol=1e-6)
    assert reward == pytest.approx(-math.sqrt(0.05**2 + 0.03**2), rel=1e-6)
    assert not terminated and not truncated

    observation, reward, terminated, _, _ = env.step(np.array([-70.0, 0.3], dtype=np.float32))
    # move 0.1·(−1, 0.3) lands at (0, 0): distance 0.05
    np.testing.assert_allclose(observation, [0.0, 0.0], atol=1e-7)
    assert reward == pytest.approx(-0.05, rel=1e-6)
    assert not terminated


@pytest.mark.parametrize(
    "last_action, ends",
    [((0.901, 0.0), True), ((0.899, 0.0), False), ((0.95, 0.095), True), ((0.95, 0.105), False)],
)
def test_terminates_within_goal_tolerance(last_action, ends):
    """The episode terminates once the point is within 0.01 of the goal on both axes (the paper's code),
    and not before: (0.0099, 0) ends, (0.0101, 0) does not; (0.005, 0.0095) ends, (0.005, 0.0105) does not."""
    env = make_single((0.3, 0.0))
    for _ in range(2):
        _, _, terminated, _, _ = env.step(np.array([1.0, 0.0]))
        assert not terminated
    _, reward, terminated, truncated, _ = env.step(np.array(last_action))
    dx, dy = 0.3 - 0.2 - 0.1 * last_action[0], 0.1 * last_action[1]
    assert reward == pytest.approx(-math.hypot(dx, dy), abs=1e-9)
    assert terminated is ends and not truncated


def test_truncates_at_horizon_100():
    """gymnasium.make gives the registered horizon: truncation at step 100 exactly."""
    env = make_single((0.5, 0.5))
    assert env.spec.max_episode_steps == 100
    for step in range(1, 101):
        _, reward, terminated, truncated, _ = env.step(np.zeros(2, dtype=np.float32))
        assert reward == pytest.approx(-math.sqrt(0.5), rel=1e-6)
        assert not terminated
        assert truncated is (step == 100)


def test_sample_tasks_deterministic_and_in_range():
    """The same generator seed gives the same tasks; goals lie in [−0.5, 0.5]²; tasks pickle."""
    env = Navigation2DEnv()
    tasks = env.sample_tasks(200, np.random.default_rng(5))
    assert tasks == env.sample_tasks(200, np.random.default_rng(5))
    assert tasks != env.sample_tasks(200, np.random.default_rng(6))
    goals = np.array([task["goal"] for task in tasks])
    assert goals.shape == (200, 2)
    assert goals.min() >= -0.5 and goals.max() <= 0.5
    assert goals.min() < -0.4 and goals.max() > 0.4  # spread over the square, not a point
    assert pickle.loads(pickle.dumps(tasks)) == tasks
    vector_env = make_task_vector_env(NAVIGATION, 2)
    assert vector_env.unwrapped.sample_tasks(200, np.random.default_rng(5)) == tasks


def test_vector_env_matches_single_envs():
    """Each sub-env of the vector env steps exactly like its own single env, including early termination."""
    tasks = [{"goal": (0.05, 0.05)}, {"goal": (-0.3, 0.2)}, {"goal": (0.0, -0.12)}]
    horizon = 12
    rng = np.random.default_rng(0)
    # large random actions (clipped) for envs 1 and 2; env 0 and env 2 head straight for their goals
    actions_TNA = rng.uniform(-3.0, 3.0, size=(horizon, len(tasks), 2))
    actions_TNA[:, 0] = [0.5, 0.5]
    actions_TNA[:2, 2] = [[0.0, -1.0], [0.0, -0.25]]

    vector_env = make_task_vector_env(NAVIGATION, len(tasks), max_episode_steps=horizon)
    vector_env.set_attr("task", tasks)
    vector_observations, _ = vector_env.reset(seed=0)
    singles = [make_single(task["goal"]) for task in tasks]
    done = np.zeros(len(tasks), dtype=bool)
    ended_at = [None] * len(tasks)

    for t in range(horizon):
        observations, rewards, terminated, truncated, _ = vector_env.step(actions_TNA[t].astype(np.float32))
        for n, env in enumerate(singles):
            if done[n]:  # an ended episode stays ended: no reward, no movement, no new end
                assert rewards[n] == 0.0 and not terminated[n] and not truncated[n]
                np.testing.assert_array_equal(observations[n], vector_observations[n])
                continue
            observation, reward, single_terminated, _, _ = env.step(actions_TNA[t, n].astype(np.float32))
            np.testing.assert_array_equal(observations[n], observation)
            assert rewards[n] == pytest.approx(reward, rel=1e-12)
            assert terminated[n] == single_terminated
            assert truncated[n] == (t + 1 == horizon and not single_terminated)
            if terminated[n] or truncated[n]:
                done[n], ended_at[n] = True, t + 1
        vector_observations = observations

    assert ended_at[0] == 1 and ended_at[2] == 2  # reached the goal
    assert ended_at[1] == horizon  # truncated
