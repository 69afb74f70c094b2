"""Ingest: turn h5ad files and CSV/TSV matrices into atlas datasets, streaming.

``ingest_file(atlas, name, path, ...)`` is the entry point; one backend module per format
(:mod:`.h5ad`, :mod:`.table`) returns a :class:`~.source.Source`, and :mod:`.pipeline` decides
genes (:mod:`.genes`), species and value kind (:mod:`.infer`) before anything is written.
"""

from .pipeline import IngestReport, ingest_file, open_source

__all__ = ["IngestReport", "ingest_file", "open_source"]
