"""``atlasgrn model-eval ATLAS [--model DIR]``: held-out reconstruction vs per-gene mean."""

from __future__ import annotations

import argparse
import dataclasses
import json


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("model-eval", help="reconstruction error on held-out cells, per dataset")
    p.add_argument("atlas", help="atlas URI")
    p.add_argument("--model", default=None, help="model directory (default: bundled model)")
    p.add_argument("--dataset", action="append", default=[], metavar="NAME")
    p.add_argument("--cells", type=int, default=256, help="held-out cells per dataset")
    p.add_argument("--context", type=int, default=None, help="context length (default max_len)")
    p.add_argument("--lengths", default="64,256,1024", help="context lengths to compare")
    p.add_argument("--json", default=None, help="also write the figures to this JSON file")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..errors import AtlasgrnError
    from ..models import load_model
    from ..pretraining import evaluate_model, format_report
    from ..pretraining.run import pick_device

    try:
        lengths = tuple(int(x) for x in args.lengths.split(",") if x.strip())
    except ValueError:
        raise AtlasgrnError(f"--lengths {args.lengths!r} is not a comma list of integers",
                            key="--lengths", remedy="e.g. 64,256,1024") from None
    model = load_model(args.model).to(pick_device(args.device))
    rows = evaluate_model(model, args.atlas, datasets=args.dataset or None, n_cells=args.cells,
                          context_len=args.context, lengths=lengths)
    print(format_report(rows))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump([{**dataclasses.asdict(r), "improvement": r.improvement} for r in rows],
                      fh, indent=1)
    return 0
