"""Notebook API: ``atlasgrn.infer(atlas_or_anndata, ...) -> pandas.DataFrame``.

It runs exactly the main job's code path (``atlasgrn.engine.job.run_job``), so a notebook result
and a nightly build of the same inputs agree. An in-memory AnnData is first written to a
temporary atlas (one dataset) with ingest's gene rules: a symbol column of ``var`` is used
automatically (``gene_symbol``, ``feature_name`` ...; or ``gene_column=``), unnamed genes are
dropped and duplicate symbols refused or, with ``dedupe=True``, summed on the linear scale.

Errors speak of the Python arguments (``dedupe=True``, ``datasets=``), not the CLI flags the
shared code names.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Sequence
from typing import Any

import pandas as pd

SOURCE = "atlasgrn.infer(AnnData)"
_FLAG = re.compile(r"--([a-z][a-z0-9-]*)")


def _python_spelling(text: str | None) -> str | None:
    """``--gene-column`` -> ``gene_column=``, ``--dedupe`` -> ``dedupe=True``: the same option,
    as the keyword argument it is in :func:`infer`."""
    if text is None:
        return None

    def arg(m: re.Match) -> str:
        name = m.group(1).replace("-", "_")
        return "dedupe=True" if name == "dedupe" else f"{name}="

    return _FLAG.sub(arg, text)


def _anndata_to_atlas(adata: Any, root: str, name: str, species: str | None,
                      value_kind: str | None, gene_column: str | None, dedupe: bool
                      ) -> tuple[str, str]:
    """Stage the AnnData as a one-dataset atlas; returns its path and a content hash (the
    writer's digest of the values, plus genes, species and value kind: what decides the edges),
    the atlas's identity for resuming a run with ``out=``."""
    import numpy as np
    import scipy.sparse as sp

    from .atlas.ingest.genes import plan_genes
    from .atlas.ingest.h5ad import gene_names_from_var
    from .atlas.ingest.infer import SAMPLE_CELLS, infer_species, infer_value_kind
    from .atlas.writer import DatasetWriter
    from .digest import json_sha256

    uri = os.path.join(root, "input.zarr")
    if value_kind is None:  # as ingest does: integers -> counts, else by the value range
        value_kind, _why = infer_value_kind(adata.X[:SAMPLE_CELLS])
    names, extra, _origin = gene_names_from_var(adata.var, gene_column, SOURCE, "var")
    plan = plan_genes(np.asarray(names, dtype=object), extra, dedupe=dedupe,
                      value_kind=value_kind, source=SOURCE, key="var")
    if species is None:
        from .models.vocab import scgpt_human_vocab

        species, _why = infer_species(plan.names, source=SOURCE, vocab=scgpt_human_vocab())
    x = adata.X
    block_cells = 4096
    with DatasetWriter(uri, name, plan.var, species=species, value_kind=value_kind,
                       source=SOURCE) as w:
        for start in range(0, adata.n_obs, block_cells):
            block = x[start:start + block_cells]
            block = sp.csr_matrix(block) if not sp.issparse(block) else block.tocsr()
            w.append(plan.apply(block),
                     cell_names=list(map(str, adata.obs_names[start:start + block_cells])))
        info = w.commit()
    # the writer's own content digest of the values, with what else decides the edges
    identity = json_sha256([name, species, value_kind, list(map(str, plan.names)),
                            info.content_sha256])
    return uri, f"anndata:{identity}"


def infer(data: Any, *, model: str | None = None, translator: str | None = None,
          datasets: Sequence[str] | None = None, out: str | None = None,
          species: str | None = None, value_kind: str | None = None,
          dataset_name: str = "adata",
          gene_column: str | None = None, dedupe: bool = False,
          consensus: bool = False, **options: Any) -> pd.DataFrame:
    """Edges of every selected dataset (columns: dataset, source, target, score and one
    ``logit_<kind>`` per kind of the translator's ensemble), or the cross-dataset consensus
    with ``consensus=True``.

    ``data`` is an atlas path/URL or an AnnData (``species``/``value_kind`` describe its X and
    are inferred from it as ``atlasgrn ingest`` infers them when not given;
    ``gene_column`` names the var column of gene symbols when it is not found automatically;
    ``dedupe`` sums genes that share a symbol).
    ``out`` keeps the run directory (else a temporary one is removed afterwards); other
    keyword options are :class:`~atlasgrn.engine.config.RunConfig` fields (``source_block``,
    ``replicas``, ``gpus_per_replica``, ``background`` ...).
    """
    from .errors import AtlasgrnError

    tmp = tempfile.mkdtemp(prefix="atlasgrn-infer-")
    try:
        return _infer(data, tmp, model, translator, datasets, out, species, value_kind,
                      dataset_name, gene_column, dedupe, consensus, options)
    except AtlasgrnError as exc:
        raise type(exc)(_python_spelling(exc.detail), path=exc.path,
                        key=_python_spelling(exc.key), remedy=_python_spelling(exc.remedy)
                        ) from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _infer(data: Any, tmp: str, model: str | None, translator: str | None,
           datasets: Sequence[str] | None, out: str | None, species: str | None,
           value_kind: str | None,
           dataset_name: str, gene_column: str | None, dedupe: bool, consensus: bool,
           options: dict[str, Any]) -> pd.DataFrame:
    import pyarrow.dataset as pads

    from .engine.config import RunConfig
    from .engine.job import run_job
    from .engine.output import RunOutput, edges_dataset

    atlas_id = None
    if isinstance(data, (str, os.PathLike)):
        atlas = os.fspath(data)
    else:
        atlas, atlas_id = _anndata_to_atlas(data, tmp, dataset_name, species, value_kind,
                                            gene_column, dedupe)
    out_uri = out or os.path.join(tmp, "run")
    config = RunConfig(atlas=atlas, out=out_uri, atlas_id=atlas_id, model=model,
                       translator=translator, datasets=tuple(datasets) if datasets else None,
                       **options)
    result = run_job(config, log=lambda _msg: None)
    if result.status != "complete":
        from .errors import AtlasgrnError

        if result.status == "stalled":
            raise AtlasgrnError("no replica started within start_timeout_s (manifest.json says "
                                "what was pending)", path=out_uri, key="start_timeout_s",
                                remedy="free or add the resources, lower cpus_per_replica / "
                                "gpus_per_replica, then call again with the same out= to "
                                "resume (in a reused Ray session, ray.shutdown() first: the "
                                "waiting pipeline is not cancelled)")
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
    cols = ["dataset", "source", "target", "score"] + sorted(
        c for c in df.columns if c.startswith("logit_"))
    return df[cols].sort_values(["dataset", "source", "target"], ignore_index=True)
