"""Progress lines: log-friendly, no ETA before warm-up, and an ETA from the rolling rate."""

from __future__ import annotations

from atlasgrn.engine.progress import Progress, format_seconds


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def test_eta_ignores_start_up_and_follows_the_rolling_rate():
    clock, lines = Clock(), []
    p = Progress(total=10, total_pairs=1000, every_s=0.0, log=lines.append, clock=clock)
    clock.t = 60.0          # a minute of replica start-up before the first block
    p.update(True, 100)
    assert "warming up" in lines[-1] and "ETA ?" in lines[-1]
    clock.t = 61.0          # then 100 pairs a second
    p.update(True, 100)
    assert p.rate() == 100.0
    assert p.eta_s() == 8.0 and lines[-1].endswith("ETA 8s")  # 800 pairs left at 100/s
    # a rate from the start of the run would have said 200 pairs in 61 s: ~4 min left


def test_failures_are_counted_and_the_last_block_always_prints():
    clock, lines = Clock(), []
    p = Progress(total=2, total_pairs=20, every_s=1e9, log=lines.append, clock=clock)
    p.update(False, 10)
    p.update(True, 10)
    assert len(lines) == 2 and "1 failed (will retry)" in lines[-1]
    assert "\r" not in "".join(lines)


def test_durations_read_naturally():
    assert (format_seconds(42), format_seconds(600), format_seconds(7200)) == (
        "42s", "10.0min", "2.0h")
