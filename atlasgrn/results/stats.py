"""The report's numbers, each computed by streaming record batches of the run's Parquet.

A build of a real atlas holds billions of edge rows, so nothing here reads a table whole: every
read projects the columns it needs, filters on the ``dataset`` partition (whole directories are
skipped) and folds record batches into a bounded accumulator:

- score histograms: fixed bins on [0, 1], ``np.histogram`` counts summed batch by batch (memory:
  the bins);
- top-k edges: a running top-k, cut back to k after every batch (memory: k rows plus a batch);
- regulons: a running top-N targets per regulator (memory: N rows per regulator plus a batch);
- reference labels: one score (float32) and one label (bool) per candidate pair whose source is
  a reference regulator, never the names (memory: 5 bytes per candidate pair).

Ties are broken by name (``source``, then ``target``, ascending) so every answer is deterministic
whatever the batch boundaries, and a pandas ``sort_values`` computes the same one.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as pads

from ..edgelist import read_edge_list
from .query import top_rows
from .run import Run

#: Rows per record batch of every streamed read: the unit of memory besides the accumulators.
BATCH_ROWS = 65_536
#: Files and batches a scan decodes ahead of the consumer. pyarrow's defaults (4 files, 16
#: batches) hold up to four decoded row groups (a million rows each in a consensus part): 2.5x
#: the peak memory of these settings on a 4.5M-row consensus, for a few percent of speed.
READAHEAD = {"fragment_readahead": 1, "batch_readahead": 4}
#: Column-name pairs read as (source, target) in a reference file, case-insensitive, first
#: match wins. The names ``training.prior.read_prior`` knows; not imported from there because
#: that module loads torch (seconds) to read a CSV.


@dataclass(frozen=True)
class ScoreTable:
    """The edge table a report section ranks: the consensus (``score_mean``) or one dataset's
    edges (``score``), as a lazy dataset, the score column and a filter."""

    data: pads.Dataset
    score: str
    filter: pc.Expression | None
    label: str

    def batches(self, columns: Sequence[str], batch_rows: int = BATCH_ROWS,
                extra: pc.Expression | None = None) -> Iterator[pa.RecordBatch]:
        flt = self.filter if extra is None else (
            extra if self.filter is None else self.filter & extra)
        return self.data.scanner(columns=list(columns), filter=flt, batch_size=batch_rows,
                                 **READAHEAD).to_batches()


def consensus_scores(run: Run) -> ScoreTable:
    return ScoreTable(run.consensus(), "score_mean", None, "consensus score_mean")


def dataset_scores(run: Run, dataset: str) -> ScoreTable:
    run.check_dataset(dataset)
    return ScoreTable(run.edges(), "score", pc.field("dataset") == dataset,
                      f"dataset {dataset} score")


# ---------------------------------------------------------------------------------- counts


def edge_counts(run: Run) -> dict[str, int]:
    """Edge rows per dataset (from Parquet metadata: no values are read)."""
    edges = run.edges()
    return {d: int(edges.count_rows(filter=pc.field("dataset") == d)) for d in run.datasets}


def consensus_count(run: Run) -> int | None:
    """Consensus rows, or None when the run has no consensus yet (it is written last)."""
    return int(run.consensus().count_rows()) if run.has_consensus() else None


# ------------------------------------------------------------------------------ histograms


def bin_edges(bins: int) -> np.ndarray:
    """``bins`` equal bins on [0, 1] (scores are sigmoids); the last bin includes 1."""
    return np.linspace(0.0, 1.0, bins + 1)


def score_histograms(run: Run, bins: int, batch_rows: int = BATCH_ROWS
                     ) -> dict[str, np.ndarray]:
    """Per dataset, counts of ``score`` in :func:`bin_edges` bins, summed over record batches."""
    edges_of_bins = bin_edges(bins)
    edges = run.edges()
    counts = {}
    for d in run.datasets:
        total = np.zeros(bins, dtype=np.int64)
        scanner = edges.scanner(columns=["score"], filter=pc.field("dataset") == d,
                                batch_size=batch_rows, **READAHEAD)
        for batch in scanner.to_batches():
            values = batch.column(0).to_numpy(zero_copy_only=False)
            total += np.histogram(values, bins=edges_of_bins)[0]
        counts[d] = total
    return counts


# ---------------------------------------------------------------------------------- top-k


def top_edges(table: ScoreTable, k: int, batch_rows: int = BATCH_ROWS) -> pa.Table:
    """The ``k`` highest-scoring rows (``source``, ``target``, score), ties broken by name:
    :func:`atlasgrn.results.query.top_rows` over the table's batches (memory: k rows plus one
    batch)."""
    schema = pa.schema([("source", pa.string()), ("target", pa.string()),
                        (table.score, pa.float32())])
    return top_rows(table.batches(["source", "target", table.score], batch_rows), k, schema,
                    score=table.score)


def top_edge_sets(run: Run, k: int, batch_rows: int = BATCH_ROWS
                  ) -> dict[str, set[tuple[str, str]]]:
    """Per dataset, its ``k`` strongest (source, target) pairs."""
    out = {}
    for d in run.datasets:
        top = top_edges(dataset_scores(run, d), k, batch_rows)
        out[d] = set(zip(top["source"].to_pylist(), top["target"].to_pylist()))
    return out


def jaccard_matrix(sets: Sequence[set]) -> np.ndarray:
    """|A & B| / |A | B| for every pair (1 on the diagonal; NaN where both sets are empty)."""
    n = len(sets)
    m = np.ones((n, n))
    for i in range(n):
        for j in range(i + 1, n):
            union = len(sets[i] | sets[j])
            m[i, j] = m[j, i] = len(sets[i] & sets[j]) / union if union else np.nan
    return m


# -------------------------------------------------------------------------------- regulons


@dataclass(frozen=True)
class Regulon:
    """A regulator, the mean score of its top targets (its rank key) and those targets."""

    regulator: str
    strength: float
    targets: tuple[tuple[str, float], ...]


def _top_per_source(t: pa.Table, score: str, n: int) -> tuple[pa.Table, np.ndarray]:
    """Each source's ``n`` best rows (sorted by source, then score, then target), and the
    start offset of each source's group."""
    t = t.sort_by([("source", "ascending"), (score, "descending"), ("target", "ascending")])
    src = t["source"].combine_chunks()
    new = np.ones(t.num_rows, dtype=bool)
    if t.num_rows > 1:
        new[1:] = pc.not_equal(src.slice(1), src.slice(0, t.num_rows - 1)).to_numpy(
            zero_copy_only=False)
    starts = np.flatnonzero(new)
    rank = np.arange(t.num_rows) - starts[np.cumsum(new) - 1]
    keep = rank < n
    if keep.all():
        return t, starts
    kept = t.filter(pa.array(keep))
    return kept, np.flatnonzero(new[keep])


def top_regulons(table: ScoreTable, n_targets: int, n_regulators: int,
                 batch_rows: int = BATCH_ROWS) -> tuple[list[Regulon], int]:
    """The ``n_regulators`` regulators with the highest mean score over their ``n_targets``
    best targets (ties by name), each with those targets; and the number of regulators seen.

    A running top-N per regulator is folded over the batches: memory is N rows per regulator
    (thousands at most: regulators are transcription factors) plus one batch.
    """
    cols = ["source", "target", table.score]
    best: pa.Table | None = None
    for batch in table.batches(cols, batch_rows):
        if batch.num_rows == 0:
            continue
        both = pa.Table.from_batches([batch]) if best is None else pa.concat_tables(
            [best, pa.Table.from_batches([batch]).cast(best.schema)])
        best = _top_per_source(both, table.score, n_targets)[0].combine_chunks()
    if best is None:
        return [], 0
    best, starts = _top_per_source(best, table.score, n_targets)
    scores = best[table.score].to_numpy().astype(np.float64)
    counts = np.diff(np.append(starts, len(scores)))
    strength = np.add.reduceat(scores, starts) / counts
    names = best["source"].to_pylist()
    targets = best["target"].to_pylist()
    regs = [names[s] for s in starts]
    chosen = sorted(range(len(starts)), key=lambda g: (-strength[g], regs[g]))[:n_regulators]
    out = []
    for g in chosen:
        lo, hi = starts[g], starts[g] + counts[g]
        out.append(Regulon(regs[g], float(strength[g]),
                           tuple((targets[i], float(scores[i])) for i in range(lo, hi))))
    return out, len(starts)


# ------------------------------------------------------------------------------- reference


def read_reference(path: str | os.PathLike[str], option: str = "--reference") -> pd.DataFrame:
    """``source``, ``target`` (str) of a CSV/TSV network (:func:`atlasgrn.edgelist.read_edge_list`,
    the reader of ``train-translator --prior``)."""
    return read_edge_list(path, option=option, what="reference network",
                          remedy="give a CSV/TSV file with a header naming source,target (or "
                                 "Gene1,Gene2 / TF,Target) columns")


@dataclass(frozen=True)
class Labelled:
    """Scores and reference labels of the candidate pairs (source a reference regulator)."""

    scores: np.ndarray
    labels: np.ndarray
    n_reference_edges: int
    n_reference_regulators: int
    n_regulators_matched: int


def _key(source: pa.Array, target: pa.Array) -> pa.Array:
    return pc.binary_join_element_wise(source, target, "\t")


def label_pairs(table: ScoreTable, reference: pd.DataFrame, batch_rows: int = BATCH_ROWS
                ) -> Labelled:
    """Label each pair of ``table`` whose source is a reference regulator: 1 if the reference
    has the edge. Names match as given or in upper case (mouse symbols map to the model's
    vocabulary by upper case, as the run's outputs do)."""
    src = reference["source"].astype(str)
    tgt = reference["target"].astype(str)
    regulators = sorted(set(src) | set(src.str.upper()))
    keys = pa.array(sorted(set(src + "\t" + tgt) | set(src.str.upper() + "\t" + tgt.str.upper())))
    scores, labels, seen = [], [], set()
    flt = pc.field("source").isin(pa.array(regulators, pa.string()))
    for batch in table.batches(["source", "target", table.score], batch_rows, extra=flt):
        if batch.num_rows == 0:
            continue
        s, t = batch.column("source"), batch.column("target")
        labels.append(pc.is_in(_key(s, t), value_set=keys).to_numpy(zero_copy_only=False))
        scores.append(batch.column(table.score).to_numpy(zero_copy_only=False)
                      .astype(np.float32))
        seen.update(pc.unique(s).to_pylist())
    return Labelled(
        scores=np.concatenate(scores) if scores else np.empty(0, np.float32),
        labels=np.concatenate(labels).astype(bool) if labels else np.empty(0, bool),
        n_reference_edges=len(reference),
        n_reference_regulators=int(src.nunique()),
        n_regulators_matched=len(seen),
    )
