"""Consensus benchmark: the Ray Data consensus (atlasgrn.engine.consensus) at atlas scale. Prints
figures; not a test. (The driver-side pyarrow consensus it replaced ran the same 50M edges in
151-178 s with a 1.54 GiB driver peak: docs/engine.md.)

Generates ``--rows`` edges (default 50,000,000) straight into a run layout under ``--dir``
(default: a temporary directory under /tmp, deleted afterwards unless ``--keep``):
``--datasets`` datasets (default 20) of regulator-block x target-block edge files, as the
engine writes them, symbols ``G00001`` ... over ``--genes`` genes (default 18,000), of which
``--regulators`` (default 1,600) regulate. Each dataset holds a random share of the regulators
and a popularity-weighted sample of the targets, sized so the datasets add up to ``--rows``;
popular targets recur across datasets, so edges are held by 1 to all datasets. Generation
streams one block file at a time.

Each consensus then runs in a fresh process (so its ``ru_maxrss`` is its own): the Ray one in a
local Ray of 2 CPUs with a ``--object-store-gb`` object store (spilling to disk beyond it), the
Printed per run: wall seconds,
rows in and out, the driver's peak RSS, and the Ray workers' peak RSS, polled every 0.2 s over
the driver's ``ray::`` descendants: the largest single worker and the largest sum. Worker RSS
counts the object-store pages a worker has mapped (shared memory, counted once per worker that
maps them), so it overstates what the workers hold on their own; PSS (shared pages divided
among the processes) and USS (private pages only) are sampled every second beside it.

    python benchmarks/bench_consensus.py --quick           # 2,000,000 edges, a minute or two
    python benchmarks/bench_consensus.py                   # 50,000,000 edges
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

GIB = 1024 ** 3
MIB = 1024 ** 2


# --- generation ------------------------------------------------------------------------------

def generate(run_dir: str, rows: int, n_datasets: int, n_genes: int, n_regulators: int,
             regulators_per_block: int, targets_per_block: int, seed: int) -> int:
    """Write about ``rows`` edges as the engine lays them out; returns the exact count."""
    import numpy as np
    import pyarrow as pa

    from atlasgrn.engine.output import RunOutput, edge_schema

    rng = np.random.default_rng(seed)
    out = RunOutput(run_dir)
    genes = pa.array([f"G{i:05d}" for i in range(1, n_genes + 1)])
    regulators = np.sort(rng.choice(n_genes, n_regulators, replace=False))
    popularity = 1.0 / (np.arange(n_genes) + 200.0)  # a few targets in most datasets
    popularity = popularity[rng.permutation(n_genes)]
    popularity /= popularity.sum()
    per_dataset = rows // n_datasets
    schema = edge_schema(["gdt"])
    written = 0
    for d in range(n_datasets):
        want = per_dataset + (rows - per_dataset * n_datasets if d == n_datasets - 1 else 0)
        n_src = int(n_regulators * rng.uniform(0.6, 1.0))
        n_tgt = min(n_genes, max(1, round(want / n_src)))
        src = np.sort(rng.choice(regulators, n_src, replace=False))
        tgt = np.sort(rng.choice(n_genes, n_tgt, replace=False, p=popularity))
        name = f"ds{d:02d}"
        for sb in range(0, n_src, regulators_per_block):
            for tb in range(0, n_tgt, targets_per_block):
                s = src[sb:sb + regulators_per_block]
                t = tgt[tb:tb + targets_per_block]
                si, ti = np.repeat(s, len(t)), np.tile(t, len(s))  # sorted by (source, target)
                keep = si != ti
                si, ti = si[keep], ti[keep]
                logit = rng.normal(-2.0, 1.5, len(si)).astype(np.float32)
                score = (1.0 / (1.0 + np.exp(-logit))).astype(np.float32)
                table = pa.table({"source": genes.take(pa.array(si)),
                                  "target": genes.take(pa.array(ti)),
                                  "score": pa.array(score), "logit_gdt": pa.array(logit)},
                                 schema=schema)
                stem = f"{name}__{sb // regulators_per_block:05d}_{tb // targets_per_block:05d}"
                out.write_table_atomic(out.path("edges", f"dataset={name}", f"{stem}.parquet"),
                                       table)
                written += len(si)
    return written


# --- measured phases (each in a fresh process) ----------------------------------------------

class WorkerPoll:
    """Peak RSS of the driver and of its ``ray::`` descendants (the Ray workers), sampled in a
    background thread; PSS too, less often (reading smaps costs more)."""

    def __init__(self, interval_s: float = 0.2, pss_every: int = 5) -> None:
        import psutil

        self.me = psutil.Process()
        self.interval_s = interval_s
        self.pss_every = pss_every
        self.driver_rss = 0
        self.worker_rss_max = 0
        self.worker_rss_sum = 0
        self.worker_pss_sum = 0
        self.worker_uss_max = 0
        self.worker_uss_sum = 0
        self.workers_seen: set[int] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _workers(self) -> list:
        found = []
        for p in self.me.children(recursive=True):
            try:
                cmd = p.cmdline()
            except Exception:  # exited between the listing and the look
                continue
            if cmd and cmd[0].startswith("ray::"):
                found.append(p)
        return found

    def _run(self) -> None:
        tick = 0
        while not self._stop.is_set():
            self.driver_rss = max(self.driver_rss, self.me.memory_info().rss)
            rss, pss, uss = [], [], []
            for p in self._workers():
                try:
                    rss.append(p.memory_info().rss)
                    if tick % self.pss_every == 0:
                        full = p.memory_full_info()
                        pss.append(full.pss)
                        uss.append(full.uss)
                    self.workers_seen.add(p.pid)
                except Exception:
                    continue
            if rss:
                self.worker_rss_max = max(self.worker_rss_max, max(rss))
                self.worker_rss_sum = max(self.worker_rss_sum, sum(rss))
            if pss:
                self.worker_pss_sum = max(self.worker_pss_sum, sum(pss))
                self.worker_uss_max = max(self.worker_uss_max, max(uss))
                self.worker_uss_sum = max(self.worker_uss_sum, sum(uss))
            tick += 1
            self._stop.wait(self.interval_s)

    def __enter__(self) -> WorkerPoll:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def _peak_rss_bytes() -> int:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)


def _check_output(run_dir: str) -> dict:
    """Rows and the sum of n_datasets over the parts, read one part at a time."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    parts = sorted(Path(run_dir, "consensus").glob("part-*.parquet"))
    rows = held = 0
    for p in parts:
        t = pq.read_table(p, columns=["n_datasets"])
        rows += t.num_rows
        held += int(pc.sum(t["n_datasets"]).as_py())
    return {"parts": len(parts), "rows_read_back": rows, "edges_held": held}


def phase_ray(args: argparse.Namespace) -> dict:
    import ray
    from ray.data import DataContext

    from atlasgrn.engine.cluster import quiet_ray_data
    from atlasgrn.engine.consensus import write_consensus
    from atlasgrn.engine.output import RunOutput

    ray.init(num_cpus=args.cpus, object_store_memory=int(args.object_store_gb * GIB),
             include_dashboard=False, log_to_driver=False)
    quiet_ray_data()
    DataContext.get_current().enable_progress_bars = False
    with WorkerPoll() as poll:
        t0 = time.perf_counter()
        rows = write_consensus(RunOutput(args.run), top_k=args.top_k,
                               rows_per_part=args.rows_per_part)
        wall = time.perf_counter() - t0
    spill = [line.strip() for line in _memory_summary().splitlines()
             if any(w in line for w in ("Plasma", "pill", "estor", "no memory summary"))]
    ray.shutdown()
    return {"wall_s": round(wall, 1), "rows_out": rows, "driver_peak_rss": _peak_rss_bytes(),
            "driver_polled_rss": poll.driver_rss, "worker_rss_max": poll.worker_rss_max,
            "worker_rss_sum": poll.worker_rss_sum, "worker_pss_sum": poll.worker_pss_sum,
            "worker_uss_max": poll.worker_uss_max, "worker_uss_sum": poll.worker_uss_sum,
            "workers_seen": len(poll.workers_seen), "object_store": spill,
            **_check_output(args.run)}


def _memory_summary() -> str:
    try:
        import ray
        from ray._private.internal_api import memory_summary

        return memory_summary(address=ray.get_runtime_context().gcs_address, stats_only=True)
    except Exception as exc:  # an internal API: the figures are a bonus
        return f"(no memory summary: {exc})"


# --- orchestration ---------------------------------------------------------------------------

def run_phase(name: str, args: argparse.Namespace, run_dir: str) -> dict:
    cmd = [sys.executable, __file__, "--phase", name, "--run", run_dir,
           "--top-k", str(args.top_k), "--rows-per-part", str(args.rows_per_part),
           "--object-store-gb", str(args.object_store_gb), "--cpus", str(args.cpus)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout[-4000:] + proc.stderr[-8000:])
        return {"failed": f"exit {proc.returncode}"}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _gib(n: int) -> str:
    return f"{n / GIB:.2f} GiB"


def report(name: str, rows_in: int, r: dict) -> None:
    if "failed" in r:
        print(f"{name}: FAILED ({r['failed']})")
        return
    print(f"{name}: {r['wall_s']:.1f} s wall; rows in {rows_in:,}, rows out {r['rows_out']:,} "
          f"in {r['parts']} parts (read back {r['rows_read_back']:,}, holding "
          f"{r['edges_held']:,} edges{'' if r['edges_held'] == rows_in else ' - MISMATCH'})")
    print(f"  driver peak RSS {_gib(r['driver_peak_rss'])} (polled during the call: "
          f"{_gib(r['driver_polled_rss'])})")
    if "worker_rss_max" in r:
        print(f"  Ray workers ({r['workers_seen']} processes): peak RSS of one "
              f"{_gib(r['worker_rss_max'])}, peak RSS sum {_gib(r['worker_rss_sum'])} "
              f"(PSS: peak sum {_gib(r['worker_pss_sum'])}; USS, private memory: peak of one "
              f"{_gib(r['worker_uss_max'])}, peak sum {_gib(r['worker_uss_sum'])})")
        for line in r["object_store"]:
            print(f"  object store: {line}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=50_000_000)
    ap.add_argument("--quick", action="store_true", help="2,000,000 rows")
    ap.add_argument("--datasets", type=int, default=20)
    ap.add_argument("--genes", type=int, default=18_000)
    ap.add_argument("--regulators", type=int, default=1_600)
    ap.add_argument("--regulators-per-block", type=int, default=64)
    ap.add_argument("--targets-per-block", type=int, default=2_048)
    ap.add_argument("--top-k", type=int, default=50)
    ap.add_argument("--rows-per-part", type=int, default=5_000_000)
    ap.add_argument("--object-store-gb", type=float, default=3.0)
    ap.add_argument("--cpus", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--dir", default=None, help="where to generate (default: a temp dir in /tmp)")
    ap.add_argument("--keep", action="store_true", help="keep the generated run")
    ap.add_argument("--phase", choices=("ray",), help=argparse.SUPPRESS)
    ap.add_argument("--run", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.phase:
        result = phase_ray(args)
        print(json.dumps(result))
        return
    if args.quick:
        args.rows = 2_000_000

    base = args.dir or tempfile.mkdtemp(prefix="bench-consensus-", dir="/tmp")
    run_dir = os.path.join(base, "run")
    try:
        t0 = time.perf_counter()
        rows_in = generate(run_dir, args.rows, args.datasets, args.genes, args.regulators,
                           args.regulators_per_block, args.targets_per_block, args.seed)
        n_files = sum(len(f) for _, _, f in os.walk(os.path.join(run_dir, "edges")))
        size = sum(os.path.getsize(os.path.join(d, f))
                   for d, _, fs in os.walk(os.path.join(run_dir, "edges")) for f in fs)
        print(f"generated {rows_in:,} edges in {n_files:,} files ({size / MIB:,.0f} MiB) over "
              f"{args.datasets} datasets in {time.perf_counter() - t0:.0f} s (generator peak "
              f"RSS {_gib(_peak_rss_bytes())})", flush=True)
        print(f"settings: top_k={args.top_k}, rows_per_part={args.rows_per_part:,}, "
              f"{args.cpus} CPUs, object store {args.object_store_gb:g} GiB", flush=True)
        report("consensus.write_consensus (Ray Data)", rows_in, run_phase("ray", args, run_dir))
    finally:
        if not args.keep:
            shutil.rmtree(base if args.dir is None else run_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
