"""Atlas I/O benchmark: memory of block reads, and the cost of simulating a million cells.

Prints figures; it is a script, not a test.

(a) Simulate one dataset of ``--cells`` x ``--genes`` (default 200,000 x 5,000) into a temp
    directory, then, in a FRESH subprocess, read a ``--block``-cell block (default 2,000) with
    ``open_atlas(...).dataset(...).read_cells(...)`` and report that process's peak RSS next to
    the dataset's in-memory size (dense float32 and CSR). Goal: < 10% of the in-memory size.
    The peak RSS of a fresh process that only imports atlasgrn and opens the atlas is printed
    too, so the block read's own cost is visible apart from the interpreter and libraries.
(b) Simulate ``--big-cells`` x ``--big-genes`` (default 1,000,000 x 2,000) in a subprocess
    and report its wall time and peak RSS (goal: < 2 GiB).

Every measured process reports its own ``getrusage(RUSAGE_SELF).ru_maxrss``, so one big
child cannot inflate another's figure.

    python benchmarks/bench_atlas_io.py            # full run (several minutes)
    python benchmarks/bench_atlas_io.py --quick    # 20,000 x 2,000 and 100,000 x 2,000
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

from child_process import run_child  # beside this script

GIB = 1024 ** 3


def _peak_rss_bytes() -> int:
    # Linux reports KiB, macOS bytes.
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)


def child_simulate(out: str, cells: int, genes: int, seed: int) -> dict:
    from atlasgrn.sim import SimConfig, simulate_atlas
    t0 = time.perf_counter()
    result = simulate_atlas(out, SimConfig(n_datasets=1, n_cells=cells, n_genes=genes,
                                           seed=seed))
    return {"seconds": time.perf_counter() - t0, "peak_rss": _peak_rss_bytes(),
            "dataset": result.datasets[0].name, "edges": result.n_edges}


def child_read(uri: str, name: str, start: int, n: int) -> dict:
    from atlasgrn.atlas import open_atlas
    ds = open_atlas(uri, writable=False).dataset(name)
    opened_rss = _peak_rss_bytes()
    if n == 0:
        return {"peak_rss": opened_rss}
    t0 = time.perf_counter()
    block = ds.read_cells(start, start + n)
    seconds = time.perf_counter() - t0
    indptr = ds._group["X"]["indptr"]
    nnz_total = int(indptr[-1])
    return {"peak_rss": _peak_rss_bytes(), "opened_rss": opened_rss, "seconds": seconds,
            "block_shape": list(block.shape), "block_nnz": int(block.nnz),
            "nnz_total": nnz_total, "n_cells": ds.info.n_cells, "n_genes": ds.info.n_genes}


def _run_child(*args: str) -> dict:
    return run_child(__file__, *args)


def _mib(n: float) -> str:
    return f"{n / 1024 ** 2:,.1f} MiB"


def _du(path: str) -> int:
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(path) for f in fs)


def bench_block_read(work: str, cells: int, genes: int, block: int, seed: int) -> None:
    out = os.path.join(work, "read.zarr")
    print(f"(a) block read: simulating {cells:,} cells x {genes:,} genes ...", flush=True)
    sim = _run_child("simulate", out, str(cells), str(genes), str(seed))
    print(f"    simulated in {sim['seconds']:.1f} s, peak RSS {_mib(sim['peak_rss'])}, "
          f"store {_mib(_du(out))}")
    start = max(0, cells // 2 - block // 2)
    base = _run_child("read", out, sim["dataset"], "0", "0")
    r = _run_child("read", out, sim["dataset"], str(start), str(block))
    dense = r["n_cells"] * r["n_genes"] * 4
    csr = r["nnz_total"] * (4 + 4) + (r["n_cells"] + 1) * 8
    print(f"    dataset in memory: dense float32 {_mib(dense)}; CSR (float32 data, int32 "
          f"indices, int64 indptr) {_mib(csr)}; density {r['nnz_total'] / (dense / 4):.3f}")
    print(f"    fresh process, import + open only: peak RSS {_mib(base['peak_rss'])}")
    print(f"    fresh process, read_cells({start:,}, {start + block:,}) -> {r['block_shape']} "
          f"CSR in {r['seconds'] * 1000:.0f} ms: peak RSS {_mib(r['peak_rss'])}")
    print(f"    peak RSS / dense size = {r['peak_rss'] / dense:.1%}   "
          f"peak RSS / CSR size = {r['peak_rss'] / csr:.1%}   (goal < 10%)")
    print(f"    read's own increment over import+open: {_mib(r['peak_rss'] - base['peak_rss'])} "
          f"= {(r['peak_rss'] - base['peak_rss']) / dense:.2%} of dense")
    shutil.rmtree(out, ignore_errors=True)


def bench_big_simulation(work: str, cells: int, genes: int, seed: int) -> None:
    out = os.path.join(work, "big.zarr")
    print(f"(b) simulation: {cells:,} cells x {genes:,} genes (1 dataset) ...", flush=True)
    t0 = time.perf_counter()
    sim = _run_child("simulate", out, str(cells), str(genes), str(seed))
    wall = time.perf_counter() - t0
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * (
        1 if sys.platform == "darwin" else 1024)
    print(f"    wall {wall:.1f} s (simulate_atlas {sim['seconds']:.1f} s, "
          f"{cells / sim['seconds']:,.0f} cells/s); peak RSS {_mib(sim['peak_rss'])} "
          f"({sim['peak_rss'] / GIB:.2f} GiB, goal < 2 GiB); RUSAGE_CHILDREN max over all "
          f"children so far {_mib(children)}; store {_mib(_du(out))}; {sim['edges']:,} true edges")
    shutil.rmtree(out, ignore_errors=True)


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        kind, *rest = sys.argv[2:]
        if kind == "simulate":
            res = child_simulate(rest[0], int(rest[1]), int(rest[2]), int(rest[3]))
        else:
            res = child_read(rest[0], rest[1], int(rest[2]), int(rest[3]))
        print(json.dumps(res))
        return
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--cells", type=int, default=200_000, help="cells of the read benchmark")
    p.add_argument("--genes", type=int, default=5_000, help="genes of the read benchmark")
    p.add_argument("--block", type=int, default=2_000, help="cells per block read")
    p.add_argument("--big-cells", type=int, default=1_000_000)
    p.add_argument("--big-genes", type=int, default=2_000)
    p.add_argument("--skip-big", action="store_true", help="run (a) only")
    p.add_argument("--skip-read", action="store_true", help="run (b) only")
    p.add_argument("--quick", action="store_true",
                   help="small sizes: (a) 20,000 x 2,000, (b) 100,000 x 2,000")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workdir", default=None, help="where temporary atlases go (default $TMPDIR)")
    args = p.parse_args()
    if args.quick:
        args.cells, args.genes, args.big_cells = 20_000, 2_000, 100_000
    import numpy
    import zarr
    print(f"python {sys.version.split()[0]}, numpy {numpy.__version__}, zarr {zarr.__version__}, "
          f"{os.cpu_count()} CPUs")
    work = tempfile.mkdtemp(prefix="bench_atlas_io-", dir=args.workdir)
    try:
        if not args.skip_read:
            bench_block_read(work, args.cells, args.genes, args.block, args.seed)
        if not args.skip_big:
            bench_big_simulation(work, args.big_cells, args.big_genes, args.seed)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
