"""``ray start --head`` (no GPU) + ``ray job submit -- python -m atlasgrn.run``, as the mission
states it: with no GPU option the build completes on CPU; a failing job makes ``ray job submit``
exit non-zero; an explicit GPU request on the GPU-less head is refused within 60 s in one line
(it used to wait forever). Runs its own cluster (own ports and temp dir) in subprocesses,
token-authenticated on both sides, and stops it in a finally."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from .ray_cluster import RAY, ray_head

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture()
def ray_cluster():
    if not Path(RAY).exists():
        pytest.skip(f"the ray CLI is not installed next to {RAY}")
    with ray_head(num_cpus=2, num_gpus=0) as head:
        yield head


def _submit(head, args: list[str]) -> subprocess.CompletedProcess:
    cmd = [RAY, "job", "submit", "--address", head.dashboard, "--working-dir", str(REPO), "--",
           "python", "-m", "atlasgrn.run", *args]
    return subprocess.run(cmd, env=head.env, cwd=REPO, capture_output=True, text=True,
                          timeout=400)


def test_ray_job_submit_runs_the_build_and_fails_non_zero_on_bad_input(ray_cluster, sim_world,
                                                                       tmp_path):
    out = tmp_path / "run"
    common = ["--model", sim_world.model_dir, "--translator", sim_world.translator_dir,
              "--regulators", sim_world.regulators,
              "--cpus-per-replica", "1", "--top", "3"]
    ok = _submit(ray_cluster, [sim_world.atlas, "--out", str(out), *common])
    assert ok.returncode == 0, ok.stdout[-3000:] + ok.stderr[-3000:]
    assert (out / "_SUCCESS").exists()
    assert "blocks 8/8" in ok.stdout and "top 3 consensus edges" in ok.stdout  # union blocks
    assert "replicas on CPU: no node has a GPU" in ok.stdout
    bad = _submit(ray_cluster, [str(tmp_path / "missing.zarr"), "--out", str(tmp_path / "o2"),
                                *common])
    assert bad.returncode != 0
    assert "atlas not found" in bad.stdout + bad.stderr
    t0 = time.monotonic()
    gpu = _submit(ray_cluster, [sim_world.atlas, "--out", str(tmp_path / "o3"), *common,
                                "--gpus-per-replica", "1"])
    assert gpu.returncode != 0 and time.monotonic() - t0 < 60
    # `ray job submit` echoes the job's log, and may echo its tail again with the failure
    errors = {ln for ln in (gpu.stdout + gpu.stderr).splitlines()
              if ln.startswith("atlasgrn.run: error:")}
    assert len(errors) == 1 and "--gpus-per-replica 1 asked" in errors.pop()
    assert not (tmp_path / "o3").exists()
