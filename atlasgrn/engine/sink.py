"""Writing run output (design §3.4): per-block edge files, consensus, manifest, ``_SUCCESS``.

Ray Data's ``write_parquet`` names files randomly and is not atomic, so each block's edges are
written by us under a name derived from its block id, to a temporary name first and then moved
into place (local) or PUT in one request (object stores, where a single PUT is atomic). A file
that exists is therefore complete, and a resumed run skips exactly the blocks whose file exists.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterable, Mapping
from typing import Any

import fsspec
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as pads
import pyarrow.parquet as pq

from .plan import BlockSpec

EDGE_SCHEMA = pa.schema([
    ("source", pa.string()), ("target", pa.string()), ("score", pa.float32()),
    ("logit_vvp", pa.float32()), ("logit_gdt", pa.float32()),
])
CONSENSUS_SCHEMA = pa.schema([
    ("source", pa.string()), ("target", pa.string()), ("score_mean", pa.float32()),
    ("score_max", pa.float32()), ("n_datasets", pa.int32()),
])
SUCCESS = "_SUCCESS"
MANIFEST = "manifest.json"


class RunOutput:
    """Paths and atomic writes under one run's output directory or object-store prefix."""

    def __init__(self, uri: str) -> None:
        self.uri = uri.rstrip("/")
        self.fs, self.root = fsspec.core.url_to_fs(self.uri)
        self.local = self.fs.protocol in ("file", ("file", "local")) or "file" in (
            self.fs.protocol if isinstance(self.fs.protocol, tuple) else (self.fs.protocol,))

    def path(self, *parts: str) -> str:
        return "/".join([self.root, *parts])

    def edge_path(self, spec: BlockSpec) -> str:
        return self.path("edges", f"dataset={spec.dataset}", f"{spec.file_stem}.parquet")

    def exists(self, path: str) -> bool:
        return self.fs.exists(path)

    def done_blocks(self, specs: Iterable[BlockSpec]) -> set[str]:
        """Block ids whose edge file already exists (complete, by construction)."""
        done = set()
        by_dataset: dict[str, list[BlockSpec]] = {}
        for s in specs:
            by_dataset.setdefault(s.dataset, []).append(s)
        for ds, items in by_dataset.items():
            d = self.path("edges", f"dataset={ds}")
            present = set()
            if self.fs.exists(d):
                present = {p.rsplit("/", 1)[-1] for p in self.fs.ls(d, detail=False)}
            done |= {s.block_id for s in items if f"{s.file_stem}.parquet" in present}
        return done

    def write_table_atomic(self, path: str, table: pa.Table) -> None:
        parent = path.rsplit("/", 1)[0]
        self.fs.makedirs(parent, exist_ok=True)
        if self.local:
            tmp = f"{path}.tmp-{uuid.uuid4().hex[:8]}"
            pq.write_table(table, tmp, compression="zstd")
            os.replace(tmp, path)
        else:
            with self.fs.open(path, "wb") as fh:
                pq.write_table(table, fh, compression="zstd")

    def write_text_atomic(self, path: str, text: str) -> None:
        parent = path.rsplit("/", 1)[0]
        self.fs.makedirs(parent, exist_ok=True)
        if self.local:
            tmp = f"{path}.tmp-{uuid.uuid4().hex[:8]}"
            with open(tmp, "w", encoding="utf-8") as fh:
                fh.write(text)
            os.replace(tmp, path)
        else:
            with self.fs.open(path, "w") as fh:
                fh.write(text)

    def read_text(self, path: str) -> str:
        with self.fs.open(path, "r") as fh:
            return fh.read()

    def remove(self, path: str) -> None:
        if self.fs.exists(path):
            self.fs.rm(path)


def edges_table(spec: BlockSpec, sources: np.ndarray, targets: np.ndarray, score: np.ndarray,
                logit_vvp: np.ndarray, logit_gdt: np.ndarray) -> pa.Table:
    """One block's edges, sorted by (source, target) so files are byte-stable across runs."""
    order = np.lexsort((targets, sources))
    return pa.table({
        "source": pa.array(sources[order].astype(str)),
        "target": pa.array(targets[order].astype(str)),
        "score": pa.array(score[order].astype(np.float32)),
        "logit_vvp": pa.array(logit_vvp[order].astype(np.float32)),
        "logit_gdt": pa.array(logit_gdt[order].astype(np.float32)),
    }, schema=EDGE_SCHEMA)


def write_consensus(out: RunOutput, n_parts: int = 1) -> int:
    """Aggregate every dataset's edges per (source, target): mean, max, number of datasets.

    Reads ``edges/`` as a hive-partitioned dataset; parts split by source so each part can be
    computed and written on its own. Returns rows written.
    """
    dataset = pads.dataset(out.path("edges"), format="parquet", partitioning="hive",
                           filesystem=out.fs)
    table = dataset.to_table(columns=["source", "target", "score"])
    grouped = table.group_by(["source", "target"]).aggregate(
        [("score", "mean"), ("score", "max"), ("score", "count")])
    grouped = grouped.sort_by([("source", "ascending"), ("target", "ascending")])
    cons = pa.table({
        "source": grouped["source"], "target": grouped["target"],
        "score_mean": pc.cast(grouped["score_mean"], pa.float32()),
        "score_max": pc.cast(grouped["score_max"], pa.float32()),
        "n_datasets": pc.cast(grouped["score_count"], pa.int32()),
    }, schema=CONSENSUS_SCHEMA)
    n_parts = max(1, n_parts)
    bounds = np.linspace(0, cons.num_rows, n_parts + 1).astype(int)
    for i in range(n_parts):
        out.write_table_atomic(out.path("consensus", f"part-{i:05d}.parquet"),
                               cons.slice(bounds[i], bounds[i + 1] - bounds[i]))
    return cons.num_rows


def write_manifest(out: RunOutput, manifest: Mapping[str, Any]) -> None:
    out.write_text_atomic(out.path(MANIFEST), json.dumps(manifest, indent=2, sort_keys=True,
                                                         default=str))


def read_manifest(out: RunOutput) -> dict[str, Any] | None:
    p = out.path(MANIFEST)
    if not out.exists(p):
        return None
    return json.loads(out.read_text(p))
