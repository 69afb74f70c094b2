"""Cells from an atlas, streamed into token batches for pre-training and evaluation.

Never the whole atlas in memory: each dataset is read block by block (``read_cells``) in a
shuffled block order, its cells pass through a bounded shuffle buffer, and batches draw their
cells from datasets uniformly at random, so a 1M-cell dataset does not drown a 500-cell one.
Every cell is normalised once to the model's value space (:func:`to_model_space`) over all of
its dataset's genes, before genes outside the vocabulary are dropped.

Held-out cells are chosen per dataset by a seeded coin (``val_fraction``), reproducible from
``(seed, dataset name)`` alone, so ``model-eval`` finds the same cells the training never saw.
Gene sampling per cell: ``min(context, n_genes)`` genes without replacement, a non-zero gene
``nonzero_weight`` times likelier than a zero gene (weighted sampling by exponential keys).
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator, Mapping, Sequence

import numpy as np
import scipy.sparse as sp

from ..atlas import AtlasDataset
from ..models.values import to_model_space
from ..models.vocab import map_genes
from .config import SamplerConfig


def holdout_mask(dataset: str, n_cells: int, seed: int, fraction: float) -> np.ndarray:
    """Bool [n_cells]: True for held-out (validation) cells; depends on (seed, name) only."""
    rng = np.random.default_rng([seed, zlib.crc32(dataset.encode()), 0x5EED])
    return rng.random(n_cells) < fraction


class DatasetCells:
    """One dataset seen through a vocabulary: kept gene columns and their token ids."""

    def __init__(self, ds: AtlasDataset, vocab: Mapping[str, int], seed: int,
                 val_fraction: float) -> None:
        self.ds = ds
        self.name = ds.name
        ids = map_genes(vocab, list(ds.genes))
        self.columns = np.flatnonzero(ids >= 0)
        self.token_ids = ids[self.columns]
        self.holdout = holdout_mask(ds.name, ds.info.n_cells, seed, val_fraction)

    @property
    def n_genes(self) -> int:
        return int(self.columns.size)

    def read(self, start: int, stop: int) -> sp.csr_matrix:
        """Cells [start, stop) in model space, restricted to vocabulary genes (CSR)."""
        block = self.ds.read_cells(start, stop)
        block = to_model_space(sp.csr_matrix(block), self.ds.info.value_kind)
        return sp.csr_matrix(block[:, self.columns])

    def iter_split(self, split: str, rng: np.random.Generator | None, block_cells: int
                   ) -> Iterator[sp.csr_matrix]:
        """Blocks of the split's cells; block order shuffled when ``rng`` is given."""
        n = self.ds.info.n_cells
        starts = np.arange(0, n, block_cells)
        if rng is not None:
            starts = rng.permutation(starts)
        want = self.holdout if split == "val" else ~self.holdout
        for s in starts:
            e = min(int(s) + block_cells, n)
            rows = np.flatnonzero(want[s:e])
            if rows.size:
                yield self.read(int(s), e)[rows]


class ShuffledStream:
    """Endless training cells of one dataset through a bounded shuffle buffer."""

    def __init__(self, cells: DatasetCells, rng: np.random.Generator, block_cells: int,
                 buffer_cells: int) -> None:
        self.cells, self.rng = cells, rng
        self.block_cells, self.capacity = block_cells, max(buffer_cells, 1)
        self._buffer: list[tuple[np.ndarray, np.ndarray]] = []
        self._blocks: Iterator[sp.csr_matrix] = iter(())
        self._empty_epochs = 0

    def _refill(self) -> None:
        while len(self._buffer) < self.capacity:
            block = next(self._blocks, None)
            if block is None:
                if self._empty_epochs > 1:
                    raise ValueError(f"dataset '{self.cells.name}' has no training cells")
                self._empty_epochs += 1
                self._blocks = self.cells.iter_split("train", self.rng, self.block_cells)
                continue
            self._empty_epochs = 0
            for r in range(block.shape[0]):
                lo, hi = block.indptr[r], block.indptr[r + 1]
                self._buffer.append((block.indices[lo:hi].copy(), block.data[lo:hi].copy()))
            if len(self._buffer) >= self.capacity // 2 and self._buffer:
                break

    def next_cell(self) -> tuple[np.ndarray, np.ndarray]:
        if not self._buffer:
            self._refill()
        i = int(self.rng.integers(len(self._buffer)))
        self._buffer[i], self._buffer[-1] = self._buffer[-1], self._buffer[i]
        return self._buffer.pop()


def sample_genes(n_genes: int, nz_cols: np.ndarray, nz_vals: np.ndarray, length: int,
                 nonzero_weight: float, rng: np.random.Generator
                 ) -> tuple[np.ndarray, np.ndarray]:
    """(columns, values) of ``min(length, n_genes)`` genes, non-zero genes favoured."""
    if length >= n_genes:
        cols = np.arange(n_genes)
    else:
        keys = np.log(rng.random(n_genes))  # exponential keys: top-k = weighted w/o replacement
        keys[nz_cols] /= nonzero_weight
        cols = np.sort(np.argpartition(-keys, length - 1)[:length])
    vals = np.zeros(cols.size, dtype=np.float32)
    pos = np.searchsorted(cols, nz_cols)
    hit = (pos < cols.size) & (cols[np.minimum(pos, cols.size - 1)] == nz_cols)
    vals[pos[hit]] = nz_vals[hit]
    return cols, vals


def pack(cells: Sequence[tuple[np.ndarray, np.ndarray]], pad_id: int, pad_value: float
         ) -> tuple[np.ndarray, np.ndarray]:
    """Right-pad (token ids, values) rows into [B, L] arrays."""
    width = max(len(t) for t, _ in cells)
    ids = np.full((len(cells), width), pad_id, dtype=np.int64)
    vals = np.full((len(cells), width), pad_value, dtype=np.float32)
    for i, (t, v) in enumerate(cells):
        ids[i, :len(t)] = t
        vals[i, :len(v)] = v
    return ids, vals


def context_length(cfg: SamplerConfig, rng: np.random.Generator) -> int:
    """Log-uniform in [min_len, max_len]: short and long contexts both seen in training."""
    lo, hi = np.log(min(cfg.min_len, cfg.max_len)), np.log(cfg.max_len)
    return int(round(float(np.exp(rng.uniform(lo, hi)))))


class TrainBatches:
    """Endless balanced training batches over several datasets (numpy ids, values)."""

    def __init__(self, datasets: Sequence[DatasetCells], cfg: SamplerConfig, pad_id: int,
                 pad_value: float, start_step: int = 0) -> None:
        if not datasets:
            raise ValueError("no datasets to sample from")
        self.datasets, self.cfg = list(datasets), cfg
        self.pad_id, self.pad_value = pad_id, pad_value
        self.rng = np.random.default_rng([cfg.seed, start_step, 1])
        per = max(cfg.buffer_cells // len(self.datasets), 64)
        self.streams = [ShuffledStream(d, np.random.default_rng([cfg.seed, start_step, 2, k]),
                                       cfg.block_cells, per)
                        for k, d in enumerate(self.datasets)]

    def __iter__(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        while True:
            yield self.next_batch()

    def next_batch(self) -> tuple[np.ndarray, np.ndarray]:
        length = context_length(self.cfg, self.rng)
        picks = self.rng.integers(len(self.datasets), size=self.cfg.batch_size)
        rows = []
        for k in picks:
            d, stream = self.datasets[k], self.streams[k]
            cols_nz, vals_nz = stream.next_cell()
            cols, vals = sample_genes(d.n_genes, cols_nz, vals_nz, length,
                                      self.cfg.nonzero_weight, self.rng)
            rows.append((d.token_ids[cols], vals))
        return pack(rows, self.pad_id, self.pad_value)


def heldout_cells(d: DatasetCells, limit: int, block_cells: int) -> sp.csr_matrix:
    """Up to ``limit`` held-out cells of a dataset, in dataset order (streamed)."""
    parts, n = [], 0
    for block in d.iter_split("val", None, block_cells):
        parts.append(block[: limit - n])
        n += parts[-1].shape[0]
        if n >= limit:
            break
    if not parts:
        return sp.csr_matrix((0, d.n_genes), dtype=np.float32)
    return sp.csr_matrix(sp.vstack(parts))


def tokenise_cells(d: DatasetCells, cells: sp.csr_matrix, length: int, cfg: SamplerConfig,
                   rng: np.random.Generator, pad_id: int, pad_value: float
                   ) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Fixed-length token rows (ids, values, column positions) of the given cells."""
    out = []
    for r in range(cells.shape[0]):
        lo, hi = cells.indptr[r], cells.indptr[r + 1]
        cols, vals = sample_genes(d.n_genes, cells.indices[lo:hi], cells.data[lo:hi], length,
                                  cfg.nonzero_weight, rng)
        out.append((d.token_ids[cols], vals, cols))
    return out
