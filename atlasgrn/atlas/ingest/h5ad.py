"""AnnData ``.h5ad`` files, read without loading the matrix.

Only ``obs`` and ``var`` are read into memory (with ``anndata.io.read_elem``). The matrix stays
in the file: CSR matrices are sliced by row, CSC matrices by column, and dense matrices in the
order their HDF5 chunks allow:

* row-chunked or contiguous dense X: row blocks aligned to the chunk rows;
* column-chunked dense X (chunks spanning all cells, as in every file of the shared corpus):
  a row block would decompress every chunk of the file, once per block, so the matrix is read in
  column slabs instead and transposed through a sparse buffer (:class:`ColumnBlocks`; memory =
  the sparse size of the dataset).

Old-style files (pre-0.7 anndata, e.g. scanpy's ``pbmc68k_reduced``) have no element encodings;
they are opened with ``anndata.read_h5ad(backed="r")``, which understands them.

Gene names: when var has a symbol column (``gene_symbol``, ``gene_symbols``, ``symbol``,
``feature_name``, or ``gene_column=``), it supplies the gene names and the original var_names
are kept in the var column ``source_id``; genes with an empty symbol are dropped (counted in the
report).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator
from typing import Any

import anndata as ad
import h5py
import numpy as np
import pandas as pd
import scipy.sparse as sp

from ...errors import IngestError
from .formats import InputFormat, OpenOptions, register_format
from .source import Block, ColumnBlocks, Source, row_blocks

SYMBOL_COLUMNS = ("gene_symbol", "gene_symbols", "symbol", "symbols", "feature_name")
#: Dense bytes read per block or slab (bounded memory whatever the file).
DENSE_BLOCK_BYTES = 64 << 20
MAX_OBS_COLUMNS = 32
MAX_OBS_LEVELS = 1000


def _corrupt(path: str, key: str, exc: BaseException) -> IngestError:
    return IngestError(f"cannot read h5ad (truncated or corrupt: {type(exc).__name__}: "
                       f"{str(exc).splitlines()[0] if str(exc) else ''})", path=path, key=key,
                       remedy="re-download or re-write the file")


def _select_matrix(h5: h5py.File, matrix: str, path: str) -> tuple[Any, str, str]:
    """The matrix element, the var element key, and the matrix key."""
    if matrix == "X":
        keys = ("X", "var")
    elif matrix == "raw":
        keys = ("raw/X", "raw/var")
    elif matrix.startswith("layers/"):
        keys = (matrix, "var")
    else:
        raise IngestError(f"unknown matrix {matrix!r}", path=path, key="matrix",
                          remedy="use X, raw, or layers/<name>")
    if keys[0] not in h5:
        raise IngestError(f"h5ad has no {keys[0]}", path=path, key=keys[0],
                          remedy="pass --matrix X|raw|layers/<name> naming a matrix it has")
    elem = h5[keys[0]]
    if isinstance(elem, h5py.Group):
        elem = ad.io.sparse_dataset(elem)
    return elem, keys[1], keys[0]


def gene_names_from_var(var: pd.DataFrame, gene_column: str | None, path: str, var_key: str
                ) -> tuple[np.ndarray, pd.DataFrame, str]:
    """Pick the gene-name column; return (names, extra var columns, where names came from)."""
    cols = {str(c).lower(): c for c in var.columns}
    if gene_column is not None:
        if gene_column not in var.columns:
            raise IngestError(f"var has no column {gene_column!r} (columns: "
                              f"{', '.join(map(str, var.columns)) or 'none'})", path=path,
                              key=f"{var_key}/{gene_column}",
                              remedy="pass --gene-column naming an existing var column")
        col = gene_column
    else:
        col = next((cols[c] for c in SYMBOL_COLUMNS if c in cols), None)
    extra = var.copy()
    if col is None:
        names = np.asarray(var.index, dtype=object)
        return names, extra, "var_names"
    names = var[col].astype(object).to_numpy()
    extra = extra.drop(columns=[col])
    if not np.array_equal(np.asarray(var.index, dtype=object).astype(str), names.astype(str)):
        extra.insert(0, "source_id", np.asarray(var.index, dtype=object).astype(str))
    return names, extra, f"var['{col}']"


def small_obs(obs: pd.DataFrame) -> pd.DataFrame | None:
    """Keep obs columns worth carrying: numbers, booleans, and low-cardinality labels.

    Id-like string columns (one value per cell) and wide annotations are dropped so obs stays a
    small fraction of the dataset. Labels are stored as categoricals.
    """
    keep: dict[str, pd.Series] = {}
    n = len(obs)
    for col in obs.columns:
        if len(keep) >= MAX_OBS_COLUMNS or str(col).startswith("_"):
            continue
        s = obs[col]
        if isinstance(s.dtype, pd.CategoricalDtype):
            if len(s.cat.categories) <= MAX_OBS_LEVELS:
                keep[str(col)] = s.cat.rename_categories(lambda c: str(c)) if not all(
                    isinstance(c, str) for c in s.cat.categories) else s
        elif pd.api.types.is_bool_dtype(s) or pd.api.types.is_numeric_dtype(s):
            keep[str(col)] = s
        elif s.dtype == object or pd.api.types.is_string_dtype(s):
            levels = s.astype(str).nunique()
            if levels <= MAX_OBS_LEVELS and (levels < n or n <= 1):
                keep[str(col)] = s.astype(str).astype("category")
    if not keep:
        return None
    out = pd.DataFrame(keep)
    out.index = pd.RangeIndex(n)
    return out


def _dense_plan(ds: h5py.Dataset, n_cells: int, n_genes: int) -> tuple[str, int]:
    """('rows'|'columns', step) for a dense HDF5 dataset, from its chunk shape."""
    itemsize = ds.dtype.itemsize
    chunks = ds.chunks
    if chunks is not None and chunks[0] >= n_cells and n_cells > 1:
        per = max(chunks[1], (DENSE_BLOCK_BYTES // max(n_cells * itemsize, 1)) // chunks[1]
                  * chunks[1])
        return "columns", per
    rows = max(1, DENSE_BLOCK_BYTES // max(n_genes * itemsize, 1))
    if chunks is not None:
        rows = max(chunks[0], rows // chunks[0] * chunks[0])
    return "rows", rows


def open_h5ad(path: str, *, matrix: str = "X", gene_column: str | None = None) -> Source:
    """Open an h5ad for streaming (the file stays open until ``Source.close``)."""
    try:
        h5 = h5py.File(path, "r")
    except (OSError, ValueError) as exc:
        raise _corrupt(path, "file", exc) from None
    try:
        legacy = not (isinstance(h5.get("obs"), h5py.Group)
                      and "encoding-type" in h5["obs"].attrs)
        if legacy:
            h5.close()
            return _open_legacy(path, matrix=matrix, gene_column=gene_column)
        elem, var_key, mat_key = _select_matrix(h5, matrix, path)
        obs = ad.io.read_elem(h5["obs"])
        var = ad.io.read_elem(h5[var_key])
    except IngestError:
        h5.close()
        raise
    except Exception as exc:  # noqa: BLE001 - any failure of a corrupt file is bad input
        h5.close()
        raise _corrupt(path, "obs/var", exc) from None
    return _source(path, h5, elem, obs, var, var_key, mat_key, gene_column, h5.close)


def _open_legacy(path: str, *, matrix: str, gene_column: str | None) -> Source:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            adata = ad.read_h5ad(path, backed="r")
        except Exception as exc:  # noqa: BLE001
            raise _corrupt(path, "file", exc) from None
    if matrix == "X":
        elem, var = adata.X, adata.var
    elif matrix == "raw" and adata.raw is not None:
        elem, var = adata.raw.X, adata.raw.var
    elif matrix.startswith("layers/") and matrix[7:] in adata.layers:
        elem, var = adata.layers[matrix[7:]], adata.var
    else:
        adata.file.close()
        raise IngestError(f"h5ad has no {matrix}", path=path, key=matrix,
                          remedy="pass --matrix X|raw|layers/<name> naming a matrix it has")
    var_key = "raw/var" if matrix == "raw" else "var"
    return _source(path, None, elem, adata.obs, var, var_key, matrix, gene_column,
                   adata.file.close)


def _source(path: str, h5: h5py.File | None, elem: Any, obs: pd.DataFrame, var: pd.DataFrame,
            var_key: str, mat_key: str, gene_column: str | None, close) -> Source:
    n_cells, n_genes = int(elem.shape[0]), int(elem.shape[1])
    if len(obs) != n_cells or len(var) != n_genes:
        close()
        raise IngestError(f"{mat_key} is {n_cells} x {n_genes} but obs has {len(obs)} rows and "
                          f"var {len(var)}", path=path, key=mat_key,
                          remedy="pass the matrix that matches var (e.g. --matrix raw)")
    names, extra, origin = gene_names_from_var(var, gene_column, path, var_key)
    cell_names = np.asarray(obs.index, dtype=object).astype(str)
    obs_small = small_obs(obs)
    reader = _MatrixReader(path, elem, mat_key, n_cells, n_genes)
    return Source(path=path, genes=names, var=extra, n_cells=n_cells,
                  blocks=lambda n: reader.blocks(n, cell_names, obs_small),
                  sample=reader.sample,
                  description=f"{os.path.basename(path)} ({mat_key}, genes from {origin})",
                  close=close)


class _MatrixReader:
    """Block reads of one h5ad matrix in the order its storage allows."""

    def __init__(self, path: str, elem: Any, key: str, n_cells: int, n_genes: int) -> None:
        self.path, self.elem, self.key = path, elem, key
        self.n_cells, self.n_genes = n_cells, n_genes
        fmt = getattr(elem, "format", None)
        if isinstance(elem, h5py.Dataset):
            self.mode, self.step = _dense_plan(elem, n_cells, n_genes)
        elif fmt == "csc" or sp.isspmatrix_csc(elem):
            self.mode, self.step = "columns", 2048
        else:
            self.mode, self.step = "rows", 0
        self._full: sp.csr_matrix | None = None

    def _read(self, rows: slice, cols: slice = slice(None)) -> sp.csr_matrix:
        try:
            part = self.elem[rows, cols] if cols != slice(None) else self.elem[rows]
        except Exception as exc:  # noqa: BLE001 - truncated chunks surface here
            raise _corrupt(self.path, self.key, exc) from None
        return sp.csr_matrix(part, dtype=np.float32)

    def _by_columns(self) -> sp.csr_matrix:
        if self._full is None:
            acc = ColumnBlocks(self.n_cells)
            for j in range(0, self.n_genes, self.step):
                acc.add(self._read(slice(None), slice(j, min(j + self.step, self.n_genes))))
            self._full = acc.to_csr()
        return self._full

    def sample(self, max_cells: int) -> sp.csr_matrix:
        if self.mode == "columns":
            return self._by_columns()[:max_cells]
        return self._read(slice(0, min(max_cells, self.n_cells)))

    def blocks(self, block_cells: int, names: np.ndarray, obs: pd.DataFrame | None
               ) -> Iterator[Block]:
        if self.mode == "columns":
            full = self._by_columns()
            yield from row_blocks(full, names, obs, block_cells)
            self._full = None
            return
        step = min(block_cells, self.step) if self.step else block_cells
        for start in range(0, self.n_cells, step):
            stop = min(start + step, self.n_cells)
            yield (self._read(slice(start, stop)), names[start:stop],
                   None if obs is None else obs.iloc[start:stop])


def _open_for_ingest(path: str, options: OpenOptions) -> Source:
    if options.cells_by_genes:
        raise IngestError("--cells-by-genes applies to text tables, not h5ad", path=path,
                          key="cells_by_genes", remedy="drop the option (h5ad is cells x genes)")
    return open_h5ad(path, matrix=options.matrix, gene_column=options.gene_column)


#: HDF5 needs random access, so ``.h5ad.gz`` is refused (gunzip first).
FORMAT = register_format(InputFormat("h5ad", (".h5ad",), _open_for_ingest, gzip=False))
