"""Ingest: turn h5ad files and CSV/TSV matrices into atlas datasets, streaming.

``ingest_file(atlas, name, path, ...)`` is the entry point; one backend module per format
(:mod:`.h5ad`, :mod:`.table`) registers its file suffixes in :mod:`.formats` and returns a
:class:`~.source.Source`, and :mod:`.pipeline` decides genes (:mod:`.genes`), species and value
kind (:mod:`.infer`) before anything is written.
"""

# Importing a backend registers its suffixes (formats.register_format): a new format is a new
# backend module, imported here.
from . import h5ad, table  # noqa: F401
from .formats import FORMATS, open_source, supported_suffixes
from .pipeline import IngestReport, ingest_file

__all__ = ["FORMATS", "IngestReport", "ingest_file", "open_source", "supported_suffixes"]
