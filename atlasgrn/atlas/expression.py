"""A dataset's expression as one dense matrix, for statistics that need every cell of a gene at
once (the rank-statistic features: correlations, ranks, mutual information).

Atlases are larger than memory, so at most ``max_cells`` cells are read, evenly spaced over the
dataset (or over the cells of one context), in storage order: deterministic, and every part of
the dataset is represented. The matrix is streamed block by block, so only the kept rows of the
requested genes are ever held.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp

from .dataset import AtlasDataset


def evenly_spaced(positions: np.ndarray, limit: int) -> np.ndarray:
    """At most ``limit`` of ``positions`` (sorted), evenly spaced, first and last included."""
    positions = np.asarray(positions, dtype=np.int64)
    if limit <= 0 or len(positions) <= limit:
        return positions
    picks = np.unique(np.round(np.linspace(0, len(positions) - 1, limit)).astype(np.int64))
    return positions[picks]


def expression_matrix(ds: AtlasDataset, genes: Sequence[str], *, max_cells: int,
                      cells: np.ndarray | None = None, block_cells: int = 4096) -> np.ndarray:
    """Dense float32 ``[cells, len(genes)]`` of the dataset's ``genes`` (its own names), over at
    most ``max_cells`` evenly spaced cells of ``cells`` (positions; default: all cells)."""
    every = np.arange(ds.info.n_cells) if cells is None else np.sort(np.asarray(cells))
    keep = evenly_spaced(every, max_cells)
    cols = ds.gene_index(list(genes))
    out = np.zeros((len(keep), len(cols)), dtype=np.float32)
    filled = 0
    for start, block in ds.iter_blocks(block_cells, genes=cols):
        stop = start + block.shape[0]
        lo, hi = np.searchsorted(keep, [start, stop])
        if hi > lo:
            rows = block[keep[lo:hi] - start]
            out[filled:filled + (hi - lo)] = rows.toarray() if sp.issparse(rows) else rows
            filled += hi - lo
    return out
