"""The cache of per-context sums in a dataset's ``uns`` (only when the caller asks for it).

Layout: ``datasets/<name>/uns/atlasgrn_context_stats/<obs column>``, an anndata dict holding
``sums`` (float64 ``[2, n_contexts, n_genes]``: sums, then non-zero counts), ``contexts`` and
the identity it was computed for: the cache version, the cell and gene counts, the dataset's
``content_sha256`` (X as the writer streamed it) and the sha256 of the labels. Any mismatch
means recompute, so a re-ingested dataset or an edited obs column never reads stale sums.
Sums are cached rather than means so that ``min_cells`` can change without recomputing.

The identity is written last: a write cut short leaves an entry without it, which reads as
absent. A store that refuses the write only costs the cache (logged), never the result.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import anndata as ad
import numpy as np

from ..errors import AtlasgrnError
from .layout import CONTEXT_STATS_KEY, CONTEXT_STATS_VERSION

if TYPE_CHECKING:
    from .contexts import ContextLabels
    from .dataset import AtlasDataset

log = logging.getLogger("atlasgrn.atlas")


def cache_key(column: str) -> str | None:
    """The Zarr key for ``column``, or None when the name cannot be one (then no cache)."""
    if not column or "/" in column or column.startswith((".", "__")):
        return None
    return column


def _identity(ds: AtlasDataset, labels: ContextLabels) -> dict[str, Any]:
    return {"version": CONTEXT_STATS_VERSION, "n_cells": ds.info.n_cells,
            "n_genes": ds.info.n_genes, "x_sha256": ds.info.content_sha256 or "",
            "labels_sha256": labels.digest()}


def load(ds: AtlasDataset, labels: ContextLabels) -> np.ndarray | None:
    """Cached ``[2, n_contexts, n_genes]`` sums for exactly this X and these labels, or None."""
    key = cache_key(labels.column)
    if key is None:
        return None
    uns = ds._group.get("uns")
    parent = uns.get(CONTEXT_STATS_KEY) if uns is not None else None
    if parent is None or key not in parent:
        return None
    try:
        raw = ds._read(lambda: ad.io.read_elem(parent[key]),
                       ds._key(f"uns/{CONTEXT_STATS_KEY}/{key}"))
    except AtlasgrnError:
        return None  # unreadable cache: recompute rather than fail
    want = _identity(ds, labels)
    for field, value in want.items():
        if field not in raw or np.asarray(raw[field]).item() != value:
            return None
    sums = np.asarray(raw.get("sums"), dtype=np.float64)
    names = tuple(str(n) for n in np.asarray(raw.get("contexts", []), dtype=object))
    if names != labels.names or sums.shape != (2, len(names), ds.info.n_genes):
        return None
    return sums


def store(ds: AtlasDataset, labels: ContextLabels, sums: np.ndarray) -> bool:
    """Cache ``sums`` when the atlas is writable; returns whether it was written.

    A read-only atlas (opened with ``writable=False``, remote, or shipped in the package) is
    never written to.
    """
    key = cache_key(labels.column)
    if key is None or not ds._writable:
        return False
    payload: dict[str, Any] = {"sums": np.asarray(sums, dtype=np.float64),
                               "contexts": np.asarray(labels.names, dtype=object)}
    for field, value in _identity(ds, labels).items():  # identity last: see module docstring
        payload[field] = np.int64(value) if isinstance(value, int) else str(value)
    try:
        uns = ds._group.require_group("uns")
        if CONTEXT_STATS_KEY not in uns:
            ad.io.write_elem(uns, CONTEXT_STATS_KEY, {})
        ad.io.write_elem(uns[CONTEXT_STATS_KEY], key, payload)
    except OSError as exc:
        log.warning("atlasgrn: could not cache context statistics of %s/%s (%s: %s)",
                    ds.name, labels.column, type(exc).__name__, exc)
        return False
    return True
