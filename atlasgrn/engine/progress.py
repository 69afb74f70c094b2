"""Console progress of a build: blocks done / total, pairs/s and ETA (see
:mod:`atlasgrn.progress` for why the rate is rolling and starts after warm-up).

Printed to stdout, so under ``ray job submit`` it lands in the job log as well; the same
numbers go to Ray's metrics from the replicas (``atlasgrn_blocks_total`` ...).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from .. import progress as _progress

format_seconds = _progress.format_seconds


class Progress(_progress.Progress):
    """Blocks of gene pairs: counted in blocks, measured (rate, ETA) in pairs."""

    def __init__(self, total: int, total_pairs: int, every_s: float = 10.0,
                 log: Callable[[str], None] = print, clock: Callable[[], float] = time.monotonic
                 ) -> None:
        super().__init__(total, unit="blocks", total_work=total_pairs, every_s=every_s,
                         log=log, clock=clock)

    def update(self, ok: bool = True, pairs: int = 0) -> None:  # type: ignore[override]
        super().update(ok, work=pairs)

    def line(self, now: float | None = None, rate_unit: str | None = None) -> str:
        return super().line(now, rate_unit or "pairs")
