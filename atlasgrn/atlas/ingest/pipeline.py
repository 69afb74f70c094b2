"""One input file -> one atlas dataset: open, decide genes and kinds, stream, publish.

Order matters for "nothing left behind": everything that can be decided without writing (the
target atlas and name, the format, gene names, duplicates, species, value kind) is decided first;
only then is a :class:`DatasetWriter` opened, and any failure while streaming removes what it
wrote. An atlas directory created by a failed first ingest is removed too.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ...errors import AtlasgrnError, IngestError
from ...progress import Progress
from ..layout import (
    SPECIES,
    VALUE_KINDS,
    WRITE_BLOCK_CELLS,
    check_dataset_name,
    dataset_path,
)
from ..opened import open_atlas
from ..store import DatasetInfo, _local_path, is_remote, open_root, read_root_meta
from ..symbols import VocabMapping, map_to_vocab
from ..writer import DatasetWriter
from .formats import open_source, supported_suffixes
from .genes import plan_genes
from .infer import SAMPLE_CELLS, infer_species, infer_value_kind


@dataclass(frozen=True)
class IngestReport:
    """What an ingest did, for the CLI and for callers that log."""

    info: DatasetInfo
    path: str
    n_dropped_unnamed: int
    n_merged_duplicates: int
    species_inferred: bool
    value_kind_inferred: bool
    warnings: list[str] = field(default_factory=list)
    vocab_mapping: VocabMapping | None = None


def _check_target(atlas_uri: str, name: str, overwrite: bool) -> bool:
    """Refuse a bad target before reading any input; return whether the atlas already exists."""
    why = check_dataset_name(name)
    if why:
        raise AtlasgrnError(why, path=atlas_uri, key=dataset_path(name),
                            remedy="use letters, digits, '-', '_' or '.'")
    if is_remote(atlas_uri) and not atlas_uri.startswith("file://"):
        return True  # the writer checks remote stores
    local = _local_path(atlas_uri)
    if not os.path.exists(local):
        return False
    root = open_root(atlas_uri, mode="r")
    meta = read_root_meta(root, atlas_uri)
    if name in meta["datasets"] and not overwrite:
        raise AtlasgrnError(f"dataset '{name}' already exists in the atlas", path=atlas_uri,
                            key=dataset_path(name),
                            remedy="choose another name, or pass --overwrite to replace it")
    return True


def ingest_file(atlas_uri: str | os.PathLike[str], name: str, path: str | os.PathLike[str], *,
                species: str | None = None, value_kind: str | None = None,
                cells_by_genes: bool = False, dedupe: bool = False,
                gene_column: str | None = None, matrix: str = "X", overwrite: bool = False,
                source: str | None = None, vocab: dict[str, int] | None = None,
                extra_attrs: dict[str, Any] | None = None,
                block_cells: int = WRITE_BLOCK_CELLS,
                progress: Callable[[str], None] | None = None) -> IngestReport:
    """Ingest one file as dataset ``name`` of the atlas at ``atlas_uri`` (created if absent).

    ``species``/``value_kind`` left as None are inferred (see :mod:`.infer`) and reported in
    ``IngestReport.warnings``. ``source`` overrides the free-text provenance stored with the
    dataset (default: file name and what was read). ``vocab`` (symbol -> id), when given, adds a
    mapping report.
    """
    atlas_uri, path = os.fspath(atlas_uri), os.fspath(path)
    if species is not None and species not in SPECIES:
        raise IngestError(f"unknown species {species!r}", path=path, key="species",
                          remedy=f"one of {', '.join(SPECIES)}")
    if value_kind is not None and value_kind not in VALUE_KINDS:
        raise IngestError(f"unknown value kind {value_kind!r}", path=path, key="value_kind",
                          remedy=f"one of {', '.join(VALUE_KINDS)}")
    if not os.path.exists(path):
        raise IngestError("no such file", path=path, key="path", remedy="check the input path")
    if os.path.isdir(path):
        raise IngestError("is a directory, not a file", path=path, key="path",
                          remedy=f"pass a file ({supported_suffixes()})")
    existed = _check_target(atlas_uri, name, overwrite)
    src = open_source(path, cells_by_genes=cells_by_genes, gene_column=gene_column,
                      matrix=matrix)
    notes: list[str] = list(src.notes)
    try:
        vk_inferred = value_kind is None
        if value_kind is None:
            value_kind, why = infer_value_kind(src.sample(SAMPLE_CELLS))
            notes.append(f"value kind inferred as '{value_kind}' ({why}); pass --value-kind "
                         "to set it")
        plan = plan_genes(src.genes, src.var, dedupe=dedupe, value_kind=value_kind, source=path)
        if plan.n_dropped_unnamed:
            notes.append(f"{plan.n_dropped_unnamed} genes without a name were dropped")
        if plan.n_merged_duplicates:
            notes.append(f"{plan.n_merged_duplicates} duplicate gene columns were summed into "
                         "their first occurrence (--dedupe)")
        sp_inferred = species is None
        if species is None:
            species, why = infer_species(plan.names, source=path, vocab=vocab)
            notes.append(f"species inferred as '{species}' ({why}); pass --species to set it")
        attrs = {"ingest": {"n_dropped_unnamed": plan.n_dropped_unnamed,
                            "n_merged_duplicates": plan.n_merged_duplicates,
                            "species_inferred": sp_inferred,
                            "value_kind_inferred": vk_inferred}}
        attrs.update(extra_attrs or {})
        try:
            with DatasetWriter(atlas_uri, name, plan.var, species=species,
                               value_kind=value_kind, source=source or src.description,
                               overwrite=overwrite, extra_attrs=attrs,
                               source_label=path) as writer:
                shown = Progress(src.n_cells, label=f"ingest {name}", unit="cells",
                                 log=progress or (lambda _line: None))
                for block, cells, obs in src.blocks(block_cells):
                    writer.append(plan.apply(block), cell_names=cells, obs=obs)
                    shown.update(work=block.shape[0], n=block.shape[0])
                info = writer.commit()
            # per-gene statistics cached in the store now, while it is ours to write: a job on
            # this atlas (read-only, perhaps in a bucket) then reads them instead of
            # streaming the whole matrix again on every run
            open_atlas(atlas_uri, writable=True).dataset(name).gene_stats()
        except BaseException:
            if not existed:
                _remove_if_empty(atlas_uri)
            raise
    finally:
        src.close()
    mapping = map_to_vocab(list(plan.names), vocab) if vocab is not None else None
    return IngestReport(info=info, path=path, n_dropped_unnamed=plan.n_dropped_unnamed,
                        n_merged_duplicates=plan.n_merged_duplicates,
                        species_inferred=sp_inferred, value_kind_inferred=vk_inferred,
                        warnings=notes, vocab_mapping=mapping)


def _remove_if_empty(atlas_uri: str) -> None:
    """Delete an atlas this ingest created when nothing was committed to it."""
    if is_remote(atlas_uri) and not atlas_uri.startswith("file://"):
        return
    local = _local_path(atlas_uri)
    try:
        meta = read_root_meta(open_root(atlas_uri, mode="r"), atlas_uri)
    except AtlasgrnError:
        return
    if not meta["datasets"]:
        shutil.rmtree(local, ignore_errors=True)
