"""The one run loop, with a toy run: what it logs (means over log_every), when it saves, its progress line,
and a stop from the callback that a second loop resumes from the checkpoint."""

import re

import torch

from metarl.logger import Logger
from metarl.run_loop import Cadence, Progress, Scalars, record_all, run_loop


class Counting:
    """Iteration i returns x = i; its checkpoint holds where it stands."""

    label = "toy"

    def __init__(self, total: int, progress: Progress | None = None):
        self.total, self.progress = total, progress or Progress()

    def step(self, note) -> Scalars:
        note("counting")
        self.progress.env_steps += 10
        return {"toy/x": float(self.progress.iteration)}

    def record(self, logger: Logger, scalars: Scalars) -> None:
        record_all(logger, scalars)

    def summary(self, scalars: Scalars) -> str:
        return f"x {scalars['toy/x']:.1f}"

    def checkpoint_state(self) -> dict:
        return {"iteration": self.progress.iteration, "env_steps": self.progress.env_steps}


def run(steps, run_dir, cadence, callback=None, quiet=False):
    logger = Logger(run_dir / "train")
    try:
        return run_loop(steps, run_dir, logger, cadence, quiet=quiet, callback=callback)
    finally:
        logger.close()


def test_logs_means_over_each_interval_and_the_last_iteration(tmp_path, run_scalars, capsys):
    steps = Counting(5)
    history = run(steps, tmp_path, Cadence(checkpoint_every=4, log_every=2, save_every=2))
    assert [s["toy/x"] for s in history] == [0, 1, 2, 3, 4]
    assert run_scalars(tmp_path)["toy/x"] == [(2, 0.5), (4, 2.5), (5, 4.0)]
    lines = capsys.readouterr().out.splitlines()
    assert [re.sub(r" \| ETA .*", "", line) for line in lines] == [
        "toy 2/5 | x 0.5",
        "toy 4/5 | x 2.5",
        "toy 5/5 | x 4.0",
    ]
    assert all(re.search(r"\| ETA \d+m\d\ds$", line) for line in lines)
    assert steps.progress.iteration == 5 and steps.progress.env_steps == 50 and steps.progress.wall_time_s > 0


def test_saves_every_save_every_and_keeps_numbered_ones_every_checkpoint_every(tmp_path):
    run(Counting(5), tmp_path, Cadence(checkpoint_every=4, log_every=2, save_every=2), quiet=True)
    saved = sorted(path.name for path in (tmp_path / "checkpoints").iterdir())
    assert saved == ["iter_000004.pt", "latest.pt"]
    assert torch.load(tmp_path / "checkpoints" / "latest.pt")["iteration"] == 5  # the last iteration is saved


def test_a_callback_stop_resumes_from_the_last_save_to_the_same_end(tmp_path):
    steps = Counting(6)
    history = run(steps, tmp_path, Cadence(checkpoint_every=2, save_every=2), lambda done, _: done != 3, quiet=True)
    assert len(history) == 3
    saved = torch.load(tmp_path / "checkpoints" / "latest.pt")
    assert saved["iteration"] == 2  # iteration 3 was not saved: a resume redoes it
    resumed = Counting(6, Progress(saved["iteration"], saved["env_steps"]))
    rest = run(resumed, tmp_path, Cadence(checkpoint_every=2, save_every=2), quiet=True)
    assert [s["toy/x"] for s in rest] == [2, 3, 4, 5]
    assert torch.load(tmp_path / "checkpoints" / "latest.pt") == {"iteration": 6, "env_steps": 60}
