"""Atlas-scale cost of universal mode (prints figures; not a test).

1. Incremental nightly build, on a simulated atlas with the bundled model and translator:
   a first build over N datasets into a shared ``--cache``, then a second build after one
   dataset was added, then a full rebuild of all N + 1 without the cache. Reports pairs probed
   and wall time of each, the second build's work against the rebuild's, and checks that the
   second build's edges are byte for byte the rebuild's.
2. ``--plan`` of a simulated 100-dataset x 18,000-gene atlas: universal mode (the union probed
   once) beside probing each dataset on its own (the engine before universal mode, and the
   cost of context mode with one context per dataset: the same blocks, each with a profile
   background, which changes values, not the model calls).

    python benchmarks/bench_incremental.py                      # ~10 min on 2 cores
    python benchmarks/bench_incremental.py --quick              # smaller atlas, no --plan part
    python benchmarks/bench_incremental.py --json figures.json
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def build(atlas: str, out: Path, datasets: list[str] | None, cache: str | None,
          replicas: int) -> dict:
    from atlasgrn.engine.config import RunConfig
    from atlasgrn.engine.job import run_job

    cfg = RunConfig(atlas=atlas, out=str(out), datasets=tuple(datasets) if datasets else None,
                    cache=cache, replicas=replicas, gpus_per_replica=0, cpus_per_replica=1,
                    progress_every_s=1e9)
    t0 = time.perf_counter()
    res = run_job(cfg, log=lambda _m: None)
    wall = time.perf_counter() - t0
    if res.status != "complete":
        raise SystemExit(f"the build ended {res.status}")
    manifest = json.loads((out / "manifest.json").read_text())
    work = manifest["work"]
    return {"datasets": len(manifest["plan"]["datasets"]), "wall_s": round(wall, 1),
            "pairs_probed": work["pairs_probed"], "pairs_reused": work["pairs_reused"],
            "blocks_probed": work["blocks_probed"], "blocks_reused": work["blocks_reused"],
            "edge_rows": manifest["rows_written"]["edges"]}


def edge_bytes(out: Path) -> dict[str, bytes]:
    return {str(f.relative_to(out)): f.read_bytes()
            for f in sorted((out / "edges").rglob("*.parquet"))}


def incremental(root: Path, args: argparse.Namespace) -> dict:
    from atlasgrn.sim import SimConfig, simulate_atlas

    atlas = str(root / "atlas.zarr")
    simulate_atlas(atlas, SimConfig(n_datasets=args.datasets + 1, n_cells=args.cells,
                                    n_genes=args.genes, n_tfs=args.tfs, seed=0))
    from atlasgrn.atlas import open_atlas

    names = list(open_atlas(atlas, writable=False).names)
    cache = str(root / "cache")
    first = build(atlas, root / "first", names[:-1], cache, args.replicas)
    print(f"first build ({first['datasets']} datasets): {first}", flush=True)
    second = build(atlas, root / "second", names, cache, args.replicas)
    print(f"second build (+1 dataset, shared cache): {second}", flush=True)
    full = build(atlas, root / "rebuild", names, None, args.replicas)
    print(f"full rebuild ({full['datasets']} datasets, no cache): {full}", flush=True)
    same = edge_bytes(root / "second") == edge_bytes(root / "rebuild")
    probed_ratio = full["pairs_probed"] / max(1, second["pairs_probed"])
    figures = {"first": first, "second": second, "rebuild": full,
               "second_equals_rebuild_bytes": same,
               "work_ratio_rebuild_over_second": (round(probed_ratio, 1)
                                                  if second["pairs_probed"] else "inf"),
               "wall_ratio_rebuild_over_second": round(full["wall_s"] / second["wall_s"], 2)}
    print(f"second build probed {second['pairs_probed']:,} pairs against the rebuild's "
          f"{full['pairs_probed']:,} (work ratio {figures['work_ratio_rebuild_over_second']}); "
          f"wall {second['wall_s']}s vs {full['wall_s']}s "
          f"({figures['wall_ratio_rebuild_over_second']}x); edges identical: {same}", flush=True)
    return figures


def plan_large(root: Path, args: argparse.Namespace) -> dict:
    from atlasgrn.engine.config import RunConfig
    from atlasgrn.engine.estimate import estimate
    from atlasgrn.engine.job import prepare
    from atlasgrn.sim import SimConfig, simulate_atlas

    atlas = str(root / "large.zarr")
    t0 = time.perf_counter()
    simulate_atlas(atlas, SimConfig(n_datasets=args.plan_datasets, n_cells=args.plan_cells,
                                    n_genes=args.plan_genes, n_tfs=args.plan_tfs, seed=1))
    print(f"simulated {args.plan_datasets} x {args.plan_genes:,}-gene atlas in "
          f"{time.perf_counter() - t0:.0f}s", flush=True)
    prep = prepare(RunConfig(atlas=atlas, out=str(root / "plan-out"), gpus_per_replica=1.0),
                   log=lambda _m: None)
    est = estimate(prep, device="cpu")
    for line in est.lines(replicas=8):
        print("  " + line)
    per_block_h = est.replica_hours / max(1, est.blocks)
    return {"datasets": args.plan_datasets, "genes": args.plan_genes,
            "universal": {"blocks": est.blocks, "pairs_probed": est.pairs,
                          "replica_hours_cpu_calibrated": round(est.replica_hours, 2),
                          "output_bytes": est.output_bytes, "edge_rows": est.edge_pairs},
            "per_dataset_or_context": {
                "blocks": est.per_dataset_blocks, "pairs_probed": est.per_dataset_pairs,
                "replica_hours_cpu_calibrated": round(per_block_h * est.per_dataset_blocks, 2),
                "note": "context mode with one context per dataset probes these blocks"},
            "calibration": {"device": est.calibration_device,
                            "seconds_per_pair": est.seconds_per_pair}}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--datasets", type=int, default=10)
    p.add_argument("--cells", type=int, default=200)
    p.add_argument("--genes", type=int, default=600)
    p.add_argument("--tfs", type=int, default=64)
    p.add_argument("--replicas", type=int, default=2)
    p.add_argument("--plan-datasets", type=int, default=100)
    p.add_argument("--plan-genes", type=int, default=18_000)
    p.add_argument("--plan-tfs", type=int, default=1_400)
    p.add_argument("--plan-cells", type=int, default=20)
    p.add_argument("--quick", action="store_true", help="4 + 1 datasets, no --plan part")
    p.add_argument("--plan-only", action="store_true", help="only the --plan part")
    p.add_argument("--json", default=None)
    args = p.parse_args(argv)
    if args.quick:
        args.datasets, args.genes, args.tfs = 4, 300, 32
    figures = {}
    with tempfile.TemporaryDirectory(prefix="bench-incremental-") as tmp:
        if not args.plan_only:
            figures["incremental"] = incremental(Path(tmp), args)
        if not args.quick:
            figures["plan"] = plan_large(Path(tmp), args)
    print(json.dumps(figures, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
