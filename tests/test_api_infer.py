"""``atlasgrn.infer`` runs the job's code path on a local Ray and returns the job's edges."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pytest

import atlasgrn
from atlasgrn.atlas import open_atlas
from atlasgrn.engine.output import RunOutput, edges_dataset


@pytest.mark.slow
def test_infer_on_an_atlas_and_on_anndata_returns_the_jobs_edges(clean_run, sim_world):
    out, _ = clean_run
    job = edges_dataset(RunOutput(str(out))).to_table().to_pandas()
    job = job[job["dataset"].astype(str) == "sim00"].sort_values(["source", "target"],
                                                                  ignore_index=True)
    opts = dict(model=sim_world.model_dir, translator=sim_world.translator_dir,
                regulators=sim_world.regulators, replicas=1,
                gpus_per_replica=0, cpus_per_replica=1)

    from_atlas = atlasgrn.infer(sim_world.atlas, datasets=["sim00"], **opts)
    logits = sorted(c for c in job.columns if c.startswith("logit_"))
    assert list(from_atlas.columns) == ["dataset", "source", "target", "score", *logits]
    assert len(from_atlas) == len(job) > 0
    assert (from_atlas["source"].tolist(), from_atlas["target"].tolist()) == (
        job["source"].tolist(), job["target"].tolist())
    np.testing.assert_array_equal(from_atlas["score"].to_numpy(), job["score"].to_numpy())

    ds = open_atlas(sim_world.atlas).dataset("sim00")
    adata = ad.AnnData(X=ds.read_cells(0, ds.info.n_cells))
    adata.var_names = [str(g) for g in ds.genes]
    from_adata = atlasgrn.infer(adata, dataset_name="sim00", species=ds.info.species,
                                value_kind=ds.info.value_kind, **opts)
    assert from_adata["dataset"].unique().tolist() == ["sim00"]
    np.testing.assert_array_equal(from_adata["score"].to_numpy(), job["score"].to_numpy())


def _adata_with_ensembl_names(world):
    ds = open_atlas(world.atlas).dataset("sim00")
    adata = ad.AnnData(X=ds.read_cells(0, 200))
    adata.var_names = [f"ENSG{i:011d}" for i in range(ds.info.n_genes)]
    adata.var["gene_symbol"] = [str(g) for g in ds.genes]
    return ds, adata


@pytest.mark.slow
def test_infer_takes_symbols_from_var_as_ingest_does(ray_session, sim_world):
    ds, adata = _adata_with_ensembl_names(sim_world)
    edges = atlasgrn.infer(adata, model=sim_world.model_dir, translator=sim_world.translator_dir,
                           species=ds.info.species, value_kind=ds.info.value_kind,
                           max_regulators=2, replicas=1, gpus_per_replica=0, cpus_per_replica=1)
    assert len(edges) > 0 and set(edges["source"]) <= set(map(str, ds.genes))


def test_infer_errors_name_the_python_arguments(sim_world):
    ds, adata = _adata_with_ensembl_names(sim_world)
    adata.var["gene_symbol"] = ["SAME"] * 2 + [str(g) for g in ds.genes][2:]
    with pytest.raises(atlasgrn.AtlasgrnError) as err:
        atlasgrn.infer(adata, model=sim_world.model_dir, translator=sim_world.translator_dir)
    assert "dedupe=True" in str(err.value) and "--dedupe" not in str(err.value)
    adata.var = adata.var.drop(columns=["gene_symbol"])
    with pytest.raises(atlasgrn.AtlasgrnError) as err:
        atlasgrn.infer(adata, model=sim_world.model_dir, translator=sim_world.translator_dir,
                       gene_column="symbols")
    assert "gene_column=" in str(err.value) and "--gene-column" not in str(err.value)
