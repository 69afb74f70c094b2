"""Exports of a run's network in the formats other tools read.

- ``graphml``: a directed graph for Cytoscape and networkx (edge attributes: score, per-kind
  logits or consensus columns; node attribute ``regulator``).
- ``adjacency``: pySCENIC's adjacency table, tab-separated ``TF``, ``target``, ``importance``.
- ``gmt``: regulons, one line per regulator (per dataset: ``<TF>__<dataset>``) listing its
  targets among the exported edges.
- ``h5ad``: an AnnData whose ``varp["network"]`` is the genes x genes sparse matrix of scores
  (row = regulator, column = target), for scanpy users.

Which edges: with ``--dataset``, that dataset's edges; without, the cross-dataset consensus
(score = ``score_mean``), except for ``gmt``, which writes every dataset's regulons. ``top``
keeps the N strongest (0: all). Rows are read with column projections and a bounded top-N, and
every file is published atomically.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa

from ..atomic import write_path_atomic, write_text_atomic
from .query import ORDER, select_edges, top_rows
from .run import Run

FORMATS = ("graphml", "adjacency", "gmt", "h5ad")
#: Edges exported unless --top says otherwise (0 = all).
DEFAULT_TOP = 10_000


def network(run: Run, dataset: str | None, top: int) -> pa.Table:
    """``source, target, score`` (+ extra columns) of the edges to export, strongest first."""
    if dataset is not None:
        table = select_edges(run, dataset=dataset, top=top or None)
        return table.drop_columns(["dataset"])
    cons = run.consensus()
    scanner = cons.scanner(batch_size=65536)
    if top:
        table = top_rows(_renamed(scanner.to_batches()), top, _score_schema(scanner))
    else:
        table = pa.Table.from_batches(list(_renamed(scanner.to_batches())),
                                      schema=_score_schema(scanner))
    return table.sort_by([o for o in ORDER if o[0] != "dataset"])


def _score_schema(scanner) -> pa.Schema:
    names = ["score" if n == "score_mean" else n for n in scanner.projected_schema.names]
    return pa.schema([pa.field(n, f.type) for n, f in zip(names, scanner.projected_schema)])


def _renamed(batches):
    for b in batches:
        yield b.rename_columns(["score" if n == "score_mean" else n for n in b.schema.names])


def write_graphml(table: pa.Table, path: Path) -> None:
    import networkx as nx

    graph = nx.DiGraph()
    regulators = set(table["source"].to_pylist())
    genes = sorted(regulators | set(table["target"].to_pylist()))
    graph.add_nodes_from((g, {"regulator": g in regulators}) for g in genes)
    attrs = [c for c in table.column_names if c not in ("source", "target")]
    cols = {c: table[c].to_pylist() for c in attrs}
    for i, (s, t) in enumerate(zip(table["source"].to_pylist(), table["target"].to_pylist())):
        graph.add_edge(s, t, **{c: _plain(cols[c][i]) for c in attrs})
    write_path_atomic(path, lambda tmp: nx.write_graphml(graph, tmp))


def _plain(value: object) -> object:
    return float(value) if isinstance(value, (float, np.floating)) else value


def write_adjacency(table: pa.Table, path: Path) -> None:
    frame = table.select(["source", "target", "score"]).to_pandas()
    frame.columns = ["TF", "target", "importance"]
    write_path_atomic(path, lambda tmp: frame.to_csv(tmp, sep="\t", index=False))


def regulon_lines(table: pa.Table, suffix: str = "") -> list[str]:
    """GMT lines: ``name<TAB>description<TAB>target...``, targets strongest first."""
    frame = table.select(["source", "target", "score"]).to_pandas()
    lines = []
    for tf, group in frame.groupby("source", sort=True):
        group = group.sort_values(["score", "target"], ascending=[False, True])
        name = f"{tf}__{suffix}" if suffix else str(tf)
        desc = (f"atlasgrn regulon: {len(group)} targets, score {group['score'].min():.4f}"
                f"-{group['score'].max():.4f}")
        lines.append("\t".join([name, desc, *group["target"].astype(str)]))
    return lines


def write_gmt(run: Run, dataset: str | None, top: int, path: Path) -> None:
    names = [dataset] if dataset is not None else run.datasets
    lines = []
    for name in names:
        lines += regulon_lines(network(run, name, top), suffix=name)
    write_text_atomic(path, "\n".join(lines) + "\n")


def write_h5ad(table: pa.Table, path: Path, run: Run, dataset: str | None, top: int) -> None:
    import anndata as ad
    import pandas as pd
    import scipy.sparse as sp

    genes = sorted(set(table["source"].to_pylist()) | set(table["target"].to_pylist()))
    index = {g: i for i, g in enumerate(genes)}
    rows = np.fromiter((index[g] for g in table["source"].to_pylist()), np.int64, table.num_rows)
    cols = np.fromiter((index[g] for g in table["target"].to_pylist()), np.int64, table.num_rows)
    scores = table["score"].to_numpy(zero_copy_only=False).astype(np.float32)
    matrix = sp.csr_matrix((scores, (rows, cols)), shape=(len(genes), len(genes)))
    var = pd.DataFrame({"regulator": [g in set(table["source"].to_pylist()) for g in genes]},
                       index=pd.Index(genes, name="gene"))
    adata = ad.AnnData(obs=pd.DataFrame(index=pd.Index([], dtype=str)), var=var)
    adata.varp["network"] = matrix
    adata.uns["atlasgrn"] = {"run": run.uri, "dataset": dataset or "consensus",
                             "top": int(top), "edges": int(table.num_rows),
                             "score": "score_mean" if dataset is None else "score",
                             "run_hash": str(run.manifest.get("run_hash", "")),
                             "complete": bool(run.complete)}
    write_path_atomic(path, lambda tmp: adata.write_h5ad(tmp))


def export(run: Run, fmt: str, out: str | os.PathLike[str], *, dataset: str | None = None,
           top: int = DEFAULT_TOP) -> int:
    """Write the export; returns the number of edges in it."""
    run.check_dataset(dataset)
    path = Path(out)
    if fmt == "gmt":
        write_gmt(run, dataset, top, path)
        return sum(len(ln.split("\t")) - 2 for ln in path.read_text().splitlines())
    table = network(run, dataset, top)
    writers: dict[str, Callable[[], None]] = {
        "graphml": lambda: write_graphml(table, path),
        "adjacency": lambda: write_adjacency(table, path),
        "h5ad": lambda: write_h5ad(table, path, run, dataset, top),
    }
    writers[fmt]()
    return table.num_rows
