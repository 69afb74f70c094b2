"""The engine computes every kind its translator reads, rank statistics included: a fused
translator (probes + the knockout read-out + |Pearson|/|Spearman|/MI ranks) trained with
``train-translator --fused --select fused``, served by a real Ray job over the simulated world.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from atlasgrn.atlas import open_atlas
from atlasgrn.atlas.expression import expression_matrix
from atlasgrn.engine.job import run_job
from atlasgrn.engine.output import RunOutput, edges_dataset
from atlasgrn.features import rank_statistics

from .engine_helpers import (
    BLOCKS,
    regulators_file,
    sim_run_config,
    train_cli_translator,
)

KINDS = "vvp,gdt_uniform,gdt_source,attn,pert,rank_pearson,rank_spearman,rank_mi"


@pytest.fixture(scope="module")
def fused_translator(sim_world, tmp_path_factory):
    root = tmp_path_factory.mktemp("fused-translator")
    return train_cli_translator(root, sim_world.model_dir, sim_world.edges, sim_world.train_tfs,
                                sim_world.genes,
                                extra=("--kinds", KINDS, "--fused", "--select", "fused",
                                       "--expression", sim_world.atlas,
                                       "--expression-dataset", "sim00", "--max-epochs", "40"))


def test_the_fused_translator_keeps_one_model_and_the_kinds_it_reads(fused_translator):
    meta = json.loads((Path(fused_translator) / "translator.json").read_text())
    assert meta["ensemble_kinds"] == ["fused"] and list(meta["kinds"]) == ["fused"]
    assert meta["kinds"]["fused"]["inputs"] == KINDS.split(",")
    assert meta["feature_spec"]["kinds"] == KINDS.split(",")
    assert meta["feature_spec"]["mode"] == "context"
    cands = meta["provenance"]["ensemble"]["candidates_val_auroc"]
    assert {"vvp", "rank_pearson", "fused_probes", "fused"} <= set(cands)


def test_the_job_serves_rank_statistics_computed_from_the_dataset(ray_session, sim_world,
                                                                  fused_translator, tmp_path):
    regs = sorted(sim_world.tfs)[:BLOCKS["source_block"]]
    out = tmp_path / "run"
    cfg = sim_run_config(sim_world, out, translator=fused_translator, datasets=("sim00",),
                         regulators=regulators_file(tmp_path / "regs.txt", regs),
                         replicas=1, gpus_per_replica=0, cpus_per_replica=1, stat_cells=400)
    result = run_job(cfg, log=lambda _m: None)
    assert result.status == "complete"
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["kinds"] == KINDS.split(",")
    assert manifest["rank_statistics"] == {"kinds": ["rank_pearson", "rank_spearman",
                                                     "rank_mi"],
                                           "cells": {"sim00": 400}, "max_cells": 400}
    edges = edges_dataset(RunOutput(str(out))).to_table().to_pandas()
    assert len(edges) == len(regs) * (len(sim_world.genes) - 1)
    assert np.isfinite(edges["score"]).all()
    # the ranks enter the scores: fewer cells give other ranks, the same probes, other scores
    out2 = tmp_path / "run-100"
    cfg2 = sim_run_config(sim_world, out2, translator=fused_translator, datasets=("sim00",),
                          regulators=regulators_file(tmp_path / "regs.txt", regs),
                          replicas=1, gpus_per_replica=0, cpus_per_replica=1, stat_cells=100)
    assert run_job(cfg2, log=lambda _m: None).status == "complete"
    other = edges_dataset(RunOutput(str(out2))).to_table().to_pandas()
    merged = edges.merge(other, on=["source", "target"], suffixes=("", "_100"))
    assert len(merged) == len(edges)
    assert not np.allclose(merged["score"], merged["score_100"])


def test_each_block_gets_its_cells_of_the_network_statistics(sim_world):
    from atlasgrn.engine.datasource import block_statistics
    from atlasgrn.engine.plan import BlockSpec
    from atlasgrn.engine.scoring import BlockWork, _with_stats
    from atlasgrn.features.compute import BlockFeatures

    ds = open_atlas(sim_world.atlas, writable=False).dataset("sim00")
    genes = sorted(sim_world.genes)
    regs = sorted(sim_world.tfs)[:4]
    kinds = ("rank_pearson", "rank_mi")
    stats = rank_statistics(expression_matrix(ds, genes, max_cells=300), genes, regs, kinds)
    block = BlockSpec("sim00", 0, 1, tuple(regs[1:3]), tuple(genes[10:20]))
    names, flat = block_statistics(stats, regs, genes, block)
    assert names == sorted(kinds)
    cube = flat.reshape(len(names), 2, 10)
    np.testing.assert_array_equal(cube[names.index("rank_mi")], stats["rank_mi"][1:3, 10:20])
    probed = BlockFeatures(block.sources, block.targets,
                           {"vvp": np.zeros((2, 10, 3), np.float32)}, 0.0)
    work = BlockWork(block, (), None, dict(zip(names, cube)))
    merged = _with_stats(probed, work, kinds)
    assert not isinstance(merged, Exception)
    np.testing.assert_array_equal(merged.features["rank_pearson"][..., 0],
                                  stats["rank_pearson"][1:3, 10:20])
    assert isinstance(_with_stats(probed, BlockWork(block, (), None, None), kinds), ValueError)


def test_plan_prices_a_rank_statistics_translator(sim_world, fused_translator, tmp_path):
    from atlasgrn.engine.estimate import estimate
    from atlasgrn.engine.job import prepare

    cfg = sim_run_config(sim_world, tmp_path / "plan", translator=fused_translator,
                         datasets=("sim00",), replicas=1, gpus_per_replica=0,
                         cpus_per_replica=1, stat_cells=200)
    prep = prepare(cfg, log=lambda _m: None)
    assert prep.mode == "context" and set(prep.stats["sim00"]) == {
        "rank_pearson", "rank_spearman", "rank_mi"}
    plan = estimate(prep)
    assert plan.blocks == len(prep.specs) > 0
