"""``atlasgrn info``: what an atlas holds (datasets, shapes, species, kinds, size)."""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict


def human_bytes(n: int | None) -> str:
    """1536 -> '1.5 KiB' (binary units, as du -h)."""
    if n is None:
        return "unknown"
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{int(size)} B" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"  # pragma: no cover


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("info", help="list the datasets of an atlas",
                              description=__doc__)
    p.add_argument("atlas", metavar="ATLAS", help="atlas path or URL")
    p.add_argument("--json", action="store_true", help="print JSON for machines")
    p.set_defaults(func=run)


def _table(rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows)


def run(args: argparse.Namespace) -> int:
    from ..atlas import open_atlas

    atlas = open_atlas(args.atlas, writable=False)
    infos = atlas.datasets()
    size = atlas.storage_bytes()
    if args.json:
        print(json.dumps({"atlas": args.atlas, "format": atlas.format_version,
                          "storage_bytes": size, "n_cells": sum(i.n_cells for i in infos),
                          "datasets": [asdict(i) for i in infos]}, indent=2))
        return 0
    print(f"atlas {args.atlas}  (format {atlas.format_version}, {len(infos)} datasets, "
          f"{sum(i.n_cells for i in infos)} cells, {human_bytes(size)})")
    if infos:
        rows = [["name", "cells", "genes", "species", "value_kind", "source"]]
        rows += [[i.name, str(i.n_cells), str(i.n_genes), i.species, i.value_kind, i.source]
                 for i in infos]
        print(_table(rows))
    return 0
