"""Which Ray cluster the job uses, and whether it can ever place a replica: checked before any
work is submitted, so no cluster shape makes the job wait forever.

- **Which cluster is explicit.** ``--address`` or ``RAY_ADDRESS`` (which ``ray job submit``
  sets for its driver) names a cluster; without either the job starts a fresh local Ray
  (``address="local"``), never following Ray's "current cluster" pointer, which a head killed
  without ``ray stop`` leaves pointing at nothing (Ray then retries its GCS forever). A named
  cluster that does not accept a connection within seconds is one line and exit 2. A Ray the
  process already holds (a second ``atlasgrn.infer``, a notebook's ``ray.init()``) is reused.
- **Resources before waiting.** A replica asks for ``gpus`` GPUs and ``cpus`` CPUs. It can run
  only on a node shape that has both: a node that is up, or a node type the autoscaler may add
  (the cluster config KubeRay and the cluster launcher report to the GCS). ``auto`` GPUs means
  one GPU per replica where such a shape exists, else CPU replicas; the choice is printed. An
  explicit request no shape can meet is refused with one line naming what was asked and what
  exists.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from ..errors import AtlasgrnError

AUTO = "auto"
#: Seconds a named cluster gets to accept a TCP connection on its GCS port.
CONNECT_TIMEOUT_S = 10.0


#: Cloud nodes the autoscaler has yet to launch take minutes (boot, image pull): a run whose
#: replicas can only land on such node types waits at least this long before it is stalled.
AUTOSCALE_START_S = 1200.0


@dataclass(frozen=True)
class Placement:
    """What each replica asks for, why, and how long to wait for the first sign of life."""

    gpus: float
    cpus: float
    reason: str
    start_timeout_s: float = 300.0


def cluster_address(option: str | None) -> tuple[str | None, str]:
    """The address to connect to (None: start a local Ray) and where it came from."""
    if option:
        return option, "--address"
    env = os.environ.get("RAY_ADDRESS")
    if env:
        return env, "RAY_ADDRESS"
    return None, ""


def _host_port(address: str) -> tuple[str, int] | None:
    text = address.split("://", 1)[-1].rstrip("/")
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit():
        return None
    return host.strip("[]") or "127.0.0.1", int(port)  # [::1]:6379 -> ::1


def check_reachable(address: str, source: str, timeout_s: float = CONNECT_TIMEOUT_S) -> None:
    """Refuse, in one line, a cluster whose GCS port does not accept a connection."""
    if address in ("auto", "local") or address.startswith("ray://"):
        return  # resolved by Ray itself (auto / local) or the Ray Client's own handshake
    if address.startswith(("http://", "https://")):
        raise AtlasgrnError(f"'{address}' is the dashboard (Jobs API) address, which "
                            "`ray job submit` takes, not the cluster's", key=source,
                            remedy="give the head's GCS address (host:6379), or submit the job "
                                   "with `ray job submit --address " + address + "`")
    hp = _host_port(address)
    if hp is None:
        raise AtlasgrnError(f"'{address}' is not a Ray address (host:port)", key=source,
                            remedy="give the head's GCS address, e.g. 10.0.0.1:6379")
    try:
        with socket.create_connection(hp, timeout=timeout_s):
            pass
    except OSError as exc:
        raise AtlasgrnError(f"the Ray cluster at {address} does not answer ({exc.strerror or exc})",
                            key=source, remedy="start it (ray start --head), fix the address, or "
                            f"unset {source} to run on a fresh local Ray") from None


def connect(address_option: str | None, log: Callable[[str], None]) -> bool:
    """Connect to the named cluster, reuse the process's Ray, or start a local one; returns
    whether Ray was started here (and should be shut down by the caller)."""
    import ray

    address, source = cluster_address(address_option)
    if ray.is_initialized():
        held = ray.get_runtime_context().gcs_address
        if address_option and _host_port(address_option) != _host_port(held or ""):
            raise AtlasgrnError(f"this process is already connected to the Ray cluster at "
                                f"{held}, not {address_option}", key="--address",
                                remedy="drop address= to use the connected cluster, or call "
                                       "ray.shutdown() first")
        return False
    quiet = {"log_to_driver": True, "logging_level": logging.WARNING}
    if address is None:
        ray.init(address="local", include_dashboard=False, **quiet)
        started = True
    else:
        check_reachable(address, source)
        try:
            ray.init(address=address, **quiet)
        except (ConnectionError, ValueError, RuntimeError) as exc:
            reason = " ".join(str(exc).split())[:300]
            raise AtlasgrnError(f"cannot join the Ray cluster at {address}: {reason}",
                                key=source, remedy="check the address, that the cluster runs "
                                "the same Ray and Python versions, and RAY_AUTH_MODE/token "
                                "settings on both sides") from None
        log(f"connected to the Ray cluster at {address} ({source})")
        started = False
    quiet_ray_data()
    from .supervisor import reclaim_sigterm

    reclaim_sigterm()
    return started


def quiet_ray_data() -> None:
    """Ray Data announces every execution on the console at INFO ("Starting execution", its
    plan, "execution finished"); keep its console to warnings and errors. Its own log file
    (ray-data.log in the session directory) keeps everything."""
    import ray.data  # noqa: F401 - configures Ray Data's logging handlers on import

    for handler in logging.getLogger("ray.data").handlers:
        if "File" not in type(handler).__name__:  # the console, not the session's log file
            handler.setLevel(logging.WARNING)


def node_shapes() -> tuple[list[dict[str, float]], list[dict[str, float]]]:
    """Resources of every live node, and of every node type the autoscaler may still add."""
    import ray

    live = [dict(n.get("Resources", {})) for n in ray.nodes() if n.get("Alive")]
    return live, autoscaler_node_types()


def watchdog_can_see_replicas() -> bool:
    """Through Ray Client (``ray://``) the GCS key-value store is out of reach."""
    try:
        import ray

        return not ray.util.client.ray.is_connected()
    except Exception:  # noqa: BLE001
        return True


def autoscaler_node_types() -> list[dict[str, float]]:
    """Node types with room to scale up, from the cluster config the autoscaler reports to the
    GCS (Ray exposes it only through a private accessor; absent on a plain ``ray start``)."""
    try:
        from ray._private.state import state

        config = state.get_cluster_config()
    except Exception:  # noqa: BLE001 - no config (or another Ray): only live nodes count
        return []
    if config is None:
        return []
    return [dict(g.resources) for g in config.node_group_configs
            if g.max_count == -1 or g.max_count > 0]


def _describe(shapes: Sequence[Mapping[str, float]]) -> str:
    if not shapes:
        return "no node"
    seen = sorted({(float(s.get("CPU", 0)), float(s.get("GPU", 0))) for s in shapes})
    return ", ".join(f"{c:g} CPU + {g:g} GPU" for c, g in seen)


def place_replicas(gpus: float | str, cpus: float, live: Sequence[Mapping[str, float]],
                   possible: Sequence[Mapping[str, float]] = (), *,
                   start_timeout_s: float = 300.0,
                   resources: Mapping[str, float] | None = None) -> Placement:
    """Resolve ``auto`` and refuse a request no node shape meets (see the module docstring).

    ``live`` are the shapes of nodes that are up, ``possible`` those of node types the
    autoscaler may add; when only the latter fit, the start bound is at least
    :data:`AUTOSCALE_START_S`.
    """
    shapes = [*live, *possible]
    for name, amount in (resources or {}).items():
        if not any(float(s.get(name, 0)) >= amount for s in shapes):
            raise AtlasgrnError(f"--replica-resource {name}={amount:g} asked, but no node has "
                                f"or can get it (nodes: {_describe(shapes)})",
                                key="--replica-resource",
                                remedy=f"start the replicas' nodes with --resources "
                                       f"'{{\"{name}\": N}}', or drop --replica-resource")
        shapes = [s for s in shapes if float(s.get(name, 0)) >= amount]
        live = [s for s in live if float(s.get(name, 0)) >= amount]

    def fits(g: float, shape: Mapping[str, float]) -> bool:
        return float(shape.get("CPU", 0)) >= cpus and float(shape.get("GPU", 0)) >= g

    def placed(g: float, reason: str) -> Placement:
        waits = not any(fits(g, s) for s in live)
        bound = max(start_timeout_s, AUTOSCALE_START_S) if waits else start_timeout_s
        return Placement(g, cpus, reason + (" (on nodes the autoscaler has to add)"
                                            if waits else ""), bound)

    if gpus == AUTO:
        if any(fits(1.0, s) for s in shapes):
            return placed(1.0, "a GPU per replica: the cluster has GPU nodes")
        if any(fits(0.0, s) for s in shapes):
            return placed(0.0, "replicas on CPU: no node has a GPU")
        raise AtlasgrnError(f"--cpus-per-replica {cpus:g} fits no node (nodes: "
                            f"{_describe(shapes)})", key="--cpus-per-replica",
                            remedy="lower --cpus-per-replica to what a node has")
    want = float(gpus)
    if any(fits(want, s) for s in shapes):
        return placed(want, f"{want:g} GPU(s) per replica, as asked")
    if want > 0 and not any(float(s.get("GPU", 0)) >= want for s in shapes):
        raise AtlasgrnError(f"--gpus-per-replica {want:g} asked, but no node has or can get "
                            f"{want:g} GPU(s) (nodes: {_describe(shapes)})",
                            key="--gpus-per-replica",
                            remedy="use --gpus-per-replica auto (CPU replicas here), or add GPU "
                                   "nodes to the cluster")
    raise AtlasgrnError(f"--cpus-per-replica {cpus:g} with --gpus-per-replica {want:g} fits no "
                        f"node (nodes: {_describe(shapes)})", key="--cpus-per-replica",
                        remedy="lower --cpus-per-replica to what a node has")
