"""The edges of a run directory: runs killed before their first checkpoint, directories that hold no run,
stale temporaries, checkpoints that do not fit, and full or read-only disks. Each ends in one line on
stderr (exit 2 for the user's input, 1 for the machine), overwrites nothing, and leaves a run that resumes."""

import errno
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch
import yaml
from run_helpers import assert_same_policy, latest_policy

import metarl.experiment_run
import metarl.run
import metarl.trainer
from metarl.config import to_dict
from metarl.evaluation import load_run_config

RESULTS = Path(__file__).resolve().parents[1] / "results"

# Left by interrupted atomic writes (".<name>.<mkstemp's 8 characters>.tmp"), and a user's file that looks alike.
STALE = [".config.yaml.a1b2c3d4.tmp", "checkpoints/.latest.pt.x_9y8z7w.tmp", "checkpoints/.iter_000002.pt.k3j4h5g6.tmp"]
NOT_OURS = ["checkpoints/notes.tmp", ".notes.abcdefgh.tmp", "checkpoints/.best.pt.keepme00.tmp"]


def assert_fault_line(result, *fragments):
    """Exit 1 (the machine is at fault), one 'error:' line on stderr holding every fragment, no traceback."""
    assert result.returncode == 1, (result.returncode, result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])


@pytest.fixture
def killed_before_first_checkpoint(tiny_run_copy):
    """The tiny run as a kill before its first checkpoint leaves it: config.yaml and event files, no
    checkpoints, and the hidden temporaries of the interrupted writes."""
    shutil.rmtree(tiny_run_copy / "checkpoints")
    (tiny_run_copy / "checkpoints").mkdir()
    for name in [*STALE, *NOT_OURS]:
        (tiny_run_copy / name).write_bytes(b"partial")
    return tiny_run_copy


# --- a run killed before its first checkpoint -------------------------------------------------------------


def test_a_new_run_on_it_points_to_resume(
    train, killed_before_first_checkpoint, directory_snapshot, assert_clean_error
):
    run_dir = killed_before_first_checkpoint
    before = directory_snapshot(run_dir)
    assert_clean_error(train("--output-dir", run_dir), "before its first checkpoint", f"--resume {run_dir}")
    assert directory_snapshot(run_dir) == before


def test_resume_starts_it_from_iteration_0_with_a_fresh_runs_numbers(
    train, tiny_run, killed_before_first_checkpoint, run_scalars
):
    """Same parameters as the uninterrupted run; the stale temporaries are gone (a user's look-alike stays);
    the earlier attempt's TensorBoard events are superseded, so each iteration shows once."""
    run_dir = killed_before_first_checkpoint
    result = train("--resume", run_dir, "--quiet")
    assert result.returncode == 0, result.stderr
    assert_same_policy(latest_policy(run_dir), latest_policy(tiny_run[0]))
    assert not any((run_dir / name).exists() for name in STALE)
    assert all((run_dir / name).read_bytes() == b"partial" for name in NOT_OURS)
    assert [step for step, _ in run_scalars(run_dir)["returns/step_0"]] == [1, 2, 3]


def test_resume_continues_from_a_numbered_checkpoint_when_latest_was_never_written(tiny_run, train_here, tmp_path):
    """A kill between the first numbered checkpoint and latest.pt leaves only iter_*.pt: resume from it."""
    run_dir = tmp_path / "run"
    shutil.copytree(tiny_run[0], run_dir)
    (run_dir / "checkpoints" / "latest.pt").unlink()
    assert train_here("--resume", run_dir, "--quiet").returncode == 0
    assert torch.load(run_dir / "checkpoints" / "latest.pt", weights_only=True)["iteration"] == 3
    assert_same_policy(latest_policy(run_dir), latest_policy(tiny_run[0]))


def test_stale_temporaries_are_removed_when_a_finished_run_resumes(tiny_run_copy, train_here):
    """Only the temporaries of the run's own files go; a user's files of the same shape stay."""
    for name in [*STALE, *NOT_OURS]:
        (tiny_run_copy / name).write_bytes(b"partial")
    assert train_here("--resume", tiny_run_copy, "--set", "num_iterations=4", "--quiet").returncode == 0
    assert not any((tiny_run_copy / name).exists() for name in STALE)
    assert all((tiny_run_copy / name).read_bytes() == b"partial" for name in NOT_OURS)


@pytest.mark.parametrize("layout", ["today's", "before trpo:"])
def test_a_finished_run_is_read_only_unless_extended(tiny_run_copy, train_here, directory_snapshot, layout):
    """A resume of a run that has done all its iterations (results/nav-paper's case, its config.yaml in the layout
    before `trpo:`) trains nothing, rewrites nothing, and says so in one line with what to run instead."""
    if layout == "before trpo:":
        nested = yaml.safe_load((tiny_run_copy / "config.yaml").read_text())
        flat = {key: value for key, value in nested.items() if key != "trpo"} | nested["trpo"]
        (tiny_run_copy / "config.yaml").write_text(yaml.safe_dump(flat))
    before = directory_snapshot(tiny_run_copy)
    result = train_here("--resume", tiny_run_copy, "--set", "checkpoint_every=1")
    assert result.returncode == 0 and result.stderr == "", result.stderr
    [line] = result.stdout.splitlines()
    assert line.startswith(f"{tiny_run_copy} is finished (3 of 3 iterations): nothing to train"), line
    assert f"--resume {tiny_run_copy} --set num_iterations=N (N > 3)" in line
    assert f"python launchers/evaluate.py {tiny_run_copy}" in line
    assert directory_snapshot(tiny_run_copy) == before
    assert train_here("--resume", tiny_run_copy, "--set", "num_iterations=4", "--quiet").returncode == 0  # extended
    assert torch.load(tiny_run_copy / "checkpoints" / "latest.pt", weights_only=True)["iteration"] == 4


# --- output directories that cannot take a new run ----------------------------------------------------------


def test_a_directory_with_checkpoints_but_no_config_is_not_overwritten(
    train, tiny_run_copy, directory_snapshot, assert_clean_error
):
    (tiny_run_copy / "config.yaml").unlink()
    before = directory_snapshot(tiny_run_copy)
    assert_clean_error(train("--output-dir", tiny_run_copy), "not empty but holds no run")
    assert directory_snapshot(tiny_run_copy) == before


@pytest.mark.parametrize(
    "layout", ["user-file", "only-an-empty-checkpoints-dir", "a-file", "under-a-file", "empty-name"]
)
def test_unusable_output_directories_are_refused(
    layout, train_here, tiny_run_args, tmp_path, directory_snapshot, assert_clean_error
):
    (tmp_path / "notes.txt").write_text("keep me")
    (tmp_path / "sub" / "checkpoints").mkdir(parents=True)
    output, fragments = {
        "user-file": (tmp_path, ["not empty but holds no run"]),
        "only-an-empty-checkpoints-dir": (tmp_path / "sub", ["not empty"]),
        "a-file": (tmp_path / "notes.txt", ["is a file"]),
        "under-a-file": (tmp_path / "notes.txt" / "run", ["is a file"]),
        "empty-name": ("", ["--output-dir", "must not be empty"]),
    }[layout]
    before = directory_snapshot(tmp_path)
    assert_clean_error(train_here(*tiny_run_args(num_iterations=1), "--output-dir", output), *fragments)
    assert directory_snapshot(tmp_path) == before
    assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*")) == [
        "notes.txt",
        "sub",
        "sub/checkpoints",
    ]


def test_an_empty_output_directory_is_used(train_here, tiny_run_args, tmp_path):
    (tmp_path / ".config.yaml.a1b2c3d4.tmp").write_bytes(b"partial")  # a first start killed mid-write
    assert train_here(*tiny_run_args(num_iterations=1), "--output-dir", tmp_path, "--quiet").returncode == 0
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


def test_an_output_directory_holding_a_users_look_alike_temporary_is_refused_and_kept(
    train, tiny_run_args, tmp_path, directory_snapshot, assert_clean_error
):
    (tmp_path / ".notes.abcdefgh.tmp").write_text("a user's notes")
    before = directory_snapshot(tmp_path)
    assert_clean_error(train(*tiny_run_args(), "--output-dir", tmp_path), "not empty but holds no run")
    assert directory_snapshot(tmp_path) == before


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root writes into read-only directories")
def test_a_read_only_output_directory_is_refused(train, tiny_run_args, tmp_path, assert_clean_error):
    read_only = tmp_path / "read-only"
    read_only.mkdir()
    read_only.chmod(0o555)
    try:
        assert_clean_error(train(*tiny_run_args(num_iterations=1), "--output-dir", read_only / "run"), "not writable")
    finally:
        read_only.chmod(0o755)
    assert list(read_only.iterdir()) == []


# --- checkpoints that do not fit the run ----------------------------------------------------------------------


def odd_checkpoint(state, change):
    if change == "other-shapes":
        state["policy"]["mean.0.weight"] = torch.zeros(16, 2)
    elif change == "no-iteration":
        del state["iteration"]
    elif change == "policy-is-a-list":
        state["policy"] = list(state["policy"].values())
    elif change == "other-env":
        state["env_id"] = "metarl/HalfCheetahVel-v0"
    elif change == "not-a-dict":
        state = [state]
    return state


@pytest.mark.parametrize(
    "change, fragments",
    [
        ("other-shapes", ["mean.0.weight", "shape (16, 2)", "(8, 2)"]),
        ("no-iteration", ["lacks iteration"]),
        ("policy-is-a-list", ["policy is a list"]),
        ("other-env", ["metarl/HalfCheetahVel-v0", "metarl/Navigation2D-v0"]),
        ("not-a-dict", ["holds a list"]),
    ],
)
def test_resume_of_a_checkpoint_that_does_not_fit(
    change, fragments, tiny_run_copy, train_here, directory_snapshot, assert_clean_error
):
    latest = tiny_run_copy / "checkpoints" / "latest.pt"
    torch.save(odd_checkpoint(torch.load(latest, weights_only=True), change), latest)
    before = directory_snapshot(tiny_run_copy)
    assert_clean_error(train_here("--resume", tiny_run_copy), "latest.pt", *fragments)
    assert directory_snapshot(tiny_run_copy) == before


def test_resume_of_a_checkpoint_with_other_shapes_through_the_launcher(tiny_run_copy, train, assert_clean_error):
    latest = tiny_run_copy / "checkpoints" / "latest.pt"
    torch.save(odd_checkpoint(torch.load(latest, weights_only=True), "other-shapes"), latest)
    assert_clean_error(train("--resume", tiny_run_copy), "does not fit", "mean.0.weight")


# --- the disk fails during training -----------------------------------------------------------------------------


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EROFS, errno.EACCES])
def test_a_disk_fault_while_checkpointing_is_one_line_and_the_run_resumes(
    code, tiny_run, tiny_run_args, train_here, tmp_path, monkeypatch
):
    """The second checkpoint write (iteration 2's numbered one) fails: exit 1 with one line pointing to the
    last complete checkpoint; after the fault is gone, --resume ends where the uninterrupted run ends."""
    run_dir, real_save, calls = tmp_path / "run", metarl.run.save_checkpoint, []

    def failing_save(path, state):
        calls.append(path.name)
        if len(calls) == 2:
            raise OSError(code, os.strerror(code))
        real_save(path, state)

    monkeypatch.setattr(metarl.run, "save_checkpoint", failing_save)
    result = train_here(*tiny_run_args(), "--output-dir", run_dir, "--quiet")
    assert_fault_line(
        result, os.strerror(code), "last complete checkpoint, checkpoints/latest.pt", f"--resume {run_dir}"
    )
    assert calls == ["latest.pt", "iter_000002.pt"]

    monkeypatch.setattr(metarl.run, "save_checkpoint", real_save)
    assert train_here("--resume", run_dir, "--quiet").returncode == 0
    assert_same_policy(latest_policy(run_dir), latest_policy(tiny_run[0]))


def test_a_full_disk_before_the_first_checkpoint_resumes_from_iteration_0(
    tiny_run, tiny_run_args, train_here, tmp_path, monkeypatch
):
    run_dir = tmp_path / "run"

    def full_disk(path, state):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(metarl.run, "save_checkpoint", full_disk)
    assert_fault_line(train_here(*tiny_run_args(), "--output-dir", run_dir, "--quiet"), "from iteration 0")
    monkeypatch.undo()
    assert train_here("--resume", run_dir, "--quiet").returncode == 0
    assert_same_policy(latest_policy(run_dir), latest_policy(tiny_run[0]))


def test_a_full_disk_while_writing_the_config(
    tiny_run_args, tiny_run_copy, train_here, tmp_path, monkeypatch, directory_snapshot
):
    """At a start nothing is left to resume, and the same command works once there is room; at a resume the
    run is left as it was."""

    def full_disk(path, text):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(metarl.run, "atomic_write_text", full_disk)
    run_dir = tmp_path / "new"
    assert_fault_line(train_here(*tiny_run_args(), "--output-dir", run_dir), "nothing of the run was written")
    before = directory_snapshot(tiny_run_copy)
    assert_fault_line(train_here("--resume", tiny_run_copy, "--set", "num_iterations=4"), "No space left", "--resume")
    assert directory_snapshot(tiny_run_copy) == before
    monkeypatch.undo()
    assert train_here(*tiny_run_args(num_iterations=1), "--output-dir", run_dir, "--quiet").returncode == 0


def test_other_os_errors_are_not_disguised_as_disk_faults(tiny_run_args, train_here, tmp_path, monkeypatch):
    """A bug (here ENOENT from a missing path) keeps its traceback: a one-line 'resume' would hide it."""

    def bug(path, state):
        raise FileNotFoundError(errno.ENOENT, "no such file", str(path))

    monkeypatch.setattr(metarl.run, "save_checkpoint", bug)
    with pytest.raises(FileNotFoundError):
        train_here(*tiny_run_args(), "--output-dir", Path(tmp_path) / "run", "--quiet")


# --- runs saved before the TRPO settings moved under `trpo:` ------------------------------------------------


def test_a_run_saved_with_top_level_trpo_keys_resumes_with_its_settings(tiny_run_copy):
    """Runs under results/ (and checkpoints' configs) predate the `trpo:` section: resume reads them unchanged."""
    nested = yaml.safe_load((tiny_run_copy / "config.yaml").read_text())
    nested["trpo"]["max_kl"] = 0.02  # a value other than the default, so that losing it would show
    flat = {key: value for key, value in nested.items() if key != "trpo"} | nested["trpo"]
    (tiny_run_copy / "config.yaml").write_text(yaml.safe_dump(flat))
    assert to_dict(metarl.experiment_run.resumed_config(tiny_run_copy, [])) == nested


def test_a_run_saved_without_a_curvature_resumes_and_evaluates_with_gauss_newton(tiny_run_copy):
    """The default product was gauss_newton until r_operator became it: a saved run that names none ran with it."""
    nested = yaml.safe_load((tiny_run_copy / "config.yaml").read_text())
    assert nested["trpo"].pop("curvature") == "r_operator"  # a new run's
    (tiny_run_copy / "config.yaml").write_text(yaml.safe_dump(nested))
    assert metarl.experiment_run.resumed_config(tiny_run_copy, []).trpo.curvature == "gauss_newton"
    assert load_run_config(tiny_run_copy).trpo.curvature == "gauss_newton"


@pytest.mark.parametrize("run_dir", sorted(RESULTS.glob("*/config.yaml")), ids=lambda path: path.parent.name)
def test_the_committed_paper_runs_still_load(run_dir):
    config = load_run_config(run_dir.parent)
    saved = yaml.safe_load(run_dir.read_text())
    assert config.trpo.max_kl == saved.get("max_kl", saved.get("trpo", {}).get("max_kl"))
    assert config.trpo.curvature == "gauss_newton"  # every committed run's, stated or not


def test_ctrl_c_while_the_launcher_imports_is_one_line(tmp_path):
    """The imports take seconds; a Ctrl-C then (injected here while metarl.trainer is imported) is one line."""
    code = textwrap.dedent(
        """
        import runpy, sys

        class CtrlC:  # what a Ctrl-C raises, at a chosen import instead of a chosen time
            def find_spec(self, name, path=None, target=None):
                if name == "metarl.trainer":
                    raise KeyboardInterrupt

        sys.meta_path.insert(0, CtrlC())
        sys.argv = ["launchers/train.py", "--output-dir", sys.argv[1]]
        runpy.run_path("launchers/train.py", run_name="__main__")
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "run")],
        cwd=Path(__file__).resolve().parents[1],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 130, result.stderr
    assert result.stderr.strip().splitlines() == [
        "error: interrupted while starting, before anything was written; run the same command again"
    ]
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("launcher", ["train.py", "pretrain.py"])
def test_sigterm_is_one_line_on_what_was_kept_and_the_run_resumes(tmp_path, tiny_run_args, launcher):
    """``kill`` (or a scheduler's stop) ends a run as Ctrl-C does: exit 143, one line that counts the iterations
    its checkpoint holds and names the command that resumes it, which then runs."""
    run_dir = tmp_path / "run"
    args = tiny_run_args(num_iterations=100000)  # pretraining runs num_iterations iterations too
    process = subprocess.Popen(
        [sys.executable, f"launchers/{launcher}", *args, "--output-dir", str(run_dir), "--quiet"],
        cwd=Path(__file__).resolve().parents[1],
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout.readline().startswith("run directory:")
        while not (run_dir / "checkpoints" / "latest.pt").exists():  # a checkpoint to keep, then the stop
            assert process.poll() is None, process.stderr.read()
            time.sleep(0.01)
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=180)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 143, stderr
    lines = stderr.strip().splitlines()
    saved = torch.load(run_dir / "checkpoints" / "latest.pt", weights_only=True)["iteration"]
    assert len(lines) == 1 and lines[0].startswith(f"terminated (SIGTERM) after {saved} iterations; "), stderr
    assert lines[0].endswith(f"continue with: python launchers/{launcher} --resume {run_dir}"), stderr
    more = ["--set", f"num_iterations={saved + 1}"] if launcher == "train.py" else ["--iterations", str(saved + 1)]
    resumed = subprocess.run(
        [sys.executable, f"launchers/{launcher}", "--resume", str(run_dir), *more, "--quiet"],
        cwd=Path(__file__).resolve().parents[1],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert resumed.returncode == 0, resumed.stderr
    assert torch.load(run_dir / "checkpoints" / "latest.pt", weights_only=True)["iteration"] == saved + 1


# --- one process per run directory --------------------------------------------------------------------------


@pytest.fixture
def claimed_elsewhere():
    """``claimed_elsewhere(dir)``: another process holds ``dir`` (as a running train.py does) until the test ends."""
    holders = []

    def claim(run_dir):
        holder = subprocess.Popen(
            [sys.executable, "-c", HOLD_A_CLAIM, str(run_dir)], stdout=subprocess.PIPE, stdin=subprocess.PIPE, text=True
        )
        holders.append(holder)
        assert holder.stdout.readline() == "claimed\n"

    yield claim
    for holder in holders:
        holder.communicate("", timeout=30)  # end of input: it lets go


HOLD_A_CLAIM = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from metarl.run import claim_run_dir
    claim_run_dir(Path(sys.argv[1]))
    print("claimed", flush=True)
    sys.stdin.read()
    """
)


def test_a_resume_of_a_run_in_use_is_refused_and_changes_nothing(
    tiny_run_copy, train, claimed_elsewhere, directory_snapshot, assert_clean_error
):
    claimed_elsewhere(tiny_run_copy)
    before = directory_snapshot(tiny_run_copy)
    assert_clean_error(train("--resume", tiny_run_copy, "--set", "num_iterations=4"), "is in use by another process")
    assert directory_snapshot(tiny_run_copy) == before


def test_a_new_run_in_a_directory_in_use_is_refused(tmp_path, train, tiny_run_args, claimed_elsewhere):
    """Two runs started into one empty directory at once: the second finds it claimed and writes nothing."""
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    claimed_elsewhere(run_dir)
    result = train(*tiny_run_args(), "--output-dir", run_dir)
    assert result.returncode == 2 and "is in use by another process" in result.stderr, result.stderr
    assert list(run_dir.iterdir()) == []


def test_a_new_run_whose_directory_another_process_started_first_is_refused(tmp_path, tiny_run_copy):
    """The other order of the same race: the first run has written its config.yaml and let go by the time the
    second claims the directory."""
    run_dir = metarl.run.new_run_dir("nav", 1, tmp_path / "new", metarl.run.RL_TRAINING)
    shutil.copytree(tiny_run_copy, run_dir)
    before = (run_dir / "config.yaml").read_bytes()
    with pytest.raises(metarl.run.ConfigError, match="started by another process at the same moment"):
        metarl.run.write_config(run_dir, {"seed": 2})
    assert (run_dir / "config.yaml").read_bytes() == before


def test_a_finished_run_lets_go_of_its_directory(tiny_run_copy, train_here):
    """In one process, run after run: each releases its directory when it ends."""
    for total in (4, 5):
        assert train_here("--resume", tiny_run_copy, "--set", f"num_iterations={total}", "--quiet").returncode == 0
    assert metarl.run._CLAIMED == {}
