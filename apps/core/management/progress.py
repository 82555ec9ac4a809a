"""A dependency-free progress bar for long management commands."""

import sys
import time
from typing import TextIO


class ProgressBar:
    """Redraws one line at most ten times a second; prints a final line with the rate."""

    def __init__(self, total: int, label: str, stream: TextIO | None = None, width: int = 30) -> None:
        self.total = max(total, 0)
        self.label = label
        self.stream = stream or sys.stderr
        self.width = width
        self.done = 0
        self.started = time.monotonic()
        self._last_draw = 0.0

    def advance(self, count: int = 1) -> None:
        self.done += count
        now = time.monotonic()
        if now - self._last_draw >= 0.1 or self.done >= self.total:
            self._last_draw = now
            self._draw()

    def _draw(self) -> None:
        fraction = self.done / self.total if self.total else 1.0
        filled = int(self.width * min(fraction, 1.0))
        bar = "#" * filled + "-" * (self.width - filled)
        self.stream.write(f"\r{self.label} [{bar}] {self.done}/{self.total}")
        self.stream.flush()

    def finish(self) -> None:
        self._draw()
        elapsed = time.monotonic() - self.started
        rate = self.done / elapsed if elapsed > 0 else float(self.done)
        self.stream.write(f"  done in {elapsed:.1f}s ({rate:,.0f}/s)\n")
        self.stream.flush()
