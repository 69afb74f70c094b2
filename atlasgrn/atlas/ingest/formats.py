"""The registry of input formats: file suffix -> the backend that opens it.

Each backend module (:mod:`.h5ad`, :mod:`.table`) registers the suffixes it reads with
:func:`register_format` when it is imported (the package ``__init__`` imports them all), the way
anndata dispatches its I/O through a registry of readers. The pipeline only asks
:func:`open_source`; the list of supported suffixes in error messages is generated from the
registry, so adding a format is one new backend module and nothing else to keep in step.

Options that only make sense for some formats (``--cells-by-genes`` for text tables,
``--gene-column``/``--matrix`` for h5ad) travel in :class:`OpenOptions`; each backend refuses
the ones it cannot honour, naming them.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

from ...errors import IngestError
from .source import Source

GZIP_SUFFIX = ".gz"


@dataclass(frozen=True)
class OpenOptions:
    """Per-file reading options, as the user gave them (defaults = not given)."""

    cells_by_genes: bool = False
    gene_column: str | None = None
    matrix: str = "X"


#: ``opener(path, options)`` -> an opened :class:`Source` (raises :class:`IngestError`).
Opener = Callable[[str, OpenOptions], Source]


@dataclass(frozen=True)
class InputFormat:
    """One readable format: its name, suffixes (lower case, with the dot) and opener.

    ``gzip``: whether ``<suffix>.gz`` can be streamed too (text can; HDF5 needs random access).
    """

    name: str
    suffixes: tuple[str, ...]
    opener: Opener
    gzip: bool = False


#: suffix -> format; filled by the backend modules at import.
FORMATS: dict[str, InputFormat] = {}


def register_format(fmt: InputFormat) -> InputFormat:
    """Make ``fmt`` the reader of its suffixes; a suffix claimed by another format is a bug."""
    for suffix in fmt.suffixes:
        if not suffix.startswith(".") or suffix != suffix.lower():
            raise ValueError(f"suffix {suffix!r} of format {fmt.name!r} must be '.lowercase'")
        other = FORMATS.get(suffix)
        if other is not None and other.name != fmt.name:
            raise ValueError(f"suffix {suffix!r} is already read by format {other.name!r}")
    for suffix in fmt.suffixes:
        FORMATS[suffix] = fmt
    return fmt


def supported_suffixes() -> str:
    """The registered suffixes for messages, e.g. ``.h5ad, .csv[.gz], .tsv[.gz]``."""
    return ", ".join(s + (f"[{GZIP_SUFFIX}]" if f.gzip else "") for s, f in FORMATS.items())


def format_of(path: str) -> InputFormat:
    """The registered format of ``path`` by its suffix (case-insensitive, ``.gz`` allowed where
    the format streams it); :class:`IngestError` naming the supported suffixes otherwise."""
    low = os.path.basename(path).lower()
    compressed = low.endswith(GZIP_SUFFIX)
    base = low[:-len(GZIP_SUFFIX)] if compressed else low
    matches = [s for s in FORMATS if base.endswith(s)]
    if not matches:
        raise IngestError("unknown input format", path=path, key="format",
                          remedy=f"use one of {supported_suffixes()}")
    suffix = max(matches, key=len)
    fmt = FORMATS[suffix]
    if compressed and not fmt.gzip:
        raise IngestError(f"compressed {suffix} files cannot be streamed", path=path,
                          key="format", remedy="gunzip it first")
    return fmt


def open_source(path: str, *, cells_by_genes: bool = False, gene_column: str | None = None,
                matrix: str = "X") -> Source:
    """Open ``path`` with the backend registered for its suffix."""
    options = OpenOptions(cells_by_genes=cells_by_genes, gene_column=gene_column, matrix=matrix)
    return format_of(path).opener(path, options)
