"""Per-context expression profiles: per-gene mean and fraction non-zero for each value of an
obs column (cell type, cell state, tissue ...) of one dataset.

Why dask: the sums are one pass over X grouped by a label per cell. anndata's
``read_elem_lazy`` already exposes X as a dask array of CSR row chunks read straight from the
Zarr store, so the pass is a ``blockwise`` map (each row chunk -> a small ``[2, n_contexts,
n_genes]`` partial: sums and non-zero counts) followed by dask's tree reduction. Memory is
bounded by a few row chunks plus partials of size ``n_contexts x n_genes``, never the matrix.
The caller picks where it runs through ``scheduler`` (dask's threads by default; the engine
passes ``ray.util.dask.ray_dask_get``), so this layer never imports Ray.

I/O retries: the obs column and the cache go through the dataset's retrying reads; the X
chunks are read inside anndata's lazy tasks, where only the storage client's own retries
apply (retrying the whole computation would be a retry in compute, which this project avoids).
A failure there is re-raised as one :class:`AtlasReadError` line naming X.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import anndata as ad
import dask
import dask.array as da
import numpy as np
import pandas as pd
import scipy.sparse as sp
import zarr

from ..errors import AtlasgrnError, AtlasReadError
from ..objectstore import is_transient
from . import context_cache
from .dataset import REDUCTION_BLOCK_CELLS, AtlasDataset

#: Partials combined per node of the tree reduction (memory: this many partials at once).
SPLIT_EVERY = 8
#: Columns named in the missing-column error before "... and N more".
_LIST_COLUMNS = 20


@dataclass(frozen=True)
class ContextStats:
    """Per-context statistics of one dataset over one obs column.

    ``n_cells`` counts every value of the column (cells with a missing value are in none), so a
    caller can report what ``min_cells`` skipped; ``mean`` and ``frac_nonzero`` (float64, one
    value per gene in the dataset's gene order) exist for the kept ``contexts`` only.
    """

    dataset: str
    column: str
    contexts: tuple[str, ...]
    n_cells: dict[str, int]
    mean: dict[str, np.ndarray]
    frac_nonzero: dict[str, np.ndarray]
    min_cells: int

    @property
    def skipped(self) -> tuple[str, ...]:
        """Values with fewer than ``min_cells`` cells (sorted), for the caller's report."""
        return tuple(c for c in sorted(self.n_cells) if c not in self.mean)


@dataclass(frozen=True)
class ContextLabels:
    """An obs column as context codes: ``names`` sorted, ``codes[cell]`` indexes them, -1 for a
    missing value. Values that print alike (``1`` and ``"1"``) are one context."""

    column: str
    names: tuple[str, ...]
    codes: np.ndarray  # int32 [n_cells]

    def counts(self) -> np.ndarray:
        """Cells per context (int64, aligned with ``names``)."""
        return np.bincount(self.codes[self.codes >= 0], minlength=len(self.names))

    def digest(self) -> str:
        """sha256 of names and codes: a cache written for other labels is not reused."""
        h = hashlib.sha256()
        h.update("\0".join(self.names).encode() + b"\1")
        h.update(np.ascontiguousarray(self.codes, dtype="<i4").tobytes())
        return h.hexdigest()


def read_context_labels(ds: AtlasDataset, column: str) -> ContextLabels:
    """Read one obs column (not the whole obs frame) and turn it into context codes."""
    obs = ds._read(lambda: ds._group["obs"], ds._key("obs"))
    columns = [str(c) for c in obs.attrs.get("column-order", [])]
    if column not in columns or column not in obs:
        shown = ", ".join(columns[:_LIST_COLUMNS]) or "none"
        if len(columns) > _LIST_COLUMNS:
            shown += f", ... and {len(columns) - _LIST_COLUMNS} more"
        raise AtlasgrnError(f"dataset '{ds.name}' has no obs column '{column}' "
                            f"(columns: {shown})", path=ds._uri,
                            key=ds._key(f"obs/{column}"),
                            remedy="pass one of those columns as --context-key")
    values = ds._read(lambda: ad.io.read_elem(obs[column]), ds._key(f"obs/{column}"))
    names, codes = _encode(values)
    if len(codes) != ds.info.n_cells:
        raise AtlasReadError(f"obs column has {len(codes)} values for {ds.info.n_cells} cells",
                             path=ds._uri, key=ds._key(f"obs/{column}"),
                             remedy="re-ingest the dataset")
    return ContextLabels(column=column, names=names, codes=codes)


def _encode(values: Any) -> tuple[tuple[str, ...], np.ndarray]:
    """Sorted string names of the values present, and an int32 code per cell (-1: missing).

    Categoricals are encoded through their categories (cheap for a million cells); other
    columns (strings, integers, nullable arrays) through their string form. Unused
    categories are dropped, so every name has at least one cell.
    """
    if isinstance(values, pd.Categorical):
        cat_names = np.asarray(values.categories.astype(str), dtype=object)
        merged, inverse = np.unique(cat_names, return_inverse=True)
        raw = values.codes.astype(np.int64)
        codes = np.where(raw >= 0, inverse[np.maximum(raw, 0)], -1)
    else:
        series = pd.Series(np.asarray(values, dtype=object)
                           if isinstance(values, np.ndarray) else values)
        missing = series.isna().to_numpy()
        codes = np.full(len(series), -1, dtype=np.int64)
        present, merged = pd.factorize(series[~missing].astype(str).to_numpy(dtype=object),
                                       sort=True)
        codes[~missing] = present
        merged = np.asarray(merged, dtype=object)
    used = np.bincount(codes[codes >= 0], minlength=len(merged)) > 0
    remap = np.cumsum(used) - 1
    codes = np.where(codes >= 0, remap[np.maximum(codes, 0)], -1).astype(np.int32)
    return tuple(str(n) for n in merged[used]), codes


def lazy_context_sums(ds: AtlasDataset, labels: ContextLabels,
                      block_cells: int = REDUCTION_BLOCK_CELLS) -> da.Array:
    """The lazy ``[2, n_contexts, n_genes]`` float64 array of per-context sums (``[0]``) and
    non-zero counts (``[1]``): one partial per ``block_cells`` row chunk of X, tree-summed.

    Nothing is read until it is computed. Counts are exact in float64 below 2**53 cells.
    """
    n_genes = ds.info.n_genes
    x = ds._read(lambda: ad.experimental.read_elem_lazy(ds._group["X"],
                                                        chunks=(block_cells, n_genes)),
                 ds._key("X"))
    codes = da.from_array(labels.codes, chunks=(x.chunks[0],))
    n_ctx = len(labels.names)
    partials = da.blockwise(_block_sums, "iabg", x, "ig", codes, "i",
                            new_axes={"a": 2, "b": n_ctx}, adjust_chunks={"i": 1},
                            dtype=np.float64, meta=np.empty((0, 0, 0, 0), dtype=np.float64),
                            n_ctx=n_ctx)
    return partials.sum(axis=0, split_every=SPLIT_EVERY)


def _block_sums(block: sp.spmatrix | np.ndarray, codes: np.ndarray, n_ctx: int) -> np.ndarray:
    """One row chunk -> ``[1, 2, n_ctx, n_genes]``: float64 sums and non-zero counts per context.

    CSR chunks are multiplied by a one-hot ``[n_ctx, rows]`` matrix: scipy upcasts the
    float32 values to float64 before summing (``.sum(dtype=)`` on a float32 matrix would not;
    see ``AtlasDataset.gene_stats``), and the temporaries are ~12 bytes per stored value,
    about 1.5x the chunk itself. Stored zeros are not counted as non-zero.
    """
    n_rows, n_genes = block.shape
    out = np.zeros((1, 2, n_ctx, n_genes), dtype=np.float64)
    if sp.issparse(block):
        csr = sp.csr_matrix(block)
        rows = np.flatnonzero(codes >= 0)
        one_hot = sp.csr_matrix((np.ones(len(rows)), (codes[rows], rows)), shape=(n_ctx, n_rows))
        out[0, 0] = (one_hot @ csr).toarray()
        # counts <= rows per chunk: exact in float32 below 2**24 rows, at half the memory
        count_dtype = np.float32 if n_rows < 2 ** 24 else np.float64
        nonzero = sp.csr_matrix(((csr.data != 0).astype(count_dtype), csr.indices, csr.indptr),
                                shape=csr.shape)
        out[0, 1] = (one_hot.astype(count_dtype) @ nonzero).toarray()
    else:
        dense = np.asarray(block)
        for c in np.unique(codes[codes >= 0]):
            chosen = dense[codes == c]
            out[0, 0, c] = chosen.sum(axis=0, dtype=np.float64)
            out[0, 1, c] = np.count_nonzero(chosen, axis=0)
    return out


def context_stats(ds: AtlasDataset, obs_column: str, *, min_cells: int = 50,
                  scheduler: Any = None, cache: bool = False,
                  block_cells: int = REDUCTION_BLOCK_CELLS) -> ContextStats:
    """Per-gene mean and fraction non-zero of each value of ``obs_column`` with at least
    ``min_cells`` cells, in one dask pass over X (memory bounded by ``block_cells`` rows).

    ``scheduler`` goes to ``dask.compute`` (None: dask's threads; the engine passes
    ``ray.util.dask.ray_dask_get``). ``cache=True`` reuses sums cached in the dataset's
    ``uns`` for the same X and labels, and stores fresh ones when the atlas is writable;
    ``cache=False`` neither reads nor writes the store beyond X and the obs column.
    Raises :class:`AtlasgrnError` (one line) for a missing column or when no value has
    ``min_cells`` cells.
    """
    if min_cells < 1:
        raise AtlasgrnError(f"--min-cells must be >= 1, got {min_cells}", path=ds._uri,
                            key="--min-cells", remedy="pass a positive number of cells")
    if block_cells < 1:
        raise AtlasgrnError(f"block_cells must be >= 1, got {block_cells}", path=ds._uri,
                            key="block_cells", remedy="pass a positive number of cells")
    labels = read_context_labels(ds, obs_column)
    counts = labels.counts()
    _check_enough_cells(ds, labels, counts, min_cells)
    sums = context_cache.load(ds, labels) if cache else None
    if sums is None:
        sums = _compute(ds, labels, block_cells, scheduler)
        if cache:
            context_cache.store(ds, labels, sums)
    n_cells = {name: int(n) for name, n in zip(labels.names, counts, strict=True)}
    kept = tuple(name for name, n in n_cells.items() if n >= min_cells)
    index = {name: i for i, name in enumerate(labels.names)}
    return ContextStats(
        dataset=ds.name, column=obs_column, contexts=kept, n_cells=n_cells,
        mean={c: sums[0, index[c]] / n_cells[c] for c in kept},
        frac_nonzero={c: sums[1, index[c]] / n_cells[c] for c in kept},
        min_cells=min_cells)


def _check_enough_cells(ds: AtlasDataset, labels: ContextLabels, counts: np.ndarray,
                        min_cells: int) -> None:
    """Refuse before reading X when no value reaches ``min_cells``, naming the largest."""
    if len(counts) and counts.max() >= min_cells:
        return
    if len(counts):
        top = int(np.argmax(counts))
        largest = (f"largest: '{labels.names[top]}' with {int(counts[top])} of "
                   f"{ds.info.n_cells} cells")
        remedy = (f"lower --min-cells to {int(counts[top])} or less, or choose a coarser "
                  "--context-key")
    else:
        largest = f"the column has no values in {ds.info.n_cells} cells"
        remedy = "choose a --context-key that is filled in"
    raise AtlasgrnError(f"no value of obs column '{labels.column}' in dataset '{ds.name}' has "
                        f">= {min_cells} cells ({largest})", path=ds._uri,
                        key=ds._key(f"obs/{labels.column}"), remedy=remedy)


def _compute(ds: AtlasDataset, labels: ContextLabels, block_cells: int,
             scheduler: Any) -> np.ndarray:
    """Run the lazy sums; a storage failure inside a task becomes one line naming X."""
    lazy = lazy_context_sums(ds, labels, block_cells)
    try:
        (sums,) = dask.compute(lazy, scheduler=scheduler)
    except AtlasgrnError:
        raise
    except (OSError, zarr.errors.BaseZarrError) as exc:
        kind = "transient error persisted" if is_transient(exc) else "read failed"
        raise AtlasReadError(f"{kind}: {type(exc).__name__}: {exc}", path=ds._uri,
                             key=ds._key("X"), remedy="check the store is reachable and "
                             "intact; re-ingest the dataset if it is corrupt") from exc
    return np.asarray(sums, dtype=np.float64)
