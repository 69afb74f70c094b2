"""The Zarr atlas layer: layout, lazy block reads with retries, streaming writes, ingest."""

from .dataset import AtlasDataset, GeneStats
from .opened import Atlas, open_atlas
from .store import DatasetInfo
from .writer import DatasetWriter

__all__ = ["Atlas", "AtlasDataset", "DatasetInfo", "DatasetWriter", "GeneStats", "open_atlas"]
