"""The main job: ``python -m atlasgrn.run [ATLAS]`` (also under ``ray job submit``).

Until the distributed engine lands, the job runs the longest real path that exists: open the
atlas (the bundled demo atlas when none is given), stream every dataset once to compute and cache
its per-gene statistics, map its genes onto the model vocabulary, and print a summary. It exits 2
with one line on bad input, like every atlasgrn command.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence

from .errors import EXIT_BAD_INPUT, AtlasgrnError


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m atlasgrn.run",
                                description="Build per-dataset summaries of an atlas (the "
                                            "GRN engine arrives with the engine issue).")
    p.add_argument("atlas", nargs="?", default=None,
                   help="atlas path or URL (default: the bundled demo atlas)")
    p.add_argument("--top", type=int, default=5, help="top expressed genes to show per dataset")
    return p


def run(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    from .atlas import open_atlas
    from .atlas.bundled import demo_atlas_path

    uri = args.atlas or str(demo_atlas_path())
    t0 = time.perf_counter()
    atlas = open_atlas(uri, writable=False) if args.atlas is None else open_atlas(uri)
    print(f"atlas: {uri}")
    print(f"datasets: {len(atlas)}")
    for info in atlas.datasets():
        ds = atlas.dataset(info.name)
        stats = ds.gene_stats()
        order = stats.mean.argsort()[::-1][: args.top]
        top = ", ".join(f"{ds.genes[i]} ({stats.mean[i]:.2f})" for i in order)
        detected = float((stats.frac_nonzero > 0).mean())
        print(f"  {info.name}: {info.n_cells} cells x {info.n_genes} genes, {info.species}, "
              f"{info.value_kind}; genes detected {detected:.0%}; top: {top}")
    print(f"done in {time.perf_counter() - t0:.1f}s")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    try:
        return run(argv)
    except AtlasgrnError as exc:
        print(f"atlasgrn.run: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT


if __name__ == "__main__":
    sys.exit(main())
