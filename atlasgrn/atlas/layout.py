"""The on-disk contract of an atlas (design §3.1), in one place.

An atlas is a Zarr v3 group. Its root attributes carry ``{"atlasgrn": {"format": 1,
"datasets": [...]}}``; each dataset is an AnnData written by anndata's Zarr writer under
``datasets/<name>``. A dataset exists for readers only once its name is in the root list:
writers register last, so an interrupted write never opens as a valid dataset.
"""

from __future__ import annotations

from typing import Final

FORMAT_VERSION: Final = 1
ROOT_ATTR: Final = "atlasgrn"
DATASETS_GROUP: Final = "datasets"
STATS_KEY: Final = "atlasgrn_stats"  # under datasets/<name>/uns, cached per-gene reductions
#: Version of the cached statistics: 2 sums in float64 (1, float32 sums, is recomputed).
STATS_VERSION: Final = 2
#: Under datasets/<name>/uns: cached per-context sums, one entry per obs column
#: (:mod:`atlasgrn.atlas.context_cache`), written only when the caller asks for it.
CONTEXT_STATS_KEY: Final = "atlasgrn_context_stats"
#: Version of the cached per-context sums; another version is recomputed, never read.
CONTEXT_STATS_VERSION: Final = 1
#: Dataset attribute: sha256 of its values as the writer streamed them (run identity).
CONTENT_ATTR: Final = "content_sha256"

#: Value kinds a dataset may declare. All are non-negative and finite.
#: counts: raw (possibly UMI-corrected, non-integer) counts; normalized: linear-scale
#: depth-normalised values (TPM, RPKM, FPKM, CP10k); log1p: natural log(1+x) of either;
#: log2: log2(1+x) of either.
VALUE_KINDS: Final = ("counts", "normalized", "log1p", "log2")
SPECIES: Final = ("human", "mouse")

#: X chunk length (elements) for CSR arrays: ~1 MiB of float32 per chunk keeps object counts
#: low for million-cell datasets while a 2,000-cell block still touches few chunks.
CSR_CHUNK_ELEMS: Final = 1 << 18
#: Rows per write when streaming cells into a dataset.
WRITE_BLOCK_CELLS: Final = 4096

_FORBIDDEN_NAME_CHARS = set("/\\:*?\"<>|=") | {" "}


def dataset_path(name: str) -> str:
    """Group path of a dataset inside the atlas root."""
    return f"{DATASETS_GROUP}/{name}"


def check_dataset_name(name: str) -> str | None:
    """Return why ``name`` cannot be a dataset name, or None when it can.

    Names become Zarr keys and hive partition values (``dataset=<name>``), so path
    separators, '=', whitespace and leading dots are refused.
    """
    if not name:
        return "dataset name is empty"
    if name.startswith("."):
        return f"dataset name '{name}' starts with '.'"
    bad = sorted(set(name) & _FORBIDDEN_NAME_CHARS)
    if bad:
        return f"dataset name '{name}' contains {''.join(bad)!r}"
    return None
