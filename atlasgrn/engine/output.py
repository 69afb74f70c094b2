"""The run's output layout (design §3.4): per-block edge files, consensus, manifest, ``_SUCCESS``.

Ray Data's ``write_parquet`` names files randomly and is not atomic, so each block's edges are
written by us under a name derived from its block id, through :mod:`atlasgrn.atomic` (a hidden
temporary file renamed into place locally, one PUT on an object store). A file that exists is
therefore complete, and a resumed run skips exactly the blocks whose file exists.

Edge files hold ``source, target, score`` and one ``logit_<kind>`` column per kind of the
translator's ensemble (``score`` is the sigmoid of their mean).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, BinaryIO
from urllib.parse import quote

import fsspec
import numpy as np
import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.parquet as pq

from ..atomic import is_temp_name, write_atomic
from ..objectstore import with_retries
from .plan import BlockSpec

EDGE_KEYS = (("source", pa.string()), ("target", pa.string()), ("score", pa.float32()))
SUCCESS = "_SUCCESS"
MANIFEST = "manifest.json"


class RunOutput:
    """Paths and atomic writes under one run's output directory or object-store prefix."""

    def __init__(self, uri: str) -> None:
        self.uri = uri.rstrip("/") or "/"
        self.fs, self.root = fsspec.core.url_to_fs(self.uri)
        protocols = self.fs.protocol if isinstance(self.fs.protocol, tuple) else (
            self.fs.protocol,)
        self.local = bool({"file", "local"} & set(protocols))

    def path(self, *parts: str) -> str:
        return "/".join([self.root.rstrip("/"), *parts])

    def url(self, *parts: str) -> str:
        """What to show a user: a local path, or the full URL (``s3://bucket/...``) that
        :meth:`path`'s bucket-relative form would lose."""
        p = self.path(*parts)
        return p if self.local else self.fs.unstrip_protocol(p)

    def edge_path(self, spec: BlockSpec) -> str:
        return self.path(*edge_dir(spec.dataset, spec.context), f"{spec.file_stem}.parquet")

    def exists(self, path: str) -> bool:
        return with_retries(lambda: self.fs.exists(path), what=f"checking {path}")

    def isfile(self, path: str) -> bool:
        return with_retries(lambda: self.fs.isfile(path), what=f"checking {path}")

    def listdir(self, *parts: str) -> list[str]:
        """Names (not paths) directly under ``parts``; empty when it does not exist."""
        d = self.path(*parts)
        if not self.exists(d):
            return []
        self.fs.invalidate_cache()  # a listing cached before a write would miss the new file
        listed = with_retries(lambda: self.fs.ls(d, detail=False), what=f"listing {d}")
        return sorted(p.rstrip("/").rsplit("/", 1)[-1] for p in listed)

    def done_blocks(self, specs: Iterable[BlockSpec]) -> set[str]:
        """Block ids whose edge file already exists (complete, by construction)."""
        done = set()
        by_network: dict[tuple[str, str], list[BlockSpec]] = {}
        for s in specs:
            by_network.setdefault((s.dataset, s.context), []).append(s)
        for (ds, ctx), items in by_network.items():
            present = set(self.listdir(*edge_dir(ds, ctx)))
            done |= {s.block_id for s in items if f"{s.file_stem}.parquet" in present}
        return done

    def edge_listing(self) -> dict[tuple[str, ...], list[str]]:
        """Every directory of edge files (``edges/dataset=X`` and, in a run with a context key,
        ``edges/dataset=X/context=Y``) with the names in it: one listing per directory."""
        listing: dict[tuple[str, ...], list[str]] = {}
        for part in self.listdir("edges"):
            names = self.listdir("edges", part)
            listing[("edges", part)] = names
            for n in names:
                if n.startswith("context="):
                    listing[("edges", part, n)] = self.listdir("edges", part, n)
        return listing

    def count_edge_files(self) -> int:
        """Published edge files (one per finished block), across datasets."""
        return sum(1 for names in self.edge_listing().values() for name in names
                   if name.endswith(".parquet") and not is_temp_name(name))

    def remove_partial_files(self) -> int:
        """Delete temporary files a killed writer left behind (hidden names, never read)."""
        n = 0
        for d, names in self.edge_listing().items():
            for name in names:
                if is_temp_name(name):
                    self.remove(self.path(*d, name))
                    n += 1
        return n

    def write_table_atomic(self, path: str, table: pa.Table) -> None:
        """Write a Parquet file so that it is either absent or complete."""
        self._write_atomic(path, lambda fh: pq.write_table(table, fh, compression="zstd"))

    def write_text_atomic(self, path: str, text: str) -> None:
        """Write a UTF-8 text file (manifest, ``_SUCCESS``) the same all-or-nothing way."""
        self._write_atomic(path, lambda fh: fh.write(text.encode("utf-8")))

    def _write_atomic(self, path: str, write: Callable[[BinaryIO], object]) -> None:
        write_atomic(path, write, fs=self.fs)

    def read_text(self, path: str) -> str:
        def read() -> str:
            with self.fs.open(path, "r") as fh:
                return fh.read()
        return with_retries(read, what=f"reading {path}")

    def remove(self, path: str) -> None:
        if self.exists(path):
            with_retries(lambda: self.fs.rm(path), what=f"removing {path}")


def edge_dir(dataset: str, context: str = "") -> tuple[str, ...]:
    """Hive partition directories of a network's edge files. A context value is free text
    (``CD4+ T cell``), so it is percent-encoded as pyarrow's hive partitioning decodes it."""
    parts = ("edges", f"dataset={dataset}")
    return parts + (f"context={quote(context, safe='')}",) if context else parts


def edge_schema(kinds: Sequence[str]) -> pa.Schema:
    """Columns of an edge file for a translator whose ensemble is ``kinds``."""
    return pa.schema([*EDGE_KEYS, *((f"logit_{k}", pa.float32()) for k in kinds)])


def edges_table(sources: np.ndarray, targets: np.ndarray, score: np.ndarray,
                logits: Mapping[str, np.ndarray]) -> pa.Table:
    """One block's edges, sorted by (source, target) so files are byte-stable across runs."""
    order = np.lexsort((targets, sources))
    columns = {"source": pa.array(sources[order].astype(str)),
               "target": pa.array(targets[order].astype(str)),
               "score": pa.array(score[order].astype(np.float32))}
    for kind, values in logits.items():
        columns[f"logit_{kind}"] = pa.array(np.asarray(values)[order].astype(np.float32))
    return pa.table(columns, schema=edge_schema(list(logits)))


def edges_dataset(out: RunOutput) -> pads.Dataset:
    """``edges/`` as a hive-partitioned dataset (a ``dataset`` string column from the paths).

    Replicas publish edge files from other processes, so the driver's cached listings (s3fs
    keeps one per directory) are dropped first: a stale listing made pyarrow open a file by a
    size it did not know, and fail, on a resumed S3 run."""
    out.fs.invalidate_cache()  # s3fs drops only the path and its parents, not children
    keys = [("dataset", pa.string())]
    if any(len(d) == 3 for d in out.edge_listing()):
        keys.append(("context", pa.string()))
    return pads.dataset(out.path("edges"), format="parquet", filesystem=out.fs,
                        partitioning=pads.partitioning(pa.schema(keys), flavor="hive"))


def write_manifest(out: RunOutput, manifest: Mapping[str, Any]) -> None:
    out.write_text_atomic(out.path(MANIFEST), json.dumps(manifest, indent=2, sort_keys=True,
                                                         default=str))


def read_manifest(out: RunOutput) -> dict[str, Any] | None:
    p = out.path(MANIFEST)
    if not out.exists(p):
        return None
    return json.loads(out.read_text(p))
