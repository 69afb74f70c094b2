"""``atlasgrn report OUT [--reference EDGES] [--out report.html] [--overwrite] [--partial]``:
one self-contained HTML page about a build (summary, score distributions, top regulons, network,
agreement between datasets, PR curve against a reference, threshold guidance)."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    from ..cli_defaults import field_default
    from ..results.report import REPORT_NAME, ReportOptions

    def default(name: str):
        return field_default(ReportOptions, name)

    p = sub.add_parser("report", help="write a self-contained HTML report of a build",
                       description="One self-contained HTML page about a build: run summary, "
                                   "score distribution per dataset, top regulons, network of "
                                   "the strongest edges, agreement between datasets, a "
                                   "precision-recall curve against --reference, threshold "
                                   "guidance. Figures are embedded; nothing is fetched when it "
                                   "is opened. The Parquet is read in bounded batches.")
    p.add_argument("run", metavar="OUT", help="the build's output directory (or URL)")
    p.add_argument("--out", default=None, metavar="FILE",
                   help=f"the HTML file to write (default: OUT/{REPORT_NAME}, beside the "
                        "build's outputs, which it leaves untouched)")
    p.add_argument("--reference", default=None, metavar="EDGES",
                   help="a known network (CSV/TSV with source,target columns): adds a "
                        "precision-recall curve, AUPRC and EPR of the ranked scores")
    p.add_argument("--dataset", default=default("dataset"), metavar="NAME",
                   help="rank one dataset's edges for regulons, network and reference "
                        "(default: the cross-dataset consensus)")
    p.add_argument("--top-regulators", type=int, default=default("top_regulators"), metavar="K",
                   help="regulons shown (default %(default)s)")
    p.add_argument("--targets-per-regulator", type=int, metavar="N",
                   default=default("targets_per_regulator"),
                   help="targets per regulon; regulators rank by their mean score "
                        "(default %(default)s)")
    p.add_argument("--network-edges", type=int, default=default("network_edges"), metavar="N",
                   help="strongest edges drawn as a network (default %(default)s)")
    p.add_argument("--agreement-top", type=int, default=default("agreement_top"), metavar="K",
                   help="per-dataset top-k edges compared by Jaccard index "
                        "(default %(default)s)")
    p.add_argument("--histogram-bins", type=int, default=default("histogram_bins"), metavar="N",
                   help="bins of the score histograms on [0, 1] (default %(default)s)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out file")
    p.add_argument("--partial", action="store_true",
                   help="report on a run that has not finished (no _SUCCESS); the report "
                        "says it is partial")
    p.set_defaults(func=run)


def _refuse_run_files(target, root: str) -> None:
    """The report may sit beside a build's outputs, never in place of one: a file in ``edges/``
    or ``consensus/`` would break every reader of those datasets, and ``--overwrite`` must not
    replace the manifest or ``_SUCCESS``."""
    from pathlib import Path

    from ..engine.output import MANIFEST, SUCCESS
    from ..errors import AtlasgrnError

    run_dir = Path(root).resolve()
    where = Path(target).resolve()
    inside = [run_dir / "edges", run_dir / "consensus"]
    if where in (run_dir / MANIFEST, run_dir / SUCCESS) or any(
            where.is_relative_to(d) for d in inside):
        raise AtlasgrnError("is one of the build's own outputs", path=str(target), key="--out",
                            remedy=f"write the report beside them, e.g. {run_dir / 'report.html'}")


def run(args: argparse.Namespace) -> int:
    from ..atomic import is_remote
    from ..errors import AtlasgrnError
    from ..outdir import claim_output_file
    from ..results.report import (
        REPORT_NAME,
        Reference,
        ReportOptions,
        build_report,
        write_report,
    )
    from ..results.run import open_run
    from ..results.stats import read_reference

    opts = ReportOptions(top_regulators=args.top_regulators,
                         targets_per_regulator=args.targets_per_regulator,
                         network_edges=args.network_edges, agreement_top=args.agreement_top,
                         histogram_bins=args.histogram_bins, dataset=args.dataset)
    opts.check()
    opened = open_run(args.run, allow_partial=args.partial)
    opened.check_dataset(opts.dataset)
    out = args.out
    if out is None:
        if is_remote(opened.uri):
            raise AtlasgrnError("the run is on an object store, so the report needs a local "
                                "file", path=opened.uri, key="--out",
                                remedy="pass --out report.html")
        out = f"{opened.output.root.rstrip('/')}/{REPORT_NAME}"
    target = claim_output_file(out, overwrite=args.overwrite)
    if not is_remote(opened.uri):
        _refuse_run_files(target, opened.output.root)
    reference = None
    if args.reference is not None:
        reference = Reference(args.reference, read_reference(args.reference))
    page = build_report(opened, opts, reference, log=lambda line: print(line, flush=True))
    write_report(page, str(target))
    partial = "" if opened.complete else " (partial run)"
    print(f"wrote {target}{partial}")
    return 0
