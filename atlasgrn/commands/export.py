"""``atlasgrn export OUT --format graphml|adjacency|gmt|h5ad [--dataset D] [--top N] --out FILE``:
a build's network for Cytoscape/networkx, pySCENIC, gene-set tools or scanpy."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    from ..results.export import DEFAULT_TOP, FORMATS

    p = sub.add_parser("export", help="write a build's network as GraphML, adjacency TSV, GMT "
                                      "regulons or h5ad",
                       description=__doc__.split("\n", 1)[0])
    p.add_argument("run", metavar="OUT", help="the build's output directory (or URL)")
    p.add_argument("--format", required=True, choices=FORMATS)
    p.add_argument("--out", required=True, metavar="FILE", help="the file to write")
    p.add_argument("--dataset", default=None,
                   help="one dataset's edges (default: the cross-dataset consensus; for gmt, "
                        "every dataset's regulons)")
    p.add_argument("--top", type=int, default=DEFAULT_TOP,
                   help="the N strongest edges (0: all; default %(default)s)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out file")
    p.add_argument("--partial", action="store_true",
                   help="export a run that has not finished (no _SUCCESS)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..errors import AtlasgrnError
    from ..outdir import claim_output_file
    from ..results.export import export
    from ..results.run import open_run

    if args.top < 0:
        raise AtlasgrnError(f"--top {args.top} is out of range", key="--top",
                            remedy="give --top a positive number of edges, or 0 for all")
    target = claim_output_file(args.out, overwrite=args.overwrite)
    opened = open_run(args.run, allow_partial=args.partial)
    n = export(opened, args.format, target, dataset=args.dataset, top=args.top)
    what = f"dataset {args.dataset}" if args.dataset else (
        "every dataset" if args.format == "gmt" else "the consensus")
    partial = "" if opened.complete else " (partial run)"
    print(f"wrote {target}: {n:,} edges of {what}{partial} as {args.format}")
    return 0
