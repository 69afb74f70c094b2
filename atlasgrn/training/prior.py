"""Training a translator from any prior network and gene universe (``atlasgrn train-translator``).

Inputs are files a user has: a prior network (CSV/TSV with a source and a target column, e.g.
TRRUST, or a BEELINE ``BL--network.csv``) and a gene universe (one symbol per line). Labels are
the prior's edges among the universe's genes plus one negative per edge, drawn for the same
regulator among its non-targets (``bench.splits.training_pairs``: balanced per TF); validation
holds out whole source genes (``train_translator``). Features are computed over the universe
with one :class:`~atlasgrn.features.FeatureSpec` (saved with the translator, so the job serves the
same features), only for the blocks the training pairs need.

A gene list has no expression, so the spec must not need any: a scalar background and
token-id anchors (the defaults).

This sits above ``bench`` because it borrows the benchmark's label sampler (one negative per
edge, same regulator): training and the benchmark then draw negatives the same way.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..bench.genelink import NetworkSet
from ..bench.splits import training_pairs
from ..digest import file_sha256
from ..edgelist import read_edge_list
from ..errors import AtlasgrnError
from ..features import (
    CacheStats,
    FeatureSpec,
    build_universe,
    compute_table,
    rank_statistics,
)
from ..features.spec import DEFAULT_KINDS, MODEL_KINDS
from ..models.interface import GeneModel
from ..models.vocab import map_genes
from ..translator.guidance import threshold_guidance
from ..translator.model import Translator
from ..translator.threads import torch_threads
from ..translator.train import (
    SELECTION_METRIC,
    TranslatorConfig,
    record_selection,
    split_by_group,
    train_translator,
    unseen_gene_auroc,
)


@dataclass(frozen=True, eq=False)
class Expression:
    """Per-gene mean expression of the dataset a context-mode translator is trained on, and its
    cells x genes matrix where rank-statistic features need one (``values``, ``genes`` order)."""

    genes: tuple[str, ...]
    means: tuple[float, ...]
    value_kind: str
    label: str
    values: np.ndarray | None = None


def read_prior(path: str | os.PathLike[str], source_col: str | None = None,
               target_col: str | None = None, header: bool = True) -> pd.DataFrame:
    """Edges ``source,target`` (str) of a CSV/TSV prior (:func:`atlasgrn.edgelist.read_edge_list`;
    ``header=False`` takes columns 1 and 2)."""
    return read_edge_list(path, option="--prior", what="prior network",
                          remedy="name the columns source,target (or Gene1,Gene2 / TF,Target), "
                                 "pass --source-col/--target-col, or --no-header for headerless "
                                 "files like TRRUST",
                          source_col=source_col, target_col=target_col, header=header)


def read_gene_list(path: str | os.PathLike[str]) -> list[str]:
    """Symbols of a gene-list file: one per line (first field), blank and ``#`` lines skipped."""
    path = Path(path)
    try:
        lines = path.read_text().splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise AtlasgrnError(f"cannot read the gene list ({exc})", path=str(path), key="--genes",
                            remedy="give a text file with one gene symbol per line") from None
    genes = [ln.replace(",", "\t").split("\t")[0].strip() for ln in lines]
    genes = list(dict.fromkeys(g for g in genes if g and not g.startswith("#")))
    if not genes:
        raise AtlasgrnError("the gene list is empty", path=str(path), key="--genes",
                            remedy="one gene symbol per line")
    return genes


@dataclass
class PriorTraining:
    translator: Translator
    n_pairs: int
    info: dict[str, Any]


def train_from_prior(model: GeneModel, prior: str | os.PathLike[str],
                     genes: str | os.PathLike[str], *, kinds: Sequence[str] = DEFAULT_KINDS,
                     config: TranslatorConfig | None = None,
                     spec_options: dict[str, Any] | None = None,
                     cache_dir: str | os.PathLike[str] | None = None,
                     drop_unknown: bool = False, source_col: str | None = None,
                     target_col: str | None = None, header: bool = True,
                     model_path: str | None = None,
                     expression: Expression | None = None,
                     fused: Mapping[str, Sequence[str]] | None = None,
                     select: str = "ens") -> PriorTraining:
    """Train a translator on a prior's edges over a gene universe; provenance filled in.

    ``spec_options`` are :class:`FeatureSpec` fields (``context_len``, ``source_block``,
    ``background`` ...; None values take the defaults); the resulting spec is the translator's
    ``feature_spec``. A spec that needs expression (context mode: a profile background) needs
    ``expression``, the mean of each gene in a dataset; genes it does not measure are dropped.
    Rank-statistic kinds need its matrix too. ``fused``: extra models over concatenated kinds
    (name -> kinds). ``select``: the ensemble, ``ens`` (VVP + the better GDT reading, the
    paper's), ``best`` (the one model with the best held-out-source validation AUROC), or the
    name of one trained model.
    """
    config = config or TranslatorConfig()
    spec = FeatureSpec.for_model(model, kinds=tuple(kinds), **(spec_options or {}))
    if spec.stat_kinds and (expression is None or expression.values is None):
        raise AtlasgrnError(f"the rank statistics {list(spec.stat_kinds)} need the expression "
                            "matrix of the training dataset", key="--kinds",
                            remedy="give --expression ATLAS (and --expression-dataset), or "
                                   "drop the rank_* kinds")
    if spec.needs_expression and expression is None:
        raise AtlasgrnError("a gene list has no expression, so the features cannot use a "
                            f"profile background, pert or expression anchors (spec: background="
                            f"{spec.background!r}, anchors={spec.anchors!r})", key="--background",
                            remedy="give --expression ATLAS (and --expression-dataset) to "
                                   "train for context mode, or use a scalar background")
    edges = read_prior(prior, source_col, target_col, header)
    universe = read_gene_list(genes)
    ids = map_genes(model.vocab, universe)
    unknown = [g for g, i in zip(universe, ids.tolist()) if i < 0]
    if unknown and not drop_unknown:
        raise AtlasgrnError(f"{len(unknown)} of {len(universe)} genes are not in the model's "
                            f"vocabulary, e.g. {', '.join(unknown[:3])}", path=str(genes),
                            key=unknown[0], remedy="pass --drop-unknown to train on the known "
                                                   "genes only, or use a matching model")
    # one symbol per token id (e.g. Sox2 and SOX2 both map to SOX2)
    seen: set[int] = set()
    uni: list[str] = []
    for g, i in zip(universe, ids.tolist()):
        if i >= 0 and i not in seen:
            seen.add(i)
            uni.append(g)
    if len(uni) < 3:
        raise AtlasgrnError(f"only {len(uni)} gene(s) of the list are in the model's vocabulary",
                            path=str(genes), key="--genes",
                            remedy="use gene symbols of the model's vocabulary")
    measured = 0
    if expression is not None:
        have = set(expression.genes)
        measured = len(uni)
        uni = [g for g in uni if g in have]
        if len(uni) < 3:
            raise AtlasgrnError(f"only {len(uni)} gene(s) of the list are measured in the "
                                "expression dataset", path=expression.label,
                                key="--expression-dataset",
                                remedy="use the dataset the prior's genes were measured in")
    in_uni = set(uni)
    keep = edges.source.isin(in_uni) & edges.target.isin(in_uni) & (edges.source != edges.target)
    kept = edges[keep]
    sources = tuple(dict.fromkeys(kept.source.tolist()))
    if kept.empty or len(sources) < 2:
        raise AtlasgrnError(f"{len(kept)} prior edge(s) and {len(sources)} regulator(s) lie in "
                            "the gene universe; need edges from at least 2 regulators",
                            path=str(prior), key="source",
                            remedy="use a gene list that covers the prior's genes")
    ns = NetworkSet(network=Path(prior).name, dataset="prior", size=len(uni), genes=tuple(uni),
                    tfs=sources, sources=kept.source.to_numpy(str),
                    targets=kept.target.to_numpy(str), folder=Path(prior).parent)
    tp = training_pairs(ns, config.seed)
    stats = CacheStats()
    if expression is not None:
        mean_of = dict(zip(expression.genes, expression.means))
        gene_universe = build_universe(model.vocab, uni, spec, label="--genes",
                                       means=[mean_of[g] for g in uni],
                                       value_kind=expression.value_kind)
    else:
        gene_universe = build_universe(model.vocab, uni, spec, label="--genes")
    model_kinds = [k for k in kinds if k in MODEL_KINDS]
    table = compute_table(model, spec, gene_universe, sources, model_kinds,
                          pairs=(tp.sources.tolist(), tp.targets.tolist()),
                          cache_dir=cache_dir, stats=stats)
    feats, ok = table.gather(tp.sources.tolist(), tp.targets.tolist(), model_kinds)
    if spec.stat_kinds:
        assert expression is not None and expression.values is not None
        feats.update(_stat_rows(expression, uni, sources, spec.stat_kinds, tp))
    labels = tp.labels[ok]
    if len(np.unique(labels)) < 2:
        raise AtlasgrnError("the training pairs hold only one class", path=str(prior),
                            key="source", remedy="the prior needs non-targets for its regulators "
                                                 "in the gene universe")
    with torch_threads(1):
        tr = train_translator({k: v[ok] for k, v in feats.items()}, labels, tp.sources[ok],
                              config, fused=fused,
                              per_kind=[k for k in kinds if k != "attn"] or None)
    gdts = [k for k in ("gdt_uniform", "gdt_source") if k in tr.kinds]
    best = max(gdts, key=lambda k: tr.kinds[k].metrics.get("val_auroc") or 0.0) if gdts else None
    candidates = {k: m.metrics.get("val_auroc") for k, m in tr.kinds.items()}
    unseen: dict[str, float | None] = {}
    if select == "best":
        unseen = unseen_gene_auroc({k: v[ok] for k, v in feats.items()}, labels,
                                   tp.sources[ok], tp.targets[ok], config, fused=fused,
                                   per_kind=[k for k in kinds if k != "attn"] or None)
        record_selection(tr, unseen)
    if select != "ens":
        # keep only the chosen model, and a spec of the kinds it reads: the job then computes
        # exactly those (and serves universal mode when it needs no expression)
        chosen = (tr.best_validated(metric=SELECTION_METRIC) if select == "best"
                  else select)
        if chosen not in tr.kinds:
            raise AtlasgrnError(f"--select {select}: no model of that name was trained",
                                key="--select", remedy="use ens, best or one of "
                                + ", ".join(tr.kinds))
        tr.kinds = {chosen: tr.kinds[chosen]}
        ens: tuple[str, ...] = (chosen,)
        reads = tr.input_kinds(ens)
        spec = dataclasses.replace(spec, kinds=tuple(k for k in spec.kinds if k in reads))
    else:
        ens = tuple(k for k in ("vvp", best) if k and k in tr.kinds) or tuple(tr.kinds)
    tr.ensemble_kinds = ens
    tr.feature_spec = spec
    # the ensemble's precision/recall on the held-out sources, for choosing a threshold
    _, val = split_by_group(tp.sources[ok], config.val_fraction, config.seed)
    guidance = threshold_guidance(labels[val], tr.score(
        {k: feats[k][ok][val] for k in tr.input_kinds(ens)}))
    import atlasgrn

    info = {
        "prior": {"path": str(prior), "sha256": file_sha256(prior), "edges_read": len(edges),
                  "edges_in_universe": int(len(kept)), "regulators": len(sources)},
        "genes": {"path": str(genes), "sha256": file_sha256(genes), "listed": len(universe),
                  "unknown_dropped": len(unknown), "universe": len(uni)},
        "expression": (None if expression is None else
                       {"source": expression.label, "value_kind": expression.value_kind,
                        "unmeasured_dropped": measured - len(uni)}),
        "model": {"path": model_path or "bundled default", "sha256": spec.model_sha256,
                  "provenance_origin": (model.config.provenance or {}).get("origin"),
                  "seen_datasets": [d.get("name") for d in
                                    (model.config.provenance or {}).get("datasets", [])
                                    if isinstance(d, dict)]},
        "labels": {"pairs": int(ok.sum()), "positives": int(labels.sum()),
                   "uncovered_pairs": int((~ok).sum()),
                   "negatives": "one per edge, same regulator, non-target, g != t "
                                "(bench.splits.training_pairs)",
                   "validation": "held-out source genes"},
        "ensemble": {"kinds": list(ens),
                     "rule": ("the model with the best AUROC on pairs of held-out genes "
                              "(sources and targets both unseen in its training)"
                              if select == "best" else
                              f"the model {select!r}, chosen by name" if select != "ens" else
                              "VVP + the GDT reading with the better held-out-source "
                              "validation AUROC"),
                     "fused": {k: list(v) for k, v in (fused or {}).items()},
                     "candidates_val_auroc": candidates,
                     "candidates_unseen_gene_auroc": unseen,
                     "validation": guidance},
        "atlasgrn": getattr(atlasgrn, "__version__", "?"),
        "feature_cache": {"hits": len(stats.hits), "computed": len(stats.misses)},
    }
    tr.provenance = {**dict(tr.provenance), **info}
    return PriorTraining(translator=tr, n_pairs=int(ok.sum()), info=info)


def _stat_rows(expression: Expression, universe: Sequence[str], sources: Sequence[str],
               kinds: Sequence[str], tp: Any) -> dict[str, np.ndarray]:
    """Rank-statistic features ``{kind: [N, 1]}`` of the training pairs, ranked among each
    source's candidate targets in the universe (the job's rule: the dataset's genes)."""
    assert expression.values is not None
    cols = {g: i for i, g in enumerate(expression.genes)}
    values = expression.values[:, [cols[g] for g in universe]]
    ranks = rank_statistics(values, list(universe), list(sources), kinds)
    row = {g: i for i, g in enumerate(sources)}
    col = {g: i for i, g in enumerate(universe)}
    r = np.asarray([row[s] for s in tp.sources.tolist()], dtype=np.int64)
    c = np.asarray([col[t] for t in tp.targets.tolist()], dtype=np.int64)
    return {k: v[r, c][:, None] for k, v in ranks.items()}
