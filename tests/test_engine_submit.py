"""``ray start --head`` + ``ray job submit -- python -m atlasgrn.run`` works, and a failing job
makes ``ray job submit`` exit non-zero. Runs its own cluster (own ports and temp dir) in
subprocesses, token-authenticated on both sides, and stops it in a finally."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from .engine_helpers import sim_world  # noqa: F401 - fixture

REPO = Path(__file__).resolve().parents[1]
RAY = str(Path(sys.executable).with_name("ray"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture()
def ray_cluster(tmp_path):
    if not Path(RAY).exists():
        pytest.skip(f"the ray CLI is not installed next to {sys.executable}")
    temp = Path("/tmp") / f"rayt{os.getpid()}"  # short: Ray's socket paths must fit 107 bytes
    # the job's `python` must be this interpreter (the cluster's workers inherit PATH)
    env = dict(os.environ, RAY_AUTH_MODE="token",
               PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    env.pop("RAY_ADDRESS", None)
    gcs, dash = _free_port(), _free_port()
    start = [RAY, "start", "--head", f"--port={gcs}", "--num-cpus=2", "--num-gpus=0",
             "--include-dashboard=true", "--dashboard-host=127.0.0.1",
             f"--dashboard-port={dash}", f"--temp-dir={temp}", "--disable-usage-stats",
             f"--ray-client-server-port={_free_port()}", f"--object-store-memory={200 * 2**20}",
             f"--dashboard-agent-listen-port={_free_port()}"]
    try:
        subprocess.run(start, env=env, check=True, capture_output=True, timeout=120)
        yield env, f"http://127.0.0.1:{dash}", gcs
    finally:
        _stop_cluster(temp)
        shutil.rmtree(temp, ignore_errors=True)


def _stop_cluster(temp: Path) -> None:
    """Kill only this test's cluster: every process whose command line names its temp dir.

    ``ray stop`` kills every Ray process on the machine, including the test session's own
    ``ray.init`` cluster, whose loss makes the pytest driver itself exit.
    """
    import psutil

    mine = []
    for proc in psutil.process_iter(["pid", "cmdline"]):
        try:
            if proc.pid != os.getpid() and str(temp) in " ".join(proc.info["cmdline"] or []):
                mine.append(proc)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    for proc in mine:
        try:
            proc.terminate()
        except psutil.NoSuchProcess:
            pass
    _, alive = psutil.wait_procs(mine, timeout=15)
    for proc in alive:
        try:
            proc.kill()
        except psutil.NoSuchProcess:
            pass


def _submit(env, address: str, args: list[str]) -> subprocess.CompletedProcess:
    cmd = [RAY, "job", "submit", "--address", address, "--working-dir", str(REPO), "--",
           "python", "-m", "atlasgrn.run", *args]
    return subprocess.run(cmd, env=env, cwd=REPO, capture_output=True, text=True, timeout=400)


def test_ray_job_submit_runs_the_build_and_fails_non_zero_on_bad_input(ray_cluster, sim_world,
                                                                       tmp_path):  # noqa: F811
    env, address, _ = ray_cluster
    out = tmp_path / "run"
    common = ["--model", sim_world.model_dir, "--translator", sim_world.translator_dir,
              "--source-block", "10", "--target-block", "60", "--gpus-per-replica", "0",
              "--cpus-per-replica", "1", "--top", "3"]
    ok = _submit(env, address, [sim_world.atlas, "--out", str(out), *common])
    assert ok.returncode == 0, ok.stdout[-3000:] + ok.stderr[-3000:]
    assert (out / "_SUCCESS").exists()
    assert "blocks 8/8" in ok.stdout and "top 3 consensus edges" in ok.stdout
    bad = _submit(env, address, [str(tmp_path / "missing.zarr"), "--out", str(tmp_path / "o2"),
                                 *common])
    assert bad.returncode != 0
    assert "atlas not found" in bad.stdout + bad.stderr
