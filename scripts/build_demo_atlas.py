"""Build the demo atlas shipped at atlasgrn/data/demo_atlas.zarr from real BEELINE data.

    python scripts/build_demo_atlas.py [--shared-data ../shared/data]
                                       [--out atlasgrn/data/demo_atlas.zarr]

Three BEELINE scRNA-seq datasets (GENELink "TFs+500" subsets): mESC and mDC (mouse) and hHEP
(human), ingested by atlasgrn's own ingest path with species and value kind stated (log2; see
scripts/shared_corpus.py for why). The build is deterministic: it writes to a fresh
temporary atlas and swaps it in, and a rerun gives byte-identical files (checked with
``--check``, which prints a content digest). Attribution and licence: atlasgrn/data/DEMO_ATLAS.md.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from atlasgrn.atlas import open_atlas  # noqa: E402
from atlasgrn.atlas.ingest import ingest_file  # noqa: E402
from atlasgrn.atomic import replace_dir  # noqa: E402
from atlasgrn.digest import tree_sha256  # noqa: E402

#: (dataset name, cell type folder, species)
DEMO = (("mESC", "mESC", "mouse"), ("mDC", "mDC", "mouse"), ("hHEP", "hHEP", "human"))
LIMIT_BYTES = 10 * 1024 * 1024


def digest(path: Path) -> str:
    """SHA-256 over every file's relative path and bytes, in sorted order."""
    return tree_sha256(path)


def build(shared: Path, out: Path) -> str:
    tmp = Path(tempfile.mkdtemp(prefix="demo-atlas-", dir=out.parent))
    try:
        atlas = tmp / out.name
        for name, cell, species in DEMO:
            rel = f"beeline_genelink/expression/{cell}/TFs+500/BL--ExpressionData.csv.gz"
            src = shared / rel
            if not src.exists():
                raise SystemExit(f"missing input {src} (pass --shared-data)")
            ingest_file(atlas, name, src, species=species, value_kind="log2",
                        source=f"BEELINE {cell} TFs+500 via GENELink/bridge-grn: {rel}")
        # Cache per-gene statistics now: the shipped store is package data and is opened
        # read-only at run time, so nothing ever writes into the installed package.
        # writable=True: the build lives under atlasgrn/data, but is not package data yet
        opened = open_atlas(atlas, writable=True)
        for name in opened.names:
            opened.dataset(name).gene_stats()
        size = sum(f.stat().st_size for f in atlas.rglob("*") if f.is_file())
        if size > LIMIT_BYTES:
            raise SystemExit(f"demo atlas is {size} bytes, over the {LIMIT_BYTES} limit")
        replace_dir(atlas, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return digest(out)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shared-data", type=Path, default=REPO.parent / "shared" / "data")
    ap.add_argument("--out", type=Path, default=REPO / "atlasgrn" / "data" / "demo_atlas.zarr")
    args = ap.parse_args()
    out = args.out.resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    print(f"{out}: sha256 {build(args.shared_data.resolve(), out)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
