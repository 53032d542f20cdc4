"""Logging: scalars to TensorBoard event files, the run's settings for the HParams tab, and a progress line on
the console."""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.hparams import summary_v2 as hparams_summary
from torch.utils.tensorboard import SummaryWriter

from metarl.config import ConfigError

EVENTS_DIR = "train"
EVENT_FILES = "events.out.tfevents.*"


@dataclass(frozen=True)
class EventLayout:
    """Where a run directory's TensorBoard events are, and the step each iteration is logged at.

    A run writes them to ``RUN/train/``, so that ``tensorboard --logdir RUN`` names it "train" rather than "."
    (and ``--logdir runs`` "RUN/train"), and logs iteration i, counted from 1 (the i-th update done), at step i:
    100 iterations end at step 100. Runs written before this layout hold their events in ``RUN`` itself with
    iteration i at step i − 1; they keep both when resumed, so that their curves go on without a seam. The
    layout only decides where events and steps go: it changes no training number."""

    directory: Path
    first_step: int
    """The step of iteration 1: 1, or 0 in the older runs."""

    @classmethod
    def of(cls, run_dir: Path) -> EventLayout:
        run_dir = Path(run_dir)
        if any(run_dir.glob(EVENT_FILES)):
            return cls(run_dir, 0)
        return cls(run_dir / EVENTS_DIR, 1)

    def step(self, iteration: int) -> int:
        """The step of the ``iteration``-th iteration (from 1)."""
        return iteration - 1 + self.first_step

    def iteration(self, step: int) -> int:
        return step + 1 - self.first_step


def read_returns(run_dir: Path) -> dict[int, list[tuple[int, float]]]:
    """``returns/step_k`` scalars read back from a training run's event files (either layout), by k, as
    (iteration, return) pairs."""
    layout = EventLayout.of(run_dir)
    if not any(Path(layout.directory).glob("events.out.tfevents.*")):
        raise ConfigError(f"{run_dir} holds no TensorBoard event files; is it a training run directory?")
    events = EventAccumulator(str(layout.directory), size_guidance={"scalars": 0})
    events.Reload()
    returns = {}
    for tag in events.Tags()["scalars"]:
        match = re.fullmatch(r"returns/step_(\d+)", tag)
        if match:
            returns[int(match.group(1))] = [(layout.iteration(e.step), e.value) for e in events.Scalars(tag)]
    if not returns:
        raise ConfigError(f"{run_dir} holds no returns/step_* scalars; is it a training run directory?")
    return returns


def markdown_table(rows: dict[str, Any]) -> str:
    lines = ["| key | value |", "| --- | --- |"]
    lines += [f"| {key} | {value} |" for key, value in rows.items()]
    return "\n".join(lines)


def flatten(mapping: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in mapping.items():
        if isinstance(value, dict) and value:
            flat.update(flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def hparam_value(value: Any) -> bool | float | str:
    """The HParams plugin takes booleans, numbers and strings; lists, ``None`` and empty dicts are shown as text."""
    return value if isinstance(value, bool | int | float | str) else str(value)


class Logger:
    """Collects ``record(tag, value)`` calls and writes them together with ``dump(step)``.

    The events go to ``directory``, one TensorBoard run. A value recorded with ``run=NAME`` goes to the run
    ``NAME`` below it instead: TensorBoard colours lines by run, so series meant to be compared in one chart,
    each in its own colour and named in the run list, share a tag and differ in run. ``purge_step``, for a
    resumed run, supersedes the events an earlier process wrote in these runs from that step on."""

    def __init__(self, directory: Path, purge_step: int | None = None):
        self.directory = Path(directory)
        self.purge_step = purge_step
        self._writers: dict[str, SummaryWriter] = {}
        self._pending: dict[tuple[str, str], float] = {}

    def writer(self, run: str = "") -> SummaryWriter:
        if run not in self._writers:
            self._writers[run] = SummaryWriter(str(self.directory / run), purge_step=self.purge_step)
        return self._writers[run]

    def record(self, tag: str, value: float, run: str = "") -> None:
        self._pending[run, tag] = float(value)

    def dump(self, step: int) -> None:
        for (run, tag), value in self._pending.items():
            self.writer(run).add_scalar(tag, value, step)
        for writer in self._writers.values():
            writer.flush()
        self._pending = {}

    def hyperparameters(self, config: dict[str, Any]) -> None:
        """The config as a text table (Text tab), at step 0."""
        self.writer().add_text("hyperparameters", markdown_table(flatten(config)), 0)

    def hparams(self, config: dict[str, Any], metrics: dict[str, str], trial_id: str) -> None:
        """The config for the HParams tab, which compares runs by setting, at step 0. ``metrics`` maps scalar tags
        of this run to their display names; the tab shows each tag's last value. Written into this run itself
        (not a sub-run, as ``SummaryWriter.add_hparams`` does), so the run's scalars and settings go together.
        ``trial_id`` names the run in the tab's table (runs with the same id are shown as one)."""
        values = {key: hparam_value(value) for key, value in flatten(config).items()}
        experiment = hparams_summary.hparams_config_pb(
            hparams=[hparams_summary.HParam(name) for name in values],
            metrics=[hparams_summary.Metric(tag, display_name=name) for tag, name in metrics.items()],
        )
        file_writer = self.writer().file_writer
        assert file_writer is not None  # a SummaryWriter opens its file writer when made
        file_writer.add_summary(experiment, 0)
        file_writer.add_summary(hparams_summary.hparams_pb(values, trial_id=trial_id), 0)

    def multiline_chart(self, category: str, title: str, tag: str) -> None:
        """A Custom Scalars chart of ``tag`` in every run that holds it, one colour per run, at step 0."""
        self.writer().add_custom_scalars({category: {title: ["Multiline", [f"^{tag}$"]]}})

    def close(self) -> None:
        for writer in self._writers.values():
            writer.close()


def format_duration(seconds: float) -> str:
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{seconds:02d}s"


def print_progress(line: str, stream: TextIO | None = None) -> None:
    """``line`` on ``stream``, by default the stdout of the moment (not the one this module was imported under)."""
    print(line, file=stream or sys.stdout, flush=True)
