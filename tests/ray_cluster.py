"""A real Ray cluster started the way users start one (``ray start --head``), in its own temp
dir and ports, token-authenticated, and stopped without touching the test session's own Ray."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

RAY = str(Path(sys.executable).with_name("ray"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass(frozen=True)
class Head:
    env: dict[str, str]     # for `ray job submit` and drivers: token auth, this interpreter
    dashboard: str          # the Jobs API address
    gcs: str                # host:port, what RAY_ADDRESS holds under `ray job submit`
    temp: Path


@contextmanager
def ray_head(num_cpus: int = 2, num_gpus: int = 0,
             extra_env: dict[str, str] | None = None) -> Iterator[Head]:
    """``extra_env`` reaches every worker of the cluster (e.g. the object-store endpoint, as
    a real cluster's node configuration would set it)."""
    temp = Path("/tmp") / f"rayt{os.getpid()}_{free_port()}"  # short: socket paths <= 107 bytes
    # the job's `python` must be this interpreter (the cluster's workers inherit PATH)
    env = dict(os.environ, **(extra_env or {}), RAY_AUTH_MODE="token",
               PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    env.pop("RAY_ADDRESS", None)
    gcs, dash = free_port(), free_port()
    start = [RAY, "start", "--head", f"--port={gcs}", f"--num-cpus={num_cpus}",
             f"--num-gpus={num_gpus}", "--include-dashboard=true", "--dashboard-host=127.0.0.1",
             f"--dashboard-port={dash}", f"--temp-dir={temp}", "--disable-usage-stats",
             f"--ray-client-server-port={free_port()}", f"--object-store-memory={200 * 2**20}",
             f"--dashboard-agent-listen-port={free_port()}"]
    try:
        subprocess.run(start, env=env, check=True, capture_output=True, timeout=120)
        yield Head(env, f"http://127.0.0.1:{dash}", f"127.0.0.1:{gcs}", temp)
    finally:
        stop(temp)
        shutil.rmtree(temp, ignore_errors=True)


def processes(temp: Path, name: str = "") -> list:
    """This cluster's processes (their command line names its temp dir), optionally only those
    whose command line also contains ``name`` (e.g. ``raylet``)."""
    import psutil

    found = []
    for proc in psutil.process_iter(["pid", "cmdline"]):
        try:
            line = " ".join(proc.info["cmdline"] or [])
            if proc.pid != os.getpid() and str(temp) in line and name in line:
                found.append(proc)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return found


def stop(temp: Path) -> None:
    """Kill only this cluster. ``ray stop`` kills every Ray process on the machine, including
    the test session's own ``ray.init`` cluster, whose loss makes the pytest driver exit."""
    import psutil

    mine = processes(temp)
    for proc in mine:
        try:
            proc.terminate()
        except psutil.NoSuchProcess:
            pass
    _, alive = psutil.wait_procs(mine, timeout=3)  # a test cluster: no need to be gentle
    for proc in alive:
        try:
            proc.kill()
        except psutil.NoSuchProcess:
            pass


@dataclass(frozen=True)
class Worker:
    node_manager_port: int

    def raylets(self, head: Head) -> list:
        """This worker node's raylet process (its command line names its own port)."""
        return [p for p in processes(head.temp, "raylet")
                if f"--node_manager_port={self.node_manager_port}" in " ".join(p.cmdline())]


def start_worker(head: Head, num_cpus: int, resources: dict[str, float]) -> Worker:
    """``ray start --address`` a second node on this machine, with its own ports and custom
    resources, token-authenticated like the head; stopped with the head (same temp dir)."""
    import json

    node_port = free_port()
    low = 20000 + 200 * (node_port % 45)  # worker ports of its own, clear of the head's range
    start = [RAY, "start", f"--address={head.gcs}", f"--min-worker-port={low}",
             f"--max-worker-port={low + 199}", f"--num-cpus={num_cpus}", "--num-gpus=0",
             f"--resources={json.dumps(resources)}", f"--node-manager-port={node_port}",
             f"--object-manager-port={free_port()}", f"--metrics-export-port={free_port()}",
             f"--dashboard-agent-listen-port={free_port()}",
             f"--dashboard-agent-grpc-port={free_port()}",
             f"--runtime-env-agent-port={free_port()}", f"--object-store-memory={200 * 2**20}",
             "--disable-usage-stats"]
    subprocess.run(start, env=head.env, check=True, capture_output=True, timeout=120)
    return Worker(node_port)
