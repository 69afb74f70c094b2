"""Labelled gene-pair sets: the training set and the test protocols A, B, C and M.

- **A** (the paper's): every edge of the test network plus one negative per positive, drawn for
  the same TF among its non-targets in the test gene set. Balanced, so random AUPRC = 0.5.
- **B** (unseen genes): A restricted to pairs whose two genes occur in no training pair. It asks
  whether a method generalises to genes it never saw labelled, not to memorised gene identities.
- **C** (native density): every TF x gene candidate (g != t) with its label; random AUPRC = edge
  density, so AUPRC ratio and EPR are meaningful here.
- **M** (matched negatives): as A, but each negative also matches its positive on whether the
  target is a TF and on the target's in-degree bin in the test network. Gene-identity shortcuts
  ("targets are TFs", "hubs are targets") then score ≈ 0.5; only pair-specific signal remains.

Every builder is deterministic under its seed: candidate lists follow the gene order of the
network set and all randomness comes from one ``numpy.random.default_rng(seed)``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from .config import PROTOCOLS
from .genelink import NetworkSet


@dataclass(frozen=True, eq=False)
class PairSet:
    """Labelled (source -> target) gene pairs of one protocol on one network set.

    ``groups`` (training sets only) holds the source gene of each pair, for early stopping on
    held-out regulators. ``info`` holds counts a report should show (shortfalls, widenings, ...).
    """

    sources: np.ndarray
    targets: np.ndarray
    labels: np.ndarray
    protocol: str
    network: str = ""
    dataset: str = ""
    size: int = 0
    seed: int | None = None
    groups: np.ndarray | None = None
    info: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "sources", np.asarray(self.sources, dtype=str))
        object.__setattr__(self, "targets", np.asarray(self.targets, dtype=str))
        object.__setattr__(self, "labels", np.asarray(self.labels, dtype=np.int8))
        n = len(self.sources)
        if len(self.targets) != n or len(self.labels) != n:
            raise ValueError(f"sources/targets/labels lengths differ: {n}, {len(self.targets)}, "
                             f"{len(self.labels)}")
        if self.groups is not None and len(self.groups) != n:
            raise ValueError(f"groups has {len(self.groups)} entries for {n} pairs")
        if n and not np.isin(self.labels, (0, 1)).all():
            raise ValueError("labels must be 0 or 1")

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def n_positive(self) -> int:
        return int(self.labels.sum())

    @property
    def n_negative(self) -> int:
        return len(self) - self.n_positive

    @property
    def positive_rate(self) -> float:
        return self.n_positive / len(self) if len(self) else float("nan")

    def genes(self) -> set[str]:
        """Every gene named by a pair, as source or target."""
        return set(self.sources.tolist()) | set(self.targets.tolist())

    def pairs(self) -> set[tuple[str, str]]:
        return set(zip(self.sources.tolist(), self.targets.tolist()))

    def subset(self, mask: np.ndarray, protocol: str | None = None,
               info: Mapping[str, Any] | None = None) -> PairSet:
        """The pairs where ``mask`` is true (same metadata unless overridden)."""
        mask = np.asarray(mask, dtype=bool)
        return replace(self, sources=self.sources[mask], targets=self.targets[mask],
                       labels=self.labels[mask],
                       groups=None if self.groups is None else np.asarray(self.groups)[mask],
                       protocol=protocol or self.protocol,
                       info=dict(self.info if info is None else info))


def _adjacency(ns: NetworkSet) -> np.ndarray:
    """genes x genes boolean matrix, True where source -> target is an edge."""
    n = len(ns.genes)
    adj = np.zeros((n, n), dtype=bool)
    adj[ns.gene_index(ns.sources), ns.gene_index(ns.targets)] = True
    return adj


def _positive_indices(ns: NetworkSet) -> tuple[np.ndarray, np.ndarray]:
    """Edge endpoints as gene positions, self-loops and duplicates removed, file order kept."""
    src, tgt = ns.gene_index(ns.sources), ns.gene_index(ns.targets)
    keep = src != tgt
    code = src * len(ns.genes) + tgt
    _, first = np.unique(code, return_index=True)
    unique = np.zeros(len(src), dtype=bool)
    unique[first] = True
    keep &= unique
    return src[keep], tgt[keep]


def _balanced_negatives(ns: NetworkSet, src: np.ndarray, rng: np.random.Generator
                        ) -> tuple[np.ndarray, np.ndarray, int]:
    """One negative (t, g) per positive of each TF t: g not a target of t, g != t.

    Drawn without replacement per TF; where a TF has fewer non-targets than targets, all its
    non-targets are used and the shortfall is returned.
    """
    adj = _adjacency(ns)
    tfs, counts = np.unique(src, return_counts=True)
    neg_s: list[np.ndarray] = []
    neg_t: list[np.ndarray] = []
    shortfall = 0
    for t, n_t in zip(tfs.tolist(), counts.tolist()):
        ok = ~adj[t]
        ok[t] = False
        cand = np.flatnonzero(ok)
        k = min(n_t, len(cand))
        shortfall += n_t - k
        chosen = rng.choice(cand, size=k, replace=False) if k else np.empty(0, dtype=np.int64)
        neg_s.append(np.full(k, t, dtype=np.int64))
        neg_t.append(np.asarray(chosen, dtype=np.int64))
    return (np.concatenate(neg_s) if neg_s else np.empty(0, np.int64),
            np.concatenate(neg_t) if neg_t else np.empty(0, np.int64), shortfall)


def _pairset(ns: NetworkSet, src: np.ndarray, tgt: np.ndarray, labels: np.ndarray,
             protocol: str, seed: int | None, info: Mapping[str, Any],
             groups: bool = False) -> PairSet:
    genes = np.asarray(ns.genes, dtype=str)
    sources = genes[src]
    return PairSet(sources=sources, targets=genes[tgt], labels=labels, protocol=protocol,
                   network=ns.network, dataset=ns.dataset, size=ns.size, seed=seed,
                   groups=sources.copy() if groups else None, info=dict(info))


def _balanced(ns: NetworkSet, seed: int, protocol: str, groups: bool) -> PairSet:
    rng = np.random.default_rng(seed)
    ps, pt = _positive_indices(ns)
    ns_, nt_, shortfall = _balanced_negatives(ns, ps, rng)
    labels = np.concatenate([np.ones(len(ps), np.int8), np.zeros(len(ns_), np.int8)])
    return _pairset(ns, np.concatenate([ps, ns_]), np.concatenate([pt, nt_]), labels, protocol,
                    seed, {"negative_shortfall": shortfall}, groups=groups)


def training_pairs(ns: NetworkSet, seed: int = 0) -> PairSet:
    """Translator training set: all edges plus balanced per-TF negatives; groups = source gene."""
    return _balanced(ns, seed, "train", groups=True)


def protocol_a(ns: NetworkSet, seed: int = 0) -> PairSet:
    """The paper's balanced test set: all edges plus one same-TF non-target per edge."""
    return _balanced(ns, seed, "A", groups=False)


def protocol_b(a: PairSet, training_genes: PairSet | Iterable[str]) -> PairSet:
    """A's pairs whose source and target both occur in no training pair.

    ``training_genes`` is the training :class:`PairSet` (positives *and* sampled negatives, since
    a method sees the genes of both) or an explicit gene collection.
    """
    seen = training_genes.genes() if isinstance(training_genes, PairSet) else set(training_genes)
    seen_arr = np.asarray(sorted(seen), dtype=str)
    mask = ~np.isin(a.sources, seen_arr) & ~np.isin(a.targets, seen_arr)
    info = dict(a.info)
    info.update({"excluded_pairs": int((~mask).sum()), "training_genes": len(seen)})
    return a.subset(mask, protocol="B", info=info)


def protocol_c(ns: NetworkSet) -> PairSet:
    """Every TF x gene candidate (g != t) of the network set, labelled; TF-major, gene order.

    Candidate regulators are the set's TF list (what any method is told); candidate targets are
    all its genes.
    """
    adj = _adjacency(ns)
    tf_idx = ns.gene_index(ns.tfs)
    n = len(ns.genes)
    src = np.repeat(tf_idx, n)
    tgt = np.tile(np.arange(n), len(tf_idx))
    keep = src != tgt
    src, tgt = src[keep], tgt[keep]
    labels = adj[src, tgt].astype(np.int8)
    missed = int(len(_positive_indices(ns)[0]) - labels.sum())
    return _pairset(ns, src, tgt, labels, "C", None, {"edges_from_non_tfs": missed})


def degree_bins(ns: NetworkSet, n_bins: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """(bin per gene, inner bin edges) from the test network's target in-degrees.

    Edges are quantiles of in-degree over the positive edges (edge-weighted, so each bin holds a
    similar share of positives; tied quantiles merge). Genes with in-degree 0 — never a positive
    target — get bin -1, adjacent to bin 0.
    """
    ps, pt = _positive_indices(ns)
    indeg = np.bincount(pt, minlength=len(ns.genes))
    if len(pt) == 0:
        return np.full(len(ns.genes), -1, dtype=np.int64), np.empty(0)
    qs = np.quantile(indeg[pt], np.linspace(0, 1, n_bins + 1)[1:-1])
    inner = np.unique(qs)
    bins = np.searchsorted(inner, indeg, side="right").astype(np.int64)
    bins[indeg == 0] = -1
    return bins, inner


def protocol_m(ns: NetworkSet, seed: int = 0, n_bins: int = 5) -> PairSet:
    """Balanced set whose negatives match their positive's source, target TF status and bin.

    For each positive (t, p) one negative (t, g): g not a target of t, g != t, ``is_tf(g) ==
    is_tf(p)`` exactly, and g in p's in-degree bin; if that bin has no unused candidate, the
    nearest bins are tried (distance 1, 2, ...; the side chosen at random) and the widening is
    counted. A positive with no candidate of its TF status at all is dropped with its negative
    (counted in ``info['dropped_positives']``).
    """
    rng = np.random.default_rng(seed)
    ps, pt = _positive_indices(ns)
    adj = _adjacency(ns)
    bins, inner = degree_bins(ns, n_bins)
    is_tf = np.zeros(len(ns.genes), dtype=bool)
    is_tf[ns.gene_index(ns.tfs)] = True
    lo, hi = -1, int(bins.max(initial=-1))
    keep_pos = np.zeros(len(ps), dtype=bool)
    neg_t = np.full(len(ps), -1, dtype=np.int64)
    widened = dropped = 0
    for t in np.unique(ps).tolist():
        rows = np.flatnonzero(ps == t)
        ok = ~adj[t]
        ok[t] = False
        cand = np.flatnonzero(ok)
        pools: dict[tuple[bool, int], list[int]] = {}
        for g in rng.permutation(cand).tolist():
            pools.setdefault((bool(is_tf[g]), int(bins[g])), []).append(g)
        for r in rng.permutation(rows).tolist():
            p = pt[r]
            status, b = bool(is_tf[p]), int(bins[p])
            chosen = -1
            for dist in range(0, hi - lo + 1):
                sides = [b] if dist == 0 else ([b - dist, b + dist] if rng.random() < 0.5
                                               else [b + dist, b - dist])
                for bb in sides:
                    pool = pools.get((status, bb))
                    if pool:
                        chosen = pool.pop()
                        break
                if chosen >= 0:
                    widened += dist > 0
                    break
            if chosen < 0:
                dropped += 1
                continue
            keep_pos[r] = True
            neg_t[r] = chosen
    src = np.concatenate([ps[keep_pos], ps[keep_pos]])
    tgt = np.concatenate([pt[keep_pos], neg_t[keep_pos]])
    n = int(keep_pos.sum())
    labels = np.concatenate([np.ones(n, np.int8), np.zeros(n, np.int8)])
    info = {"widened": widened, "dropped_positives": dropped, "n_bins": len(inner) + 1,
            "bin_edges": inner.tolist()}
    return _pairset(ns, src, tgt, labels, "M", seed, info)


def build_protocols(test: NetworkSet, training: PairSet, seed: int = 0,
                    protocols: Iterable[str] = PROTOCOLS, n_bins: int = 5
                    ) -> dict[str, PairSet]:
    """The requested protocol test sets of one test network set (B needs A, built on demand)."""
    wanted = list(protocols)
    unknown = [p for p in wanted if p not in PROTOCOLS]
    if unknown:
        raise ValueError(f"unknown protocol(s) {unknown}; choose from {PROTOCOLS}")
    out: dict[str, PairSet] = {}
    a = protocol_a(test, seed) if ("A" in wanted or "B" in wanted) else None
    for name in wanted:
        if name == "A":
            out[name] = a
        elif name == "B":
            out[name] = protocol_b(a, training)
        elif name == "C":
            out[name] = protocol_c(test)
        elif name == "M":
            out[name] = protocol_m(test, seed, n_bins)
    return out
