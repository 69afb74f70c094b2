"""``atlasgrn.infer`` runs the job's code path on a local Ray and returns the job's edges."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pytest

import atlasgrn
from atlasgrn.atlas import open_atlas
from atlasgrn.engine.sink import RunOutput, edges_dataset

from .engine_helpers import ray_session, sim_world  # noqa: F401 - fixtures
from .test_engine_job import BLOCKS, clean_run  # noqa: F401 - fixture


@pytest.mark.slow
def test_infer_on_an_atlas_and_on_anndata_returns_the_jobs_edges(clean_run, sim_world):  # noqa: F811
    out, _ = clean_run
    job = edges_dataset(RunOutput(str(out))).to_table().to_pandas()
    job = job[job["dataset"].astype(str) == "sim00"].sort_values(["source", "target"],
                                                                  ignore_index=True)
    opts = dict(model=sim_world.model_dir, translator=sim_world.translator_dir, replicas=1,
                gpus_per_replica=0, cpus_per_replica=1, **BLOCKS)

    from_atlas = atlasgrn.infer(sim_world.atlas, datasets=["sim00"], **opts)
    assert list(from_atlas.columns) == ["dataset", "source", "target", "score", "logit_vvp",
                                        "logit_gdt"]
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
