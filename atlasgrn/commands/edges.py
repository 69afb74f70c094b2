"""``atlasgrn edges OUT [--regulator X] [--target Y] [--dataset D] [--top N] [--json]``: edge rows
of a finished build, answered from the Parquet with predicate pushdown."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("edges", help="query the edges of a build (what does X regulate?)",
                       description="Edge rows of a build, strongest first, read with filters "
                                   "(never the whole table).")
    p.add_argument("run", metavar="OUT", help="the build's output directory (or URL)")
    p.add_argument("--regulator", default=None, help="only edges from this regulator")
    p.add_argument("--target", default=None, help="only edges into this target")
    p.add_argument("--dataset", default=None, help="only this dataset")
    p.add_argument("--top", type=int, default=None, help="at most N edges (default: all)")
    p.add_argument("--json", action="store_true", help="a JSON list of edge rows")
    p.add_argument("--partial", action="store_true",
                   help="read a run that has not finished (no _SUCCESS)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import json

    from ..results.query import as_records, select_edges
    from ..results.run import open_run

    opened = open_run(args.run, allow_partial=args.partial)
    table = select_edges(opened, regulator=args.regulator, target=args.target,
                         dataset=args.dataset, top=args.top)
    if args.json:
        print(json.dumps(as_records(table)))
    else:
        frame = table.to_pandas()
        print(frame.to_string(index=False) if len(frame) else "(no edges)")
    if not opened.complete:
        import sys

        print(f"note: {opened.uri} is a partial run (no _SUCCESS)", file=sys.stderr)
    return 0
