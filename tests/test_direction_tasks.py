"""The direction families' ``backward_probability``: by default the draws of a fair coin, exactly as before
the option existed; 3/7 as the paper's code drew them at the ICML deadline; the same tasks from the single
env (``gymnasium.make``) and the vector env (``envs.make_task_vector_env``), the two roads a config's
``env_kwargs`` take; and a bad value refused in one line."""

from __future__ import annotations

import math
import pickle

import gymnasium
import numpy as np
import pytest

import envs
from envs.base import EnvOptionError
from envs.task_families import PAPER_CODE_BACKWARD_PROBABILITY, DirectionTasks
from metarl.config import ConfigError
from metarl.parts import make_task_env

DIRECTION_IDS = ["metarl/HalfCheetahDir-v0", "metarl/AntDir-v0"]
DRAWS = 70_000


def backward_fraction(tasks: list) -> float:
    return float(np.mean([task["direction"] == -1.0 for task in tasks]))


def test_the_default_draws_are_the_fair_coin_draws_committed_runs_made():
    expected = [{"direction": float(d)} for d in 2 * np.random.default_rng(7).binomial(1, 0.5, size=500) - 1]
    assert DirectionTasks().sample_tasks(500, np.random.default_rng(7)) == expected


@pytest.mark.parametrize("env_id", DIRECTION_IDS)
def test_the_envs_default_is_one_half(env_id):
    single = gymnasium.make(env_id)
    vector = envs.make_task_vector_env(env_id, 2, max_episode_steps=200)
    try:
        assert single.unwrapped.task_family == DirectionTasks(0.5)
        assert vector.task_family == DirectionTasks(0.5)
        expected = DirectionTasks().sample_tasks(100, np.random.default_rng(3))
        assert single.unwrapped.sample_tasks(100, np.random.default_rng(3)) == expected
        assert vector.sample_tasks(100, np.random.default_rng(3)) == expected
    finally:
        single.close()
        vector.close()


def test_the_paper_codes_probability_is_three_sevenths():
    assert PAPER_CODE_BACKWARD_PROBABILITY == 3 / 7  # U(0.1, 0.8) below 0.4: 0.3 / 0.7


@pytest.mark.parametrize("probability", [0.0, PAPER_CODE_BACKWARD_PROBABILITY, 0.5, 0.9, 1.0])
def test_backward_tasks_come_with_the_asked_frequency(probability):
    tasks = DirectionTasks(probability).sample_tasks(DRAWS, np.random.default_rng(11))
    assert {task["direction"] for task in tasks} <= {-1.0, 1.0}
    standard_error = math.sqrt(probability * (1 - probability) / DRAWS)
    assert abs(backward_fraction(tasks) - probability) <= 5 * standard_error


@pytest.mark.parametrize("env_id", DIRECTION_IDS)
def test_single_and_vector_envs_draw_the_same_tasks_with_the_kwarg(env_id):
    kwargs = {"backward_probability": PAPER_CODE_BACKWARD_PROBABILITY}
    single = make_task_env(env_id, kwargs)  # the road of the config's env_kwargs to the task distribution
    vector = envs.make_task_vector_env(env_id, 3, max_episode_steps=200, **kwargs)  # ... and to the samplers
    try:
        drawn = single.unwrapped.sample_tasks(DRAWS, np.random.default_rng(5))
        assert vector.sample_tasks(DRAWS, np.random.default_rng(5)) == drawn
        assert abs(backward_fraction(drawn) - 3 / 7) <= 5 * math.sqrt(3 / 7 * 4 / 7 / DRAWS)
        assert backward_fraction(drawn) < 0.45  # and not the default's 1/2
        # The option changes which tasks are drawn, not what a task is: a step is rewarded as without it.
        vector.set_attr("task", [{"direction": -1.0}] * 3)
        vector.reset(seed=0)
        single.unwrapped.set_task({"direction": -1.0})
        single.reset(seed=0)
        action = np.full(single.action_space.shape, 0.3, dtype=np.float32)
        _, reward, *_ = single.step(action)
        _, rewards, *_ = vector.step(np.stack([action] * 3))
        assert reward == pytest.approx(rewards[0], abs=1e-12)
    finally:
        single.close()
        vector.close()


@pytest.mark.parametrize("env_id", DIRECTION_IDS)
def test_the_option_survives_pickling(env_id):
    env = gymnasium.make(env_id, backward_probability=0.25)
    try:
        copy = pickle.loads(pickle.dumps(env.unwrapped))
        assert copy.task_family == DirectionTasks(0.25)
        copy.close()
    finally:
        env.close()


@pytest.mark.parametrize("bad", [1.5, -0.1, math.nan, "3/7", True, None])
def test_a_bad_probability_is_refused_in_one_line(bad):
    with pytest.raises(ValueError, match="backward_probability") as raised:
        DirectionTasks(bad)
    assert "\n" not in str(raised.value)


def test_a_bad_probability_in_env_kwargs_is_a_config_error():
    with pytest.raises(ConfigError, match=r"env_kwargs do not fit metarl/AntDir-v0: backward_probability .* got 1\.5"):
        make_task_env("metarl/AntDir-v0", {"backward_probability": 1.5})
    with pytest.raises(EnvOptionError, match="backward_probability"):
        envs.make_task_vector_env("metarl/HalfCheetahDir-v0", 2, backward_probability=-1)
