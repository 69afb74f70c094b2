"""Never hang, always say what happened: the job on cluster shapes that used to make it wait
forever, a driver that loses its Ray node, and run identity that ignores how a path is spelled.

Subprocess tests run the main job as users do (``python -m atlasgrn.run``, supervised, without
``ATLASGRN_IN_PROCESS``); in-process ones share the session's Ray (2 CPUs, 2 logical GPUs).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from atlasgrn.engine.config import RunConfig
from atlasgrn.engine.job import run_job
from atlasgrn.run import main

from .ray_cluster import free_port, processes, ray_head

REPO = Path(__file__).resolve().parents[1]


def _job_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ, **extra)
    env.pop("ATLASGRN_IN_PROCESS", None)   # the supervised main job, as users run it
    return env


def _world_args(world) -> list[str]:
    return ["--model", world.model_dir, "--translator", world.translator_dir]


# ------------------------------------------------------------------------------ resources
def test_more_cpus_per_replica_than_the_cluster_has_is_refused_in_one_line(
        ray_session, sim_world, tmp_path, capsys):
    out = tmp_path / "run"
    rc = main([sim_world.atlas, "--out", str(out), "--cpus-per-replica", "4",
               *_world_args(sim_world)])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1
    assert "--cpus-per-replica 4 fits no node" in err and "2 CPU" in err
    assert not out.exists()  # refused before anything was written


def test_no_replica_starting_is_reported_and_recorded_not_waited_on(
        ray_session, sim_world, tmp_path):
    import ray

    @ray.remote(num_cpus=2)
    class Hog:  # takes every CPU of the session cluster
        def ready(self) -> bool:
            return True

    hog = Hog.remote()
    ray.get(hog.ready.remote())
    lines: list[str] = []
    try:
        t0 = time.monotonic()
        result = run_job(RunConfig(atlas=sim_world.atlas, out=str(tmp_path / "run"),
                                   model=sim_world.model_dir,
                                   translator=sim_world.translator_dir, gpus_per_replica=0,
                                   cpus_per_replica=1, start_timeout_s=4, max_regulators=2),
                         log=lines.append)
        waited = time.monotonic() - t0
    finally:
        ray.kill(hog)
    assert result.status == "stalled" and waited < 60
    stalled = [ln for ln in lines if ln.startswith("stalled:")]
    assert len(stalled) == 1 and "asking for 1 CPU each are pending" in stalled[0]
    assert "0 CPU, 0 GPU free" in stalled[0] or "0 CPU" in stalled[0]
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert manifest["status"] == "stalled" and "pending" in manifest["stalled"]


@pytest.mark.slow
def test_two_infer_calls_in_one_process_both_complete(sim_world, tmp_path):
    code = (
        "import atlasgrn\n"
        f"kw = dict(model={sim_world.model_dir!r}, translator={sim_world.translator_dir!r},"
        " datasets=['sim00'], max_regulators=1, cpus_per_replica=1)\n"
        f"a = atlasgrn.infer({sim_world.atlas!r}, **kw)\n"
        f"b = atlasgrn.infer({sim_world.atlas!r}, **kw)\n"
        "assert len(a) == len(b) > 0 and (a['score'] == b['score']).all()\n"
        "print('BOTH', len(a))\n")
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=_job_env(),
                          capture_output=True, text=True, timeout=400)
    assert proc.returncode == 0 and "BOTH" in proc.stdout, proc.stderr[-3000:]


@pytest.mark.slow
def test_a_stale_current_cluster_pointer_is_not_followed(tmp_path):
    """A `ray start --head` killed without `ray stop` leaves /tmp/ray/ray_current_cluster
    pointing at a dead GCS; the demo command must still start its own Ray and finish."""
    pointer = Path("/tmp/ray/ray_current_cluster")
    saved = pointer.read_bytes() if pointer.exists() else None
    pointer.parent.mkdir(parents=True, exist_ok=True)
    pointer.write_text(f"127.0.0.1:{free_port()}")  # what the killed head leaves behind
    try:
        proc = subprocess.run([sys.executable, "-m", "atlasgrn.run", "--out",
                               str(tmp_path / "demo"), "--max-regulators", "1", "--top", "3"],
                              cwd=REPO, env=_job_env(), capture_output=True, text=True,
                              timeout=400)
    finally:
        if saved is None:
            pointer.unlink(missing_ok=True)
        else:
            pointer.write_bytes(saved)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (tmp_path / "demo" / "_SUCCESS").exists() and "top 3 consensus edges" in proc.stdout
    # the demo ends with its report, explains where to threshold, and Ray's unactionable
    # lines are gone
    report = tmp_path / "demo" / "report.html"
    assert report.exists() and f"report: {report}" in proc.stdout
    assert "<h1>atlasgrn report</h1>" in report.read_text()
    assert "on held-out regulators with one negative per positive" in proc.stdout
    assert "precision" in proc.stdout and "score >= 0.500" in proc.stdout
    for noise in ("constructor arguments in the object store", "Starting execution of Dataset",
                  "Progress bars disabled", "Token authentication is enabled"):
        assert noise not in proc.stdout + proc.stderr, noise


# ------------------------------------------------------------------------------ node loss
@pytest.mark.slow
def test_a_driver_that_loses_its_ray_node_says_so_and_a_rerun_resumes(sim_world, tmp_path):
    out = tmp_path / "run"
    args = [sys.executable, "-m", "atlasgrn.run", sim_world.atlas, "--out", str(out),
            *_world_args(sim_world), "--top", "0", "--replicas", "1", "--cpus-per-replica", "1",
            "--max-regulators", "5"]  # 4 union blocks: killed after the first is stored
    with ray_head(num_cpus=2, num_gpus=0) as head:
        env = dict(_job_env(), **head.env, RAY_ADDRESS=head.gcs)  # token auth, as the head
        env.pop("ATLASGRN_IN_PROCESS", None)
        proc = subprocess.Popen(args, cwd=REPO, env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and proc.poll() is None:
            if len(list((out / "store").glob("model=*/spec=*/scores/*/*.parquet"))) >= 1:
                break
            time.sleep(0.1)
        assert proc.poll() is None, "the job ended before its node could be lost"
        for raylet in processes(head.temp, "raylet"):
            raylet.send_signal(signal.SIGKILL)
        stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 3, stderr[-3000:]
    lines = [ln for ln in stderr.splitlines() if "interrupted:" in ln]
    assert len(lines) == 1 and "rerun the same command to resume" in lines[0]
    manifest = json.loads((out / "manifest.json").read_text())
    stored = manifest["interrupted"]["store_blocks"]
    union = manifest["store"]["union_blocks"]
    assert manifest["status"] == "interrupted" and 1 <= stored < union
    assert f"the probe store holds {stored} scored block(s) of the {union}" in lines[0]
    rerun = subprocess.run(args, cwd=REPO, env=_job_env(), capture_output=True, text=True,
                           timeout=400)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    work = json.loads((out / "manifest.json").read_text())["work"]
    assert work["blocks_reused"] == stored  # its replica died with the node: nothing after
    assert work["blocks_probed"] == union - stored


# ------------------------------------------------------------------------------ run identity
def test_the_same_atlas_spelled_differently_is_the_same_run_and_resumes(
        clean_run, sim_world, tmp_path, monkeypatch):
    import shutil

    from atlasgrn.engine.job import prepare

    out, clean = clean_run
    copy = tmp_path / "run"
    shutil.copytree(out, copy)
    atlas = Path(sim_world.atlas)
    monkeypatch.chdir(atlas.parent)
    common = dict(out=str(copy), model=sim_world.model_dir, translator=sim_world.translator_dir,
                  regulators=sim_world.regulators,
                  replicas=2, gpus_per_replica=1.0, cpus_per_replica=0.5)
    hashes = {prepare(RunConfig(atlas=spelling, **common)).run_hash
              for spelling in (str(atlas), atlas.name, atlas.name + "/", f"./{atlas.name}//")}
    assert len(hashes) == 1
    result = run_job(RunConfig(atlas=atlas.name + "/", **common), log=lambda _m: None)
    assert result.status == "complete" and result.blocks_computed == 0
    assert result.blocks_already_done == clean.blocks_planned


def test_a_different_atlas_at_the_same_path_is_another_run(sim_world, tmp_path):
    """Same path, same shape, same genes, other values (a dataset re-ingested with
    --overwrite): the content digest the writer recorded makes it another run."""
    import shutil

    from atlasgrn.atlas import open_atlas
    from atlasgrn.atlas.writer import DatasetWriter
    from atlasgrn.engine.job import prepare

    path = tmp_path / "atlas.zarr"
    shutil.copytree(sim_world.atlas, path)
    kw = dict(out=str(tmp_path / "o"), model=sim_world.model_dir,
              translator=sim_world.translator_dir)
    first = prepare(RunConfig(atlas=str(path), **kw)).run_hash
    ds = open_atlas(path).dataset("sim00")
    x = ds.read_cells(0, ds.info.n_cells)
    with DatasetWriter(str(path), "sim00", [str(g) for g in ds.genes], species=ds.info.species,
                       value_kind=ds.info.value_kind, source="test", overwrite=True) as w:
        w.append(x * 2)
        w.commit()
    again = open_atlas(path).dataset("sim00").info
    assert (again.n_cells, again.n_genes) == (ds.info.n_cells, ds.info.n_genes)
    assert prepare(RunConfig(atlas=str(path), **kw)).run_hash != first


def test_an_output_inside_an_input_is_refused(sim_world, tmp_path, capsys):
    rc = main([sim_world.atlas, "--out", str(Path(sim_world.atlas) / "run"),
               *_world_args(sim_world)])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1 and "--out lies inside the atlas" in err
    assert not (Path(sim_world.atlas) / "run").exists()


@pytest.mark.slow
def test_a_stopped_job_says_so_and_records_it(sim_world, tmp_path):
    """SIGTERM (kill, `ray job stop`) reaches the build; the manifest says interrupted, the
    exit code is 128+15 (resuming is the node-loss test's)."""
    out = tmp_path / "run"
    args = [sys.executable, "-m", "atlasgrn.run", sim_world.atlas, "--out", str(out),
            *_world_args(sim_world), "--top", "0", "--replicas", "1", "--max-regulators", "5"]
    proc = subprocess.Popen(args, cwd=REPO, env=_job_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and proc.poll() is None:
        if len(list((out / "edges").rglob("*.parquet"))) >= 1:
            break
        time.sleep(0.1)
    assert proc.poll() is None, "the job ended before it could be stopped"
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signal.SIGTERM, stderr[-3000:]
    lines = [ln for ln in stderr.splitlines() if "interrupted:" in ln]
    assert len(lines) == 1 and "stopped by SIGTERM" in lines[0]
    assert json.loads((out / "manifest.json").read_text())["status"] == "interrupted"
