"""``atlasgrn ingest``: add datasets (h5ad, CSV/TSV) to an atlas, creating it if needed.

Options apply to every ``--dataset``; one dataset may override them with a suffix
``NAME=PATH:key=value,key=value`` (keys: species, value_kind, cells_by_genes, dedupe,
gene_column, matrix), e.g. ``--dataset mESC=expr.csv.gz:species=mouse,value_kind=log2``.
A suffix is recognised only when every ``key=value`` in it uses one of those keys, so paths
containing ':' still work.
"""

from __future__ import annotations

import argparse
import re
import sys
from dataclasses import dataclass, field
from typing import Any

from ..atlas.layout import SPECIES, VALUE_KINDS
from ..errors import AtlasgrnError

_KEYS = ("species", "value_kind", "cells_by_genes", "dedupe", "gene_column", "matrix")
_SUFFIX = re.compile(r"^(?:(?:%s)=[^,=]*)(?:,(?:%s)=[^,=]*)*$" % ("|".join(_KEYS), "|".join(_KEYS)))


@dataclass
class DatasetSpec:
    name: str
    path: str
    options: dict[str, Any] = field(default_factory=dict)


def _bool(text: str, spec: str) -> bool:
    if text.lower() in ("1", "true", "yes", "y", ""):
        return True
    if text.lower() in ("0", "false", "no", "n"):
        return False
    raise AtlasgrnError(f"not a boolean: {text!r}", key=spec, remedy="use true or false")


def parse_dataset(spec: str) -> DatasetSpec:
    """Parse ``NAME=PATH[:key=value,...]``."""
    if "=" not in spec:
        raise AtlasgrnError(f"--dataset {spec!r} is not NAME=PATH", key="--dataset",
                            remedy="write --dataset NAME=PATH, e.g. mESC=expr.csv.gz")
    name, rest = spec.split("=", 1)
    options: dict[str, Any] = {}
    head, sep, tail = rest.rpartition(":")
    if sep and _SUFFIX.match(tail):
        rest = head
        for item in tail.split(","):
            key, value = item.split("=", 1)
            options[key] = _bool(value, spec) if key in ("cells_by_genes", "dedupe") else value
    if not name or not rest:
        raise AtlasgrnError(f"--dataset {spec!r} has an empty name or path", key="--dataset",
                            remedy="write --dataset NAME=PATH")
    return DatasetSpec(name.strip(), rest, options)


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "ingest", help="add h5ad / CSV / TSV expression matrices to an atlas",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("out", metavar="OUT.zarr", help="atlas to create or add to")
    p.add_argument("--dataset", action="append", default=[], metavar="NAME=PATH[:k=v,...]",
                   help="a dataset to add (repeatable)")
    p.add_argument("--species", choices=SPECIES, default=None,
                   help="species of the datasets (default: inferred, with a warning)")
    p.add_argument("--value-kind", choices=VALUE_KINDS, default=None,
                   help="what the values are (default: inferred, with a warning)")
    p.add_argument("--cells-by-genes", action="store_true",
                   help="text tables have one row per cell (default: one row per gene)")
    p.add_argument("--dedupe", action="store_true",
                   help="sum columns with the same gene symbol (default: refuse duplicates)")
    p.add_argument("--gene-column", default=None,
                   help="h5ad var column holding gene symbols (default: gene_symbol/"
                        "gene_symbols/symbol when present, else var_names)")
    p.add_argument("--matrix", default="X",
                   help="h5ad matrix to ingest: X (default), raw, or layers/<name>")
    p.add_argument("--overwrite", action="store_true",
                   help="replace datasets that already exist (default: refuse)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..atlas.ingest import ingest_file

    specs = [parse_dataset(s) for s in args.dataset]
    if not specs:
        raise AtlasgrnError("nothing to ingest", key="--dataset",
                            remedy="pass --dataset NAME=PATH (repeatable)")
    defaults = {"species": args.species, "value_kind": args.value_kind,
                "cells_by_genes": args.cells_by_genes, "dedupe": args.dedupe,
                "gene_column": args.gene_column, "matrix": args.matrix}
    reports = []
    for spec in specs:
        opts = {**defaults, **spec.options}
        reports.append(ingest_file(args.out, spec.name, spec.path, overwrite=args.overwrite,
                                   progress=lambda line: print(line, file=sys.stderr,
                                                               flush=True),
                                   **opts))
    for r in reports:
        for w in r.warnings:
            print(f"atlasgrn ingest: warning: {r.info.name}: {w}", file=sys.stderr)
        i = r.info
        print(f"{i.name}: {i.n_cells} cells x {i.n_genes} genes, {i.species}, {i.value_kind} "
              f"<- {r.path}")
    return 0
