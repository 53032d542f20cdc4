"""Progress within a long step: a line now and then while one iteration, or one evaluated method, runs for
minutes, so that a loaded machine is not taken for a hung one.

The code of a long step says what it starts (``note("sampling query episodes")``); a ``Heartbeat`` prints
that only once ``EVERY_S`` seconds have passed since the step began or since its last line, so a step
shorter than that (a default 2D-navigation iteration) prints nothing more than it did. It reads the clock
and nothing else: no random number is drawn and no computation changes, so a run's numbers are the same
with lines, without them (``--quiet``) and at any rate.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable
from typing import TextIO

Note = Callable[[str], None]
"""What a long step calls as it starts each stage, with the stage's name."""

EVERY_S = 20.0
"""The least time between two lines (and before the first of a step)."""


def silent(stage: str) -> None:
    """The ``Note`` of code run outside a launcher (tests, the Python API): no lines."""


class Heartbeat:
    """A ``Note`` that prints ``  <step>: <stage> (<seconds> s in)`` on stdout, at most once per ``every_s``."""

    def __init__(
        self,
        every_s: float | None = None,
        stream: TextIO | None = None,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.every_s = EVERY_S if every_s is None else every_s
        self.stream = stream
        self.clock = clock
        self.step = ""
        self.started = self.last = clock()

    @classmethod
    def unless(cls, quiet: bool) -> Heartbeat:
        """A launcher's heartbeat: one that never prints where ``--quiet`` was given."""
        return cls(every_s=math.inf) if quiet else cls()

    def begin(self, step: str) -> None:
        """A long step starts (e.g. ``iter 13/500``): its lines name it, and count from now."""
        self.step = step
        self.started = self.last = self.clock()

    def __call__(self, stage: str) -> None:
        now = self.clock()
        if now - self.last < self.every_s:
            return
        self.last = now
        print(f"  {self.step}: {stage} ({now - self.started:.0f} s in)", file=self.stream or sys.stdout, flush=True)
