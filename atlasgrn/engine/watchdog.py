"""No silent wait: if no replica has started within a bound, say what is pending and stop.

Resources are checked before any work is submitted (``cluster.place_replicas``), but a shape
that exists is not a node that is free: another job may hold it, or the autoscaler may never
deliver the node type it advertises. Ray then waits forever and prints only its autoscaler lines.
The watchdog reads the block results on a thread and, while none has arrived, checks every few
seconds whether any replica has started (each replica announces itself in the GCS key-value
store from its constructor, which needs no dashboard). Past ``start_timeout_s`` with no replica
up, the run stops with :class:`JobStalled`, naming the demand and what the cluster has.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

#: Seconds between checks while no result has arrived.
POLL_S = 2.0
_KV_PREFIX = "atlasgrn:replica:"


class JobStalled(RuntimeError):
    """No replica started within the bound; the message says what is pending and why."""


def announce_replica(run_key: str, pid: int) -> None:
    """Called by a replica once its model is loaded (best effort: outside Ray, a no-op)."""
    try:
        from ray.experimental.internal_kv import _internal_kv_put

        _internal_kv_put(f"{_KV_PREFIX}{run_key}:{pid}", b"1", overwrite=True)
    except Exception:  # noqa: BLE001 - the announcement must never fail a replica
        pass


def replicas_started(run_key: str) -> int:
    try:
        from ray.experimental.internal_kv import _internal_kv_list

        return len(_internal_kv_list(f"{_KV_PREFIX}{run_key}:"))
    except Exception:  # noqa: BLE001 - unknown: assume started, never stop a run on a guess
        return 1


def demand_line(replicas: int, gpus: float, cpus: float) -> str:
    """What the replicas ask for against what the cluster has and has free."""
    import ray

    total, free = ray.cluster_resources(), ray.available_resources()

    def res(d: dict[str, float]) -> str:
        return f"{d.get('CPU', 0):g} CPU, {d.get('GPU', 0):g} GPU"

    ask = f"{cpus:g} CPU" + (f" + {gpus:g} GPU" if gpus else "")
    return (f"{replicas} replica(s) asking for {ask} each are pending; the cluster has "
            f"{res(total)} ({res(free)} free)")


def watched(rows: Iterable[dict[str, Any]], run_key: str, start_timeout_s: float,
            describe: Callable[[], str]) -> Iterator[dict[str, Any]]:
    """Yield ``rows`` (consumed on a thread); raise :class:`JobStalled` when no row has arrived
    and no replica has started within ``start_timeout_s`` seconds."""
    box: queue.Queue = queue.Queue(maxsize=64)
    done = object()

    def pump() -> None:
        try:
            for row in rows:
                box.put(("row", row))
            box.put(("end", done))
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
            box.put(("error", exc))

    threading.Thread(target=pump, name="atlasgrn-block-results", daemon=True).start()
    t0 = time.monotonic()
    seen = False
    while True:
        try:
            kind, item = box.get(timeout=None if seen else POLL_S)
        except queue.Empty:
            waited = time.monotonic() - t0
            if waited >= start_timeout_s and not replicas_started(run_key):
                raise JobStalled(f"no replica started in {waited:.0f}s: {describe()}") from None
            continue
        if kind == "end":
            return
        if kind == "error":
            raise item
        seen = True
        yield item
