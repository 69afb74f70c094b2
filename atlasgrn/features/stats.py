"""Within-dataset expression statistics of regulator -> gene pairs, and their per-source ranks.

The raw statistics (|Pearson|, |Spearman|, binned mutual information) are the classical GRN
yardsticks; the benchmark reports them as baselines. Their *ranks* are also features a
translator can fuse with the probe features (the ``rank_*`` kinds of the feature spec): the rank
of a pair's statistic among all of its source's candidate targets in the same dataset, as a
percentile in (0, 1]. A rank has no scale, so it transfers from the dataset a translator was
trained on to any other, whatever its depth, normalisation or cell count.

Pure numpy, like the rest of the features layer: the engine passes a dataset's expression
matrix (cells x genes, the model's value space or log scale; ranks do not care which).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.stats import rankdata

#: Rank-statistic feature kinds and the raw statistic each ranks.
STAT_KIND_STATISTIC = {"rank_pearson": "pearson", "rank_spearman": "spearman",
                       "rank_mi": "mi"}
#: Equal-width expression bins of the mutual-information estimate.
MI_BINS = 8


def standardise(x: np.ndarray) -> np.ndarray:
    """Columns centred and scaled to unit norm; constant columns become 0."""
    x = np.asarray(x, dtype=np.float64)
    x = x - x.mean(axis=0)
    norm = np.sqrt((x * x).sum(axis=0))
    return np.divide(x, norm, out=np.zeros_like(x), where=norm > 0)


def abs_pearson(values: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """|Pearson r| ``[len(rows), genes]`` between the ``rows`` columns and every column of
    ``values`` (cells x genes) across cells; 0 for constant genes."""
    z = standardise(values)
    return np.clip(np.abs(z[:, rows].T @ z), 0.0, 1.0)


def abs_spearman(values: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """|Spearman rho|: Pearson on per-gene ranks (ties averaged)."""
    return abs_pearson(rankdata(np.asarray(values), axis=0).astype(np.float64), rows)


def _bin_codes(x: np.ndarray, n_bins: int) -> np.ndarray:
    """Equal-width bins per gene over its [min, max]; constant genes all in bin 0."""
    lo, hi = x.min(axis=0), x.max(axis=0)
    width = np.where(hi > lo, (hi - lo) / n_bins, 1.0)
    codes = np.floor((x - lo) / width).astype(np.int64)
    return np.clip(codes, 0, n_bins - 1)


def mutual_information(values: np.ndarray, rows: np.ndarray, n_bins: int = MI_BINS,
                       chunk: int = 64) -> np.ndarray:
    """Plug-in mutual information (nats) of equal-width-binned expression, ``[len(rows), genes]``.

    Equal-width bins keep the many zeros of scRNA-seq in one bin instead of splitting tied values
    across quantile bins. Joint histograms of all pairs come from one-hot matrix products, in
    row chunks so memory stays at chunk x bins x genes x bins.
    """
    x = np.asarray(values, dtype=np.float64)
    n_cells, n_genes = x.shape
    codes = _bin_codes(x, n_bins)
    onehot = np.zeros((n_cells, n_genes, n_bins), dtype=np.float32)
    np.put_along_axis(onehot, codes[:, :, None], 1.0, axis=2)
    flat = onehot.reshape(n_cells, n_genes * n_bins)
    p_gene = onehot.sum(axis=0) / n_cells  # genes x bins
    out = np.zeros((len(rows), n_genes), dtype=np.float64)
    for start in range(0, len(rows), chunk):
        part = np.asarray(rows[start:start + chunk])
        joint = (onehot[:, part, :].reshape(n_cells, -1).T @ flat).astype(np.float64) / n_cells
        joint = joint.reshape(len(part), n_bins, n_genes, n_bins)
        indep = p_gene[part][:, :, None, None] * p_gene[None, None, :, :]
        with np.errstate(divide="ignore", invalid="ignore"):
            terms = np.where(joint > 0, joint * np.log(joint / indep), 0.0)
        out[start:start + len(part)] = np.maximum(terms.sum(axis=(1, 3)), 0.0)
    return out


STATISTICS = {"pearson": abs_pearson, "spearman": abs_spearman, "mi": mutual_information}


def source_ranks(raw: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Each row's entries as percentiles in (0, 1] among that row's candidates (ties averaged).

    Row ``i`` is source gene ``rows[i]``; its own column (a self pair, never scored) is left out
    of the ranking and gets 0.
    """
    raw = np.asarray(raw, dtype=np.float64)
    out = np.zeros_like(raw)
    n_genes = raw.shape[1]
    for i, self_col in enumerate(np.asarray(rows).tolist()):
        keep = np.ones(n_genes, dtype=bool)
        if 0 <= self_col < n_genes:
            keep[self_col] = False
        if keep.any():
            out[i, keep] = rankdata(raw[i, keep]) / keep.sum()
    return out


def rank_statistics(values: np.ndarray, genes: Sequence[str], regulators: Sequence[str],
                    kinds: Sequence[str]) -> dict[str, np.ndarray]:
    """Per-source rank features ``{kind: [len(regulators), len(genes)] float32}`` of one dataset.

    ``values`` is its expression (cells x genes, columns in ``genes`` order); every regulator
    must be one of ``genes`` (a regulator the dataset does not measure has no statistic).
    """
    index = {g: i for i, g in enumerate(genes)}
    missing = [r for r in regulators if r not in index]
    if missing:
        raise ValueError(f"{len(missing)} regulator(s) are not among the dataset's genes, "
                         f"e.g. {missing[0]}")
    unknown = [k for k in kinds if k not in STAT_KIND_STATISTIC]
    if unknown:
        raise ValueError(f"unknown rank-statistic kind(s) {unknown}")
    rows = np.asarray([index[r] for r in regulators], dtype=np.int64)
    out: dict[str, np.ndarray] = {}
    for kind in kinds:
        raw = STATISTICS[STAT_KIND_STATISTIC[kind]](values, rows)
        out[kind] = source_ranks(raw, rows).astype(np.float32)
    return out
