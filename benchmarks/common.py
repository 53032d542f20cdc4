"""Shared by the benchmark scripts: machine description, result table and JSON output."""

from __future__ import annotations

import json
import os
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch

from metarl.config import ConfigError
from metarl.reporting.machine import machine_description


@contextmanager
def config_errors_exit() -> Iterator[None]:
    """A bad --device or --set stops the benchmark with one line naming the fix, as the launchers do."""
    try:
        yield
    except ConfigError as error:
        sys.exit(f"error: {error}")


def machine(device: torch.device | None = None) -> dict[str, Any]:
    """The machine description results tables use (with the GPU's name when ``device`` is one), plus what a
    benchmark also needs to be read."""
    device = device or torch.device("cpu")
    return {**machine_description(device), "torch_threads": torch.get_num_threads(), "load_average": os.getloadavg()[0]}


def device_label(device: torch.device) -> str:
    """``cpu``, or ``cuda:0 (NVIDIA H100 80GB HBM3)``: what the printed results were measured on."""
    return f"{device} ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else str(device)


def timed(function: Callable[[], Any], repeats: int) -> tuple[float, list[float]]:
    """Median wall time of ``repeats`` calls after one warm-up call (which is not counted). GPU work is waited
    for on both sides of each call, so the time is the work's, not its launch's."""
    function()
    times = []
    for _ in range(repeats):
        _synchronize()
        start = time.perf_counter()
        function()
        _synchronize()
        times.append(time.perf_counter() - start)
    return statistics.median(times), times


def _synchronize() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def print_table(rows: list[dict[str, Any]], columns: list[str]) -> None:
    cells = [[_format(row.get(c)) for c in columns] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]
    print("  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)))
    print("  ".join("-" * w for w in widths))
    for r in cells:
        print("  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)))


def _format(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.3f}" if abs(value) < 100 else f"{value:,.0f}"
    return "" if value is None else str(value)


def write_json(path: str | None, payload: dict[str, Any], device: torch.device | None = None) -> None:
    if path:
        Path(path).write_text(json.dumps({"machine": machine(device), **payload}, indent=2))
