"""The Zarr atlas layer: layout, lazy block reads with retries, streaming writes, ingest."""

from __future__ import annotations

from ..lazy import lazy_exports

_EXPORTS = {
    "Atlas": ".opened",
    "AtlasDataset": ".dataset",
    "ContextStats": ".contexts",
    "DatasetInfo": ".store",
    "DatasetWriter": ".writer",
    "GeneStats": ".dataset",
    "context_stats": ".contexts",
    "open_atlas": ".opened",
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
__all__ = sorted(_EXPORTS)
