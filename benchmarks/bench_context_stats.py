"""Per-context statistics benchmark: time and peak memory of ``context_stats`` on dask's
threaded scheduler and on Ray's dask scheduler, next to the size of the matrix.

Prints figures; it is a script, not a test.

Simulates one dataset of ``--cells`` x ``--genes`` (default 50,000 x 2,000; obs column
``cell_state``) under a temporary directory once, then runs each measurement in a FRESH
subprocess that reports its own ``getrusage(RUSAGE_SELF).ru_maxrss``:

- import + open + read the obs column only (the floor every other figure sits on);
- ``context_stats(..., scheduler=None)`` (dask threads), twice, with ``--block`` and with
  ``--small-block`` cells per row chunk (the peak follows the chunk, not the dataset);
- ``context_stats(..., scheduler=ray.util.dask.ray_dask_get)`` on a local Ray started by that
  process, twice (the first call includes starting Ray's workers); the driver's peak RSS and,
  from ``/proc/<pid>/status`` ``VmHWM``, the largest peak RSS of a Ray worker;
- a numpy reference streaming ``read_cells(dense=True)`` blocks, to check the numbers.

Memory is bounded when the peaks stay far below the dense (and CSR) size of the matrix.
The temporary directory is removed at the end.

    python benchmarks/bench_context_stats.py               # 50,000 x 2,000
    python benchmarks/bench_context_stats.py --cells 200000 --block 4096
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import sys
import tempfile
import time

import numpy as np
from child_process import run_child  # beside this script

COLUMN = "cell_state"


def _peak_rss_bytes() -> int:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # Linux: KiB, macOS: bytes
    return int(peak if sys.platform == "darwin" else peak * 1024)


def _mib(n: float) -> str:
    return f"{n / 1024 ** 2:,.1f} MiB"


def _save(stats, path: str) -> None:
    np.savez(path, contexts=np.array(stats.contexts),
             mean=np.stack([stats.mean[c] for c in stats.contexts]),
             frac=np.stack([stats.frac_nonzero[c] for c in stats.contexts]))


def child_simulate(out: str, cells: int, genes: int, seed: int) -> dict:
    from atlasgrn.sim import SimConfig, simulate_atlas
    t0 = time.perf_counter()
    res = simulate_atlas(out, SimConfig(n_datasets=1, n_cells=cells, n_genes=genes, seed=seed))
    return {"seconds": time.perf_counter() - t0, "peak_rss": _peak_rss_bytes(),
            "dataset": res.datasets[0].name}


def _open(uri: str, name: str):
    from atlasgrn.atlas import open_atlas
    return open_atlas(uri, writable=False).dataset(name)


def child_base(uri: str, name: str) -> dict:
    from atlasgrn.atlas.contexts import read_context_labels
    ds = _open(uri, name)
    labels = read_context_labels(ds, COLUMN)
    nnz = int(ds._group["X"]["indptr"][-1])
    return {"peak_rss": _peak_rss_bytes(), "n_cells": ds.info.n_cells,
            "n_genes": ds.info.n_genes, "nnz": nnz,
            "counts": dict(zip(labels.names, labels.counts().tolist(), strict=True))}


def _worker_peaks() -> list[int]:
    """VmHWM (peak RSS) of the Ray workers this process started: its descendants titled
    ``ray::<task or IDLE>`` (Ray's own agents excluded)."""
    import psutil
    peaks = []
    for proc in psutil.Process().children(recursive=True):
        try:
            title = proc.name()
            if not title.startswith("ray::") or title.endswith("Agent"):
                continue
            with open(f"/proc/{proc.pid}/status") as fh:
                hwm = [ln for ln in fh if ln.startswith("VmHWM:")]
            peaks.append(int(hwm[0].split()[1]) * 1024)
        except (OSError, IndexError, psutil.Error):
            continue
    return peaks


def child_stats(uri: str, name: str, scheduler: str, block: int, out: str) -> dict:
    from atlasgrn.atlas.contexts import context_stats
    result: dict = {}
    sched = None
    temp = ""
    if scheduler == "ray":
        import ray
        from ray.util.dask import ray_dask_get
        temp = f"/tmp/rayctx{os.getpid()}"  # short: Ray's socket paths must stay < 108 bytes
        t0 = time.perf_counter()
        ray.init(num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False,
                 object_store_memory=300 * 1024 ** 2, _temp_dir=temp)
        result["init_s"] = time.perf_counter() - t0
        sched = ray_dask_get
    try:
        ds = _open(uri, name)
        times = []
        for _ in range(2):
            t0 = time.perf_counter()
            stats = context_stats(ds, COLUMN, min_cells=50, scheduler=sched, block_cells=block)
            times.append(time.perf_counter() - t0)
        _save(stats, out)
        result.update(seconds=times, peak_rss=_peak_rss_bytes(), contexts=len(stats.contexts))
        if scheduler == "ray":
            result["worker_peaks"] = _worker_peaks()
    finally:
        if scheduler == "ray":
            import ray
            ray.shutdown()
            shutil.rmtree(temp, ignore_errors=True)
    return result


def child_numpy(uri: str, name: str, block: int, out: str) -> dict:
    """The straightforward computation: dense float64 blocks, boolean masks per context."""
    from atlasgrn.atlas.contexts import read_context_labels
    ds = _open(uri, name)
    t0 = time.perf_counter()
    labels = read_context_labels(ds, COLUMN)
    counts = labels.counts()
    kept = [i for i, n in enumerate(counts) if n >= 50]
    sums = np.zeros((len(labels.names), ds.info.n_genes))
    nnz = np.zeros_like(sums)
    for start, dense in ds.iter_blocks(block, dense=True):
        codes = labels.codes[start:start + dense.shape[0]]
        for c in kept:
            rows = dense[codes == c].astype(np.float64)
            sums[c] += rows.sum(axis=0)
            nnz[c] += (rows != 0).sum(axis=0)
    seconds = time.perf_counter() - t0
    np.savez(out, contexts=np.array([labels.names[c] for c in kept]),
             mean=sums[kept] / counts[kept, None], frac=nnz[kept] / counts[kept, None])
    return {"seconds": [seconds], "peak_rss": _peak_rss_bytes()}


def _run_child(*args: str) -> dict:
    return run_child(__file__, *args)


def _compare(a: str, b: str) -> str:
    x, y = np.load(a), np.load(b)
    if not np.array_equal(x["contexts"], y["contexts"]):
        return "DIFFERENT contexts"
    if np.array_equal(x["mean"], y["mean"]) and np.array_equal(x["frac"], y["frac"]):
        return "identical"
    rel = np.max(np.abs(x["mean"] - y["mean"]) / np.maximum(np.abs(y["mean"]), 1e-300))
    frac = np.max(np.abs(x["frac"] - y["frac"]))
    return f"max relative diff of means {rel:.1e}, max abs diff of fractions {frac:.1e}"


def _child_main(kind: str, rest: list[str]) -> None:
    if kind == "simulate":
        res = child_simulate(rest[0], int(rest[1]), int(rest[2]), int(rest[3]))
    elif kind == "base":
        res = child_base(rest[0], rest[1])
    elif kind == "numpy":
        res = child_numpy(rest[0], rest[1], int(rest[2]), rest[3])
    else:
        res = child_stats(rest[0], rest[1], kind, int(rest[2]), rest[3])
    print(json.dumps(res))


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        _child_main(sys.argv[2], sys.argv[3:])
        return
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--cells", type=int, default=50_000)
    p.add_argument("--genes", type=int, default=2_000)
    p.add_argument("--block", type=int, default=8192, help="cells per row chunk (block_cells)")
    p.add_argument("--small-block", type=int, default=2048,
                   help="a second, smaller chunk for the threaded run (memory follows the chunk)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workdir", default="/tmp", help="where the temporary atlas goes")
    args = p.parse_args()
    from importlib.metadata import version
    print(f"python {sys.version.split()[0]}, dask {version('dask')}, anndata "
          f"{version('anndata')}, ray {version('ray')}, {os.cpu_count()} CPUs")
    work = tempfile.mkdtemp(prefix="bench_context_stats-", dir=args.workdir)
    try:
        uri = os.path.join(work, "ctx.zarr")
        print(f"simulating {args.cells:,} cells x {args.genes:,} genes ...", flush=True)
        sim = _run_child("simulate", uri, str(args.cells), str(args.genes), str(args.seed))
        name = sim["dataset"]
        print(f"  simulated in {sim['seconds']:.1f} s (peak RSS {_mib(sim['peak_rss'])})")
        base = _run_child("base", uri, name)
        dense = base["n_cells"] * base["n_genes"] * 4
        csr = base["nnz"] * 8 + (base["n_cells"] + 1) * 8
        chunk = args.block * base["n_genes"] * 4
        print(f"  matrix: dense float32 {_mib(dense)}, CSR {_mib(csr)} (density "
              f"{base['nnz'] / (dense / 4):.3f}); one {args.block:,}-cell chunk dense "
              f"{_mib(chunk)}, CSR ~{_mib(csr * args.block / base['n_cells'])}")
        print(f"  '{COLUMN}' cells per value: {base['counts']}")
        print(f"  floor (import + open + read the obs column): peak RSS {_mib(base['peak_rss'])}")
        labels = {"threads": "context_stats, dask threads", "ray": "context_stats, Ray dask",
                  "numpy": "numpy reference (dense blocks)"}
        runs = [("threads", args.block), ("threads", args.small_block), ("ray", args.block),
                ("numpy", args.block)]
        saved: dict[tuple[str, int], str] = {}
        for kind, block in runs:
            out = os.path.join(work, f"{kind}-{block}.npz")
            res = _run_child(kind, uri, name, str(block), out)
            saved[kind, block] = out
            secs = ", ".join(f"{s:.2f} s" for s in res["seconds"])
            over = res["peak_rss"] - base["peak_rss"]
            line = (f"  {labels[kind]}, {block:,}-cell chunks: {secs}; peak RSS "
                    f"{_mib(res['peak_rss'])} = {res['peak_rss'] / dense:.1%} of dense, "
                    f"+{_mib(over)} over the floor")
            if kind == "ray":
                peaks = res.get("worker_peaks") or [0]
                line += (f"; ray.init {res['init_s']:.1f} s; {len(res.get('worker_peaks', []))}"
                         f" workers, largest worker peak RSS {_mib(max(peaks))}")
            print(line, flush=True)
        ref = saved["numpy", args.block]
        for (kind, block), out in saved.items():
            if kind != "numpy":
                print(f"  {kind} ({block:,}) vs numpy reference: {_compare(out, ref)}")
        print(f"  ray vs threads ({args.block:,}): "
              f"{_compare(saved['ray', args.block], saved['threads', args.block])}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
