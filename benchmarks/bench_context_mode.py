"""Does context mode (one network per (dataset, cell state)) beat universal mode?

For each simulator seed: simulate a 2-dataset atlas, pre-train a tiny model on it (as
``tests/engine_helpers.py::pretrain_tiny``), train two translators on the same prior (the true
edges of half the TFs, ``split_tfs``) - universal (scalar background) and context
(``--background profile --expression ATLAS --expression-dataset sim00``) - build both networks
with the engine (``run_job``; context mode with ``context_key="cell_state"``), and evaluate
each (dataset, cell state) with at least ``--min-cells`` cells on the *held-out* regulators
only (TFs not in the prior), over every held-out-TF x gene pair both networks score:

* label "active": the edge is true AND active in that context. Active is taken from the
  simulator's own ground truth: the network, state pool and dataset contexts are rebuilt from
  the seed with the simulator's functions (checked against the written edges and the dataset
  attributes), the noise-free steady state of each (dataset, state) is computed with
  ``steady_state`` (the state's master activities x the dataset's context shift, noise = 1,
  propagated down the DAG), and edge s->t is active when s's level is at or above the edge's
  Hill threshold K_st (the Hill term past half its range: an activator is driving t, a
  repressor is holding it down). A data-based definition (s's mean log-expression in the
  context's cells in the top half of s's means over the dataset's states) is reported too.
* label "any": the edge is true (in any context).

Scores: AUPRC (``average_precision_score``) of the universal network, of that context's
network, of |Pearson| of log1p(CP10k) expression within that context's cells (a non-scFM
baseline), and the random baseline (the positive fraction).

    .venv/bin/python benchmarks/bench_context_mode.py                       # 3 seeds, ~20 min
    .venv/bin/python benchmarks/bench_context_mode.py --seeds 0 --cells 600 --steps 200  # smoke
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path

os.environ.setdefault("ATLASGRN_IN_PROCESS", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402


def _log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


# ---------------------------------------------------------------------------- ground truth

def truth_activity(seed: int, config, atlas_uri: str, edges: set
                   ) -> tuple[pd.DataFrame, str]:
    """Per (dataset, state, source, target): whether the true edge is active, from the
    simulator's noise-free steady state (rebuilt from the seed with its own functions)."""
    import zarr

    from atlasgrn.sim.grn import build_grn
    from atlasgrn.sim.kinetics import plan_kinetics, steady_state
    from atlasgrn.sim.sample import make_context, make_state_pool
    from atlasgrn.sim.simulate import _rng
    from atlasgrn.sim.symbols import simulation_pools

    tf_pool, target_pool = simulation_pools()
    grn = build_grn(config.n_genes, config.tfs, _rng(seed, 0), tf_pool=tf_pool,
                    target_pool=target_pool)
    plan = plan_kinetics(grn)
    n_pool = config.n_datasets + 3
    pool = make_state_pool(n_pool, grn.n_masters, _rng(seed, 1))
    width = max(2, len(str(config.n_datasets - 1)))
    genes = grn.genes.astype(str)
    if set(zip(genes[grn.src], genes[grn.dst])) != edges:
        raise RuntimeError("rebuilt network disagrees with the simulator's edges file")
    rows = []
    for d in range(config.n_datasets):
        ctx = make_context(f"sim{d:0{width}d}", n_pool, grn.n_masters, grn.n_genes,
                           _rng(seed, 1, d))
        want = [f"state{s:02d}" for s in ctx.states]
        attrs = dict(zarr.open_group(f"{atlas_uri}/datasets/{ctx.name}", mode="r").attrs)
        got = attrs["atlasgrn_sim"]["cell_states"]
        if list(got) != want:
            raise RuntimeError(f"rebuilt context of {ctx.name} disagrees with the atlas: "
                               f"{want} vs {got}")
        for s in ctx.states:
            act = (pool[s] * ctx.master_shift)[:, None].astype(np.float32)
            x = steady_state(plan, act, np.ones((grn.n_genes, 1), np.float32))[:, 0]
            active = x[grn.src] >= grn.hill_k
            rows.append(pd.DataFrame({"dataset": ctx.name, "context": f"state{s:02d}",
                                      "source": genes[grn.src], "target": genes[grn.dst],
                                      "active": active, "level": x[grn.src],
                                      "hill_k": grn.hill_k}))
    return pd.concat(rows, ignore_index=True), "simulator ground truth (x_s >= K_st)"


# ---------------------------------------------------------------------------- data

def context_expression(atlas, dataset: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """log1p(CP10k) dense matrix, gene symbols, cell-state labels of one dataset."""
    ds = atlas.dataset(dataset)
    x = ds.read_cells(0, ds.info.n_cells, dense=True).astype(np.float64)
    lib = x.sum(axis=1, keepdims=True)
    x = np.log1p(x / np.maximum(lib, 1.0) * 1e4)
    return x, np.asarray(ds.genes, dtype=str), ds.obs["cell_state"].astype(str).to_numpy()


def abs_pearson(x: np.ndarray, src_idx: np.ndarray, tgt_idx: np.ndarray) -> np.ndarray:
    z = x - x.mean(axis=0)
    sd = np.sqrt((z ** 2).sum(axis=0))
    with np.errstate(invalid="ignore", divide="ignore"):
        r = (z[:, src_idx] * z[:, tgt_idx]).sum(axis=0) / (sd[src_idx] * sd[tgt_idx])
    return np.nan_to_num(np.abs(r), nan=0.0)


def auprc(labels: np.ndarray, scores: np.ndarray) -> float:
    from sklearn.metrics import average_precision_score
    if labels.sum() == 0 or labels.sum() == len(labels):
        return float("nan")
    return float(average_precision_score(labels, scores))


# ---------------------------------------------------------------------------- one seed

def read_edges(out: str) -> pd.DataFrame:
    from atlasgrn.engine.output import RunOutput, edges_dataset
    return edges_dataset(RunOutput(out)).to_table().to_pandas()


def run_seed(seed: int, args, work: Path) -> dict:
    from atlasgrn.engine.config import RunConfig
    from atlasgrn.engine.job import run_job
    from atlasgrn.sim import SimConfig, simulate_atlas
    from tests.engine_helpers import pretrain_tiny, split_tfs, train_cli_translator

    t0 = time.perf_counter()
    timings = {}
    root = work / f"seed{seed}"
    if root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True)
    atlas_uri = str(root / "sim.zarr")
    config = SimConfig(n_datasets=args.datasets, n_cells=args.cells, n_genes=args.genes,
                       n_tfs=args.tfs, seed=seed)
    res = simulate_atlas(atlas_uri, config)
    e = pq.read_table(res.edges_path).to_pandas()
    edges = set(zip(e["source"].astype(str), e["target"].astype(str)))
    train_tfs = split_tfs(list(res.tfs))
    held_out = sorted(set(res.tfs) - train_tfs)
    _log(f"seed {seed}: {res.summary()}; {len(held_out)} held-out TFs")

    t = time.perf_counter()
    model_dir = pretrain_tiny(atlas_uri, str(root / "model"), args.steps)
    timings["pretrain_s"] = time.perf_counter() - t
    _log(f"seed {seed}: pre-trained {args.steps} steps in {timings['pretrain_s']:.0f} s")

    t = time.perf_counter()
    (root / "universal").mkdir()
    uni_tr = train_cli_translator(root / "universal", model_dir, edges, train_tfs,
                                  tuple(res.genes))
    timings["translator_universal_s"] = time.perf_counter() - t
    t = time.perf_counter()
    first = res.datasets[0].name
    ctx_tr = train_cli_translator(root / "context", model_dir, edges, train_tfs,
                                  tuple(res.genes), threads=args.threads,
                                  extra=("--background", "profile", "--expression", atlas_uri,
                                         "--expression-dataset", first))
    timings["translator_context_s"] = time.perf_counter() - t
    _log(f"seed {seed}: translators trained ({timings['translator_universal_s']:.0f} s, "
         f"{timings['translator_context_s']:.0f} s)")

    base = dict(atlas=atlas_uri, model=model_dir, replicas=1, gpus_per_replica=0,
                cpus_per_replica=1, progress_every_s=1e9)
    t = time.perf_counter()
    uni_out = str(root / "run-universal")
    r = run_job(RunConfig(out=uni_out, translator=uni_tr, **base), log=lambda m: None)
    if r.status != "complete":
        raise RuntimeError(f"universal run: {r.status}")
    timings["build_universal_s"] = time.perf_counter() - t
    t = time.perf_counter()
    ctx_out = str(root / "run-context")
    r = run_job(RunConfig(out=ctx_out, translator=ctx_tr, context_key="cell_state",
                          min_cells=args.min_cells, **base), log=lambda m: None)
    if r.status != "complete":
        raise RuntimeError(f"context run: {r.status}")
    timings["build_context_s"] = time.perf_counter() - t
    _log(f"seed {seed}: networks built ({timings['build_universal_s']:.0f} s, "
         f"{timings['build_context_s']:.0f} s)")

    rows, truth_kind = evaluate(seed, config, atlas_uri, edges, held_out, uni_out, ctx_out)
    timings["seed_total_s"] = time.perf_counter() - t0
    _log(f"seed {seed}: done in {timings['seed_total_s']:.0f} s")
    return {"seed": seed, "rows": rows, "timings": timings, "truth_kind": truth_kind,
            "held_out_tfs": held_out, "n_true_edges": len(edges)}


def evaluate(seed: int, config, atlas_uri: str, edges: set, held_out: list[str], uni_out: str,
             ctx_out: str) -> tuple[list[dict], str]:
    """One row per (dataset, cell state) network of the context run."""
    from atlasgrn.atlas import open_atlas

    atlas = open_atlas(atlas_uri)
    truth, truth_kind = truth_activity(seed, config, atlas_uri, edges)
    uni = read_edges(uni_out)
    ctx = read_edges(ctx_out)
    held = set(held_out)
    uni = uni[uni["source"].isin(held) & (uni["source"] != uni["target"])]
    ctx = ctx[ctx["source"].isin(held) & (ctx["source"] != ctx["target"])]
    rows = []
    for dataset in sorted(ctx["dataset"].unique()):
        x, genes, states = context_expression(atlas, dataset)
        gidx = {g: i for i, g in enumerate(genes)}
        # data-based activity: s's mean log-expression per state of this dataset
        state_names = sorted(set(states))
        means = pd.DataFrame({st: x[states == st].mean(axis=0) for st in state_names},
                             index=genes)
        u = (uni[uni["dataset"] == dataset].groupby(["source", "target"])["score"].first())
        for context in sorted(ctx.loc[ctx["dataset"] == dataset, "context"].unique()):
            c = ctx[(ctx["dataset"] == dataset) & (ctx["context"] == context)]
            c = c.set_index(["source", "target"])["score"]
            common = c.index.intersection(u.index)
            pairs = pd.DataFrame(list(common), columns=["source", "target"])
            pairs["uni"] = u.loc[common].to_numpy()
            pairs["ctx"] = c.loc[common].to_numpy()
            key = list(zip(pairs["source"], pairs["target"]))
            pairs["true"] = np.array([k in edges for k in key])
            tr = truth[(truth["dataset"] == dataset) & (truth["context"] == context)]
            act = set(zip(tr.loc[tr["active"], "source"], tr.loc[tr["active"], "target"]))
            pairs["active"] = np.array([k in act for k in key])
            m = means
            top = {s: m.loc[s, context] >= np.median(m.loc[s].to_numpy()) for s in held
                   if s in m.index}
            pairs["active_data"] = pairs["true"] & pairs["source"].map(top).fillna(False)
            cells = states == context
            pairs["pearson"] = abs_pearson(
                x[cells], pairs["source"].map(gidx).to_numpy(),
                pairs["target"].map(gidx).to_numpy())
            row = {"seed": seed, "dataset": dataset, "context": context,
                   "n_cells": int(cells.sum()), "n_pairs": len(pairs),
                   "n_uni_pairs": int(len(u)), "n_ctx_pairs": int(len(c))}
            for lab in ("active", "true", "active_data"):
                y = pairs[lab].to_numpy().astype(int)
                name = {"active": "act", "true": "any", "active_data": "actdata"}[lab]
                row[f"{name}_pos"] = int(y.sum())
                row[f"{name}_random"] = float(y.mean())
                for sc in ("uni", "ctx", "pearson"):
                    row[f"{name}_{sc}"] = auprc(y, pairs[sc].to_numpy())
            # specificity: this context's label scored by the other contexts' networks
            others = []
            for oc in sorted(ctx.loc[ctx["dataset"] == dataset, "context"].unique()):
                if oc == context:
                    continue
                o = ctx[(ctx["dataset"] == dataset) & (ctx["context"] == oc)]
                o = o.set_index(["source", "target"])["score"]
                oscore = o.reindex(common).to_numpy()
                if np.isfinite(oscore).all():
                    others.append(auprc(pairs["active"].to_numpy().astype(int), oscore))
            row["act_ctx_other"] = float(np.mean(others)) if others else float("nan")
            # how different the context's scores are from the universal ones
            row["spearman_uni_ctx"] = float(pairs["uni"].rank().corr(pairs["ctx"].rank()))
            rows.append(row)
    return rows, truth_kind


# ---------------------------------------------------------------------------- report

COLS = ["seed", "dataset", "context", "n_cells", "n_pairs", "act_pos", "act_random", "act_uni",
        "act_ctx", "act_pearson", "any_pos", "any_random", "any_uni", "any_ctx", "any_pearson",
        "actdata_uni", "actdata_ctx", "act_ctx_other", "spearman_uni_ctx"]


def report(results: list[dict]) -> dict:
    df = pd.DataFrame([r for res in results for r in res["rows"]])
    with pd.option_context("display.width", 250, "display.max_columns", 40,
                           "display.float_format", "{:.3f}".format):
        print(df[COLS].to_string(index=False))
    metrics = [c for c in df.columns if c.split("_")[0] in ("act", "any", "actdata")
               and not c.endswith("_pos")] + ["spearman_uni_ctx"]
    metrics = list(dict.fromkeys(metrics))
    per_seed = df.groupby("seed")[metrics].mean()
    overall = df[metrics].mean()
    with pd.option_context("display.width", 250, "display.max_columns", 40,
                           "display.float_format", "{:.3f}".format):
        print("\nmean over contexts, per seed:")
        print(per_seed.to_string())
    print("\nmean over all contexts and seeds "
          f"({len(df)} contexts, {df['seed'].nunique()} seeds):")
    verdict = {}
    for lab, desc in (("act", "true AND active in the context"), ("any", "true (any context)"),
                      ("actdata", "true AND active (data-based definition)")):
        u, c = overall[f"{lab}_uni"], overall[f"{lab}_ctx"]
        wins = int((df[f"{lab}_ctx"] > df[f"{lab}_uni"]).sum())
        print(f"  label = {desc}: random {overall[f'{lab}_random']:.3f}  universal {u:.3f}  "
              f"context {c:.3f}  |Pearson| {overall[f'{lab}_pearson']:.3f}  "
              f"(context - universal = {c - u:+.3f}, {100 * (c - u) / u:+.1f}%; context wins "
              f"in {wins}/{len(df)} contexts)")
        verdict[lab] = {"universal": u, "context": c, "diff": c - u, "context_wins": wins,
                        "n_contexts": len(df)}
    d = verdict["act"]
    better = "CONTEXT mode" if d["diff"] > 0 else "UNIVERSAL mode"
    print(f"\nVerdict (held-out TFs, label = active in context): {better} wins by "
          f"{abs(d['diff']):.3f} AUPRC ({d['universal']:.3f} universal vs {d['context']:.3f} "
          f"context), context better in {d['context_wins']}/{d['n_contexts']} contexts.")
    print(f"Specificity: label = active in context c, scored by c's own network "
          f"{overall['act_ctx']:.3f} vs by the other contexts' networks of the same dataset "
          f"{overall['act_ctx_other']:.3f} (own better in "
          f"{int((df['act_ctx'] > df['act_ctx_other']).sum())}/{len(df)} contexts).")
    return {"per_context": df.to_dict(orient="records"),
            "per_seed_mean": per_seed.reset_index().to_dict(orient="records"),
            "overall_mean": overall.to_dict(), "verdict": verdict}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--datasets", type=int, default=2)
    p.add_argument("--cells", type=int, default=1200)
    p.add_argument("--genes", type=int, default=120)
    p.add_argument("--tfs", type=int, default=20)
    p.add_argument("--steps", type=int, default=1000, help="pre-training steps")
    p.add_argument("--min-cells", type=int, default=50)
    p.add_argument("--threads", type=int, default=2, help="torch threads")
    p.add_argument("--work", default="/tmp/bench_context_mode")
    p.add_argument("--json", default=None, help="write the results here")
    args = p.parse_args(argv)

    import ray
    import torch
    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        from ray.data import DataContext
        DataContext.get_current().enable_progress_bars = False
    except Exception:  # noqa: BLE001 - cosmetic only
        pass
    work = Path(args.work)
    results = []
    try:
        for seed in args.seeds:
            results.append(run_seed(seed, args, work))
            if args.json:  # partial results survive an interrupted run
                Path(args.json).write_text(json.dumps(
                    {"config": vars(args), "seeds": results}, indent=1, default=float))
    finally:
        ray.shutdown()
    summary = report(results)
    wall = time.perf_counter() - t0
    print(f"\nactive-in-context definition: {results[0]['truth_kind']}; wall time {wall:.0f} s")
    if args.json:
        Path(args.json).write_text(json.dumps(
            {"config": vars(args), "active_definition": results[0]["truth_kind"],
             "wall_s": wall, "seeds": [{k: v for k, v in r.items() if k != "rows"}
                                       for r in results], **summary},
            indent=1, default=float))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
