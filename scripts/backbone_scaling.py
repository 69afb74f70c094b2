"""Does a stronger backbone give better probe edges? Pre-train one architecture on simulated atlases
of growing size (cells and steps together), then run the BEELINE bench on two held-out datasets of
the same GRN: the translator learns on one half of the TFs in one dataset and is tested zero-shot
on the other half in another dataset. Beside it, on the same pairs: |Pearson|, |Spearman|, MI,
extra-trees, the attention read-out, degree and target-is-TF.

    .venv/bin/python scripts/backbone_scaling.py --out docs/benchmarks/backbone_scaling_sim

Writes ``results.parquet`` (one row per scale, method, protocol, seed, metric), ``points.json``
(each backbone's size, steps, validation loss and seconds), ``scaling.png`` and ``report.md``.
Each point's atlas, model and bench root stay under ``--work`` so a rerun reuses them.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from atlasgrn.bench.config import BenchConfig
from atlasgrn.bench.run import run_benchmark
from atlasgrn.bench.simulated import SIM_NETWORK, write_simulated_root
from atlasgrn.pretraining import PretrainOptions, pretrain_atlas
from atlasgrn.pretraining.config import SamplerConfig, TrainConfig
from atlasgrn.sim import SimConfig, simulate_atlas

#: One GRN for every point (the simulator draws the network from the seed alone): the default
#: of ``--sim-seed``.
SIM_SEED = 11
N_GENES, N_TFS = 300, 40
#: Pre-training datasets per atlas; the benchmark uses datasets the backbone never saw.
N_PRETRAIN_DATASETS = 4
#: (total pre-training cells, steps): data and optimisation grow together.
POINTS = ((2_000, 600), (20_000, 2_500), (200_000, 6_000), (600_000, 15_000))
BENCH_CELLS = 1_500
METHODS = ("vvp", "gdt_uniform", "gdt_source", "ens", "fused_probes", "default", "attn_origin",
           "pearson", "spearman", "mi", "trees", "degree", "target_is_tf")
FEATURES = {"context_len": 128, "source_block": 8, "target_block": 56}
#: what the plot shows
PLOTTED = ("ens", "fused_probes", "default", "attn_origin", "pearson", "spearman", "trees")
#: protocols plotted (B keeps a few dozen pairs here: its table rows, not a curve)
PLOTTED_PROTOCOLS = ("A", "M")
EXPRESSION_BASELINES = ("pearson", "spearman", "trees")


@dataclass(frozen=True)
class Point:
    cells: int
    steps: int
    val_loss: float
    best_step: int
    pretrain_seconds: float
    bench_seconds: float
    #: test pairs per protocol (the last seed's draw; B keeps only pairs of unlabelled genes)
    test_pairs: dict[str, int]


def pretrain_options(steps: int) -> PretrainOptions:
    """The backbone: scGPT's architecture, small enough that 15,000 steps take about 17 minutes
    on 2 CPU cores (the issue's budget: about 20 minutes a point)."""
    return PretrainOptions(
        d_model=64, n_layers=2, n_heads=4, d_ff=128, dropout=0.0,
        sampler=SamplerConfig(batch_size=32, max_len=128, min_len=64, val_fraction=0.05,
                              block_cells=1024, buffer_cells=4096),
        train=TrainConfig(steps=steps, lr=1e-3, warmup_steps=min(200, steps // 10),
                          eval_every=max(100, steps // 20), patience=1000, log_every=10**9),
        val_cells_per_dataset=128, val_len=128, range_cells_per_dataset=1000)


def bench_root(work: Path, sim_seed: int) -> Path:
    """The held-out datasets (indices past the pre-training ones: new cells, new cell states)."""
    root = work / "bench_root"
    if root.exists():
        return root
    atlas = work / "heldout.zarr"
    res = simulate_atlas(str(atlas), SimConfig(n_datasets=N_PRETRAIN_DATASETS + 2,
                                                n_cells=BENCH_CELLS, n_genes=N_GENES,
                                                n_tfs=N_TFS, seed=sim_seed, overwrite=True))
    names = [d.name for d in res.datasets]
    write_simulated_root(res.atlas_uri, res.edges_path, res.tfs, root,
                         train_dataset=names[-2], test_dataset=names[-1], seed=sim_seed,
                         max_cells=BENCH_CELLS)
    return root


def backbone(work: Path, cells: int, steps: int, sim_seed: int) -> tuple[str, dict, float]:
    """Simulate the pre-training atlas and pre-train on it (reused when already there)."""
    model_dir = work / f"model_{cells}"
    meta_file = work / f"model_{cells}.json"
    if meta_file.exists():
        meta = json.loads(meta_file.read_text())
        return str(model_dir), meta, meta["seconds"]
    atlas = work / f"pretrain_{cells}.zarr"
    if model_dir.exists():  # an interrupted run: pre-training refuses a used folder
        shutil.rmtree(model_dir)
    simulate_atlas(str(atlas), SimConfig(n_datasets=N_PRETRAIN_DATASETS,
                                         n_cells=cells // N_PRETRAIN_DATASETS, n_genes=N_GENES,
                                         n_tfs=N_TFS, seed=sim_seed, overwrite=True))
    start = time.perf_counter()
    result = pretrain_atlas(str(atlas), str(model_dir), pretrain_options(steps), device="cpu",
                            log=lambda m: print(f"  [{cells}] {m}", flush=True))
    seconds = time.perf_counter() - start
    meta = {"best_val_loss": float(result.best_val), "best_step": int(result.best_step),
            "seconds": seconds, "history": result.history}
    meta_file.write_text(json.dumps(meta))
    shutil.rmtree(atlas)  # the model is what the bench needs; the atlas is re-simulable
    return str(model_dir), meta, seconds


def run_point(work: Path, root: Path, cells: int, steps: int, seeds: int, sim_seed: int
              ) -> tuple[pd.DataFrame, Point]:
    model_dir, meta, pre_s = backbone(work, cells, steps, sim_seed)
    out = work / f"bench_{cells}"
    start = time.perf_counter()
    cfg = BenchConfig(data=root, out=out, networks=(SIM_NETWORK,), seeds=seeds, model=model_dir,
                      methods=METHODS, protocols=("A", "B", "M"), train_dataset="simtrain",
                      features=FEATURES)
    res = run_benchmark(cfg, progress=lambda m: print(f"  [{cells}] {m}", flush=True))
    frame = res.results.assign(cells=cells, steps=steps)
    point = Point(cells=cells, steps=steps, val_loss=meta["best_val_loss"],
                  best_step=meta["best_step"], pretrain_seconds=round(pre_s, 1),
                  bench_seconds=round(time.perf_counter() - start, 1),
                  test_pairs={k.rsplit("/", 1)[-1]: int(v)
                              for k, v in res.manifest["coverage"].items()
                              if k.startswith("pairs/")})
    return frame, point


def summarise(results: pd.DataFrame) -> pd.DataFrame:
    """Mean and sd over seeds of AUPRC per (cells, protocol, method)."""
    sel = results[results.metric == "auprc"]
    return (sel.groupby(["cells", "protocol", "method"])["value"]
            .agg(["mean", "std", "count"]).reset_index())


def plot(summary: pd.DataFrame, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    protocols = [p for p in PLOTTED_PROTOCOLS if p in set(summary.protocol)]
    fig, axes = plt.subplots(1, len(protocols), figsize=(4.2 * len(protocols), 3.6),
                             sharey=True)
    for ax, proto in zip(np.atleast_1d(axes), protocols):
        part = summary[summary.protocol == proto]
        for method in PLOTTED:
            m = part[part.method == method].sort_values("cells")
            if m.empty:
                continue
            style = "--" if method in EXPRESSION_BASELINES else "-"
            ax.errorbar(m["cells"], m["mean"], yerr=m["std"].fillna(0), label=method,
                        linestyle=style, marker="o", capsize=3)
        ax.set_xscale("log")
        ax.set_title(f"protocol {proto}")
        ax.set_xlabel("pre-training cells (steps grow too)")
        ax.axhline(0.5, color="grey", linewidth=0.6)
    np.atleast_1d(axes)[0].set_ylabel("AUPRC, held-out regulators\n(mean ± sd over seeds)")
    np.atleast_1d(axes)[-1].legend(fontsize=7, loc="best")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def markdown_table(summary: pd.DataFrame) -> list[str]:
    """Mean ± sd per (protocol, method) and scale, as Markdown rows."""
    cells = sorted(summary.cells.unique())
    head = "| protocol | method | " + " | ".join(f"{c:,} cells" for c in cells) + " |"
    rule = "|---|---|" + "---:|" * len(cells)
    rows = []
    for (proto, method), part in summary.groupby(["protocol", "method"]):
        by = part.set_index("cells")
        vals = [f"{by.at[c, 'mean']:.3f} ± {by.at[c, 'std']:.3f}" if c in by.index else "-"
                for c in cells]
        rows.append(f"| {proto} | {method} | " + " | ".join(vals) + " |")
    return [head, rule, *rows]


def default_out_name(sim_seed: int) -> str:
    """docs/benchmarks/ folder name of a GRN seed's run."""
    return "backbone_scaling_sim" + ("" if sim_seed == SIM_SEED else f"_seed{sim_seed}")


def report(summary: pd.DataFrame, points: list[Point], seeds: int, sim_seed: int) -> str:
    lines = [
        "# Backbone scaling on the simulator",
        "",
        "Command: `.venv/bin/python scripts/backbone_scaling.py --out "
        f"docs/benchmarks/{default_out_name(sim_seed)} --sim-seed {sim_seed}`",
        "",
        f"One simulated GRN ({N_GENES} genes, {N_TFS} TFs, seed {sim_seed}). Each backbone "
        f"(d=64, 2 layers, 4 heads) is pre-trained on {N_PRETRAIN_DATASETS} simulated datasets "
        "of that GRN. The bench uses two further datasets of the same GRN that no backbone saw "
        f"({BENCH_CELLS} cells each): the translator learns on the edges of half the TFs in one, "
        "and is tested zero-shot on the other half's edges in the other, so every test regulator "
        "is unseen as a source (protocol A), and under B neither gene of a pair was labelled in "
        f"training. Seeds: {seeds} (negative sampling and translator initialisation; one "
        "backbone per scale). Expression baselines read the same 1,500 test cells at every "
        "scale, so their rows do not move.",
        "",
        "| pre-training cells | steps | best validation loss (step) | pre-training s | bench s "
        "| test pairs (A/B/M) |",
        "|---:|---:|---:|---:|---:|---|",
    ]
    for p in points:
        lines.append(f"| {p.cells:,} | {p.steps:,} | {p.val_loss:.4f} ({p.best_step}) | "
                     f"{p.pretrain_seconds:.0f} | {p.bench_seconds:.0f} | "
                     + "/".join(str(p.test_pairs.get(k, "-")) for k in "ABM") + " |")
    b_pairs = min((p.test_pairs.get("B", 0) for p in points), default=0)
    lines += ["", "AUPRC, mean ± sd over seeds (balanced sets: random = 0.5). Protocol B keeps "
              f"{b_pairs} pairs here (nearly every gene of the test network appears in a "
              "training pair), so its rows are noise; the plot shows A and M.", "",
              *markdown_table(summary), "", "![scaling](scaling.png)", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--work", type=Path, default=Path("/tmp/atlasgrn-scaling"))
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--points", default=",".join(f"{c}:{s}" for c, s in POINTS),
                    help="CELLS:STEPS,... (default: %(default)s)")
    ap.add_argument("--sim-seed", type=int, default=SIM_SEED,
                    help="the simulated GRN's seed (default: %(default)s)")
    ap.add_argument("--report-only", action="store_true",
                    help="rewrite scaling.png and report.md from --out's results and points")
    args = ap.parse_args(argv)
    if args.report_only:
        results = pd.read_parquet(args.out / "results.parquet")
        done = [Point(**p) for p in json.loads((args.out / "points.json").read_text())]
        write_outputs(args.out, results, done, args.seeds, args.sim_seed)
        return 0
    points = [tuple(int(x) for x in p.split(":")) for p in args.points.split(",")]
    args.work.mkdir(parents=True, exist_ok=True)
    args.out.mkdir(parents=True, exist_ok=True)
    root = bench_root(args.work, args.sim_seed)
    frames, done = [], []
    for cells, steps in points:
        print(f"point: {cells:,} cells, {steps:,} steps", flush=True)
        frame, point = run_point(args.work, root, cells, steps, args.seeds, args.sim_seed)
        frames.append(frame)
        done.append(point)
        results = pd.concat(frames, ignore_index=True)
        write_outputs(args.out, results, done, args.seeds, args.sim_seed)
    return 0


def write_outputs(out: Path, results: pd.DataFrame, done: list[Point], seeds: int,
                  sim_seed: int) -> None:
    """Results, points, plot and report of the points done so far (rewritten after each)."""
    results.to_parquet(out / "results.parquet", index=False)
    (out / "points.json").write_text(json.dumps([asdict(p) for p in done], indent=1))
    summary = summarise(results)
    plot(summary, out / "scaling.png")
    (out / "report.md").write_text(report(summary, done, seeds, sim_seed))
    print(summary[summary.method.isin(PLOTTED)].to_string(index=False), flush=True)


if __name__ == "__main__":
    sys.exit(main())
