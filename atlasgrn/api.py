"""Notebook API: ``atlasgrn.infer(atlas_or_anndata, ...) -> pandas.DataFrame``.

It runs exactly the main job's code path (``atlasgrn.engine.job.run_job``) on a local Ray, so a
notebook result and a nightly build of the same inputs agree. An in-memory AnnData is first
written to a temporary atlas (one dataset) by the ordinary dataset writer.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Sequence
from typing import Any

import pandas as pd


def _anndata_to_atlas(adata: Any, root: str, name: str, species: str, value_kind: str) -> str:
    import scipy.sparse as sp

    from .atlas.writer import DatasetWriter

    uri = os.path.join(root, "input.zarr")
    x = adata.X
    block_cells = 4096
    with DatasetWriter(uri, name, list(map(str, adata.var_names)), species=species,
                       value_kind=value_kind, source="atlasgrn.infer(AnnData)") as w:
        for start in range(0, adata.n_obs, block_cells):
            block = x[start:start + block_cells]
            block = sp.csr_matrix(block) if not sp.issparse(block) else block.tocsr()
            w.append(block, cell_names=list(map(str, adata.obs_names[start:start + block_cells])))
        w.commit()
    return uri


def infer(data: Any, *, model: str | None = None, translator: str | None = None,
          datasets: Sequence[str] | None = None, out: str | None = None,
          species: str = "human", value_kind: str = "log1p", dataset_name: str = "adata",
          consensus: bool = False, **options: Any) -> pd.DataFrame:
    """Edges of every selected dataset (columns: dataset, source, target, score, logit_vvp,
    logit_gdt), or the cross-dataset consensus with ``consensus=True``.

    ``data`` is an atlas path/URL or an AnnData (``species``/``value_kind`` describe its X).
    ``out`` keeps the run directory (else a temporary one is removed afterwards); other
    keyword options are :class:`~atlasgrn.engine.config.RunConfig` fields (``source_block``,
    ``replicas``, ``gpus_per_replica``, ``background`` ...).
    """
    import pyarrow.dataset as pads

    from .engine.config import RunConfig
    from .engine.job import run_job
    from .engine.sink import RunOutput, edges_dataset
    from .errors import AtlasgrnError

    tmp = tempfile.mkdtemp(prefix="atlasgrn-infer-")
    try:
        if isinstance(data, (str, os.PathLike)):
            atlas = os.fspath(data)
        else:
            atlas = _anndata_to_atlas(data, tmp, dataset_name, species, value_kind)
        out_uri = out or os.path.join(tmp, "run")
        config = RunConfig(atlas=atlas, out=out_uri, model=model, translator=translator,
                           datasets=tuple(datasets) if datasets else None, **options)
        result = run_job(config, log=lambda _msg: None)
        if result.status != "complete":
            raise AtlasgrnError(f"{len(result.blocks_failed)} block(s) failed, e.g. "
                                f"{result.blocks_failed[0]}", path=out_uri,
                                remedy="see manifest.json; rerun with the same out= to resume")
        ro = RunOutput(out_uri)
        if consensus:
            table = pads.dataset(ro.path("consensus"), format="parquet",
                                 filesystem=ro.fs).to_table()
            df = table.to_pandas()
            return df.sort_values(["source", "target"], ignore_index=True)
        df = edges_dataset(ro).to_table().to_pandas()
        df["dataset"] = df["dataset"].astype(str)
        cols = ["dataset", "source", "target", "score", "logit_vvp", "logit_gdt"]
        return df[cols].sort_values(["dataset", "source", "target"], ignore_index=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
