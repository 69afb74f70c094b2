"""Probe features under one contract: the :class:`FeatureSpec`, the block layout, and the one
function that computes a block's features (training, the benchmark and the job all use it).

Pure torch and numpy like the probes below it: no Ray, no Zarr.
"""

from __future__ import annotations

from ..lazy import lazy_exports

_EXPORTS = {
    "ALL_KINDS": ".spec",
    "ANCHOR_POLICIES": ".spec",
    "Block": ".layout",
    "BlockFeatures": ".compute",
    "CONTEXT_KINDS": ".spec",
    "CacheStats": ".table",
    "EMBEDDING_KINDS": ".spec",
    "FeatureSpec": ".spec",
    "FeatureTable": ".table",
    "GDT_READINGS": ".spec",
    "GeneUniverse": ".universe",
    "MODEL_KINDS": ".spec",
    "PROFILE": ".spec",
    "STAT_KINDS": ".spec",
    "rank_statistics": ".stats",
    "block_features": ".compute",
    "build_universe": ".universe",
    "compute_table": ".table",
    "context_ids": ".compute",
    "default_cache_dir": ".table",
    "layout_blocks": ".layout",
    "profile_from_means": ".universe",
    "vocabulary_anchors": ".universe",
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
__all__ = sorted(_EXPORTS)
