"""Engine benchmark: the whole job end to end on real Ray, against the matmul rate of this machine
(prints figures; not a test).

In one run, on the bundled demo atlas with the bundled model and translator (CPU replicas of
1 CPU each):

1. ``end_to_end_flop_fraction``: the analytic probe FLOPs of every block divided by the job's wall
   time (from submitting the build to ``_SUCCESS``: replica start-up, reads, probes, translator,
   writes, consensus) and by the number of replicas, relative to a 1-thread fp32 matmul measured
   in the same process (a replica runs one torch thread per CPU). Goal >= 0.3.
2. Pairs/s with the default blocks per call (16 on a GPU, 1 on CPU) and with stacked blocks
   (2 per call on CPU, 4 on a GPU), against one block per call (how the engine ran before
   batching), side by side, after an unreported warm-up build.
3. Without ``--quick``: 1 replica against 2 (parallel efficiency), and ``--plan`` for a simulated
   10-dataset atlas.

    python benchmarks/bench_engine.py --quick                 # < 5 min on 2 cores
    python benchmarks/bench_engine.py --json figures.json     # full
    python benchmarks/bench_engine.py --gpus-per-replica 1    # on a GPU machine
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from matmul_rate import matmul_flop_per_s  # noqa: E402  (beside this script)


def run_build(atlas: str, out: str, args: argparse.Namespace, replicas: int,
              blocks_per_call: int | None) -> dict:
    """One complete build; its figures from the job's own per-block summaries."""
    from atlasgrn.engine.config import RunConfig
    from atlasgrn.engine.job import run_job

    cfg = RunConfig(atlas=atlas, out=out, model=args.model, translator=args.translator,
                    datasets=tuple(args.datasets.split(",")) if args.datasets else None,
                    max_regulators=args.max_regulators, replicas=replicas,
                    gpus_per_replica=args.gpus_per_replica, cpus_per_replica=1,
                    blocks_per_call=blocks_per_call, gdt_precision=args.gdt_precision,
                    progress_every_s=1e9)
    t0 = time.perf_counter()
    res = run_job(cfg, log=lambda _m: None)
    wall = time.perf_counter() - t0
    if res.status != "complete":
        raise SystemExit(f"the build ended {res.status}")
    ok = [r for r in res.summaries if r["status"] == "ok"]
    pairs = sum(int(r["pairs"]) for r in ok)
    flops = sum(float(r["flops"]) for r in ok)
    probe = sum(float(r["probe_seconds"]) for r in ok)
    return {"replicas": replicas, "blocks_per_call": max(int(r["batch_blocks"]) for r in ok),
            "blocks": len(ok), "pairs": pairs, "wall_s": round(wall, 2),
            "pairs_per_s": round(pairs / wall, 1), "flops": flops,
            "flop_per_s_per_replica": flops / (wall * replicas),
            "probe_flop_per_s": flops / max(probe, 1e-9),
            "wall_share_in_probes": round(probe / (replicas * wall), 3)}


def plan_figures(args: argparse.Namespace) -> None:
    """``--plan`` of a simulated 10-dataset atlas (planned and one batch timed, never built)."""
    from atlasgrn.run import main as run_main
    from atlasgrn.sim import SimConfig, simulate_atlas
    from atlasgrn.sim.symbols import simulation_pools

    tf_pool, target_pool = simulation_pools()
    genes = min(args.plan_genes, len(tf_pool) + len(target_pool))
    tfs = min(len(tf_pool), max(2, genes // 10))
    with tempfile.TemporaryDirectory() as tmp:
        big = str(Path(tmp) / "big.zarr")
        t0 = time.perf_counter()
        simulate_atlas(big, SimConfig(n_datasets=10, n_cells=64, n_genes=genes, n_tfs=tfs))
        print(f"simulated 10 datasets x {genes:,} genes ({tfs:,} TFs) in "
              f"{time.perf_counter() - t0:.0f}s; --plan:")
        argv = [big, "--out", str(Path(tmp) / "o"), "--plan"]
        if args.translator:
            argv += ["--translator", args.translator]
        if args.model:
            argv += ["--model", args.model]
        run_main(argv)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--translator", default=None, help="default: the bundled translator")
    ap.add_argument("--model", default=None, help="default: the bundled model")
    ap.add_argument("--datasets", default="hHEP")
    ap.add_argument("--max-regulators", type=int, default=None,
                    help="regulators per dataset (default: 32 with --quick, else 64)")
    ap.add_argument("--gpus-per-replica", type=float, default=0.0)
    ap.add_argument("--gdt-precision", default="fp32")
    ap.add_argument("--quick", action="store_true", help="3 builds only: under 5 min on 2 cores")
    ap.add_argument("--json", default=None, help="write the figures to this file")
    ap.add_argument("--plan-genes", type=int, default=20000)
    ap.add_argument("--skip-plan", action="store_true")
    args = ap.parse_args()
    if args.max_regulators is None:
        args.max_regulators = 32 if args.quick else 64

    import ray

    from atlasgrn.atlas.bundled import demo_atlas_path

    device = "cuda" if args.gpus_per_replica > 0 else "cpu"
    size = 1024 if device == "cpu" else 8192
    matmul = matmul_flop_per_s(size, device, threads=1)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    atlas = str(demo_atlas_path())
    # (replicas, blocks per call): the default (auto), one block per call as the engine ran
    # before batching, and stacks of several blocks per call (on CPU only 2: 8 blocks in calls
    # of 4 would give the first replica to start both calls while the other idles)
    if device == "cuda":  # one GPU: one replica
        builds = [(1, None), (1, 1), (1, 4)]
    else:
        builds = [(2, None), (2, 1), (2, 2)] + ([] if args.quick else [(1, None)])
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        # a small build first, not reported: Ray's worker pool and imports warm up here, not in
        # the first measured build
        warm = argparse.Namespace(**{**vars(args), "max_regulators": 2})
        run_build(atlas, str(Path(tmp) / "warm-up"), warm, builds[0][0], None)
        for i, (replicas, per_call) in enumerate(builds):
            rows.append(run_build(atlas, str(Path(tmp) / f"r{i}"), args, replicas, per_call))
    driver_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    ray.shutdown()
    matmul_after = matmul_flop_per_s(size, device, threads=1)
    peak = max(matmul, matmul_after)
    print(f"1-thread fp32 {size}^2 matmul: {matmul / 1e9:.1f} GFLOP/s before the builds, "
          f"{matmul_after / 1e9:.1f} after (the larger is the reference)")
    for r in rows:
        r["end_to_end_flop_fraction"] = round(r["flop_per_s_per_replica"] / peak, 3)
        r["probe_flop_fraction"] = round(r["probe_flop_per_s"] / peak, 3)
        print(f"replicas={r['replicas']} blocks/call={r['blocks_per_call']}: {r['blocks']} "
              f"blocks, {r['pairs']:,} pairs in {r['wall_s']:.1f}s = {r['pairs_per_s']:,.0f} "
              f"pairs/s; {r['flop_per_s_per_replica'] / 1e9:.1f} GFLOP/s per replica end to end"
              f" = {r['end_to_end_flop_fraction']:.2f} of matmul (probes alone "
              f"{r['probe_flop_fraction']:.2f}); {r['wall_share_in_probes']:.0%} of replica "
              "wall time in probes")
    default, single, stacked = rows[0], rows[1], rows[2]
    figures = {"device": device, "matmul_flop_per_s": peak, "builds": rows,
               "end_to_end_flop_fraction": default["end_to_end_flop_fraction"],
               "default_vs_one_block_per_call": round(default["pairs_per_s"]
                                                      / single["pairs_per_s"], 3),
               "stacked_vs_one_block_per_call": round(stacked["pairs_per_s"]
                                                      / single["pairs_per_s"], 3),
               "driver_peak_rss_mib": round(driver_rss)}
    print(f"end_to_end_flop_fraction (default settings, {default['replicas']} replica(s)): "
          f"{figures['end_to_end_flop_fraction']:.2f} (goal >= 0.3); pairs/s against one block "
          f"per call: default x{figures['default_vs_one_block_per_call']:.2f}, "
          f"{stacked['blocks_per_call']} blocks per call "
          f"x{figures['stacked_vs_one_block_per_call']:.2f}; peak driver RSS "
          f"{driver_rss:.0f} MiB")
    if len(rows) > 3:
        one = rows[3]
        eff = default["pairs_per_s"] / (2 * one["pairs_per_s"])
        figures["parallel_efficiency"] = round(eff, 3)
        print(f"parallel efficiency (2 replicas vs 1): {eff:.0%}")
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2) + "\n")
    if not (args.quick or args.skip_plan):
        plan_figures(args)


if __name__ == "__main__":
    main()
