"""Console progress of a build: blocks done / total, pairs/s and ETA, throttled.

Printed to stdout, so under ``ray job submit`` it lands in the job log as well; the same
numbers go to Ray's metrics from the replicas (``atlasgrn_blocks_total`` ...).
"""

from __future__ import annotations

import time
from collections.abc import Callable


def _fmt_s(seconds: float) -> str:
    seconds = max(0.0, seconds)
    if seconds < 90:
        return f"{seconds:.0f}s"
    if seconds < 5400:
        return f"{seconds / 60:.1f}min"
    return f"{seconds / 3600:.1f}h"


class Progress:
    """Counts finished blocks and prints at most every ``every_s`` seconds (and at the end)."""

    def __init__(self, total: int, total_pairs: int, every_s: float = 10.0,
                 log: Callable[[str], None] = print, clock: Callable[[], float] = time.monotonic
                 ) -> None:
        self.total, self.total_pairs = total, total_pairs
        self.every_s = every_s
        self.log, self.clock = log, clock
        self.start = clock()
        self.last = -float("inf")
        self.done = self.failed = self.pairs = 0

    def update(self, ok: bool, pairs: int) -> None:
        if ok:
            self.done += 1
            self.pairs += pairs
        else:
            self.failed += 1
        now = self.clock()
        if now - self.last >= self.every_s or self.done + self.failed >= self.total:
            self.last = now
            self.log(self.line(now))

    def eta_s(self, now: float | None = None) -> float | None:
        now = self.clock() if now is None else now
        if self.pairs == 0:
            return None
        rate = self.pairs / max(now - self.start, 1e-9)
        return (self.total_pairs - self.pairs) / rate

    def line(self, now: float | None = None) -> str:
        now = self.clock() if now is None else now
        elapsed = now - self.start
        rate = self.pairs / max(elapsed, 1e-9)
        eta = self.eta_s(now)
        pct = 100.0 * self.done / max(self.total, 1)
        text = (f"blocks {self.done}/{self.total} ({pct:.0f}%), {rate:,.0f} pairs/s, "
                f"elapsed {_fmt_s(elapsed)}, ETA {'?' if eta is None else _fmt_s(eta)}")
        if self.failed:
            text += f", {self.failed} failed (will retry)"
        return text
