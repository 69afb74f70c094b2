"""Writing a benchmark run: ``results.parquet``, ``manifest.json``, ``report.md``, PR curves.

The report leads with a table shaped like the paper's Table 1 (protocol A AUPRC, mean ± sd over
seeds, the paper's number in brackets where it exists: method.md §5), then the harder protocols
(B unseen genes, M matched negatives, C native density), the leakage statement (which datasets'
cells the frozen model saw in pre-training), coverage, timings, the command and versions.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..atomic import write_path_atomic, write_text_atomic
from ..jsonable import to_jsonable
from .genelink import pretraining_matches

#: Table 1 of the paper (scGPT, AUPRC, balanced test sets), as recovered in method.md §5.
PAPER_TABLE1: dict[tuple[str, str], dict[str, float]] = {
    ("STRING", "hHEP"): {"pert_origin": 0.496, "attn_origin": 0.507, "pert": 0.586, "emb": 0.732,
                         "vvp": 0.609, "gdt": 0.906, "ens": 0.909},
    ("STRING", "mDC"): {"pert_origin": 0.512, "attn_origin": 0.536, "pert": 0.569, "emb": 0.637,
                        "vvp": 0.606, "gdt": 0.917, "ens": 0.923},
    ("STRING", "mESC"): {"pert_origin": 0.542, "attn_origin": 0.531, "pert": 0.493, "emb": 0.699,
                         "vvp": 0.600, "gdt": 0.969, "ens": 0.966},
    ("STRING", "mHSC-L"): {"pert_origin": 0.622, "attn_origin": 0.534, "pert": 0.624,
                           "emb": 0.815, "vvp": 0.656, "gdt": 0.895, "ens": 0.873},
    ("Non-Specific", "hHEP"): {"pert_origin": 0.516, "attn_origin": 0.512, "pert": 0.546,
                               "emb": 0.586, "vvp": 0.549, "gdt": 0.716, "ens": 0.711},
    ("Non-Specific", "mESC"): {"pert_origin": 0.551, "attn_origin": 0.539, "pert": 0.512,
                               "emb": 0.638, "vvp": 0.582, "gdt": 0.835, "ens": 0.836},
}
TABLE1_COLUMNS = (("pert_origin", "Pert (Origin)"), ("attn_origin", "Attn (Origin)"),
                  ("pert", "Pert (Baseline)"), ("emb", "Emb (Baseline)"), ("vvp", "VVP"),
                  ("gdt_uniform", "GDT uniform"), ("gdt_source", "GDT source"), ("ens", "Ens"))
OTHER_COLUMNS = ("default", "fused_probes", "fused", "fused_emb", "emb_sum", "ens_stats", "pearson", "spearman", "trees", "mi", "degree",
                 "target_is_tf", "random")
PAPER_KEY = {"gdt_uniform": "gdt", "gdt_source": "gdt"}
#: The yardsticks the default must beat: every baseline that uses no foundation model.
NON_SCFM_BASELINES = ("pearson", "spearman", "trees", "mi", "degree", "target_is_tf")
GOAL_NETWORKS = ("STRING", "Non-Specific")


def goal_rows(summary: pd.DataFrame, protocol: str, method: str = "default"
              ) -> list[tuple[str, str, int, float, str, float]]:
    """Per (network, dataset, size) of :data:`GOAL_NETWORKS` where ``method`` ran: its mean
    AUPRC, the strongest non-scFM baseline present and that baseline's mean AUPRC."""
    sel = summary[(summary.protocol == protocol) & (summary.metric == "auprc")
                  & summary.network.isin(GOAL_NETWORKS)]
    out = []
    for (net, ds, size), part in sel.groupby(["network", "dataset", "size"]):
        mine = part[(part.method == method) & part["mean"].notna()]
        base = part[part.method.isin(NON_SCFM_BASELINES) & part["mean"].notna()]
        if mine.empty or base.empty:  # a metric undefined on a tiny set is not a row
            continue
        top = base.loc[base["mean"].idxmax()]
        out.append((str(net), str(ds), int(size), float(mine["mean"].iloc[0]),
                    str(top.method), float(top["mean"])))
    return out


def goal_section(summary: pd.DataFrame) -> list[str]:
    """The issue's yardstick, stated plainly: rows of B and M where ``default`` beats every
    non-scFM baseline, and its protocol-A STRING mean."""
    if "default" not in set(summary.method):
        return []
    lines = ["", "## The default against every non-scFM baseline", "",
             "Rows of STRING and Non-Specific; a win is a mean AUPRC above the best of "
             f"{', '.join(NON_SCFM_BASELINES)} on that row (baselines that could not run there, "
             "e.g. expression statistics on a dataset without expression, are not counted).", "",
             "| protocol | network / dataset | default | best baseline | win |",
             "|---|---|---|---|---|"]
    totals = []
    for proto in ("B", "M"):
        rows = goal_rows(summary, proto)
        wins = sum(d > b for *_, d, _, b in rows)
        totals.append(f"protocol {proto}: {wins} of {len(rows)} rows")
        for net, ds, size, d, name, b in rows:
            lines.append(f"| {proto} | {net} / {ds} (TFs+{size}) | {d:.3f} | {name} {b:.3f} | "
                         f"{'yes' if d > b else 'no'} |")
    a = summary[(summary.method == "default") & (summary.protocol == "A")
                & (summary.metric == "auprc") & (summary.network == "STRING")]
    lines += ["", "Wins: " + "; ".join(totals) + ". Protocol A, STRING mean AUPRC of default: "
              + (f"{a['mean'].mean():.3f} over {len(a)} datasets." if len(a) else "n/a.")]
    return lines


def summarise(results: pd.DataFrame) -> pd.DataFrame:
    """Mean, sd and seed count per (method, network, size, dataset, protocol, metric)."""
    keys = ["method", "network", "size", "dataset", "protocol", "metric"]
    g = results.groupby(keys, dropna=False)["value"]
    return g.agg(mean="mean", sd="std", n="count").reset_index()


def _cell(summary: pd.DataFrame, method: str, network: str, size: int, dataset: str,
          protocol: str, metric: str) -> str:
    sel = summary[(summary.method == method) & (summary.network == network)
                  & (summary["size"] == size) & (summary.dataset == dataset)
                  & (summary.protocol == protocol) & (summary.metric == metric)]
    if sel.empty:
        return "n/a"
    row = sel.iloc[0]
    if not math.isfinite(row["mean"]):
        return "nan"
    sd = row["sd"] if math.isfinite(row["sd"]) else 0.0
    return f"{row['mean']:.3f} ± {sd:.3f}"


def _table(summary: pd.DataFrame, columns: Sequence[tuple[str, str]], protocol: str,
           metric: str, paper: bool) -> list[str]:
    combos = (summary[summary.protocol == protocol][["network", "size", "dataset"]]
              .drop_duplicates().sort_values(["network", "size", "dataset"]))
    methods = set(summary.method)
    cols = [(m, label) for m, label in columns if m in methods]
    if combos.empty or not cols:
        return ["(no results)"]
    lines = ["| network / dataset | " + " | ".join(label for _, label in cols) + " |",
             "|---|" + "---|" * len(cols)]
    for net, size, ds in combos.itertuples(index=False):
        cells = []
        for m, _ in cols:
            text = _cell(summary, m, net, size, ds, protocol, metric)
            ref = PAPER_TABLE1.get((net, ds), {}).get(PAPER_KEY.get(m, m)) if paper else None
            if ref is not None and size == 500:
                text += f" [{ref:.3f}]"
            cells.append(text)
        lines.append(f"| {net} / {ds} (TFs+{size}) | " + " | ".join(cells) + " |")
    return lines


def write_curves(curves: Sequence[Mapping[str, Any]], out: Path,
                 methods: Sequence[str] = ("ens", "gdt_uniform", "gdt_source", "vvp", "emb",
                                           "pearson", "degree")) -> list[str]:
    """One PNG per (network, size): a PR-curve panel per dataset (protocol A, seed 0)."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return []
    written: list[str] = []
    groups: dict[tuple[str, int], list[Mapping[str, Any]]] = {}
    for c in curves:
        if c["method"] in methods:
            groups.setdefault((c["network"], int(c["size"])), []).append(c)
    for (net, size), items in sorted(groups.items()):
        datasets = sorted({c["dataset"] for c in items})
        fig, axes = plt.subplots(1, len(datasets), figsize=(3.6 * len(datasets), 3.4),
                                 squeeze=False)
        colours = {m: f"C{i}" for i, m in enumerate(methods)}  # same colour in every panel
        for ax, ds in zip(axes[0], datasets):
            for c in items:
                if c["dataset"] == ds and len(c["recall"]):
                    # precision p_i holds on (r_{i-1}, r_i]: a tied block is one straight step
                    ax.step(np.r_[0.0, c["recall"]], np.r_[c["precision"][0], c["precision"]],
                            where="pre", label=c["method"], lw=1, color=colours[c["method"]])
            ax.set_title(ds, fontsize=9)
            ax.set_xlabel("recall")
            ax.set_ylim(0, 1.02)
            ax.axhline(0.5, color="grey", lw=0.5, ls=":")
        axes[0][0].set_ylabel("precision")
        axes[0][-1].legend(fontsize=6, loc="lower left")
        fig.suptitle(f"{net} TFs+{size}, protocol A, seed 0", fontsize=10)
        fig.tight_layout()
        name = f"pr_{net}_TFs{size}.png".replace("/", "_").replace(" ", "_")
        write_path_atomic(out / name, lambda tmp, fig=fig: fig.savefig(tmp, dpi=110,
                                                                     format="png"))
        plt.close(fig)
        written.append(name)
    return written


def write_outputs(results: pd.DataFrame, manifest: Mapping[str, Any],
                  curves: Sequence[Mapping[str, Any]], out: Path,
                  command: str | None = None) -> dict[str, Path]:
    """Write every output file of a run into ``out``; returns their paths by role."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    write_path_atomic(out / "results.parquet",
                      lambda tmp: results.to_parquet(tmp, index=False))
    man = dict(manifest)
    if command:
        man["command"] = command
    write_text_atomic(out / "manifest.json", json.dumps(man, indent=1, default=to_jsonable))
    pngs = write_curves(curves, out)
    write_text_atomic(out / "report.md", render_report(results, man, pngs))
    return {"results": out / "results.parquet", "manifest": out / "manifest.json",
            "report": out / "report.md"}


def render_report(results: pd.DataFrame, manifest: Mapping[str, Any],
                  pngs: Sequence[str] = ()) -> str:
    summary = summarise(results)
    model = manifest.get("model", {})
    seen = set(model.get("seen_datasets", []))
    tested = sorted(set(results.dataset))
    n_seeds = results.seed.nunique() if len(results) else 0
    lines = ["# atlasgrn generalisation benchmark", ""]
    lines += [f"Model: `{model.get('path')}` (sha256 `{str(model.get('digest', ''))[:16]}…`, "
              f"origin {model.get('origin')}, pre-training steps {model.get('steps')}). "
              f"Seeds: {n_seeds} (mean ± sd; a seed fixes negative sampling and translator "
              f"init). Wall time: {manifest.get('seconds', float('nan')):.0f} s on "
              f"{manifest.get('device', 'cpu')}.", ""]
    cfg = manifest.get("config", {})
    if cfg.get("tf_sample"):
        lines += [f"**Reduced run:** only {cfg['tf_sample']} TFs per dataset (seeded, the same "
                  "for every network type) and their edges; numbers are not comparable to "
                  "full-TF runs or the paper.", ""]
    lines += ["## Table 1 (protocol A: balanced AUPRC, random = 0.5; paper's scGPT numbers in "
              "[brackets])", "",
              "The paper does not say which GDT reading it used; its GDT number is shown beside "
              "both readings. `ens` averages the logits of VVP and the GDT reading with the "
              "better held-out-source validation AUROC on the training set (per seed).", ""]
    lines += _table(summary, TABLE1_COLUMNS, "A", "auprc", paper=True)
    lines += ["", "### Protocol A, other methods (AUPRC)", ""]
    lines += _table(summary, [(m, m) for m in OTHER_COLUMNS], "A", "auprc", paper=False)
    all_cols = list(TABLE1_COLUMNS) + [(m, m) for m in OTHER_COLUMNS]
    for proto, metric, title in (
            ("A", "auroc", "Protocol A: AUROC"),
            ("B", "auprc", "Protocol B (pairs of genes unseen in training): AUPRC"),
            ("M", "auprc", "Protocol M (negatives matched on target TF status and in-degree "
                           "bin): AUPRC"),
            ("C", "auprc_ratio", "Protocol C (all TF x gene candidates): AUPRC ratio over "
                                 "random"),
            ("C", "epr", "Protocol C: early precision ratio (EPR)")):
        lines += ["", f"## {title}", ""]
        lines += _table(summary, all_cols, proto, metric, paper=False)
    lines += goal_section(summary)
    lines += ["", "## Leakage", "",
              f"The frozen model's provenance lists these pre-training datasets: "
              f"{', '.join(sorted(seen)) or '(none recorded)'}."]
    for ds in tested:
        hits = pretraining_matches(ds, sorted(seen))
        lines.append(f"- {ds}: " + (f"**cells seen in pre-training** ({', '.join(hits)})"
                                    if hits else "unseen"))
    strict = manifest.get("strict")
    if strict:
        lines += ["", f"Strict variant: `{strict.get('path')}` was pre-trained without "
                      f"{strict.get('dataset')} (its provenance lists "
                      f"{', '.join(strict.get('seen_datasets', []))}); its methods carry the "
                      f"suffix `@strict` in results.parquet. Same dataset, frozen model with "
                      f"vs without its cells (AUPRC, mean ± sd):", ""]
        lines += _strict_table(summary, str(strict.get("dataset")))
    else:
        lines += ["", "No strict variant was run (pass `--strict-model DIR --strict-dataset "
                      "NAME` with a model pre-trained with `atlasgrn pretrain "
                      "--exclude-dataset NAME`)."]
    lines += ["", "## Coverage and choices", ""]
    for k, v in sorted(manifest.get("coverage", {}).items()):
        if k.startswith(("train/", "test/")):
            lines.append(f"- share of pairs the model covers, {k}: {v:.3f}")
    for c in manifest.get("ens_choices", []):
        lines.append(f"- ens on {c['train']} seed {c['seed']} ({c['model']}): GDT reading "
                     f"`{c['ens_gdt']}`")
        if c.get("default"):
            def aucs(prefix: str, c: Mapping[str, Any] = c) -> str:
                return ", ".join(f"{k.split('/', 1)[1]} {v:.3f}" for k, v in c.items()
                                 if k.startswith(prefix) and v is not None)
            lines.append(f"- default on {c['train']} seed {c['seed']}: `{c['default']}` "
                         f"(`{c.get('default_without_expression')}` on a dataset without "
                         f"expression); AUROC on pairs of held-out training genes (selects): "
                         f"{aucs('unseen_gene_auroc/')}; held-out-source validation AUROC "
                         f"(early stopping): {aucs('val_auroc/')}")
    for note in manifest.get("notes", []):
        lines.append(f"- {note}")
    lines += ["", "Pairs with a gene outside the model's vocabulary get the method's lowest "
                  "score. `pert` (Pert fed to a translator) needs the training dataset's "
                  "expression; hESC has none in this data, so it is absent when training on "
                  "hESC. `ens_stats` = 0.5 x percentile(ens) + 0.5 x mean percentile of "
                  "|Pearson|, |Spearman|, MI and tree importance within the test dataset "
                  "(fixed weights; see docs/benchmark.md).", ""]
    if pngs:
        lines += ["## PR curves (protocol A, seed 0)", ""]
        lines += [f"![{p}]({p})" for p in pngs]
        lines.append("")
    lines += ["## Timings (s)", ""]
    for k, v in sorted(manifest.get("timings", {}).items()):
        lines.append(f"- {k}: {v:.1f}")
    cache = manifest.get("cache", {})
    lines.append(f"- feature cache: {len(cache.get('hits', []))} hits, "
                 f"{len(cache.get('misses', []))} computed")
    lines += ["", "## Reproduce", "", "```", str(manifest.get("command", "(API call)")), "```",
              "", "Versions: " + ", ".join(f"{k} {v}" for k, v in
                                         manifest.get("versions", {}).items()),
              f"Feature settings: `{json.dumps(manifest.get('feature_settings', {}))}`", ""]
    return "\n".join(lines)


def _strict_table(summary: pd.DataFrame, dataset: str) -> list[str]:
    strict = summary[summary.method.str.endswith("@strict") & (summary.dataset == dataset)]
    if strict.empty:
        return ["(no strict results)"]
    lines = ["| network | method | A (model saw it?) | A strict | M | M strict |",
             "|---|---|---|---|---|---|"]
    for net, size in strict[["network", "size"]].drop_duplicates().itertuples(index=False):
        for meth in sorted({m.split("@")[0] for m in strict[strict.network == net].method}):
            cells = [_cell(summary, m, net, size, dataset, p, "auprc")
                     for p in ("A",) for m in (meth, meth + "@strict")]
            cells += [_cell(summary, m, net, size, dataset, "M", "auprc")
                      for m in (meth, meth + "@strict")]
            lines.append(f"| {net} TFs+{size} | {meth} | " + " | ".join(cells) + " |")
    return lines
