"""Logging: scalars to a TensorBoard writer the logger is handed, and a progress line on the console."""

from __future__ import annotations

import sys
from typing import Any, TextIO

from torch.utils.tensorboard import SummaryWriter


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


class Logger:
    """Collects ``record(tag, value)`` calls and writes them together with ``dump(step)``."""

    def __init__(self, writer: SummaryWriter):
        self.writer = writer
        self._pending: dict[str, float] = {}

    def record(self, tag: str, value: float) -> None:
        self._pending[tag] = float(value)

    def dump(self, step: int) -> dict[str, float]:
        for tag, value in self._pending.items():
            self.writer.add_scalar(tag, value, step)
        self.writer.flush()
        written, self._pending = self._pending, {}
        return written

    def hyperparameters(self, config: dict[str, Any]) -> None:
        self.writer.add_text("hyperparameters", markdown_table(flatten(config)), 0)

    def adaptation_chart(self, num_steps: int, prefix: str = "returns") -> None:
        """One custom-scalars chart, "adaptation", with the return after 0..num_steps inner steps."""
        tags = [f"{prefix}/step_{k}" for k in range(num_steps + 1)]
        self.writer.add_custom_scalars({"metarl": {"adaptation": ["Multiline", tags]}})

    def close(self) -> None:
        self.writer.close()


def format_duration(seconds: float) -> str:
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{seconds:02d}s"


def progress_line(
    iteration: int, total: int, return_before: float, return_after: float, kl: float, steps_per_s: float, eta_s: float
) -> str:
    width = len(str(total))
    return (
        f"iter {iteration:>{width}}/{total} | return {return_before:9.2f} -> {return_after:9.2f} | "
        f"kl {kl:.4f} | {steps_per_s:9,.0f} env steps/s | ETA {format_duration(eta_s)}"
    )


def print_progress(line: str, stream: TextIO = sys.stdout) -> None:
    print(line, file=stream, flush=True)
