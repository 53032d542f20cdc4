"""``report.py --compare``: runs on the same test tasks side by side, each paired against the control."""

import pytest
from conftest import REPO_ROOT, run_launcher

from metarl.reporting.comparison import comparison_table
from metarl.reporting.statistics import summarize

RUNS = ("halfcheetah-dir", "halfcheetah-dir-promp")


def evaluation(run_dir, before, after, tasks=("a", "b", "c")):
    """An evaluation.json's fields the comparison reads: per-task returns after 0 and 1 steps."""
    entries = []
    for step, returns in enumerate((before, after)):
        summary = summarize(returns)
        entries.append({"step": step, "mean": summary.mean, "ci_low": summary.ci_low, "task_returns": list(returns)})
    return {"run_dir": run_dir, "checkpoint": {"iteration": 7}, "test_tasks": list(tasks), "methods": {"maml": entries}}


def test_each_run_is_paired_task_by_task_against_the_control():
    control = evaluation("runs/a", [0.0, 1.0, 2.0], [10.0, 11.0, 15.0])
    other = evaluation("runs/b", [0.0, 0.0, 0.0], [12.0, 12.0, 18.0])  # +2, +1, +3 over the control's step 1
    table = comparison_table([("control run", control), ("other run", other)])
    differences = summarize([2.0, 1.0, 3.0])
    assert f"+2.0 ({differences.ci_low:.1f} to {differences.ci_high:.1f})" in table
    gains = summarize([12.0, 12.0, 18.0])
    assert f"| other run | 7 | 0.0 ± 0.0 | 14.0 ± {14.0 - gains.ci_low:.1f} |" in table
    assert "| control run | 7 |" in table and "| control |" in table


def test_runs_on_other_test_tasks_are_refused():
    control = evaluation("runs/a", [0.0, 1.0, 2.0], [1.0, 2.0, 3.0])
    other = evaluation("runs/b", [0.0, 1.0, 2.0], [1.0, 2.0, 3.0], tasks=("a", "b", "d"))
    with pytest.raises(ValueError, match="other test tasks than control.*--seed"):
        comparison_table([("control", control), ("other", other)])


def test_the_launcher_compares_committed_runs_with_the_numbers_results_md_reports():
    evaluations = [REPO_ROOT / "results" / run / "evaluation" / "iter_000100" for run in RUNS]
    result = run_launcher("report.py", "--compare", *evaluations, "--label", "TRPO", "--label", "ProMP")
    assert result.returncode == 0, result.stderr
    assert "one step against TRPO" in result.stdout
    assert "| ProMP | 100 | -45.5 ± 25.1 | 264.1 ± 13.8 |" in result.stdout
    assert "+129.3 (105.3 to 153.3)" in result.stdout  # docs/RESULTS.md, What closes the gap
    wrong = run_launcher("report.py", "--compare", *evaluations, "--label", "TRPO")
    assert wrong.returncode == 2 and "one --label per EVAL (2)" in wrong.stderr
