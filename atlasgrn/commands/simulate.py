"""``atlasgrn simulate``: write a synthetic multi-dataset atlas and its true GRN."""

from __future__ import annotations

import argparse

from ..sim import SimConfig, simulate_atlas
from ..sim.config import DEFAULT_BLOCK_CELLS


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "simulate", help="simulate an atlas of several datasets from one known GRN",
        description="Simulate datasets (different cell states, depth, noise and dropout) of one "
                    "known TF -> target network with real human gene symbols. Writes raw counts "
                    "to OUT (a Zarr atlas) and the true edges (source, target, sign, ...) to "
                    "Parquet, by default OUT.edges.parquet beside the store.")
    p.add_argument("out", metavar="OUT", help="new atlas path, e.g. sim.zarr")
    p.add_argument("--datasets", type=int, default=3, help="number of datasets (default 3)")
    p.add_argument("--cells", type=int, default=500, help="cells per dataset (default 500)")
    p.add_argument("--genes", type=int, default=200, help="genes, TFs included (default 200)")
    p.add_argument("--tfs", type=int, default=None,
                   help="transcription factors (default: 10%% of --genes, at least 2)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--edges-out", default=None, metavar="PATH",
                   help="where to write the true edges (default OUT.edges.parquet)")
    p.add_argument("--block-cells", type=int, default=DEFAULT_BLOCK_CELLS,
                   help="cells generated and written per block: bounds memory, does not change "
                        f"the result (default {DEFAULT_BLOCK_CELLS})")
    p.add_argument("--overwrite", action="store_true",
                   help="replace an existing atlas at OUT and an existing edges file")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    config = SimConfig(n_datasets=args.datasets, n_cells=args.cells, n_genes=args.genes,
                       n_tfs=args.tfs, seed=args.seed, block_cells=args.block_cells,
                       edges_out=args.edges_out, overwrite=args.overwrite)
    result = simulate_atlas(args.out, config)
    print(result.summary())
    return 0
