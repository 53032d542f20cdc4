"""The results-table generator, on a synthetic evaluation.json with known numbers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from run_helpers import launcher_main, launcher_module

import metarl.checkpoint
from metarl.reporting.report import family_table, headline_table, report, shortfalls, step_sizes_text

REPO = Path(__file__).resolve().parents[1]


def entry(step: int, returns: list[float], half_width: float) -> dict:
    mean = sum(returns) / len(returns)
    return {
        "step": step,
        "mean": mean,
        "std_error": half_width / 2,
        "ci_low": mean - half_width,
        "ci_high": mean + half_width,
        "num_tasks": len(returns),
        "confidence": 0.95,
        "task_returns": returns,
    }


def evaluation() -> dict:
    return {
        "env_id": "metarl/Navigation2D-v0",
        "family": "2D navigation",
        "checkpoint": {
            "path": "runs/nav/checkpoints/latest.pt",
            "iteration": 300,
            "env_steps": 23_000_000,
            "wall_time_s": 1500.0,
            "machine": None,
        },
        "pretrained_checkpoint": None,
        "config": {
            "evaluation": {"num_tasks": 2, "num_steps": 1, "episodes_per_task": 20, "seed": 1, "step_sizes": [0.1]}
        },
        "machine": {"cpu": "Test CPU", "cpu_count": 2, "torch": "2.13.0", "device": "cpu"},
        "evaluation_wall_time_s": 60.0,
        "methods": {
            "maml": [entry(0, [-40.0, -42.0], 1.0), entry(1, [-20.0, -22.0], 1.0)],
            "random_init": [entry(0, [-80.0, -82.0], 1.0), entry(1, [-70.0, -71.0], 1.0)],
        },
        "paper": {
            "maml": [-40.41, -11.68, -3.33, -3.23],
            "pretrained": [-40.81, -19.73, -11.72, -8.47],
            "random_init": [-82.66, -57.96, -53.84, -46.81],
            "oracle": -2.29,
            "episodes_per_task": 20,
        },
    }


def test_table_in_the_papers_form():
    text = family_table(evaluation())
    assert text.startswith("### 2D navigation")
    assert "| method | 0 steps | 1 step |" in text
    assert "| MAML (ours) | -41.00 ± 1.00 | -21.00 ± 1.00 |" in text
    assert "| MAML (paper) | -40.41 | -11.68 |" in text
    assert "| pretrained (paper) | -40.81 | -19.73 |" in text
    assert "| oracle (paper) | -2.29 |" in text
    assert "300 iterations, 23,000,000 env steps, 25m00s wall time" in text
    assert "Test CPU (2 cores)" in text


def test_the_batch_of_each_step_is_said_in_its_unit():
    results = evaluation()
    assert "; 20 episodes per step, step sizes" in family_table(results)
    results["config"]["evaluation"]["batch_unit"] = "transitions"
    assert "; whole episodes until 20 × horizon env steps per step, step sizes" in family_table(results)


def test_headline_table_puts_ours_beside_the_paper():
    """One row per evaluation; steps the evaluation did not run show a dash, the paper's number stays."""
    text = headline_table([evaluation()])
    assert "| task family | iteration | 0 steps | 1 step | 2 steps | 3 steps |" in text
    assert (
        "| 2D navigation | 300 | -41.00 ± 1.00 (paper -40.41) | -21.00 ± 1.00 (paper -11.68) "
        "| – (paper -3.33) | – (paper -3.23) |"
    ) in text
    no_paper = {**evaluation(), "family": "metarl/AntGoal-v0", "paper": None}
    assert "| metarl/AntGoal-v0 | 300 | -41.00 ± 1.00 | -21.00 ± 1.00 | – | – |" in headline_table([no_paper])
    assert report([evaluation()]).index("| task family |") < report([evaluation()]).index("### 2D navigation")


def test_a_family_on_two_envs_is_told_apart_by_its_env_id():
    """Ant velocity on MuJoCo 3's Ant and on rllab's: rows and sections name the env; one env, the family alone."""
    mujoco3 = {**evaluation(), "family": "Ant velocity", "env_id": "metarl/AntVel-v0"}
    rllab = {**mujoco3, "env_id": "metarl/AntVel-rllab-v0"}
    text = report([mujoco3, rllab, evaluation()])
    assert "| Ant velocity on metarl/AntVel-v0 | 300 |" in text
    assert "| Ant velocity on metarl/AntVel-rllab-v0 | 300 |" in text
    assert "### Ant velocity on metarl/AntVel-rllab-v0, MAML iteration 300" in text
    assert "| 2D navigation | 300 |" in text and "### 2D navigation, MAML iteration 300" in text
    assert "| Ant velocity | 300 |" in headline_table([rllab])


def test_step_sizes_per_method_when_they_differ():
    settings = {"step_sizes": [0.1, 0.05], "step_sizes_by_method": {"maml": [0.1, 0.05], "random_init": [0.1, 0.05]}}
    assert step_sizes_text(settings) == "0.1, 0.05"
    settings["step_sizes_by_method"]["pretrained"] = [0.02, 0.01]
    assert step_sizes_text(settings) == "MAML 0.1, 0.05; pretrained 0.02, 0.01; random init 0.1, 0.05"
    assert step_sizes_text({"step_sizes": [0.5]}) == "0.5"  # evaluations written before the per-method record


def test_shortfall_said_plainly():
    lines = shortfalls(evaluation())
    assert lines[0].startswith("After 0 steps our MAML matches the paper")  # -41 ± 1 contains -40.41
    assert lines[1].startswith("After 1 step our MAML falls short of the paper: -21.00")


def test_paired_gain_in_report():
    text = report([evaluation()], "python launchers/report.py x")
    assert "MAML: one gradient step changes the return by +20.00" in text
    assert "Generated by `python launchers/report.py x`" in text


def test_report_launcher(tmp_path):
    (tmp_path / "eval").mkdir()
    (tmp_path / "eval" / "evaluation.json").write_text(json.dumps(evaluation()))
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    output = tmp_path / "RESULTS.md"
    done = subprocess.run(
        [sys.executable, "launchers/report.py", str(tmp_path / "eval"), "--output", str(output)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "### 2D navigation" in output.read_text()


def test_report_launcher_bad_input(tmp_path, capsys):
    main = launcher_main("report.py")
    assert main([str(tmp_path / "missing")]) == 2
    assert capsys.readouterr().err.startswith("error: no evaluation.json")
    (tmp_path / "evaluation.json").write_text("{not json")
    assert main([str(tmp_path)]) == 2
    assert "is not valid JSON" in capsys.readouterr().err


def test_family_without_paper_numbers():
    results = {**evaluation(), "family": "metarl/AntGoal-v0", "env_id": "metarl/AntGoal-v0", "paper": None}
    text = family_table(results)
    assert "(paper)" not in text and "Against the paper" not in text
    assert "| MAML (ours) |" in text


def test_report_replaces_only_its_own_section():
    """Hand-written text around the generated block survives a regeneration; the old block does not."""
    from metarl.reporting.report import BEGIN_GENERATED, END_GENERATED, splice_generated

    first = splice_generated(None, "table v1")
    assert first.startswith(BEGIN_GENERATED) and "table v1" in first
    page = "# Results\n\nintro\n\n" + first + "\nnotes after\n"
    updated = splice_generated(page, "table v2")
    assert updated.startswith("# Results\n\nintro\n\n") and updated.endswith("\nnotes after\n")
    assert "table v2" in updated and "table v1" not in updated
    assert updated.count(BEGIN_GENERATED) == 1 and updated.count(END_GENERATED) == 1


def one_line_error(capsys, *fragments):
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])


@pytest.mark.parametrize(
    "content, fragments",
    [
        ({"methods": 3, "family": "x"}, ["is not an evaluation written by launchers/evaluate.py", "AttributeError"]),
        ({"methods": {"maml": {}}, "family": "x"}, ["is not an evaluation written by", "KeyError: 'checkpoint'"]),
    ],
    ids=["methods-not-a-mapping", "method-without-fields"],
)
def test_report_refuses_a_malformed_evaluation_naming_the_file(tmp_path, capsys, content, fragments):
    path = tmp_path / "evaluation.json"
    path.write_text(json.dumps(content))
    assert launcher_main("report.py")([str(path)]) == 2
    one_line_error(capsys, str(path), *fragments)


@pytest.mark.parametrize("script", ["report.py", "plot_training.py"])
@pytest.mark.parametrize(
    "output, fragments",
    [
        (".", ["is a directory; give a file name"]),
        ("out.html", ["unknown file type '.html'"]),
        ("/proc/no/such/place.md", ["is not writable"]),
    ],
    ids=["a-directory", "unknown-type", "uncreatable-place"],
)
def test_output_that_cannot_be_written_is_one_line_and_nothing_is_read(tmp_path, capsys, script, output, fragments):
    (tmp_path / "evaluation.json").write_text(json.dumps(evaluation()))
    source = str(tmp_path) if script == "report.py" else str(REPO / "results" / "nav-paper")
    if output.endswith(".md") and script == "plot_training.py":
        output = output.replace(".md", ".png")
    target = tmp_path if output == "." else Path(output)
    assert launcher_main(script)([source, "--output", str(target)]) == 2
    one_line_error(capsys, "--output", *fragments)


def test_plot_training_draws_a_committed_run_and_refuses_a_run_without_events(tmp_path, capsys):
    plot = launcher_main("plot_training.py")
    assert plot([str(REPO / "results" / "nav-paper"), "--output", str(tmp_path / "curve.png")]) == 0
    assert (tmp_path / "curve.png").read_bytes().startswith(b"\x89PNG")
    capsys.readouterr()
    bare = tmp_path / "bare"
    bare.mkdir()
    (bare / "config.yaml").write_text((REPO / "results" / "nav-paper" / "config.yaml").read_text())
    assert plot([str(bare), "--output", str(tmp_path / "bare.png")]) == 2
    one_line_error(capsys, "holds no TensorBoard event files")
    with pytest.raises(SystemExit) as usage:
        plot([str(bare)])
    assert usage.value.code == 2
    one_line_error(capsys, "--output", "see --help")


def test_an_unwritable_output_is_a_fault_of_the_machine(tmp_path, capsys, monkeypatch):
    """A write that fails after the checks (a full disk) exits 1 with one line."""
    (tmp_path / "evaluation.json").write_text(json.dumps(evaluation()))
    module = launcher_module("report.py")

    def full_disk(path, text):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(metarl.checkpoint, "atomic_write_text", full_disk)  # the launcher imports it when it runs
    assert module.main([str(tmp_path), "--output", str(tmp_path / "RESULTS.md")]) == 1
    one_line_error(capsys, "cannot write", "No space left on device")


def test_plot_training_compares_runs_on_one_axis_and_refuses_mismatches(tmp_path, capsys):
    plot = launcher_main("plot_training.py")
    nav, cheetah = REPO / "results" / "nav-paper", REPO / "results" / "halfcheetah-dir"
    output = tmp_path / "both.png"
    seed2 = REPO / "results" / "halfcheetah-dir-seed2"
    assert plot([str(cheetah), str(seed2), "--output", str(output), "--iterations", "50"]) == 0
    assert output.read_bytes().startswith(b"\x89PNG")
    ant, rllab = REPO / "results" / "ant-vel-paper-budget", REPO / "results" / "ant-vel-rllab"  # one family, two envs
    assert plot([str(ant), str(rllab), "--output", str(tmp_path / "ants.png"), "--iterations", "20"]) == 0
    capsys.readouterr()
    assert plot([str(nav), str(cheetah), "--output", str(tmp_path / "mixed.png")]) == 2
    one_line_error(capsys, "different envs")
    assert plot([str(nav), str(nav), "--label", "one", "--output", str(tmp_path / "labels.png")]) == 2
    one_line_error(capsys, "--label was given 1 times for 2 runs")
    assert not (tmp_path / "mixed.png").exists() and not (tmp_path / "labels.png").exists()


def test_results_page_s_regenerate_commands_cover_every_evaluation_its_table_shows():
    """docs/RESULTS.md's rerun block regenerates the table it documents: the same evaluations (ant-goal too), and an
    evaluate.py command for each run whose evaluation the table shows."""
    text = (REPO / "docs" / "RESULTS.md").read_text()
    generated = text.split("Generated by `python launchers/report.py ", 1)[1].split("`", 1)[0].split()
    block = text.split("## Rerunning an evaluation, regenerating this page's table", 1)[1].split("```bash", 1)[1]
    commands = block.split("```", 1)[0].replace("\\\n", " ").splitlines()
    [report_command] = [line.split() for line in commands if line.startswith("python launchers/report.py")]
    assert report_command[2:] == generated
    evaluated = {line.split()[2] for line in commands if line.startswith("python launchers/evaluate.py")}
    assert evaluated == {path.split("/evaluation/")[0] for path in generated if path.startswith("results/")}
