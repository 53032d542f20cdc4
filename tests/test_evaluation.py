"""Evaluation on a short-trained 2D-navigation run: outputs, statistics, seed streams, bad input."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from run_helpers import launcher_main

import metarl.reporting.evaluation_output
from metarl.checkpoint import load_checkpoint
from metarl.config import TrainConfig, from_dict
from metarl.evaluation import EvalSettings, evaluate_policy, sample_test_tasks
from metarl.evaluation_run import evaluation_memory_need
from metarl.parts import build_policy, build_sampler, compute_device, make_task_env, open_task_env
from metarl.pretraining import Pretraining, PretrainSettings
from metarl.seeding import EVAL_TASKS, TRAIN_TASKS, task_rng
from metarl.trainer import Trainer

REPO = Path(__file__).resolve().parents[1]
NUM_TASKS, NUM_STEPS = 8, 2
TINY = dict(
    meta_batch_size=8, episodes_per_task=10, num_iterations=4, hidden_sizes=[32, 32], checkpoint_every=2, inner_lr=0.1
)


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory) -> Path:
    run_dir = tmp_path_factory.mktemp("nav") / "run"
    Trainer.start(from_dict(TrainConfig, TINY), run_dir).run(quiet=True)
    return run_dir


@pytest.fixture(scope="module")
def pretrained_checkpoint(tmp_path_factory) -> Path:
    run_dir = tmp_path_factory.mktemp("pretrain") / "run"
    config = from_dict(TrainConfig, TINY)
    Pretraining.start(config, PretrainSettings.matching(config, num_iterations=2), run_dir).run(quiet=True)
    return run_dir / "checkpoints" / "latest.pt"


@pytest.fixture(scope="module")
def evaluation_run(trained_run, pretrained_checkpoint, tmp_path_factory, launcher) -> tuple[Path, str]:
    """The evaluation's output directory and its console output."""
    output_dir = tmp_path_factory.mktemp("eval") / "out"
    result = launcher(
        "evaluate.py",
        "--run",
        trained_run,
        "--pretrained",
        pretrained_checkpoint,
        "--num-tasks",
        NUM_TASKS,
        "--num-steps",
        NUM_STEPS,
        "--output-dir",
        output_dir,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr
    return output_dir, result.stdout


@pytest.fixture(scope="module")
def evaluation(evaluation_run) -> Path:
    return evaluation_run[0]


def finite(value) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)


def test_json_structure_and_finite_values(evaluation):
    results = json.loads((evaluation / "evaluation.json").read_text())
    assert results["env_id"] == "metarl/Navigation2D-v0" and results["family"] == "2D navigation"
    assert set(results["methods"]) == {"maml", "random_init", "pretrained"}
    for entries in results["methods"].values():
        assert [entry["step"] for entry in entries] == list(range(NUM_STEPS + 1))
        for entry in entries:
            assert all(finite(entry[key]) for key in ("mean", "std_error", "ci_low", "ci_high"))
            assert entry["ci_low"] <= entry["mean"] <= entry["ci_high"]
            assert len(entry["task_returns"]) == NUM_TASKS and all(map(finite, entry["task_returns"]))
            assert entry["mean"] == pytest.approx(np.mean(entry["task_returns"]))
    settings = results["config"]["evaluation"]
    # the paper's test script sampled 4,000 steps (40 navigation episodes) per step, whatever the training K
    assert settings["num_tasks"] == NUM_TASKS and settings["episodes_per_task"] == 40
    assert settings["step_sizes"] == [0.1, 0.05]  # α, then α/2 as in the paper's test scripts
    # the baselines get the first step size the paper's navigation test script gave them (0.5), then half
    assert settings["step_sizes_by_method"] == {
        "maml": [0.1, 0.05],
        "random_init": [0.5, 0.25],
        "pretrained": [0.5, 0.25],
    }
    assert results["config"]["run"]["hidden_sizes"] == [32, 32]
    assert results["checkpoint"]["iteration"] == TINY["num_iterations"]
    assert results["checkpoint"]["machine"]["cpu_count"] >= 1  # the trainer records where it ran
    assert results["pretrained_checkpoint"]["iteration"] == 2
    assert results["paper"]["maml"] == [-40.41, -11.68, -3.33, -3.23]
    assert len(results["test_tasks"]) == NUM_TASKS


def test_console_says_what_plus_minus_is(evaluation_run):
    """report.py's "±" is a 95% half-width; the console's must not be mistaken for it."""
    stdout = evaluation_run[1]
    assert "± its standard error" in stdout and stdout.count("±") > 1


def test_plot_is_a_readable_png(evaluation):
    path = evaluation / "adaptation.png"
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    import matplotlib.image

    height, width, _ = matplotlib.image.imread(path).shape
    assert 400 <= width <= 3000 and 300 <= height <= 2000


def test_tensorboard_scalars_under_eval(evaluation):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    accumulator = EventAccumulator(str(evaluation))
    accumulator.Reload()
    tags = accumulator.Tags()["scalars"]
    expected = {"eval/maml/step_0", "eval/maml/step_2", "eval/random_init/adaptation", "eval/pretrained/step_1"}
    assert expected <= set(tags)
    assert [event.step for event in accumulator.Scalars("eval/maml/step_0")] == [TINY["num_iterations"]]


def test_maml_improves_from_step_0_to_step_1(evaluation):
    maml = json.loads((evaluation / "evaluation.json").read_text())["methods"]["maml"]
    assert maml[1]["mean"] > maml[0]["mean"]


def test_same_seed_same_returns(trained_run):
    """Every method is evaluated on identical tasks and episode seeds, so a rerun is bit-identical."""
    config = from_dict(TrainConfig, TINY)
    settings = EvalSettings(num_tasks=2, num_steps=1, episodes_per_task=4)
    device = compute_device(config)
    task_env = open_task_env(config, device, evaluation_memory_need(settings, config.hidden_sizes))
    policy = build_policy(config, task_env, device)
    sampler = build_sampler(config, policy, task_env.horizon)
    try:
        tasks = sample_test_tasks(task_env.tasks, 2, settings.seed)
        first = evaluate_policy(sampler, policy, tasks, settings, 0.99, 1.0, task_env.horizon)
        second = evaluate_policy(sampler, policy, tasks, settings, 0.99, 1.0, task_env.horizon)
    finally:
        sampler.close()
    np.testing.assert_array_equal(first, second)
    assert first.shape == (2, 2)


def test_batch_unit_of_the_test_protocol_is_the_runs_unless_asked(trained_run, tmp_path, capsys):
    """--batch-unit transitions samples whole episodes until K × horizon steps per step (the paper's test
    scripts); evaluation.json records the unit. Navigation episodes that reach the goal end early, so the
    paper's protocol may take more episodes, never fewer steps."""
    main = launcher_main("evaluate.py")
    recorded = {}
    for unit in (None, "transitions"):
        output_dir = tmp_path / str(unit)
        flags = [] if unit is None else ["--batch-unit", unit]
        args = ["--run", trained_run, "--num-tasks", "2", "--num-steps", "1", "--output-dir", output_dir, "--quiet"]
        assert main([str(a) for a in args + flags]) == 0
        recorded[unit] = json.loads((output_dir / "evaluation.json").read_text())["config"]["evaluation"]
    assert recorded[None]["batch_unit"] == "episodes"  # the run's own unit
    assert recorded["transitions"]["batch_unit"] == "transitions"
    with pytest.raises(SystemExit) as exit_info:  # argparse refuses it before anything runs
        main(["--run", str(trained_run), "--batch-unit", "steps"])
    assert exit_info.value.code == 2 and "invalid choice: 'steps'" in capsys.readouterr().err


@pytest.mark.parametrize("seed", [0, 1, 7, 12345])
def test_test_tasks_never_overlap_training_tasks(seed):
    experiment_tasks = make_task_env("metarl/Navigation2D-v0", {}).unwrapped
    test_goals = {task["goal"] for task in sample_test_tasks(experiment_tasks, 40, seed)}
    assert len(test_goals) == 40
    training_goals = {
        task["goal"]
        for it in range(1000)
        for task in experiment_tasks.sample_tasks(20, task_rng(seed, TRAIN_TASKS, it))
    }
    assert not test_goals & training_goals
    # Stream level, independent of the env: the raw draws of the test stream are none of training's.
    test_draws = task_rng(seed, EVAL_TASKS, 0).random(8)
    for it in range(1000):
        assert not np.array_equal(task_rng(seed, TRAIN_TASKS, it).random(8), test_draws)


def test_step_sizes_first_alpha_then_later():
    assert EvalSettings(num_steps=3, inner_lr=0.1, later_inner_lr=0.05).step_sizes() == [0.1, 0.05, 0.05]


def test_pretrained_checkpoint_is_loadable(pretrained_checkpoint):
    state = load_checkpoint(pretrained_checkpoint)
    assert {"policy", "iteration", "env_steps", "wall_time_s", "config", "env_id", "metarl_version"} <= set(state)
    assert state["method"] == "pretrained" and state["env_id"] == "metarl/Navigation2D-v0"


# --- bad input: one line "error: ...", exit 2, no traceback -------------------------------------------


def evaluate_error(capsys, *args) -> str:
    main = launcher_main("evaluate.py")
    assert main([str(a) for a in args] + ["--num-tasks", "1", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1
    return err


def test_missing_run_directory(capsys, tmp_path):
    assert "does not exist" in evaluate_error(capsys, "--run", tmp_path / "nowhere")
    assert "no config.yaml" in evaluate_error(capsys, "--run", tmp_path)


def test_missing_checkpoint(capsys, trained_run, tmp_path):
    assert "no checkpoint at" in evaluate_error(capsys, "--run", trained_run, "--checkpoint", tmp_path / "x.pt")
    run_copy = tmp_path / "copy"
    run_copy.mkdir()
    shutil.copy(trained_run / "config.yaml", run_copy / "config.yaml")
    assert "no checkpoint at" in evaluate_error(capsys, "--run", run_copy)


def test_corrupt_checkpoint(capsys, trained_run, tmp_path):
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(b"not a checkpoint")
    assert "corrupt or unreadable" in evaluate_error(capsys, "--run", trained_run, "--checkpoint", corrupt)
    foreign = tmp_path / "foreign.pt"
    torch.save({"weights": torch.zeros(2)}, foreign)
    assert "lacks policy, env_id" in evaluate_error(capsys, "--run", trained_run, "--checkpoint", foreign)


def test_checkpoint_of_another_env_or_architecture(capsys, trained_run, pretrained_checkpoint, tmp_path):
    state = load_checkpoint(trained_run / "checkpoints" / "latest.pt")
    other_env = tmp_path / "cheetah.pt"
    torch.save({**state, "env_id": "metarl/HalfCheetahVel-v0"}, other_env)
    err = evaluate_error(capsys, "--run", trained_run, "--checkpoint", other_env)
    assert "trained on metarl/HalfCheetahVel-v0" in err
    err = evaluate_error(capsys, "--run", trained_run, "--pretrained", other_env)
    assert "trained on metarl/HalfCheetahVel-v0" in err
    wider = tmp_path / "wider.pt"
    policy = {**state["policy"], "mean.0.weight": torch.zeros(64, 2), "mean.0.bias": torch.zeros(64)}
    torch.save({**state, "policy": policy}, wider)
    err = evaluate_error(capsys, "--run", trained_run, "--checkpoint", wider)
    assert "does not fit the run's policy: mean.0.weight has shape (64, 2)" in err


def test_other_bad_arguments(capsys, trained_run, evaluation):
    assert "at least 1" in evaluate_error(capsys, "--run", trained_run, "--num-steps", "0")
    assert "already holds evaluation.json" in evaluate_error(capsys, "--run", trained_run, "--output-dir", evaluation)
    if not torch.cuda.is_available():
        assert "CUDA is not available" in evaluate_error(capsys, "--run", trained_run, "--device", "cuda")


def test_launcher_error_has_no_traceback(tmp_path, launcher):
    result = launcher("evaluate.py", "--run", tmp_path / "nowhere")
    assert result.returncode == 2
    assert result.stderr.startswith("error: ") and "Traceback" not in result.stderr


def test_plot_without_paper_numbers(tmp_path):
    from metarl.reporting.plots import adaptation_plot

    entries = [{"step": k, "mean": -10.0 + k, "ci_low": -11.0 + k, "ci_high": -9.0 + k} for k in range(3)]
    path = adaptation_plot(tmp_path / "plot.png", {"maml": entries, "random_init": entries}, "no reference", None)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("full_at", ["evaluation.json", "adaptation.png"])
def test_full_disk_while_writing_results_is_one_line_and_leaves_no_truncated_file(
    trained_run, tmp_path, monkeypatch, capsys, full_at
):
    """ENOSPC half-way through evaluation.json, or through the plot written before it: exit 1 with one line,
    no traceback, nothing of the new output directory (no evaluation.json, partial or not, to block the rerun),
    and the rerun succeeds."""
    import errno

    from metarl.checkpoint import atomic_write_bytes

    def write_half_then_fill_the_disk(path, text):
        def write(file):
            file.write(text[: len(text) // 2].encode())
            raise OSError(errno.ENOSPC, "No space left on device")

        atomic_write_bytes(path, write)

    def plot_half_then_fill_the_disk(path, *args):
        path.write_bytes(b"\x89PNG\r\n")
        raise OSError(errno.ENOSPC, "No space left on device")

    output_dir = tmp_path / "out"
    args = [
        "--run",
        str(trained_run),
        "--num-tasks",
        "2",
        "--num-steps",
        "1",
        "--episodes-per-task",
        "2",
        "--output-dir",
        str(output_dir),
        "--quiet",
    ]
    if full_at == "evaluation.json":
        monkeypatch.setattr(metarl.reporting.evaluation_output, "atomic_write_text", write_half_then_fill_the_disk)
    else:
        monkeypatch.setattr(metarl.reporting.evaluation_output, "adaptation_plot", plot_half_then_fill_the_disk)
    assert launcher_main("evaluate.py")(args) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"error: cannot write the evaluation to {output_dir}"), err
    assert "No space left on device" in err and "run the same command again" in err
    assert not output_dir.exists()  # new, so removed with what was written of it
    monkeypatch.undo()
    assert launcher_main("evaluate.py")(args) == 0
    assert json.loads((output_dir / "evaluation.json").read_text())["config"]["evaluation"]["num_tasks"] == 2
    assert (output_dir / "adaptation.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
