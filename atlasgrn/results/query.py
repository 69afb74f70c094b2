"""Edge queries answered from the Parquet with predicate pushdown, never by reading it whole.

"What does SOX2 regulate here?" is a filter on ``source`` (edge files are sorted by source, so
Parquet row-group statistics skip most of each file) and on the ``dataset`` partition (whole
directories are skipped). Without a filter, ``top`` keeps a running top-N over record batches,
so memory is bounded by N plus one batch whatever the size of the run.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..errors import AtlasgrnError
from .run import Run

KEY_COLUMNS = ("dataset", "source", "target", "score")
#: Sort order of every answer: strongest first, then by name (deterministic output).
ORDER = [("score", "descending"), ("dataset", "ascending"), ("source", "ascending"),
         ("target", "ascending")]


def _filter(regulator: str | None, target: str | None, dataset: str | None
            ) -> pc.Expression | None:
    parts = []
    if regulator is not None:
        parts.append(pc.field("source") == regulator)
    if target is not None:
        parts.append(pc.field("target") == target)
    if dataset is not None:
        parts.append(pc.field("dataset") == dataset)
    if not parts:
        return None
    expr = parts[0]
    for p in parts[1:]:
        expr = expr & p
    return expr


def top_rows(batches: Iterable[pa.RecordBatch], n: int, schema: pa.Schema,
             score: str = "score") -> pa.Table:
    """The ``n`` highest-scoring rows of a stream of batches, strongest first, ties broken by
    name (:data:`ORDER`), whatever the batch boundaries.

    After each batch the candidates are cut to those scoring at least the n-th best score, then
    sorted and cut to n: memory is n rows plus one batch (plus rows tied at the cut-off).
    """
    order = [(score, "descending"), *[o for o in ORDER[1:] if o[0] in schema.names]]
    best = schema.empty_table()
    for batch in batches:
        if batch.num_rows == 0:
            continue
        both = pa.concat_tables([best, pa.Table.from_batches([batch]).cast(schema)])
        if both.num_rows > n:
            s = both[score].to_numpy()
            cut = np.partition(s, len(s) - n)[len(s) - n]
            both = both.filter(pa.array(s >= cut)).sort_by(order).slice(0, n)
        best = both.combine_chunks()
    return best.sort_by(order).slice(0, n)


def select_edges(run: Run, *, regulator: str | None = None, target: str | None = None,
                 dataset: str | None = None, top: int | None = None,
                 columns: Sequence[str] | None = None) -> pa.Table:
    """Edge rows matching the filters, strongest first (``top`` of them, if given).

    Gene names are the model's vocabulary symbols; a name given in another case (``Sox2``) is
    tried in upper case, the rule that maps mouse symbols to the vocabulary.
    """
    run.check_dataset(dataset)
    if top is not None and top < 1:
        raise AtlasgrnError(f"--top {top} is out of range", key="--top",
                            remedy="give --top a positive number of edges")
    cols = list(dict.fromkeys([*KEY_COLUMNS, *(columns or run.logit_columns)]))
    edges = run.edges()
    cols = [c for c in cols if c in edges.schema.names]

    def query(reg: str | None, tgt: str | None) -> pa.Table:
        flt = _filter(reg, tgt, dataset)
        if flt is None and top is not None:
            scanner = edges.scanner(columns=cols, batch_size=65536)
            return top_rows(scanner.to_batches(), top, scanner.projected_schema)
        table = edges.to_table(columns=cols, filter=flt).sort_by(ORDER)
        return table.slice(0, top) if top is not None else table

    table = query(regulator, target)
    if table.num_rows == 0 and (regulator, target) != (_upper(regulator), _upper(target)):
        table = query(_upper(regulator), _upper(target))
    if table.num_rows == 0 and regulator is not None:
        _unknown_regulator(run, regulator, dataset)
    return table


def _upper(name: str | None) -> str | None:
    return None if name is None else name.upper()


def _unknown_regulator(run: Run, regulator: str, dataset: str | None) -> None:
    """One line naming the regulators the run does have (read from one column only)."""
    source = run.consensus() if run.has_consensus() else run.edges()
    names = pc.unique(source.to_table(columns=["source"])["source"]).to_pylist()
    where = f"dataset '{dataset}' of this run" if dataset else "this run"
    shown = ", ".join(sorted(names)[:8]) + (" ..." if len(names) > 8 else "")
    raise AtlasgrnError(f"regulator '{regulator}' is not a source in {where}", path=run.uri,
                        key="--regulator",
                        remedy=f"use one of its {len(names)} regulators: {shown}")


def as_records(table: pa.Table) -> list[dict]:
    """JSON-ready rows (floats as Python floats)."""
    return table.to_pylist()
