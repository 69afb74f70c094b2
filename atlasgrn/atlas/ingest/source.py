"""What every format backend hands to the ingest pipeline.

A backend opens a file and returns a :class:`Source`: gene names and per-gene columns known up
front, a small sample of cells for inference, and an iterator of (cells x genes) CSR blocks.
Keeping this the only contract makes a new format one new module (the xarray habit).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import scipy.sparse as sp

#: One block of cells: values (cells x source genes), cell names, and obs rows (or None).
Block = tuple[sp.csr_matrix, np.ndarray, pd.DataFrame | None]


@dataclass
class Source:
    """An opened input, ready to stream."""

    path: str
    genes: np.ndarray  # raw gene names, one per source column
    var: pd.DataFrame | None  # extra per-gene columns aligned with ``genes``
    n_cells: int
    blocks: Callable[[int], Iterator[Block]]  # block_cells -> blocks, in cell order
    sample: Callable[[int], sp.csr_matrix]  # max_cells -> the first cells
    description: str  # what was read (matrix, orientation), for the dataset's ``source`` attr
    notes: list[str] = field(default_factory=list)  # warnings gathered while opening
    close: Callable[[], None] = lambda: None


class ColumnBlocks:
    """Collect (cells x some-genes) column slabs, then serve (cells x all-genes) row blocks.

    Used where the input can only be read gene-wise cheaply: genes x cells text tables, and
    dense h5ad matrices chunked by column. Memory is bounded by the *sparse* size of the whole
    dataset (data + indices), never by its dense size; that is the price of transposing a
    stream, and it is small for the single-cell matrices we ingest (mostly zeros).
    """

    def __init__(self, n_cells: int) -> None:
        self.n_cells = n_cells
        self._parts: list[sp.csc_matrix] = []
        self.n_genes = 0

    def add(self, slab: np.ndarray | sp.spmatrix) -> None:
        """Add the next genes: ``slab`` is (n_cells x g)."""
        part = sp.csc_matrix(slab, dtype=np.float32)
        if part.shape[0] != self.n_cells:
            raise ValueError(f"slab has {part.shape[0]} cells, expected {self.n_cells}")
        part.eliminate_zeros()
        self._parts.append(part)
        self.n_genes += part.shape[1]

    def add_genes_by_cells(self, rows: np.ndarray | sp.spmatrix) -> None:
        """Add the next genes given as (g x n_cells) rows, as a genes x cells table has them."""
        part = sp.csr_matrix(rows, dtype=np.float32)
        part.eliminate_zeros()
        self.add(part.T)

    def to_csr(self) -> sp.csr_matrix:
        if not self._parts:
            return sp.csr_matrix((self.n_cells, 0), dtype=np.float32)
        full = sp.hstack(self._parts, format="csr", dtype=np.float32)
        self._parts = []
        full.sort_indices()
        return full


def row_blocks(matrix: sp.csr_matrix, names: np.ndarray, obs: pd.DataFrame | None,
               block_cells: int) -> Iterator[Block]:
    """Slice an in-memory CSR into row blocks with their names and obs rows."""
    for start in range(0, matrix.shape[0], block_cells):
        stop = min(start + block_cells, matrix.shape[0])
        yield (matrix[start:stop], names[start:stop],
               None if obs is None else obs.iloc[start:stop])
