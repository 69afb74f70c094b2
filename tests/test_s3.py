"""The object-store path against a real S3 API: moto's server on loopback, behind a small fault
proxy of ours (tests/s3_fault_proxy.py). Every command runs as users run it, in a subprocess
whose only link to the store is ``AWS_ENDPOINT_URL`` / ``FSSPEC_S3_ENDPOINT_URL``.

- ingest into ``s3://``, ``atlasgrn info``, the job reading that atlas and writing its output
  to ``s3://`` (one object per file, ``_SUCCESS`` last), and its rerun computing nothing;
- a driver SIGKILLed mid-run, then resumed on S3, computing only the missing blocks;
- throttling (503 SlowDown) and an endpoint restart mid-run, retried, with the same edges;
- bytes fetched from the atlas, against its size.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from .ray_cluster import ray_head
from .s3_fault_proxy import fault_proxy
from .s3_server import MOTO_SERVER, moto_server

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.skipif(not Path(MOTO_SERVER).exists(),
                                reason="moto[server] is not installed (pip install -e '.[dev]')")


@pytest.fixture(scope="module")
def s3_stack():
    """(proxy, S3 seen through the proxy, S3 direct): one moto server for the module."""
    with moto_server() as direct, fault_proxy(direct) as (proxy, front):
        yield proxy, front, direct


@pytest.fixture(scope="module")
def s3_atlas(s3_stack, sim_world, tmp_path_factory):
    """The simulated world's first dataset, written as .h5ad and ingested into S3 with
    ``atlasgrn ingest``; then ``atlasgrn info`` on it. Returns (atlas URL, bucket)."""
    import anndata as ad
    import pandas as pd

    from atlasgrn.atlas import open_atlas

    proxy, front, direct = s3_stack
    bucket = direct.make_bucket("atlas-bucket")
    local = open_atlas(sim_world.atlas)
    ds = local.dataset(local.names[0])
    h5ad = tmp_path_factory.mktemp("s3-src") / "sim0.h5ad"
    ad.AnnData(X=ds.read_cells(0, ds.info.n_cells),
               var=pd.DataFrame(index=list(ds.genes))).write_h5ad(h5ad)
    url = f"s3://{bucket}/atlas.zarr"
    ingest = _cli(front, ["ingest", url, "--dataset", f"sim0={h5ad}", "--species",
                          ds.info.species, "--value-kind", ds.info.value_kind])
    assert ingest.returncode == 0, ingest.stderr[-2000:]
    info = _cli(front, ["info", url])
    assert info.returncode == 0, info.stderr[-2000:]
    assert "sim0" in info.stdout and f"{ds.info.n_cells}" in info.stdout
    return url, bucket


def _env(s3, **extra: str) -> dict[str, str]:
    env = dict(os.environ, **s3.env, **extra)
    env.pop("ATLASGRN_IN_PROCESS", None)  # the supervised job, as users run it
    return env


def _cli(s3, args: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "atlasgrn", *args], cwd=REPO, env=_env(s3),
                          capture_output=True, text=True, timeout=300)


def _job_args(world, atlas: str, out: str) -> list[str]:
    return [sys.executable, "-m", "atlasgrn.run", atlas, "--out", out, "--model",
            world.model_dir, "--translator", world.translator_dir, "--top", "0",
            "--regulators", world.regulators,
            "--replicas", "1", "--cpus-per-replica", "1", "--max-regulators", "15"]


def _edges(direct, bucket: str, prefix: str) -> dict[str, bytes]:
    """Edge files under ``prefix``: relative name -> bytes (byte-for-byte comparisons)."""
    client = direct.client()
    return {k[len(prefix):]: client.get_object(Bucket=bucket, Key=k)["Body"].read()
            for k in direct.keys(bucket, f"{prefix}edges/")}


def _manifest(direct, bucket: str, prefix: str) -> dict:
    body = direct.client().get_object(Bucket=bucket, Key=f"{prefix}manifest.json")["Body"]
    return json.loads(body.read())


@pytest.fixture(scope="module")
def s3_build(s3_stack, s3_atlas, sim_world):
    """The job reading the S3 atlas and writing to S3, through the proxy (which counts what it
    fetched and the order of the PUTs). Returns (bucket, prefix, stats snapshot, stdout)."""
    proxy, front, direct = s3_stack
    url, bucket = s3_atlas
    before_gets = dict(proxy.stats.get_bytes)
    before_puts = len(proxy.stats.puts)
    proc = subprocess.run(_job_args(sim_world, url, f"s3://{bucket}/build/"), cwd=REPO,
                          env=_env(front), capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    gets = {k: v - before_gets.get(k, 0) for k, v in proxy.stats.get_bytes.items()}
    return bucket, "build/", {"gets": gets, "puts": proxy.stats.puts[before_puts:]}, proc.stdout


@pytest.mark.slow
def test_the_job_reads_an_s3_atlas_and_publishes_to_s3_success_last(s3_stack, s3_build):
    _, _, direct = s3_stack
    bucket, prefix, stats, stdout = s3_build
    keys = direct.keys(bucket, prefix)
    manifest = _manifest(direct, bucket, prefix)
    assert manifest["status"] == "complete"
    n_blocks = manifest["plan"]["blocks"]
    edge_keys = [k for k in keys if k.startswith(f"{prefix}edges/")]
    assert len(edge_keys) == n_blocks >= 2
    assert all(k.endswith(".parquet") and "/." not in k for k in edge_keys)  # no temp objects
    assert f"{prefix}_SUCCESS" in keys
    puts = [p.split("/", 1)[1] for p in stats["puts"]]
    assert puts[-1] == f"{prefix}_SUCCESS", puts[-5:]
    final_manifest = max(i for i, p in enumerate(puts) if p == f"{prefix}manifest.json")
    assert final_manifest == len(puts) - 2  # the complete manifest, then _SUCCESS
    assert all(puts.index(k) < final_manifest for k in edge_keys)
    # the printed locations are URLs a user can paste, not bucket-relative paths
    assert f"s3://{bucket}/build/edges" in stdout


@pytest.mark.slow
def test_reads_from_s3_do_not_grow_with_the_blocks(s3_stack, s3_atlas, s3_build):
    """Replicas fetch no matrix bytes per block (a block needs gene names, anchors and a
    profile, which the driver reads once), and the per-gene statistics were cached by the
    ingest, so the job reads metadata, gene names and statistics: a small fraction of the
    atlas, whatever the number of blocks."""
    _, _, direct = s3_stack
    url, bucket = s3_atlas
    _, prefix, stats, _ = s3_build
    client = direct.client()
    sizes = {f"{bucket}/{k}": client.head_object(Bucket=bucket, Key=k)["ContentLength"]
             for k in direct.keys(bucket, "atlas.zarr/")}
    atlas_bytes = sum(sizes.values())
    fetched = sum(v for k, v in stats["gets"].items() if k.startswith(f"{bucket}/atlas.zarr/"))
    blocks = _manifest(direct, bucket, prefix)["plan"]["blocks"]
    def is_chunk(key: str) -> bool:  # the matrix's data, not its metadata (zarr v3: .../c/i)
        return "/X/" in key and "/c/" in key

    matrix = sum(v for k, v in stats["gets"].items() if is_chunk(k))
    matrix_bytes = sum(v for k, v in sizes.items() if is_chunk(k))
    print(f"\nS3 atlas {atlas_bytes:,} bytes (matrix {matrix_bytes:,}); fetched during the job "
          f"{fetched:,} bytes ({fetched / atlas_bytes:.3f} x the atlas; matrix {matrix:,}) for "
          f"{blocks} blocks ({fetched / blocks:,.0f} bytes per block)")
    # the statistics cached at ingest stand in for the matrix: not one matrix byte is fetched
    # (metadata and gene names are most of this tiny atlas; they do not grow with cells)
    assert matrix == 0 < matrix_bytes and 0 < fetched < atlas_bytes


@pytest.mark.slow
def test_a_rerun_on_s3_computes_nothing(s3_stack, s3_atlas, s3_build, sim_world):
    proxy, front, direct = s3_stack
    url, bucket = s3_atlas
    bucket, prefix, _, _ = s3_build
    before = _edges(direct, bucket, prefix)
    rerun = subprocess.run(_job_args(sim_world, url, f"s3://{bucket}/{prefix}"), cwd=REPO,
                           env=_env(front), capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    attempt = _manifest(direct, bucket, prefix)["attempts"][-1]
    assert attempt["blocks_computed"] == 0 and attempt["blocks_to_compute"] == 0
    assert _edges(direct, bucket, prefix) == before


@pytest.mark.slow
def test_a_killed_driver_resumes_on_s3_computing_only_the_missing_blocks(
        s3_stack, s3_atlas, s3_build, sim_world):
    """SIGKILL the driver (and its supervisor) after the first block is in the probe store, on
    a cluster that outlives it; the rerun probes only the blocks that were not stored, and the
    edges equal the clean S3 build's, byte for byte."""
    proxy, front, direct = s3_stack
    url, bucket = s3_atlas
    clean = _edges(direct, bucket, s3_build[1])
    prefix = "resumed/"
    args = _job_args(sim_world, url, f"s3://{bucket}/{prefix}")
    # the cluster's nodes get the endpoint from their own environment, as on a real cluster
    with ray_head(num_cpus=2, num_gpus=0, extra_env=front.env) as head:
        env = dict(_env(front), **head.env, RAY_ADDRESS=head.gcs)
        env.pop("ATLASGRN_IN_PROCESS", None)
        proc = subprocess.Popen(args, cwd=REPO, env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, text=True, start_new_session=True)
        deadline = time.monotonic() + 300
        def stored() -> list[str]:
            return [k for k in direct.keys(bucket, f"{prefix}store/")
                    if "/scores/" in k and k.endswith(".parquet")]

        while time.monotonic() < deadline and proc.poll() is None:
            if stored():
                break
            time.sleep(0.2)
        assert proc.poll() is None, "the job ended before it could be killed"
        os.killpg(proc.pid, signal.SIGKILL)  # driver and supervisor: no chance to clean up
        proc.wait(timeout=30)
    published = stored()
    assert f"{prefix}_SUCCESS" not in direct.keys(bucket, prefix)
    union = _manifest(direct, bucket, s3_build[1])["store"]["union_blocks"]
    assert 1 <= len(published) < union
    rerun = subprocess.run(args, cwd=REPO, env=_env(front), capture_output=True, text=True,
                           timeout=600)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    work = _manifest(direct, bucket, prefix)["work"]
    print(f"\nkilled after {len(published)} of {union} union blocks were stored; the rerun "
          f"probed {work['blocks_probed']}")
    # the cluster outlived the driver: a replica may have stored one more block meanwhile
    assert work["blocks_reused"] >= len(published)
    assert work["blocks_reused"] + work["blocks_probed"] == union
    assert _edges(direct, bucket, prefix) == clean


@pytest.mark.slow
def test_throttling_and_an_endpoint_restart_are_retried_and_change_nothing(
        s3_stack, s3_atlas, s3_build, sim_world):
    """503 SlowDown on the first eight edge PUTs, then the endpoint down for 4 s mid-run.
    botocore's own retries are turned off (``AWS_MAX_ATTEMPTS=1``), and the eight throttles all
    hit one edge file's PUT, so they outlast s3fs's five attempts and reach ours (tenacity): the
    build completes, says how many retries it made, and its edges equal the clean build's.
    (Throttling the first eight edge PUTs of any file stopped reaching ours once replicas wrote
    two batches at once: the throttles spread over concurrent PUTs, each within s3fs's own
    attempts.)"""
    proxy, front, direct = s3_stack
    url, bucket = s3_atlas
    clean = _edges(direct, bucket, s3_build[1])
    prefix = "faults/"
    faults_before = proxy.stats.faults[503]
    # the file name alone: the request line percent-encodes the '=' of 'dataset=...'
    proxy.throttle(8, "PUT", sorted(clean)[0].rsplit("/", 1)[-1])

    def restart_when_half_done() -> None:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            if len(direct.keys(bucket, f"{prefix}edges/")) >= len(clean) // 2:
                proxy.restart(down_s=4.0)
                return
            time.sleep(0.1)

    restarter = threading.Thread(target=restart_when_half_done, daemon=True)
    restarter.start()
    proc = subprocess.run(_job_args(sim_world, url, f"s3://{bucket}/{prefix}"), cwd=REPO,
                          env=_env(front, AWS_MAX_ATTEMPTS="1"), capture_output=True,
                          text=True, timeout=600)
    restarter.join(timeout=60)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    assert proxy.stats.faults[503] - faults_before == 8 and proxy.pending_faults() == 0
    attempt = _manifest(direct, bucket, prefix)["attempts"][-1]
    retries = attempt["io_retries"]
    print(f"\n8 throttled PUTs and a 4 s endpoint restart: retries by replicas "
          f"{retries['replicas']}, by the joins {retries['joins']}, by the driver "
          f"{retries['driver']}; status complete")
    assert retries["joins"] >= 1  # the throttled edge file is written by its join
    assert _edges(direct, bucket, prefix) == clean


# ------------------------------------------------------------------ object-store bad input
OBJECT_STORE_CASES = {
    # id: (argv with {atlas} / {bucket} placeholders, phrase in the one error line)
    "ingest-missing-bucket": (["atlasgrn", "ingest", "s3://no-such-bucket/a.zarr", "--dataset",
                               "x={csv}", "--species", "human", "--value-kind", "counts"],
                              "bucket 'no-such-bucket' does not exist"),
    "info-missing-bucket": (["atlasgrn", "info", "s3://no-such-bucket/a.zarr"],
                            "bucket 'no-such-bucket' does not exist"),
    "run-atlas-missing-bucket": (["atlasgrn.run", "s3://no-such-bucket/a.zarr", "--out",
                                  "{tmp}/o"], "bucket 'no-such-bucket' does not exist"),
    # s3fs would have created the bucket on the first write: the check comes first
    "run-out-missing-bucket": (["atlasgrn.run", "{atlas}", "--out", "s3://no-such-bucket/run"],
                               "bucket 'no-such-bucket' does not exist"),
    "edges-missing-bucket": (["atlasgrn", "edges", "s3://no-such-bucket/run"],
                             "bucket 'no-such-bucket' does not exist"),
    "info-access-denied": (["atlasgrn", "info", "{atlas}"], "access denied"),
    "run-access-denied": (["atlasgrn.run", "{atlas}", "--out", "{tmp}/o"], "access denied"),
    "info-unreachable-endpoint": (["atlasgrn", "info", "{atlas}"], "did not answer"),
}


@pytest.mark.parametrize("case", sorted(OBJECT_STORE_CASES))
def test_object_store_bad_input_is_one_line_exit_2(case, s3_stack, s3_atlas, tmp_path):
    from .s3_server import client_env, free_port

    proxy, front, direct = s3_stack
    url, _ = s3_atlas
    argv, says = OBJECT_STORE_CASES[case]
    csv = tmp_path / "m.csv"
    csv.write_text("gene,c1,c2\nA,1,2\nB,3,4\n")
    args = [a.format(atlas=url, tmp=tmp_path, csv=csv) for a in argv]
    prog = "atlasgrn.run" if args[0] == "atlasgrn.run" else f"atlasgrn {args[1]}"
    cmd = ([sys.executable, "-m", "atlasgrn.run", *args[1:]] if args[0] == "atlasgrn.run"
           else [sys.executable, "-m", "atlasgrn", *args[1:]])
    env = _env(front)
    if case.endswith("unreachable-endpoint"):  # nothing listens there; botocore retries off
        env.update(client_env(f"http://127.0.0.1:{free_port()}"), AWS_MAX_ATTEMPTS="1")
    buckets_before = {b["Name"] for b in direct.client().list_buckets()["Buckets"]}
    if case.endswith("access-denied"):
        proxy.deny("/atlas-bucket")
    try:
        proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True,
                              timeout=300)
    finally:
        proxy.allow()
    lines = [ln for ln in proc.stderr.splitlines() if ln.startswith(f"{prog}: error:")]
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert says in lines[0], lines[0]
    assert {b["Name"] for b in direct.client().list_buckets()["Buckets"]} == buckets_before
    assert not (tmp_path / "o").exists()


@pytest.mark.slow
def test_a_driver_killed_while_publishing_leaves_a_partial_run_that_a_rerun_completes(
        s3_stack, s3_atlas, s3_build, sim_world):
    """The driver is SIGKILLed while its consensus PUT is in flight (held by the proxy, then
    dropped): no ``_SUCCESS``, so readers refuse the prefix as partial; the rerun computes no
    block again and publishes edges and consensus byte-identical to the clean build's."""
    proxy, front, direct = s3_stack
    url, bucket = s3_atlas
    clean_prefix = s3_build[1]
    prefix = "publish-killed/"
    proxy.hold("PUT", f"/{bucket}/{prefix}consensus/")
    args = _job_args(sim_world, url, f"s3://{bucket}/{prefix}")
    proc = subprocess.Popen(args, cwd=REPO, env=_env(front), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        assert proxy.held.wait(timeout=300), "the consensus was never published"
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        proxy.release()
    keys = direct.keys(bucket, prefix)
    assert f"{prefix}_SUCCESS" not in keys and not any("consensus/" in k for k in keys)
    partial = _cli(front, ["edges", f"s3://{bucket}/{prefix}", "--top", "3"])
    assert partial.returncode == 2 and "the run is partial" in partial.stderr
    rerun = subprocess.run(args, cwd=REPO, env=_env(front), capture_output=True, text=True,
                           timeout=600)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    attempt = _manifest(direct, bucket, prefix)["attempts"][-1]
    assert attempt["blocks_computed"] == 0  # every block had been published before the kill
    assert _edges(direct, bucket, prefix) == _edges(direct, bucket, clean_prefix)
    client = direct.client()

    def consensus(p: str) -> list[bytes]:
        return [client.get_object(Bucket=bucket, Key=k)["Body"].read()
                for k in direct.keys(bucket, f"{p}consensus/")]
    assert consensus(prefix) == consensus(clean_prefix) != []
    assert f"{prefix}_SUCCESS" in direct.keys(bucket, prefix)
