"""No silent wait: if the replicas show no sign of life for too long, say what is pending and stop.

Resources are checked before any work is submitted (``cluster.place_replicas``), but a shape
that exists is not a node that is free (another job may hold it; the autoscaler may never deliver
the node type it advertises), and a node can vanish mid-run (a preempted spot node whose replica
Ray Data then waits to restart forever). Ray itself only prints its autoscaler lines.

So each replica, once its model is loaded, beats a heartbeat into the GCS key-value store (no
dashboard needed) under a key unique to this *round* of this run, and the driver reads block
results on a thread. When neither a result nor a fresh heartbeat has arrived for
``timeout_s``, the round stops with :class:`JobStalled`, naming the demand and what the cluster
has. Keys are deleted after the round, so a rerun, a retry round or another run on a
long-lived cluster never mistakes old replicas for live ones.
"""

from __future__ import annotations

import queue
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from typing import Any

#: Seconds between the driver's checks, and between a replica's heartbeats.
POLL_S = 2.0
HEARTBEAT_S = 5.0
_KV_PREFIX = "atlasgrn:heartbeat:"


class JobStalled(RuntimeError):
    """No result and no live replica within the bound; the message says what is pending."""


def round_key(run_hash: str) -> str:
    """A key prefix unique to one round of one run."""
    return f"{run_hash}:{uuid.uuid4().hex[:12]}"


def start_heartbeat(key: str, pid: int) -> None:
    """Called by a replica once its model is loaded: beat every few seconds on a daemon thread
    (best effort; outside Ray, or through Ray Client, a no-op)."""
    try:
        from ray.experimental.internal_kv import _internal_kv_put
    except Exception:  # noqa: BLE001 - the heartbeat must never fail a replica
        return

    def beat() -> None:
        while True:
            try:
                _internal_kv_put(f"{_KV_PREFIX}{key}:{pid}", str(time.time()).encode(),
                                 overwrite=True)
            except Exception:  # noqa: BLE001
                return
            time.sleep(HEARTBEAT_S)

    threading.Thread(target=beat, name="atlasgrn-heartbeat", daemon=True).start()


def last_heartbeat(key: str) -> float | None:
    """The newest heartbeat of this round (seconds since the epoch), None when there is none;
    ``inf`` when the key-value store cannot be read (then only results count as progress)."""
    try:
        from ray.experimental.internal_kv import _internal_kv_get, _internal_kv_list

        keys = _internal_kv_list(f"{_KV_PREFIX}{key}:")
        beats = [float(_internal_kv_get(k) or 0) for k in keys]
    except Exception:  # noqa: BLE001 - e.g. Ray Client: the watchdog cannot see replicas
        return float("inf")
    return max(beats) if beats else None


def forget(key: str) -> None:
    try:
        from ray.experimental.internal_kv import _internal_kv_del

        _internal_kv_del(f"{_KV_PREFIX}{key}:", del_by_prefix=True)
    except Exception:  # noqa: BLE001
        pass


def demand_line(replicas: int, gpus: float, cpus: float) -> str:
    """What the replicas ask for against what the cluster has and has free."""
    import ray

    total, free = ray.cluster_resources(), ray.available_resources()

    def res(d: dict[str, float]) -> str:
        return f"{d.get('CPU', 0):g} CPU, {d.get('GPU', 0):g} GPU"

    ask = f"{cpus:g} CPU" + (f" + {gpus:g} GPU" if gpus else "")
    return (f"{replicas} replica(s) asking for {ask} each are pending; the cluster has "
            f"{res(total)} ({res(free)} free)")


def watched(rows: Iterable[dict[str, Any]], key: str, timeout_s: float,
            describe: Callable[[], str]) -> Iterator[dict[str, Any]]:
    """Yield ``rows`` (consumed on a thread); raise :class:`JobStalled` when neither a row nor a
    heartbeat newer than ``timeout_s`` seconds has arrived."""
    box: queue.Queue = queue.Queue(maxsize=64)

    def pump() -> None:
        try:
            for row in rows:
                box.put(("row", row))
            box.put(("end", None))
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
            box.put(("error", exc))

    threading.Thread(target=pump, name="atlasgrn-block-results", daemon=True).start()
    last_row = time.monotonic()
    while True:
        try:
            kind, item = box.get(timeout=POLL_S)
        except queue.Empty:
            idle = time.monotonic() - last_row
            if idle >= timeout_s:
                beat = last_heartbeat(key)
                if beat is None or time.time() - beat >= timeout_s:
                    what = "no replica started" if beat is None else "no replica is alive"
                    raise JobStalled(f"{what} and no block finished in {idle:.0f}s: "
                                     f"{describe()}") from None
            continue
        if kind == "end":
            return
        if kind == "error":
            raise item
        last_row = time.monotonic()
        yield item
