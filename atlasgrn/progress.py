"""Progress of a long step (ingest, pre-training, the benchmark, a build, a report), log-friendly.

One line per interval, never carriage returns, so a terminal, ``ray job submit``'s log and a CI
log read the same. The rate is a rolling one over recent updates, measured from the first
finished unit on: start-up (imports, model loads, worker processes) made a rate-since-start
ETA 6-60x too long, so there is no ETA until two units are done ("warming up").
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable

#: Updates the rolling rate looks back over.
WINDOW = 32


def format_seconds(seconds: float) -> str:
    seconds = max(0.0, seconds)
    if seconds < 90:
        return f"{seconds:.0f}s"
    if seconds < 5400:
        return f"{seconds / 60:.1f}min"
    return f"{seconds / 3600:.1f}h"


class Progress:
    """``done``/``total`` units of work (cells, steps, blocks ...), with a rolling-rate ETA.

    ``work`` counts what the rate and ETA are measured in (e.g. gene pairs of a block) when
    units differ in size; by default each unit weighs 1.
    """

    def __init__(self, total: int, *, label: str = "", unit: str = "", total_work: float = 0,
                 every_s: float = 10.0, log: Callable[[str], None] = print,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.total, self.label, self.unit = total, label, unit
        self.total_work = float(total_work or total)
        self.every_s, self.log, self.clock = every_s, log, clock
        self.start = clock()
        self.last = -float("inf")
        self.done = self.failed = 0
        self.work = 0.0
        self._recent: deque[tuple[float, float]] = deque(maxlen=WINDOW + 1)

    def update(self, ok: bool = True, work: float = 1.0, n: int = 1) -> None:
        """``n`` more units finished (``ok``), carrying ``work``; prints when an interval has
        passed, and always at the end."""
        now = self.clock()
        if ok:
            self.done += n
            self.work += work
            self._recent.append((now, self.work))
        else:
            self.failed += n
        if now - self.last >= self.every_s or self.done + self.failed >= self.total:
            self.last = now
            self.log(self.line(now))

    def rate(self) -> float | None:
        """Work per second over the recent window, from the first finished unit on."""
        if len(self._recent) < 2:
            return None
        (t0, w0), (t1, w1) = self._recent[0], self._recent[-1]
        return (w1 - w0) / (t1 - t0) if t1 > t0 else None

    def eta_s(self, now: float | None = None) -> float | None:
        rate = self.rate()
        if rate is None or rate <= 0:
            return None
        now = self.clock() if now is None else now
        return max(0.0, (self.total_work - self.work) / rate - (now - self._recent[-1][0]))

    def line(self, now: float | None = None, rate_unit: str | None = None) -> str:
        now = self.clock() if now is None else now
        rate, eta = self.rate(), self.eta_s(now)
        pct = 100.0 * self.done / max(self.total, 1)
        speed = "warming up" if rate is None else f"{rate:,.0f} {rate_unit or self.unit}/s"
        head = f"{self.label}: " if self.label else ""
        text = (f"{head}{self.unit} {self.done:,}/{self.total:,} ({pct:.0f}%), {speed}, elapsed "
                f"{format_seconds(now - self.start)}, ETA "
                f"{'?' if eta is None else format_seconds(eta)}")
        if self.failed:
            text += f", {self.failed} failed (will retry)"
        return text
