"""The env checker names each promise a task env breaks, and passes metarl's own envs and the README's example."""

import subprocess
import sys

import pytest
from conftest import REPO_ROOT, subprocess_env

from metarl.env_check import EnvCheckError, check_env, env_problems

MODULE = "tests.task_envs_for_checks"


@pytest.mark.parametrize(
    "env_id",
    [
        "metarl/Navigation2D-v0",
        "metarl/HalfCheetahDir-v0",
        "metarl/AntGoal-v0",
        "tests.custom_env_for_tests:Point1D-v0",
    ],
)
def test_metarls_envs_and_the_custom_example_pass(env_id):
    check_env(env_id)


@pytest.mark.parametrize(
    "name, fragments",
    [
        ("TaskIgnored-v0", ["rewards are the same whatever the task"]),
        ("GlobalRandomness-v0", ["sample_tasks draws other tasks", "same task, seed and actions give another episode"]),
        ("TaskElsewhere-v0", ["set_task(task) leaves env.task another value", "vector env"]),
        ("DiscreteActions-v0", ["action space is Discrete(3), not a flat Box"]),
        ("NoHorizon-v0", ["registers no max_episode_steps"]),
    ],
)
def test_each_broken_promise_is_named(name, fragments):
    problems = env_problems(f"{MODULE}:{name}", {})
    for fragment in fragments:
        assert any(fragment in problem for problem in problems), problems
    assert len(problems) == len(fragments), problems  # and nothing else is blamed


def test_check_env_raises_with_every_problem_and_the_shell_command_exits_1():
    with pytest.raises(EnvCheckError, match=r"fails 2 check\(s\):\n- sample_tasks"):
        check_env(f"{MODULE}:GlobalRandomness-v0")
    command = [sys.executable, "-m", "metarl.env_check", f"{MODULE}:TaskIgnored-v0"]
    result = subprocess.run(command, cwd=REPO_ROOT, env=subprocess_env(), capture_output=True, text=True, timeout=120)
    assert result.returncode == 1 and "rewards are the same whatever the task" in result.stderr
    assert "Traceback" not in result.stderr
