#!/usr/bin/env python
"""Build the pre-training atlas: every real expression matrix of ../shared/data, once per cell.

Usage: python scripts/build_pretrain_atlas.py [--shared ../shared/data] [--out PATH]

Differences from ``scripts/shared_corpus.py`` (which ingests every file, for the integration
test):
- BEELINE cells appear in both TFs+500 and TFs+1000 matrices; each cell type is taken once,
  from the larger gene set, so no cell is seen twice per epoch.
- scanpy's pbmc68k_reduced ``.raw`` holds the same 700 cells as the corpus counts file; only
  the counts are kept (one normalisation path from raw counts is the cleaner signal).
- the 209-gene mHSC-E subset (``beeline_genelink/extra``, log2 like the other BEELINE matrices)
  is added: it is the only real mHSC-E expression.
Left out, on purpose: ``beeline_dev_scode`` (40-49-gene TF panels with undocumented value
scales, e.g. mES-PE's maximum is 1.99), and the simulated matrices (BoolODE, krumsiek11,
toggleswitch), which are not real cells.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from shared_corpus import (
    shared_inputs,  # scripts/ (this script's folder) is on sys.path
)

from atlasgrn.atlas.ingest import ingest_file

REPO = Path(__file__).resolve().parents[1]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shared", default=str(REPO.parent / "shared" / "data"))
    ap.add_argument("--out", default=str(REPO.parent / "atlases" / "pretrain.zarr"))
    args = ap.parse_args()
    root = Path(args.shared)
    t0 = time.perf_counter()
    seen_cells: set[str] = set()
    items = []
    for item in shared_inputs(root, tfs=(1000, 500)):
        if item.name.startswith("beeline_"):
            cell = item.name.split("_")[1]
            if cell in seen_cells:
                continue
            seen_cells.add(cell)
        if item.name == "scanpy_pbmc68k_reduced_raw":
            continue
        items.append(item)
    n_cells = 0
    for item in items:
        rep = ingest_file(args.out, item.name, item.path, species=item.species,
                          value_kind=item.value_kind, matrix=item.matrix, dedupe=item.dedupe,
                          source=f"shared/data/{item.path.relative_to(root)}")
        n_cells += rep.info.n_cells
        print(f"  {item.name}: {rep.info.n_cells} cells x {rep.info.n_genes} genes", flush=True)
    trn = root / "beeline_genelink" / "extra" / "mHSC-E_TFs+1000_TRN" / "TRN--ExpressionData.csv.gz"
    if trn.exists():
        rep = ingest_file(args.out, "beeline_mHSC-E_TRN209", trn, species="mouse",
                          value_kind="log2", source=f"shared/data/{trn.relative_to(root)}")
        n_cells += rep.info.n_cells
        print(f"  beeline_mHSC-E_TRN209: {rep.info.n_cells} cells x {rep.info.n_genes} genes")
    print(f"{args.out}: {n_cells} cells in {time.perf_counter() - t0:.0f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
