"""The generalisation benchmark driver (``atlasgrn bench beeline``).

For every (network type, size) found under the data root (``plan_transfers``): translators are
trained on the training dataset's labels (hESC; Lofgof falls back to hESC STRING) and applied
zero-shot to every other dataset of that type, under protocols A, B, C and M, for several seeds
(a seed fixes the negative sampling of training and test sets and the translator's init).

Every method is turned into a score *matrix* over a test dataset's TFs x genes once, and each
protocol's pairs are looked up in it, so A/B/C/M of one dataset share one computation:

- scFM, no translator: ``pert_origin`` (knockout at the dataset's mean profile; needs the test
  dataset's expression), ``attn_origin`` (attention target -> source on the background cell);
- scFM + translator: ``vvp``, ``gdt_uniform``, ``gdt_source``, ``emb`` (directed, [E_i; E_j]),
  ``emb_sum`` (E_i + E_j), ``pert`` (only when the training dataset has expression: hESC has none
  here, so it is reported as not run); ``ens`` = mean logit of ``vvp`` and the GDT reading with
  the better held-out-source validation AUROC on the *training* data (chosen per seed, recorded);
- ``ens_stats``: late fusion of ``ens`` with within-dataset expression statistics (see
  :func:`ens_stats_matrix` for why it is not a learned fusion);
- non-scFM baselines: ``pearson``, ``spearman``, ``trees``, ``mi`` (test expression), ``degree``
  (training labels), ``target_is_tf``, ``random``.

Pairs naming a gene the model does not know get the method's lowest score (ties at the bottom)
and the share of covered pairs is recorded per dataset. Results are a long table
(:data:`atlasgrn.bench.metrics.RESULT_COLUMNS`); the manifest records settings, coverage, the
model's pre-training datasets (leakage) and timings.
"""

from __future__ import annotations

import logging
import platform
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import rankdata

from ..errors import AtlasgrnError
from ..features import (
    STAT_KINDS,
    CacheStats,
    FeatureSpec,
    FeatureTable,
    build_universe,
    compute_table,
    rank_statistics,
)
from ..models.interface import GeneModel
from ..progress import Progress
from ..translator import Translator, train_translator
from ..translator.threads import torch_threads
from ..translator.train import SELECTION_METRIC, record_selection, unseen_gene_auroc
from .baselines import (
    degree_prior,
    mutual_information_matrix,
    pearson_matrix,
    random_scores,
    spearman_matrix,
    target_is_tf,
    tree_importance_matrix,
)
from .config import (
    ALL_METHODS,
    BEELINE_VALUE_KIND,
    EXPRESSION_METHODS,
    FUSED,
    METHOD_KIND,
    PROTOCOL_METRICS,
    TRANSLATED,
    BenchConfig,
)

#: Model kinds every fused variant may read (pert only where the dataset has expression).
FUSION_MODEL_KINDS = ("vvp", "gdt_uniform", "gdt_source", "attn", "emb_concat", "emb_sum")
from .genelink import NetworkSet, discover, plan_transfers, pretraining_matches
from .metrics import RESULT_COLUMNS, evaluate, pr_curve
from .splits import PairSet, build_protocols, training_pairs

log = logging.getLogger(__name__)

STRICT_SUFFIX = "@strict"


@dataclass
class BenchResult:
    results: pd.DataFrame
    manifest: dict[str, Any]
    curves: list[dict[str, Any]]


# --------------------------------------------------------------------------- data selection
def subsample_tfs(ns: NetworkSet, n: int) -> NetworkSet:
    """The set restricted to ``n`` of its TFs (seeded by the sorted TF list, so every network
    type of a dataset gets the same TFs) and their edges: a cheaper, smaller benchmark."""
    tfs = sorted(ns.tfs)
    if n >= len(tfs):
        return ns
    rng = np.random.default_rng(0)
    chosen = set(rng.choice(np.asarray(tfs), size=n, replace=False).tolist())
    keep = np.isin(ns.sources, np.asarray(sorted(chosen)))
    return NetworkSet(network=ns.network, dataset=ns.dataset, size=ns.size, genes=ns.genes,
                      tfs=tuple(t for t in ns.tfs if t in chosen), sources=ns.sources[keep],
                      targets=ns.targets[keep], folder=ns.folder,
                      expression_path=ns.expression_path)


def select_sets(cfg: BenchConfig) -> list[NetworkSet]:
    sets = discover(cfg.data)
    if cfg.networks:
        known = sorted({s.network for s in sets})
        bad = [n for n in cfg.networks if n not in known]
        if bad:
            raise AtlasgrnError(f"network type {bad[0]!r} not found under the data root",
                                path=str(cfg.data), key="--network",
                                remedy=f"choose from {known}")
        keep = set(cfg.networks)
        # Lofgof trains on STRING: keep the training dataset's fallback network too.
        sets = [s for s in sets if s.network in keep
                or (s.dataset == cfg.train_dataset and s.network == "STRING")]
    if cfg.size is not None:
        sets = [s for s in sets if s.size == cfg.size]
    if cfg.datasets:
        sets = [s for s in sets if s.dataset in cfg.datasets or s.dataset == cfg.train_dataset]
    if not sets:
        raise AtlasgrnError("no network set matches the selection", path=str(cfg.data),
                            key="--size/--network", remedy="check the filters against the data")
    if cfg.tf_sample:
        sets = [subsample_tfs(s, cfg.tf_sample) for s in sets]
    return sets


# --------------------------------------------------------------------------- score matrices
@dataclass
class Matrix:
    """A method's scores over a dataset's regulators x genes; absent pairs get ``fallback``."""

    regulators: tuple[str, ...]
    genes: tuple[str, ...]
    values: np.ndarray
    fallback: float

    def score(self, pairs: PairSet) -> np.ndarray:
        rows = {g: i for i, g in enumerate(self.regulators)}
        cols = {g: i for i, g in enumerate(self.genes)}
        r = np.fromiter((rows.get(s, -1) for s in pairs.sources.tolist()), np.int64, len(pairs))
        c = np.fromiter((cols.get(t, -1) for t in pairs.targets.tolist()), np.int64, len(pairs))
        ok = (r >= 0) & (c >= 0)
        out = np.full(len(pairs), self.fallback, dtype=np.float64)
        out[ok] = self.values[r[ok], c[ok]]
        bad = ~np.isfinite(out)
        if bad.any():  # a cell the run did not compute (needed-pairs tables): lowest score
            log.warning("%d pair(s) fall on uncomputed cells; scored %s", int(bad.sum()),
                        self.fallback)
            out[bad] = self.fallback
        return out

    def covered(self, pairs: PairSet) -> float:
        rows, cols = set(self.regulators), set(self.genes)
        ok = [s in rows and t in cols for s, t in zip(pairs.sources.tolist(),
                                                       pairs.targets.tolist())]
        return float(np.mean(ok)) if ok else float("nan")


def _matrix(table: FeatureTable, values: np.ndarray) -> Matrix:
    values = np.asarray(values, dtype=np.float64)
    finite = values[np.isfinite(values)]
    low = float(finite.min()) - 1.0 if finite.size else 0.0
    return Matrix(table.sources, table.targets, values, low)


@dataclass(frozen=True)
class StatFeatures:
    """A dataset's rank-statistic features (:func:`atlasgrn.features.rank_statistics`) over its
    regulators x genes, looked up by symbol."""

    regulators: tuple[str, ...]
    genes: tuple[str, ...]
    values: Mapping[str, np.ndarray]

    def positions(self, sources: Sequence[str], targets: Sequence[str]
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        rows = {g: i for i, g in enumerate(self.regulators)}
        cols = {g: i for i, g in enumerate(self.genes)}
        r = np.fromiter((rows.get(x, -1) for x in sources), np.int64, len(sources))
        c = np.fromiter((cols.get(x, -1) for x in targets), np.int64, len(targets))
        return r, c, (r >= 0) & (c >= 0)

    def gather(self, sources: Sequence[str], targets: Sequence[str]
               ) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """``({kind: [N, 1]}, covered[N])``; uncovered pairs get 0."""
        r, c, ok = self.positions(sources, targets)
        rr, cc = np.where(ok, r, 0), np.where(ok, c, 0)
        return ({k: np.where(ok, v[rr, cc], 0.0)[:, None] for k, v in self.values.items()},
                ok)

    def aligned(self, table: FeatureTable) -> dict[str, np.ndarray]:
        """Each kind as ``[S, T]`` over the table's sources x targets (NaN where uncovered)."""
        r, _, _ = self.positions(table.sources, [self.genes[0]] * len(table.sources))
        _, c, _ = self.positions([self.regulators[0]] * len(table.targets), table.targets)
        out = {}
        for k, v in self.values.items():
            m = np.full((len(r), len(c)), np.nan)
            m[np.ix_(r >= 0, c >= 0)] = v[np.ix_(r[r >= 0], c[c >= 0])]
            out[k] = m
        return out


def translator_matrices(translator: Translator, table: FeatureTable, kinds: Sequence[str],
                        chunk_pairs: int = 200_000,
                        extra: Mapping[str, np.ndarray] | None = None) -> dict[str, np.ndarray]:
    """Logits ``[S, T]`` of each translator model over the table's computed cells (NaN
    elsewhere), in row chunks so memory stays small. ``extra``: kinds the table does not hold
    (the rank statistics), as ``[S, T]`` matrices aligned with it."""
    n_s, n_t = len(table.sources), len(table.targets)
    mask = table.computed_mask()
    out = {k: np.full((n_s, n_t), np.nan, dtype=np.float64) for k in kinds}
    step = max(1, chunk_pairs // max(n_t, 1))
    for start in range(0, n_s, step):
        sub = np.zeros_like(mask)
        sub[start:start + step] = mask[start:start + step]
        r, c = np.nonzero(sub)
        if not len(r):
            continue
        for k in kinds:
            model = translator.kinds[k]
            rows = {i: (extra[i][r, c][:, None] if extra and i in extra else table.rows(i, r, c))
                    for i in model.input_kinds}
            out[k][r, c] = model.logits(model.features_of(rows))
    return out


def percentile(values: np.ndarray) -> np.ndarray:
    """Within-matrix percentile ranks in (0, 1], ties averaged: dimension- and scale-free.
    Non-finite entries (not computed) get 0."""
    flat = np.asarray(values, dtype=np.float64).ravel()
    ok = np.isfinite(flat)
    out = np.zeros(len(flat))
    if ok.any():
        out[ok] = rankdata(flat[ok]) / ok.sum()
    return out.reshape(np.shape(values))


def ens_stats_matrix(ens: Matrix, stats: Sequence[Matrix]) -> Matrix:
    """Late fusion: ``0.5 * pct(ens) + 0.5 * mean_k pct(stat_k)`` over the dataset's candidates.

    Why not a learned fusion: the training dataset (hESC) has no expression in GENELink's copy,
    so no weight for an expression statistic can be fitted on its labels; the only hESC
    expression here (BEELINE's SCODE copy) covers 36 of its 410 TFs and no non-TF target, and its
    pairs are the translator's own training pairs (in-sample logits would inflate the scFM
    weight). Fitting on a test dataset would leak. So the weights are fixed a priori: half scFM,
    half the mean of the statistics, all as within-dataset percentiles (no scale to transfer).
    Pairs the model does not cover get scFM percentile 0.
    """
    regs, genes = stats[0].regulators, stats[0].genes
    probe = PairSet(sources=np.repeat(np.asarray(regs, dtype=str), len(genes)),
                    targets=np.tile(np.asarray(genes, dtype=str), len(regs)),
                    labels=np.zeros(len(regs) * len(genes), dtype=np.int8), protocol="C")
    e = ens.score(probe).reshape(len(regs), len(genes))
    covered = np.isin(probe.sources, np.asarray(ens.regulators, dtype=str)) & np.isin(
        probe.targets, np.asarray(ens.genes, dtype=str))
    pe = percentile(e) * covered.reshape(e.shape)
    ps = np.mean([percentile(s.score(probe).reshape(e.shape)) for s in stats], axis=0)
    return Matrix(regs, genes, 0.5 * pe + 0.5 * ps, 0.0)


# --------------------------------------------------------------------------- the driver
class _Run:
    def __init__(self, cfg: BenchConfig, progress: Callable[[str], None]) -> None:
        import torch

        from ..models import load_model

        self.cfg = cfg
        self.say = progress
        torch.set_num_threads(max(1, cfg.jobs))
        device = cfg.device
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        self.device = device
        self.model = load_model(cfg.model, device=device)
        self.strict_model = (load_model(cfg.strict_model, device=device)
                             if cfg.strict_model else None)
        kinds = tuple(self.kinds_needed(True)) or ("vvp",)  # baselines-only runs probe nothing
        self.specs = {0: FeatureSpec.for_model(self.model, kinds=kinds, **cfg.features)}
        if self.strict_model is not None:
            self.specs[1] = FeatureSpec.for_model(self.strict_model, kinds=kinds,
                                                  **cfg.features)
        self.stats = CacheStats()
        self.tables: dict[tuple[int, str, tuple[str, ...]], FeatureTable] = {}
        self.expr_cache: dict[tuple[str, int], Any] = {}
        self.base_cache: dict[tuple[str, int, tuple[str, ...]], dict[str, Matrix]] = {}
        self.stat_cache: dict[tuple[str, int, tuple[str, ...]], StatFeatures | None] = {}
        self.trained: dict[tuple[int, str, int], tuple[Translator, str]] = {}
        self.coverage: dict[str, float] = {}
        self.timings: dict[str, float] = {}
        self.choices: list[dict[str, Any]] = []
        self.notes: list[str] = []
        self.sets: list[NetworkSet] = []

    # ---- features and expression
    def kinds_needed(self, has_expr: bool) -> list[str]:
        m = set(self.cfg.methods)
        kinds = [METHOD_KIND[x] for x in TRANSLATED if x in m and x != "pert"]
        if m & {"ens", "ens_stats"}:  # VVP + the GDT readings asked for (both if neither)
            kinds += ["vvp"] + ([k for k in ("gdt_uniform", "gdt_source") if k in m]
                                or ["gdt_uniform", "gdt_source"])
        if "attn_origin" in m:
            kinds.append("attn")
        if has_expr and m & {"pert", "pert_origin"}:
            kinds.append("pert")
        if m & (set(FUSED) | {"default"}):
            kinds += list(FUSION_MODEL_KINDS) + (["pert"] if has_expr else [])
        return list(dict.fromkeys(kinds))

    def wants_fusion(self) -> bool:
        return bool(set(self.cfg.methods) & (set(FUSED) | {"default"}))

    def stat_features(self, ns: NetworkSet) -> StatFeatures | None:
        """The set's rank statistics over its TFs x genes (None without expression)."""
        key = (ns.dataset, ns.size, tuple(sorted(ns.tfs)))
        if key not in self.stat_cache:
            expr = self.expression(ns)
            out = None
            if expr is not None:
                t0 = time.perf_counter()
                genes = tuple(expr.genes)
                regs = tuple(t for t in ns.tfs if t in set(genes))
                out = StatFeatures(regs, genes, rank_statistics(expr.values, genes, regs,
                                                                STAT_KINDS))
                self.timings[f"rank_statistics/{ns.dataset}/{ns.size}"] = (
                    time.perf_counter() - t0)
            self.stat_cache[key] = out
        return self.stat_cache[key]

    def expression(self, ns: NetworkSet):
        key = (ns.dataset, ns.size)
        if key not in self.expr_cache:
            self.expr_cache[key] = ns.load_expression() if ns.has_expression else None
        return self.expr_cache[key]

    def universe(self, model: GeneModel, ns: NetworkSet, which: int):
        """The set's genes for the spec; with expression, its mean profile (the job's rule)."""
        expr = self.expression(ns)
        means = None if expr is None else np.asarray(expr.values, np.float64).mean(axis=0)
        return build_universe(model.vocab, list(ns.genes), self.specs[which], means=means,
                              value_kind=BEELINE_VALUE_KIND, label=ns.key)

    def table(self, model: GeneModel, ns: NetworkSet, which: int,
              training: bool = False) -> FeatureTable:
        """Features of a test set (every TF x gene) or a training set (its training pairs over
        all seeds only: the blocks those pairs need, far fewer than TF x gene)."""
        key = (which, ns.key if training else f"{ns.dataset}/{ns.size}", tuple(sorted(ns.tfs)))
        if key not in self.tables:
            t0 = time.perf_counter()
            pairs = None
            if training:
                sets = [training_pairs(ns, seed) for seed in range(self.cfg.seeds)]
            elif "C" not in self.cfg.protocols:
                # without C only the protocols' pairs are scored: compute just those blocks
                sets = [ps for other in self.tests_of(ns) for seed in range(self.cfg.seeds)
                        for ps in build_protocols(other, training_pairs(other, seed), seed,
                                                  [p for p in self.cfg.protocols
                                                   if p in ("A", "M")] or ["A"]).values()]
            else:
                sets = []
            if sets:
                pairs = (np.concatenate([p.sources for p in sets]).tolist(),
                         np.concatenate([p.targets for p in sets]).tolist())
            self.say(f"features {ns.key if training else ns.dataset + ' TFs+' + str(ns.size)} "
                     f"({len(ns.tfs)} TFs x {len(ns.genes)} genes"
                     f"{', training pairs only' if training else ''})"
                     f"{' [strict model]' if which else ''}")
            self.tables[key] = compute_table(
                model, self.specs[which], self.universe(model, ns, which), ns.tfs,
                self.kinds_needed(ns.has_expression), pairs=pairs,
                cache_dir=self.cfg.cache_dir, stats=self.stats, progress=self.say)
            label = ns.key if training else f"{ns.dataset}/{ns.size}"
            self.timings[f"features/{label}{'/strict' if which else ''}"] = (
                time.perf_counter() - t0)
        return self.tables[key]

    def tests_of(self, ns: NetworkSet) -> list[NetworkSet]:
        """Every selected network set of this (dataset, size): their pairs share one table."""
        return [s for s in self.sets if s.dataset == ns.dataset and s.size == ns.size
                and s.dataset != self.cfg.train_dataset]

    # ---- baselines
    def expression_matrices(self, ns: NetworkSet) -> dict[str, Matrix]:
        key = (ns.dataset, ns.size, tuple(sorted(ns.tfs)))
        if key in self.base_cache:
            return self.base_cache[key]
        expr = self.expression(ns)
        wanted = [m for m in EXPRESSION_METHODS if m in self.cfg.methods
                  or ("ens_stats" in self.cfg.methods)]
        out: dict[str, Matrix] = {}
        if expr is not None:
            builders = {"pearson": lambda: pearson_matrix(expr, ns.tfs),
                        "spearman": lambda: spearman_matrix(expr, ns.tfs),
                        "mi": lambda: mutual_information_matrix(expr, ns.tfs),
                        "trees": lambda: tree_importance_matrix(
                            expr, ns.tfs, n_trees=self.cfg.tree_trees, seed=0,
                            workers=max(1, self.cfg.jobs))}
            for name in wanted:
                t0 = time.perf_counter()
                sm = builders[name]()
                out[name] = Matrix(sm.regulators, sm.genes, sm.values, sm.fallback)
                self.timings[f"baseline/{name}/{ns.dataset}/{ns.size}"] = (
                    time.perf_counter() - t0)
        self.base_cache[key] = out
        return out

    # ---- translators
    def translator(self, model: GeneModel, train: NetworkSet, seed: int, which: int
                   ) -> tuple[Translator, str, PairSet]:
        tp = training_pairs(train, seed)
        key = (which, train.key, seed)
        if key not in self.trained:
            table = self.table(model, train, which, training=True)
            needed = self.kinds_needed(train.has_expression)
            singles = [k for k in needed if k not in ("attn",)]
            feats, ok = table.gather(tp.sources.tolist(), tp.targets.tolist(), needed)
            stats = self.stat_features(train) if self.wants_fusion() else None
            if stats is not None:
                stat_rows, stat_ok = stats.gather(tp.sources.tolist(), tp.targets.tolist())
                feats.update(stat_rows)
                ok = ok & stat_ok
            fused = {name: kinds for name, (kinds, _) in FUSED.items()
                     if self.wants_fusion() and all(k in feats for k in kinds)}
            self.coverage[f"train/{train.key}"] = float(ok.mean())
            labels, groups = tp.labels[ok], tp.sources[ok]
            if len(np.unique(labels)) < 2:
                raise AtlasgrnError("the training pairs the model covers are all of one class",
                                    path=str(train.folder), key="labels",
                                    remedy="use a model whose vocabulary covers the training "
                                           "dataset's genes")
            t0 = time.perf_counter()
            cfg = replace(self.cfg.translator, seed=seed)
            with torch_threads(1):
                used = {k: v[ok] for k, v in feats.items()}
                tr = train_translator(used, labels, groups, cfg,
                                      provenance={"train": train.key, "seed": seed},
                                      fused=fused, per_kind=singles)
                if self.wants_fusion():
                    record_selection(tr, unseen_gene_auroc(used, labels, groups, tp.targets[ok],
                                                           cfg, fused=fused, per_kind=singles))
            tr.feature_spec = self.specs[which]
            gdts = [k for k in ("gdt_uniform", "gdt_source") if k in tr.kinds]
            best = max(gdts, key=lambda k: tr.kinds[k].metrics.get("val_auroc") or 0.0) \
                if gdts else ""
            self.choices.append({"train": train.key, "seed": seed, "ens_gdt": best,
                                 "default": select_default(tr, with_expression=True),
                                 "default_without_expression": select_default(
                                     tr, with_expression=False),
                                 "model": "strict" if which else "main",
                                 **{f"val_auroc/{k}": m.metrics.get("val_auroc")
                                    for k, m in tr.kinds.items()},
                                 **{f"{SELECTION_METRIC}/{k}": m.metrics.get(SELECTION_METRIC)
                                    for k, m in tr.kinds.items()}})
            self.timings[f"translator/{train.key}/seed{seed}{'/strict' if which else ''}"] = (
                time.perf_counter() - t0)
            self.trained[key] = (tr, best)
        tr, best = self.trained[key]
        return tr, best, tp

    # ---- scoring one test set
    def scfm_matrices(self, model: GeneModel, test: NetworkSet, tr: Translator, best: str,
                      which: int) -> dict[str, Matrix]:
        table = self.table(model, test, which)
        m = set(self.cfg.methods)
        out: dict[str, Matrix] = {}
        if "pert_origin" in m and "pert" in table.tables:
            out["pert_origin"] = _matrix(table, table.tables["pert"][..., 0])
        if "attn_origin" in m and "attn" in table.tables:
            out["attn_origin"] = _matrix(table, table.tables["attn"][..., 0])
        kinds = {meth: METHOD_KIND[meth] for meth in TRANSLATED
                 if METHOD_KIND[meth] in tr.kinds and METHOD_KIND[meth] in table.kinds}
        need_ens = bool(m & {"ens", "ens_stats"}) and best and "vvp" in tr.kinds
        wanted = {meth: k for meth, k in kinds.items()
                  if meth in m or (need_ens and k in ("vvp", best))}
        with torch_threads(1):
            logits = translator_matrices(tr, table, sorted(set(wanted.values())))
        for meth, k in wanted.items():
            if meth in m:
                out[meth] = _matrix(table, logits[k])
        if need_ens:
            out["ens"] = _matrix(table, (logits["vvp"] + logits[best]) / 2.0)
        if self.wants_fusion():
            out.update(self.fused_matrices(test, tr, table))
        return out

    def fused_matrices(self, test: NetworkSet, tr: Translator, table: FeatureTable
                       ) -> dict[str, Matrix]:
        """The fused variants the test set can serve, and ``default``: the variant selected on
        the training dataset's held-out sources (the best one that needs no expression when
        the test set has none)."""
        m = set(self.cfg.methods)
        stats = self.stat_features(test)
        extra = stats.aligned(table) if stats is not None else None
        have = set(table.kinds) | set(extra or ())
        servable = [k for k in tr.kinds if all(i in have for i in tr.kinds[k].input_kinds)]
        chosen = select_default(tr, with_expression=stats is not None)
        wanted = [k for k in servable if k in FUSED and k in m]
        if "default" in m and chosen in servable:
            wanted.append(chosen)
        with torch_threads(1):
            logits = translator_matrices(tr, table, sorted(set(wanted)), extra=extra)
        out = {k: _matrix(table, logits[k]) for k in wanted if k in FUSED and k in m}
        if "default" in m and chosen in logits:
            out["default"] = _matrix(table, logits[chosen])
        return out


def select_default(tr: Translator, with_expression: bool) -> str:
    """The translator model with the best AUROC on pairs of held-out training genes
    (:data:`~atlasgrn.translator.train.SELECTION_METRIC`), among those a dataset can serve
    (``with_expression`` False: none that reads pert or a rank statistic)."""
    return tr.best_validated(() if with_expression else ("pert", *STAT_KINDS),
                             metric=SELECTION_METRIC)


def _rows(method: str, pairs: PairSet, scores: np.ndarray, seed: int) -> list[dict[str, Any]]:
    values = evaluate(pairs.labels, scores)
    return [{"method": method, "network": pairs.network, "size": pairs.size,
             "dataset": pairs.dataset, "protocol": pairs.protocol, "metric": metric,
             "seed": seed, "value": values[metric]}
            for metric in PROTOCOL_METRICS[pairs.protocol]]


def run_benchmark(cfg: BenchConfig, progress: Callable[[str], None] | None = None
                  ) -> BenchResult:
    """Run every transfer of the data root; return results, manifest and PR curves."""
    say = progress or (lambda msg: log.info(msg))
    unknown = [m for m in cfg.methods if m not in ALL_METHODS]
    if unknown:
        raise AtlasgrnError(f"unknown method(s) {unknown}", key="--methods",
                            remedy=f"choose from {list(ALL_METHODS)}")
    if cfg.seeds < 1:
        raise AtlasgrnError("--seeds must be >= 1", key="--seeds", remedy="e.g. 3")
    if bool(cfg.strict_model) != bool(cfg.strict_dataset):
        raise AtlasgrnError("--strict-model and --strict-dataset go together",
                            key="--strict-dataset", remedy="pass both or neither")
    t_start = time.perf_counter()
    sets = select_sets(cfg)
    transfers = plan_transfers(sets, train_dataset=cfg.train_dataset)
    if not transfers:
        raise AtlasgrnError(f"no network type has a '{cfg.train_dataset}' training set and a "
                            "test dataset", path=str(cfg.data), key=cfg.train_dataset,
                            remedy="the root needs networks/<type>/hESC/TFs+<n>/ and at least "
                                   "one other dataset of that type")
    run = _Run(cfg, say)
    run.sets = sets
    rows: list[dict[str, Any]] = []
    curves: list[dict[str, Any]] = []
    models = [(0, run.model, "")]
    if run.strict_model is not None:
        models.append((1, run.strict_model, STRICT_SUFFIX))
    units = sum(len([t for t in transfer.tests if not which or t.dataset == cfg.strict_dataset])
                for transfer in transfers for _seed in range(cfg.seeds) for which, _, _ in models)
    shown = Progress(units, label="bench", unit="test sets", log=say)
    for transfer in transfers:
        for seed in range(cfg.seeds):
            for which, model, suffix in models:
                tests = [t for t in transfer.tests
                         if not which or t.dataset == cfg.strict_dataset]
                if not tests:
                    continue
                tr, best, tp = run.translator(model, transfer.train, seed, which)
                for test in tests:
                    say(f"{test.key} seed {seed}{suffix}")
                    pairsets = build_protocols(test, tp, seed, cfg.protocols)
                    mats = run.scfm_matrices(model, test, tr, best, which)
                    if not which:
                        stats = run.expression_matrices(test)
                        for name in EXPRESSION_METHODS:
                            if name in stats and name in cfg.methods:
                                mats[name] = stats[name]
                        if "ens_stats" in cfg.methods and "ens" in mats and stats:
                            mats["ens_stats"] = ens_stats_matrix(
                                mats["ens"], [stats[k] for k in EXPRESSION_METHODS
                                              if k in stats])
                    if "vvp" in mats:
                        run.coverage[f"test/{test.key}{suffix}"] = mats["vvp"].covered(
                            pairsets[next(iter(pairsets))])
                    for proto, ps in pairsets.items():
                        scorers: dict[str, np.ndarray] = {
                            meth + suffix: mat.score(ps) for meth, mat in mats.items()}
                        if not which:
                            if "degree" in cfg.methods:
                                scorers["degree"] = degree_prior(ps, tp)
                            if "target_is_tf" in cfg.methods:
                                scorers["target_is_tf"] = target_is_tf(ps, test.tfs)
                            if "random" in cfg.methods:
                                scorers["random"] = random_scores(ps, seed)
                        for meth, scores in scorers.items():
                            rows.extend(_rows(meth, ps, scores, seed))
                            if proto == "A" and seed == 0:
                                p, r, _ = pr_curve(ps.labels, scores)
                                curves.append({"method": meth, "network": ps.network,
                                               "dataset": ps.dataset, "size": ps.size,
                                               "precision": p, "recall": r})
                    # protocol sizes, for the report
                    for proto, ps in pairsets.items():
                        run.coverage.setdefault(f"pairs/{test.key}/{proto}", float(len(ps)))
                    shown.update()
    frame = pd.DataFrame(rows, columns=list(RESULT_COLUMNS))
    frame["size"] = frame["size"].astype(np.int64)
    frame["seed"] = frame["seed"].astype(np.int64)
    manifest = _manifest(cfg, run, sets, transfers, time.perf_counter() - t_start)
    return BenchResult(results=frame, manifest=manifest, curves=curves)


def _seen_datasets(model: GeneModel) -> list[str]:
    prov = model.config.provenance or {}
    return [str(d.get("name")) for d in prov.get("datasets", []) if isinstance(d, Mapping)]


def _manifest(cfg: BenchConfig, run: _Run, sets: Sequence[NetworkSet], transfers: Sequence,
              seconds: float) -> dict[str, Any]:
    import torch

    import atlasgrn

    prov = run.model.config.provenance or {}
    steps = (prov.get("training", {}) or {}).get("train_config", {}).get("steps")
    info: dict[str, Any] = {
        "config": {**{k: (str(v) if isinstance(v, Path) else v)
                      for k, v in asdict(cfg).items() if k not in ("features", "translator")},
                   "features": dict(cfg.features),
                   "translator": {**asdict(cfg.translator),
                                  "extra": dict(cfg.translator.extra)}},
        "feature_spec": run.specs[0].to_json(),
        "model": {"path": cfg.model or "bundled default", "digest": run.specs[0].model_sha256,
                  "seen_datasets": _seen_datasets(run.model), "steps": steps,
                  "origin": prov.get("origin"), "describe": run.model.describe()
                  if hasattr(run.model, "describe") else {}},
        "transfers": [{"train": t.train.key, "tests": [s.key for s in t.tests]}
                      for t in transfers],
        "datasets": sorted({(s.dataset, s.size, s.has_expression) for s in sets}),
        "coverage": run.coverage, "ens_choices": run.choices, "timings": run.timings,
        "cache": {"hits": run.stats.hits, "misses": run.stats.misses,
                  "seconds": run.stats.seconds},
        "seconds": seconds, "notes": run.notes, "device": run.device,
        "versions": {"atlasgrn": getattr(atlasgrn, "__version__", "?"),
                     "python": platform.python_version(), "torch": torch.__version__,
                     "numpy": np.__version__, "pandas": pd.__version__},
    }
    if run.strict_model is not None:
        sprov = run.strict_model.config.provenance or {}
        info["strict"] = {"path": cfg.strict_model, "dataset": cfg.strict_dataset,
                          "digest": run.specs[1].model_sha256,
                          "seen_datasets": _seen_datasets(run.strict_model),
                          "excluded": sprov.get("excluded_datasets", [])}
        if pretraining_matches(str(cfg.strict_dataset), info["strict"]["seen_datasets"]):
            run.notes.append(f"WARNING: the strict model's provenance lists "
                             f"{cfg.strict_dataset} among its pre-training datasets")
    return info
