"""Reading a finished build: queries, exports and the report (``atlasgrn edges | export |
report``), all from the Parquet with filters and aggregates, never whole."""

from __future__ import annotations

from ..lazy import lazy_exports

_EXPORTS = {
    "Run": ".run",
    "open_run": ".run",
    "select_edges": ".query",
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
__all__ = sorted(_EXPORTS)
