"""``atlasgrn simulate``: write a synthetic multi-dataset atlas and its true GRN."""

from __future__ import annotations

import argparse

from ..cli_defaults import field_default
from ..sim.config import SimConfig


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "simulate", help="simulate an atlas of several datasets from one known GRN",
        description="Simulate datasets (different cell states, depth, noise and dropout) of one "
                    "known TF -> target network with real human gene symbols. Writes raw counts "
                    "to OUT (a Zarr atlas) and the true edges (source, target, sign, ...) to "
                    "Parquet, by default OUT.edges.parquet beside the store.")
    p.add_argument("out", metavar="OUT", help="new atlas path, e.g. sim.zarr")
    def default(name: str):
        return field_default(SimConfig, name)

    p.add_argument("--datasets", type=int, default=default("n_datasets"),
                   help="number of datasets (default %(default)s)")
    p.add_argument("--cells", type=int, default=default("n_cells"),
                   help="cells per dataset (default %(default)s)")
    p.add_argument("--genes", type=int, default=default("n_genes"),
                   help="genes, TFs included (default %(default)s)")
    p.add_argument("--tfs", type=int, default=None,
                   help="transcription factors (default: 10%% of --genes, at least 2)")
    p.add_argument("--seed", type=int, default=default("seed"),
                   help="random seed (default %(default)s)")
    p.add_argument("--edges-out", default=None, metavar="PATH",
                   help="where to write the true edges (default OUT.edges.parquet)")
    p.add_argument("--block-cells", type=int, default=default("block_cells"),
                   help="cells generated and written per block: bounds memory, does not change "
                        "the result (default %(default)s)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace an existing atlas at OUT and an existing edges file")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..sim import simulate_atlas

    config = SimConfig(n_datasets=args.datasets, n_cells=args.cells, n_genes=args.genes,
                       n_tfs=args.tfs, seed=args.seed, block_cells=args.block_cells,
                       edges_out=args.edges_out, overwrite=args.overwrite)
    result = simulate_atlas(args.out, config)
    print(result.summary())
    return 0
