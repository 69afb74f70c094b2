"""Lazy, block-wise reads of one dataset of an atlas.

A dataset's X is an anndata-encoded CSR (or dense) matrix in Zarr. anndata's backed sparse
dataset reads a row range by slicing ``indptr`` first and then only the ``data``/``indices``
chunks that range covers, so a block of cells costs memory proportional to the block, not the
dataset. Gene subsets are taken after the row read (CSR has no cheap column access).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Literal, overload

import anndata as ad
import numpy as np
import pandas as pd
import scipy.sparse as sp
import zarr

from ..errors import AtlasgrnError, AtlasReadError
from ..objectstore import is_transient, with_retries
from .layout import STATS_KEY, STATS_VERSION, dataset_path
from .store import DatasetInfo

#: Cells per chunk when computing streaming reductions (bounded memory whatever the size).
REDUCTION_BLOCK_CELLS = 8192


@dataclass(frozen=True)
class GeneStats:
    """Per-gene reductions over all cells of a dataset (cached in the store)."""

    mean: np.ndarray  # float32 [n_genes]
    frac_nonzero: np.ndarray  # float32 [n_genes]
    n_cells: int


class AtlasDataset:
    """One dataset of an atlas; nothing is read until asked for."""

    def __init__(self, group: zarr.Group, info: DatasetInfo, uri: str, writable: bool) -> None:
        self._group = group
        self.info = info
        self._uri = uri
        self._writable = writable

    def __repr__(self) -> str:
        i = self.info
        return (f"AtlasDataset({i.name!r}, {i.n_cells} cells x {i.n_genes} genes, "
                f"{i.species}, {i.value_kind})")

    @property
    def name(self) -> str:
        return self.info.name

    def _key(self, sub: str = "") -> str:
        return dataset_path(self.name) + (f"/{sub}" if sub else "")

    def _read(self, fn, key: str):
        """Run a read with retries on transient errors; permanent ones name the key."""
        try:
            return with_retries(fn)
        except AtlasgrnError:
            raise
        except Exception as exc:  # noqa: BLE001 - re-raised with the failing key
            kind = "transient error persisted" if is_transient(exc) else "read failed"
            raise AtlasReadError(f"{kind}: {type(exc).__name__}: {exc}", path=self._uri,
                                 key=key, remedy="check the store is reachable and intact; "
                                 "re-ingest the dataset if it is corrupt") from exc

    @cached_property
    def genes(self) -> np.ndarray:
        """Gene symbols as stored (var index), as an object array of str."""
        var = self._read(lambda: ad.io.read_elem(self._group["var"]), self._key("var"))
        return np.asarray(var.index.astype(str), dtype=object)

    @cached_property
    def obs(self) -> pd.DataFrame:
        """Cell annotations (read on first use; small next to X)."""
        return self._read(lambda: ad.io.read_elem(self._group["obs"]), self._key("obs"))

    @cached_property
    def _x(self):
        def open_x():
            node = self._group["X"]
            if isinstance(node, zarr.Group):
                return ad.io.sparse_dataset(node)
            return node
        return self._read(open_x, self._key("X"))

    @cached_property
    def _gene_lookup(self) -> dict[str, int]:
        """Symbol -> column, built once per handle (block reads by symbol reuse it)."""
        return {g: i for i, g in enumerate(self.genes)}

    def gene_index(self, genes: Sequence[str]) -> np.ndarray:
        """Column positions of ``genes``; unknown genes raise naming the first missing one."""
        lookup = self._gene_lookup
        missing = [g for g in genes if g not in lookup]
        if missing:
            raise AtlasgrnError(f"{len(missing)} gene(s) not in dataset, e.g. '{missing[0]}'",
                                path=self._uri, key=self._key("var"),
                                remedy="select genes from AtlasDataset.genes")
        return np.fromiter((lookup[g] for g in genes), dtype=np.int64, count=len(genes))

    @overload
    def read_cells(self, start: int, stop: int, genes: Sequence[str] | np.ndarray | None = ...,
                   dense: Literal[False] = ...) -> sp.csr_matrix: ...
    @overload
    def read_cells(self, start: int, stop: int, genes: Sequence[str] | np.ndarray | None = ...,
                   dense: Literal[True] = ...) -> np.ndarray: ...

    def read_cells(self, start: int, stop: int,
                   genes: Sequence[str] | np.ndarray | None = None,
                   dense: bool = False) -> sp.csr_matrix | np.ndarray:
        """Cells ``[start, stop)`` as float32 CSR (default) or dense, optionally a gene subset.

        ``genes`` is a list of symbols or an integer array of column positions.
        """
        n = self.info.n_cells
        if not (0 <= start <= stop <= n):
            raise AtlasgrnError(f"cell range [{start}, {stop}) outside [0, {n})",
                                path=self._uri, key=self._key("X"),
                                remedy="clip the block to the dataset's n_cells")
        x = self._x
        block = self._read(lambda: x[start:stop], self._key("X"))
        if sp.issparse(block):
            block = sp.csr_matrix(block)
        else:
            block = np.asarray(block)
        if genes is not None:
            cols = (np.asarray(genes, dtype=np.int64)
                    if isinstance(genes, np.ndarray) and genes.dtype.kind in "iu"
                    else self.gene_index(list(genes)))
            block = block[:, cols]
        if dense:
            out = block.toarray() if sp.issparse(block) else block
            return np.ascontiguousarray(out, dtype=np.float32)
        if not sp.issparse(block):
            return sp.csr_matrix(block, dtype=np.float32)
        return block.astype(np.float32, copy=False)

    def iter_blocks(self, block_cells: int = 4096,
                    genes: Sequence[str] | np.ndarray | None = None,
                    dense: bool = False) -> Iterator[tuple[int, sp.csr_matrix | np.ndarray]]:
        """Yield ``(start, block)`` over all cells in order, one block in memory at a time."""
        if genes is not None and not (isinstance(genes, np.ndarray) and genes.dtype.kind in "iu"):
            genes = self.gene_index(list(genes))
        for start in range(0, self.info.n_cells, block_cells):
            stop = min(start + block_cells, self.info.n_cells)
            yield start, self.read_cells(start, stop, genes=genes, dense=dense)

    def gene_stats(self, recompute: bool = False) -> GeneStats:
        """Mean expression and fraction of non-zero cells per gene, streamed and cached.

        The cache lives in ``uns/atlasgrn_stats`` of the dataset when the store is writable;
        read-only stores (http, a colleague's bucket) recompute and keep the result in memory.
        """
        if not recompute:
            cached = self._cached_stats()
            if cached is not None:
                return cached
        n_genes = self.info.n_genes
        total = np.zeros(n_genes, dtype=np.float64)
        nonzero = np.zeros(n_genes, dtype=np.int64)
        for _, block in self.iter_blocks(REDUCTION_BLOCK_CELLS):
            if sp.issparse(block):
                # accumulate in float64: scipy sums a float32 matrix in float32 whatever dtype=
                # says, which loses ~1e-4 relative per 1,000 cells
                total += np.bincount(block.indices, weights=block.data.astype(np.float64),
                                     minlength=n_genes)
                nonzero += np.bincount(block.indices[block.data != 0], minlength=n_genes)
            else:
                total += block.sum(axis=0, dtype=np.float64)
                nonzero += (block != 0).sum(axis=0)
        n = max(self.info.n_cells, 1)
        stats = GeneStats(mean=(total / n).astype(np.float32),
                          frac_nonzero=(nonzero / n).astype(np.float32),
                          n_cells=self.info.n_cells)
        if self._writable:
            self._store_stats(stats)
        self.__dict__["_stats_memo"] = stats
        return stats

    def _cached_stats(self) -> GeneStats | None:
        memo = self.__dict__.get("_stats_memo")
        if memo is not None:
            return memo
        try:
            raw = ad.io.read_elem(self._group["uns"][STATS_KEY])
        except KeyError:
            return None
        if int(raw.get("n_cells", -1)) != self.info.n_cells:
            return None  # stale: the dataset changed since the cache was written
        if int(raw.get("version", 1)) != STATS_VERSION:
            return None  # computed by an older rule (float32 sums): recompute
        stats = GeneStats(mean=np.asarray(raw["mean"], dtype=np.float32),
                          frac_nonzero=np.asarray(raw["frac_nonzero"], dtype=np.float32),
                          n_cells=self.info.n_cells)
        self.__dict__["_stats_memo"] = stats
        return stats

    def _store_stats(self, stats: GeneStats) -> None:
        uns = self._group.require_group("uns")
        ad.io.write_elem(uns, STATS_KEY, {"mean": stats.mean, "frac_nonzero": stats.frac_nonzero,
                                          "n_cells": np.int64(stats.n_cells),
                                          "version": np.int64(STATS_VERSION)})
