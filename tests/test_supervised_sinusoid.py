"""Sinusoid tasks, the evaluation helpers, a short meta-training run, and the sinusoid launcher end to end."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from run_helpers import launcher_module

import metarl.run_loop
from metarl.cli import Terminated
from metarl.config import ConfigError, load_config
from metarl.policies import parameters_of
from metarl.supervised.config import SinusoidConfig
from metarl.supervised.evaluation import adaptation_curve, pretrain_jointly, summarize
from metarl.supervised.meta_learning import MAML, mse_per_task
from metarl.supervised.models import MLPRegressor
from metarl.supervised.tasks import SinusoidDistribution

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CONFIG = REPO_ROOT / "launchers" / "configs" / "sinusoid.yaml"


def test_sinusoid_tasks_follow_the_paper_distribution():
    distribution = SinusoidDistribution()
    tasks = distribution.sample_tasks(2000, np.random.default_rng(0))
    amplitudes, phases = np.array([t.amplitude for t in tasks]), np.array([t.phase for t in tasks])
    assert 0.1 <= amplitudes.min() and amplitudes.max() <= 5.0 and 0.0 <= phases.min() and phases.max() <= math.pi
    assert amplitudes.mean() == pytest.approx(2.55, abs=0.1) and phases.mean() == pytest.approx(math.pi / 2, abs=0.1)
    batch = distribution.sample_batch(tasks[:3], 5, 7, np.random.default_rng(1))
    assert batch.support_inputs.shape == (3, 5, 1) and batch.query_targets.shape == (3, 7, 1)
    assert batch.support_inputs.abs().max() <= 5.0
    for i, task in enumerate(tasks[:3]):
        expected = task.amplitude * np.sin(batch.query_inputs[i].numpy() - task.phase)
        np.testing.assert_allclose(batch.query_targets[i].numpy(), expected, rtol=1e-5, atol=1e-5)
    again = distribution.sample(3, 5, 7, np.random.default_rng(1))
    assert torch.equal(again.support_inputs, distribution.sample(3, 5, 7, np.random.default_rng(1)).support_inputs)


def test_summary_half_width_is_student_t_over_tasks():
    curve = np.array([[1.0, 2.0, 3.0, 4.0], [0.0, 0.0, 1.0, 1.0]])  # [step, task]
    summary = summarize(curve, [0, 1])
    # t_{0.975, 3} = 3.182446 (tables); the standard error of [1, 2, 3, 4] is sqrt(5/3) / 2
    assert summary["step_0"]["mean"] == 2.5
    assert summary["step_0"]["ci95"] == pytest.approx(3.182446 * np.sqrt(5 / 3) / 2, rel=1e-5)
    assert summary["step_1"]["ci95"] == pytest.approx(3.182446 * np.sqrt(1 / 3) / 2, rel=1e-5)


def test_adaptation_curve_step_zero_is_the_unadapted_loss_and_steps_reduce_it():
    model = MLPRegressor(generator=torch.Generator().manual_seed(0))
    batch = SinusoidDistribution().sample(20, 10, 10, np.random.default_rng(0))
    batch = type(batch)(batch.support_inputs, batch.support_targets, batch.support_inputs, batch.support_targets)
    curve = adaptation_curve(model, parameters_of(model), batch, mse_per_task, 0.01, 3, chunk_size=7)
    assert curve.shape == (4, 20)
    with torch.no_grad():
        unadapted = ((model(batch.support_inputs) - batch.support_targets) ** 2).mean(dim=(1, 2))
    np.testing.assert_allclose(curve[0], unadapted.numpy(), rtol=1e-5)
    assert curve[3].mean() < curve[0].mean()  # small steps on the support set lower the support loss


@pytest.mark.slow
def test_short_sinusoid_meta_training_makes_adaptation_work():
    """After a short MAML run one inner step cuts the query MSE well below the unadapted MSE; a jointly
    pretrained network of the same budget gains much less from the same step."""
    torch.set_num_threads(1)
    distribution = SinusoidDistribution()
    model = MLPRegressor(generator=torch.Generator().manual_seed(0))
    maml = MAML(model, mse_per_task, 0.01, 1, 1e-3)
    for iteration in range(1000):
        maml.meta_step(distribution.sample(25, 5, 5, np.random.default_rng([0, iteration])))
    evaluation = distribution.sample(200, 5, 50, np.random.default_rng([1]))
    curve = adaptation_curve(model, parameters_of(model), evaluation, mse_per_task, 0.01, 1)
    pre, post = curve.mean(axis=1)
    print(f"pre {pre:.3f} post {post:.3f}")
    assert post < 0.6 * pre, (pre, post)

    baseline = MLPRegressor(generator=torch.Generator().manual_seed(0))
    pretrain_jointly(
        baseline, lambda it: distribution.sample(25, 5, 5, np.random.default_rng([2, it])), 1000, 1e-3, mse_per_task
    )
    baseline_pre, baseline_post = adaptation_curve(
        baseline, parameters_of(baseline), evaluation, mse_per_task, 0.01, 1
    ).mean(axis=1)
    print(f"baseline pre {baseline_pre:.3f} post {baseline_post:.3f}")
    assert post < 0.75 * baseline_post, (post, baseline_pre, baseline_post)


@pytest.mark.slow
def test_sinusoid_launcher_writes_a_complete_run(launcher, tmp_path):
    run_dir = tmp_path / "run"
    result = launcher(
        "sinusoid.py",
        "--output-dir",
        str(run_dir),
        "--quiet",
        "--set",
        "num_iterations=30",
        "--set",
        "baseline_iterations=30",
        "--set",
        "eval_tasks=40",
        "--set",
        "log_every=10",
        "--set",
        "eval_steps=[1,2]",
        "--set",
        "plot_tasks=2",
    )
    assert result.returncode == 0, result.stderr
    for name in [
        "config.yaml",
        "evaluation.json",
        "sinusoid_fits.png",
        "checkpoints/latest.pt",
        "checkpoints/baseline.pt",
    ]:
        assert (run_dir / name).is_file(), name
    assert list((run_dir / "train").glob("events.out.tfevents.*"))
    evaluation = json.loads((run_dir / "evaluation.json").read_text())
    assert set(evaluation["mse"]) == {"maml", "pretrained"}
    assert set(evaluation["mse"]["maml"]) == {"step_0", "step_1", "step_2", "curve_mean"}
    assert evaluation["eval_tasks"] == 40 and evaluation["training"]["iterations"] == 30
    assert evaluation["paper_k5"]["maml"]["step_1"] == 0.67
    assert "maml MSE on 40 tasks" in result.stdout

    again = launcher("sinusoid.py", "--output-dir", str(run_dir))
    assert again.returncode == 2 and again.stderr.startswith("error: ") and "already holds a run" in again.stderr


@pytest.mark.parametrize(
    "override, message",
    [
        ("algorithm=sgd", "algorithm must be one of maml, reptile"),
        ("num_shots=0", "num_shots must be positive"),
        ("num_stpes=2", "did you mean 'num_steps'"),
        ("first_order=true", "first_order applies to algorithm=maml only"),
        ("amplitude_range=[5, 1]", "amplitude_range must be [low, high]"),
    ],
)
def test_sinusoid_config_errors_name_the_key(override, message):
    overrides = [override, "algorithm=reptile"] if override.startswith("first_order") else [override]
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_config(SinusoidConfig, DEFAULT_CONFIG, overrides).validate()


def test_default_sinusoid_config_has_the_paper_values():
    config = load_config(SinusoidConfig, DEFAULT_CONFIG).validate()
    assert (config.inner_lr, config.meta_batch_size, config.meta_lr, config.num_iterations) == (0.01, 25, 0.001, 70000)
    assert config.hidden_sizes == [40, 40] and config.eval_tasks == 600 and config.eval_steps == [1, 5, 10]


def test_sinusoid_launcher_rejects_a_bad_config_in_one_line(launcher, tmp_path):
    result = launcher("sinusoid.py", "--output-dir", str(tmp_path / "run"), "--set", "num_stpes=2")
    assert result.returncode == 2
    assert result.stderr.startswith("error: ") and "did you mean 'num_steps'" in result.stderr
    assert result.stderr.count("\n") == 1 and not (tmp_path / "run").exists()


@pytest.mark.parametrize("stop", [KeyboardInterrupt, Terminated], ids=["ctrl-c", "sigterm"])
def test_a_run_stopped_before_its_first_checkpoint_is_one_line_and_the_same_command_runs_again(
    tmp_path, capsys, monkeypatch, stop
):
    """Ctrl-C (or SIGTERM) before the first checkpoint, injected as the run starts, removes the new run's
    directory with one line (nothing to resume), and the same command then starts it again."""
    module = launcher_module("sinusoid.py")
    sizes = ["num_iterations=2", "baseline_iterations=2", "eval_tasks=2", "eval_steps=[1]"]
    args = ["--output-dir", str(tmp_path / "run"), *[a for size in sizes for a in ("--set", size)], "--quiet"]

    def stopped(*_args, **_kwargs):
        raise stop

    with monkeypatch.context() as patch:
        patch.setattr("metarl.supervised.sinusoid.run_sinusoid", stopped)  # main imports it after parsing
        status = module.main(args)
    assert status == (143 if stop is Terminated else 130)
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "before the first checkpoint, so there is nothing to resume" in lines[0], lines
    assert not (tmp_path / "run").exists()
    assert module.main(args) == 0
    assert (tmp_path / "run" / "evaluation.json").is_file()


SHORT_RUN = ["num_iterations=4", "checkpoint_every=2", "log_every=1", "baseline_iterations=2", "eval_tasks=4"]


def test_a_stopped_run_resumes_to_the_numbers_of_one_that_never_stopped(tmp_path, capsys, monkeypatch):
    """Ctrl-C as iteration 4's checkpoint is saved leaves the run at its iteration-2 checkpoint with one line
    saying how to resume; --resume then ends with the evaluation and network of an uninterrupted run, and a
    second --resume finds it finished and changes nothing."""
    module = launcher_module("sinusoid.py")
    settings = [a for size in [*SHORT_RUN, "eval_steps=[1]", "plot_tasks=0"] for a in ("--set", size)]
    whole, stopped = tmp_path / "whole", tmp_path / "stopped"
    assert module.main(["--output-dir", str(whole), *settings, "--quiet"]) == 0
    real_save = metarl.run_loop.save_checkpoints

    def interrupted_fourth(run_dir, state, every):
        if state["iteration"] == 4:
            raise KeyboardInterrupt
        real_save(run_dir, state, every)

    with monkeypatch.context() as patch:
        patch.setattr(metarl.run_loop, "save_checkpoints", interrupted_fourth)
        assert module.main(["--output-dir", str(stopped), *settings, "--quiet"]) == 130
    assert capsys.readouterr().err.strip().splitlines() == [
        "interrupted after 2 iterations; the run can be resumed from its last complete checkpoint, "
        f"checkpoints/latest.pt; continue with: python launchers/sinusoid.py --resume {stopped}"
    ]
    assert module.main(["--resume", str(stopped), "--quiet"]) == 0

    def evaluation(run_dir):
        return json.loads((run_dir / "evaluation.json").read_text())["mse"]

    assert evaluation(stopped) == evaluation(whole)
    ours, reference = (torch.load(run / "checkpoints" / "latest.pt") for run in (stopped, whole))
    assert ours["iteration"] == reference["iteration"] == 4
    for name, value in reference["model"].items():
        assert torch.equal(ours["model"][name], value), name
    before = (stopped / "evaluation.json").read_bytes()
    capsys.readouterr()
    assert module.main(["--resume", str(stopped)]) == 0
    assert "is finished (4 of 4 iterations)" in capsys.readouterr().out
    assert (stopped / "evaluation.json").read_bytes() == before


@pytest.mark.parametrize("quiet", [False, True])
def test_the_pretrained_baseline_reports_progress_unless_quiet(tmp_path, capsys, monkeypatch, quiet):
    """The baseline's thousands of iterations take minutes: heartbeat lines say where it is (here every line, the
    heartbeat's interval set to zero), and --quiet silences them."""
    from metarl import heartbeat
    from metarl.supervised.sinusoid import run_sinusoid

    monkeypatch.setattr(heartbeat, "EVERY_S", 0.0)
    settings = ["num_iterations=2", "baseline_iterations=3", "eval_tasks=2", "log_every=1", "plot_tasks=0"]
    config = load_config(SinusoidConfig, None, settings).validate()
    (tmp_path / "checkpoints").mkdir()
    run_sinusoid(config, tmp_path, quiet=quiet)
    lines = [line for line in capsys.readouterr().out.splitlines() if "pretrained baseline" in line]
    assert [re.sub(r"\(\d+ s in\)", "(s in)", line) for line in lines] == (
        [] if quiet else [f"  pretrained baseline: iteration {i}/3 (s in)" for i in (1, 2, 3)]
    )
