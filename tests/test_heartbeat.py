"""Lines within a long step (sampling rounds, conjugate gradient, line search, evaluated methods, pretraining):
rate-limited, silenced by --quiet, and without any effect on a run's numbers."""

import io

import pytest
from run_helpers import assert_same_policy, latest_policy

import metarl.heartbeat
from metarl.heartbeat import Heartbeat


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def test_a_line_only_once_every_s_have_passed_since_the_step_began_or_its_last_line():
    clock, stream = Clock(), io.StringIO()
    heartbeat = Heartbeat(every_s=20, stream=stream, clock=clock)
    heartbeat.begin("iter 3/10")
    clock.now += 19
    heartbeat("sampling")  # a short step prints nothing
    clock.now += 2
    heartbeat("conjugate gradient 1/10")
    clock.now += 5
    heartbeat("conjugate gradient 2/10")  # 5 s after the last line
    clock.now += 20
    heartbeat("line search step 1/15")
    heartbeat.begin("iter 4/10")
    heartbeat("sampling")  # a new step counts from its start
    assert stream.getvalue().splitlines() == [
        "  iter 3/10: conjugate gradient 1/10 (21 s in)",
        "  iter 3/10: line search step 1/15 (46 s in)",
    ]


def test_quiet_never_prints():
    clock, stream = Clock(), io.StringIO()
    heartbeat = Heartbeat.unless(quiet=True)
    heartbeat.stream, heartbeat.clock = stream, clock
    heartbeat.begin("iter 1/1")
    clock.now += 1e9
    heartbeat("sampling")
    assert stream.getvalue() == ""


@pytest.fixture
def every_stage(monkeypatch):
    """Lines at every stage (EVERY_S = 0), so that a tiny run shows them all."""
    monkeypatch.setattr(metarl.heartbeat, "EVERY_S", 0.0)


def heartbeat_lines(stdout):
    return [line for line in stdout.splitlines() if line.startswith("  ")]


def test_training_tells_each_sampling_and_meta_update_stage_and_quiet_silences_it(
    every_stage, launcher_here, tiny_run_args, tmp_path
):
    loud = launcher_here("train.py", *tiny_run_args(num_iterations=2), "--output", tmp_path / "loud")
    assert loud.returncode == 0, loud.stderr
    lines = heartbeat_lines(loud.stdout)
    for stage in [
        "  iter 1/2: sampling 2 tasks' episodes before inner step 1 (sampling 1/2)",
        "  iter 1/2: sampling 2 tasks' query episodes (sampling 2/2)",
        "  iter 2/2: meta-update, conjugate gradient 10/10",
        "  iter 2/2: meta-update, line search step 1/15",
    ]:
        assert any(line.startswith(stage + " (") for line in lines), (stage, loud.stdout)
    quiet = launcher_here("train.py", *tiny_run_args(num_iterations=2), "--output", tmp_path / "quiet", "--quiet")
    assert quiet.returncode == 0 and heartbeat_lines(quiet.stdout) == [] and "iter " not in quiet.stdout
    assert_same_policy(latest_policy(tmp_path / "loud"), latest_policy(tmp_path / "quiet"))  # numbers unchanged


@pytest.mark.parametrize("algo", ["maml_ppo", "promp"])
def test_adam_meta_steps_are_told_too(every_stage, launcher_here, tiny_run_args, tmp_path, algo):
    objective = ["--set", "inner_objective=lvc"] if algo == "promp" else []
    result = launcher_here(
        "train.py", *tiny_run_args(num_iterations=1), "--set", f"algo={algo}", *objective, "--output", tmp_path / "run"
    )
    assert result.returncode == 0, result.stderr
    assert any(line.startswith("  iter 1/1: meta-update, Adam step 5/5 (") for line in heartbeat_lines(result.stdout))


def test_evaluation_tells_each_method_s_samplings_and_quiet_silences_it(every_stage, launcher_here, tiny_run, tmp_path):
    args = [tiny_run[0], "--num-tasks", "2", "--num-steps", "1", "--episodes-per-task", "2"]
    loud = launcher_here("evaluate.py", *args, "--output", tmp_path / "loud")
    assert loud.returncode == 0, loud.stderr
    lines = heartbeat_lines(loud.stdout)
    for method in ("maml", "random_init"):
        assert f"  evaluating {method}: sampling 2 tasks' query episodes (sampling 2/2) (0 s in)" in lines, loud.stdout
    quiet = launcher_here("evaluate.py", *args, "--output", tmp_path / "quiet", "--quiet")
    assert quiet.returncode == 0 and quiet.stdout == ""


def test_pretraining_tells_its_stages_and_quiet_silences_it(every_stage, launcher_here, tiny_run_args, tmp_path):
    loud = launcher_here("pretrain.py", *tiny_run_args(num_iterations=1), "--output", tmp_path / "loud")
    assert loud.returncode == 0, loud.stderr
    lines = [line.split(" (")[0] for line in heartbeat_lines(loud.stdout)]
    assert lines == ["  pretrain 1/1: sampling 2 tasks' episodes", "  pretrain 1/1: policy-gradient step"]
    quiet = launcher_here("pretrain.py", *tiny_run_args(num_iterations=1), "--output", tmp_path / "quiet", "--quiet")
    assert quiet.returncode == 0 and heartbeat_lines(quiet.stdout) == []
