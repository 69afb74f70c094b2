"""From a source's raw gene names to the atlas's gene columns.

A :class:`GenePlan` is decided once per input, before anything is written, so that a file with
unnamed or duplicate genes fails without leaving a trace in the atlas. Applying the plan to a cell
block keeps the named columns and, with ``dedupe``, merges duplicate columns.

Why duplicates are *summed*: two columns with the same symbol are almost always the same gene
measured through two ids (two Ensembl ids, a versioned and an unversioned id, a readthrough
transcript). Their counts add up; keeping only one would silently lose reads. For log-scale
inputs the sum is taken on the linear scale (``log1p(expm1(a) + expm1(b))``, likewise for log2),
so a merged log value is the log of the summed expression rather than a sum of logs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ...errors import IngestError
from ..symbols import dedupe_index, find_duplicates, normalize_symbols


@dataclass(frozen=True)
class GenePlan:
    """Which source columns become which atlas genes."""

    keep: np.ndarray  # int64 positions of source columns that have a name
    names: np.ndarray  # object array: gene names of the atlas dataset (unique)
    var: pd.DataFrame  # index = names; extra per-gene columns from the source
    n_dropped_unnamed: int
    n_merged_duplicates: int  # source columns folded into another by dedupe
    merge: sp.csr_matrix | None  # (len(keep) x len(names)) 0/1 matrix when dedupe merged columns
    value_kind: str

    def apply(self, block: sp.csr_matrix) -> sp.csr_matrix:
        """Columns of a (cells x source genes) block mapped onto the atlas genes."""
        if len(self.keep) != block.shape[1]:
            block = block[:, self.keep]
        if self.merge is None:
            return block
        if self.value_kind in ("counts", "normalized"):
            return (block @ self.merge).tocsr()
        linear = block.copy()
        if self.value_kind == "log1p":
            linear.data = np.expm1(linear.data.astype(np.float64))
            out = (linear @ self.merge).tocsr()
            out.data = np.log1p(out.data)
        else:  # log2
            linear.data = np.exp2(linear.data.astype(np.float64)) - 1.0
            out = (linear @ self.merge).tocsr()
            out.data = np.log2(out.data + 1.0)
        return out.astype(np.float32)


def plan_genes(raw_names: np.ndarray, var: pd.DataFrame | None, *, dedupe: bool, value_kind: str,
               source: str, key: str = "var_names") -> GenePlan:
    """Normalise names, drop unnamed genes, and refuse (or merge) duplicates.

    ``var`` holds extra per-gene columns aligned with ``raw_names`` (kept for the named genes;
    with dedupe, the first occurrence's values are kept).
    """
    names = normalize_symbols(raw_names)
    named = np.flatnonzero(names != "")
    if len(named) == 0:
        raise IngestError(f"no gene names ({len(names)} columns, all unnamed)", path=source,
                          key=key, remedy="give genes names, or point --gene-column at the "
                          "var column that holds symbols")
    names = names[named]
    extra = (var.iloc[named].reset_index(drop=True) if var is not None and len(var.columns)
             else pd.DataFrame(index=range(len(named))))
    dups = find_duplicates(list(names))
    merge = None
    n_merged = 0
    if dups:
        first = next(iter(dups))
        if not dedupe:
            n_extra = sum(len(p) - 1 for p in dups.values())
            raise IngestError(f"duplicate gene name '{first}' ({len(dups)} names repeated, "
                              f"{n_extra} extra columns)", path=source, key=key,
                              remedy="pass --dedupe to sum duplicate genes, or fix the input")
        uniques, inverse = dedupe_index(list(names))
        n_merged = len(names) - len(uniques)
        merge = sp.csr_matrix((np.ones(len(names), dtype=np.float64),
                               (np.arange(len(names)), inverse)),
                              shape=(len(names), len(uniques)))
        first_pos = np.unique(inverse, return_index=True)[1]
        extra = extra.iloc[first_pos].reset_index(drop=True)
        names = uniques
    extra.index = pd.Index(names.astype(str), dtype=object)
    return GenePlan(keep=named.astype(np.int64), names=names, var=_small_var(extra),
                    n_dropped_unnamed=int(len(raw_names) - len(named)),
                    n_merged_duplicates=n_merged, merge=merge, value_kind=value_kind)


def _small_var(var: pd.DataFrame) -> pd.DataFrame:
    """Keep var columns anndata can store cheaply: strings and numbers, as plain columns."""
    out = pd.DataFrame(index=var.index)
    for col in var.columns:
        s = var[col]
        if isinstance(s.dtype, pd.CategoricalDtype):
            s = s.astype(object)
        if pd.api.types.is_bool_dtype(s) or pd.api.types.is_numeric_dtype(s):
            out[str(col)] = s.to_numpy()
        else:
            out[str(col)] = s.astype(object).where(s.notna(), "").astype(str).to_numpy()
    return out
