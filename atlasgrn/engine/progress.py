"""Console progress of a build: blocks done / total, pairs/s and ETA, throttled, one line each.

Printed to stdout, one line per interval (never carriage returns), so under ``ray job submit``
or in a CI log it reads as a log; the same numbers go to Ray's metrics from the replicas
(``atlasgrn_blocks_total`` ...).

The ETA is honest only after warm-up: the first blocks of a run include every replica's start
(process, imports, model load), so a rate measured from the start of the run made the first ETA
6-60x too long (12-33 min shown for runs that took 0.5-2 min). The rate is therefore measured
from the first finished block on, over a rolling window of recent blocks, and no ETA is shown
until two blocks have finished.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable

#: Finished blocks the rolling rate looks back over.
WINDOW = 32


def format_seconds(seconds: float) -> str:
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
        self._recent: deque[tuple[float, int]] = deque(maxlen=WINDOW + 1)  # (time, pairs done)

    def update(self, ok: bool, pairs: int) -> None:
        now = self.clock()
        if ok:
            self.done += 1
            self.pairs += pairs
            self._recent.append((now, self.pairs))
        else:
            self.failed += 1
        if now - self.last >= self.every_s or self.done + self.failed >= self.total:
            self.last = now
            self.log(self.line(now))

    def rate(self) -> float | None:
        """Pairs per second over the recent window, from the first finished block on."""
        if len(self._recent) < 2:
            return None
        (t0, p0), (t1, p1) = self._recent[0], self._recent[-1]
        return (p1 - p0) / (t1 - t0) if t1 > t0 else None

    def eta_s(self, now: float | None = None) -> float | None:
        rate = self.rate()
        if rate is None or rate <= 0:
            return None
        now = self.clock() if now is None else now
        since_last = now - self._recent[-1][0]
        return max(0.0, (self.total_pairs - self.pairs) / rate - since_last)

    def line(self, now: float | None = None) -> str:
        now = self.clock() if now is None else now
        rate = self.rate()
        eta = self.eta_s(now)
        pct = 100.0 * self.done / max(self.total, 1)
        speed = "warming up" if rate is None else f"{rate:,.0f} pairs/s"
        text = (f"blocks {self.done}/{self.total} ({pct:.0f}%), {speed}, elapsed "
                f"{format_seconds(now - self.start)}, ETA "
                f"{'?' if eta is None else format_seconds(eta)}")
        if self.failed:
            text += f", {self.failed} failed (will retry)"
        return text
