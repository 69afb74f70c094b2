"""The streaming driver: simulate every dataset block by block into an atlas, then write the
true edges.

Memory is bounded by one write block (``SimConfig.block_cells`` cells x genes), whatever the
number of cells, because cells are generated in RNG units of
:data:`~atlasgrn.sim.sample.RNG_UNIT_CELLS` and appended to a :class:`DatasetWriter` as soon as
a block is full. Random streams are derived from ``SeedSequence(seed, spawn_key=...)`` with
keys (0,) for the network, (1,) for the cell-state pool, (1, d) for dataset ``d``'s context
and (2, d, u) for unit ``u`` of dataset ``d``. The output therefore depends on the seed and the
sizes (genes, TFs, datasets) but not on the block size, and a run with fewer cells reproduces
the first cells of a run with more, in whole units.
"""

from __future__ import annotations

import os
import shutil
import time
from math import ceil

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import scipy.sparse as sp

from ..atlas.store import DatasetInfo, _local_path, is_remote, open_root, read_root_meta
from ..atlas.writer import DatasetWriter
from ..atomic import write_atomic
from ..errors import AtlasFormatError, AtlasgrnError
from .config import SimConfig, SimResult, config_dict
from .grn import GRN, build_grn
from .kinetics import KineticPlan, plan_kinetics
from .sample import (
    RNG_UNIT_CELLS,
    DatasetContext,
    make_context,
    make_state_pool,
    sample_unit,
)
from .symbols import simulation_pools

SIMULATOR_VERSION = 1
EDGES_SUFFIX = ".edges.parquet"


def default_edges_path(atlas_uri: str) -> str:
    """``<atlas>.edges.parquet`` beside the store: outside the Zarr tree, so the atlas stays a
    pure Zarr store and the truth can be handed out (or withheld) separately."""
    return atlas_uri.rstrip("/") + EDGES_SUFFIX


def _rng(seed: int, *key: int) -> np.random.Generator:
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed, spawn_key=key)))


def simulate_atlas(out_uri: str | os.PathLike[str], config: SimConfig = SimConfig()
                   ) -> SimResult:
    """Simulate ``config.n_datasets`` datasets of one known GRN into a new atlas at ``out_uri``.

    Returns what was written. Raises :class:`AtlasgrnError` for bad sizes and for existing
    outputs unless ``config.overwrite``; on any failure, outputs this call created are removed.
    """
    start = time.perf_counter()
    out = os.fspath(out_uri).rstrip("/")
    tf_pool, target_pool = simulation_pools()
    config.validate(out, max_tfs=len(tf_pool), max_targets=len(target_pool))
    edges_path = config.edges_out or default_edges_path(out)
    _check_outputs(out, edges_path, config.overwrite)
    try:
        grn = build_grn(config.n_genes, config.tfs, _rng(config.seed, 0),
                        tf_pool=tf_pool, target_pool=target_pool)
        plan = plan_kinetics(grn)
        n_pool = config.n_datasets + 3
        pool = make_state_pool(n_pool, grn.n_masters, _rng(config.seed, 1))
        state_names = np.array([f"state{i:02d}" for i in range(n_pool)], dtype=object)
        width = max(2, len(str(config.n_datasets - 1)))
        contexts = [make_context(f"sim{d:0{width}d}", n_pool, grn.n_masters, grn.n_genes,
                                 _rng(config.seed, 1, d)) for d in range(config.n_datasets)]
        infos = [_write_dataset(out, d, ctx, grn, plan, pool, state_names, config)
                 for d, ctx in enumerate(contexts)]
        _write_edges(grn, edges_path)
    except BaseException:
        _remove_store(out)
        _remove_file(edges_path)
        raise
    return SimResult(atlas_uri=out, edges_path=edges_path, datasets=infos,
                     genes=sorted(grn.genes.astype(str).tolist()),
                     tfs=sorted(grn.genes[:grn.n_tfs].astype(str).tolist()),
                     n_edges=grn.n_edges, seconds=time.perf_counter() - start,
                     config=config_dict(config))


def _write_dataset(out: str, d: int, ctx: DatasetContext, grn: GRN, plan: KineticPlan,
                   pool: np.ndarray, state_names: np.ndarray, config: SimConfig) -> DatasetInfo:
    """Stream one dataset: whole RNG units per block, columns in alphabetical gene order."""
    var_order = np.argsort(grn.genes.astype(str), kind="stable")
    var_genes = grn.genes[var_order].astype(str).tolist()
    n_units = ceil(config.n_cells / RNG_UNIT_CELLS)
    units_per_block = max(1, ceil(config.block_cells / RNG_UNIT_CELLS))
    attrs = {"atlasgrn_sim": {"simulator_version": SIMULATOR_VERSION, "seed": config.seed,
                              "dataset_index": d, "n_tfs": grn.n_tfs,
                              "n_master_tfs": grn.n_masters, "n_true_edges": grn.n_edges,
                              **ctx.describe(list(state_names))}}
    with DatasetWriter(out, ctx.name, var_genes, species="human", value_kind="counts",
                       source=f"atlasgrn simulate (seed {config.seed}, dataset {d + 1} of "
                              f"{config.n_datasets}, simulator v{SIMULATOR_VERSION})",
                       extra_attrs=attrs, overwrite=False) as writer:
        for first_unit in range(0, n_units, units_per_block):
            parts, states = [], []
            for u in range(first_unit, min(first_unit + units_per_block, n_units)):
                size = min(RNG_UNIT_CELLS, config.n_cells - u * RNG_UNIT_CELLS)
                counts, state = sample_unit(plan, pool, ctx, size, _rng(config.seed, 2, d, u),
                                            gene_order=var_order)
                parts.append(dense_to_csr(counts))
                states.append(state)
            block = sp.vstack(parts, format="csr")
            first = first_unit * RNG_UNIT_CELLS
            names = [f"{ctx.name}-c{i}" for i in range(first, first + block.shape[0])]
            obs = pd.DataFrame({"cell_state": state_names[np.concatenate(states)]})
            writer.append(block, cell_names=names, obs=obs)
        return writer.commit()


def dense_to_csr(dense: np.ndarray) -> sp.csr_matrix:
    """CSR of a C-contiguous 2-D array, built from one flat scan (several times faster than
    ``scipy.sparse.csr_matrix(dense)``, which goes through COO)."""
    mask = dense != 0
    flat = np.flatnonzero(mask)
    indptr = np.zeros(dense.shape[0] + 1, dtype=np.int64)
    np.cumsum(np.count_nonzero(mask, axis=1), out=indptr[1:])
    return sp.csr_matrix((dense.ravel()[flat], (flat % dense.shape[1]).astype(np.int32), indptr),
                         shape=dense.shape)


def _write_edges(grn: GRN, path: str) -> None:
    """All or nothing: a local file appears complete or not at all, a remote one in one PUT."""
    table = grn.edges_table()
    write_atomic(path, lambda fh: pq.write_table(table, fh))


def _exists(path: str) -> bool:
    if is_remote(path) and not path.startswith("file://"):
        import fsspec
        fs, p = fsspec.core.url_to_fs(path)
        return bool(fs.exists(p))
    return os.path.lexists(_local_path(path))


def _check_outputs(out: str, edges_path: str, overwrite: bool) -> None:
    """Refuse to clobber anything unless asked; even then, only replace what we can tell is
    a simulator output (an atlas, a file) - never an arbitrary directory."""
    if not is_remote(edges_path) or edges_path.startswith("file://"):
        parent = os.path.dirname(os.path.abspath(_local_path(edges_path)))
        if not os.path.isdir(parent):
            raise AtlasgrnError("parent directory of the edges file does not exist",
                                path=edges_path, key="--edges-out",
                                remedy=f"create {parent} first")
    if _exists(out):
        if not overwrite:
            raise AtlasgrnError("output atlas already exists", path=out, key="OUT",
                                remedy="choose a new path, or pass --overwrite to replace it")
        if is_remote(out) and not out.startswith("file://"):
            raise AtlasgrnError("replacing a remote atlas is not supported", path=out,
                                key="OUT", remedy="remove it first, or write to a new path")
        try:
            read_root_meta(open_root(out, mode="r"), out)
        except AtlasFormatError:
            raise AtlasgrnError("output exists and is not an atlas; refusing to replace it",
                                path=out, key="OUT", remedy="choose a new path") from None
        shutil.rmtree(_local_path(out))
    if _exists(edges_path):
        local = not is_remote(edges_path) or edges_path.startswith("file://")
        if not overwrite:
            raise AtlasgrnError("edges file already exists", path=edges_path, key="--edges-out",
                                remedy="choose another --edges-out, or pass --overwrite")
        if local and os.path.isdir(_local_path(edges_path)):
            raise AtlasgrnError("edges path is a directory; refusing to replace it",
                                path=edges_path, key="--edges-out",
                                remedy="pass a file path to --edges-out")


def _remove_store(out: str) -> None:
    """Remove a half-written atlas (only called when this call created it)."""
    try:
        if is_remote(out) and not out.startswith("file://"):
            import fsspec
            fs, p = fsspec.core.url_to_fs(out)
            if fs.exists(p):
                fs.rm(p, recursive=True)
        else:
            shutil.rmtree(_local_path(out), ignore_errors=True)
    except Exception:  # noqa: BLE001 - cleanup must not mask the original error
        pass


def _remove_file(path: str) -> None:
    try:
        if is_remote(path) and not path.startswith("file://"):
            return
        if os.path.isfile(_local_path(path)):
            os.remove(_local_path(path))
    except OSError:
        pass
