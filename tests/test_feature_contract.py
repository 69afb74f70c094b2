"""One feature path from training to serving: the benchmark's tables and the job's blocks give
bit-identical features for the same pairs, model and spec (design §3.3a)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from atlasgrn.atlas import open_atlas
from atlasgrn.bench.config import BenchConfig
from atlasgrn.bench.genelink import NetworkSet
from atlasgrn.bench.run import _Run
from atlasgrn.engine.config import RunConfig
from atlasgrn.engine.job import prepare
from atlasgrn.engine.scoring import BlockWork, probe_blocks
from atlasgrn.translator import load_translator_dir, save_translator

from .bench_toy import write_expression


def _log1p_copy(tmp: Path, world, dataset: str) -> tuple[str, NetworkSet]:
    """One dataset twice, with the same log1p values (BEELINE's value kind): as an atlas for the
    job, and as a BEELINE set (genes, TFs, a genes x cells expression CSV) for the benchmark."""
    from atlasgrn.atlas.writer import DatasetWriter

    ds = open_atlas(world.atlas).dataset(dataset)
    x = np.log1p(np.asarray(ds.read_cells(0, ds.info.n_cells, dense=True), dtype=np.float32))
    genes = [str(g) for g in ds.genes]
    atlas = str(tmp / "log1p.zarr")
    with DatasetWriter(atlas, dataset, genes, species=ds.info.species, value_kind="log1p",
                       source="test") as w:
        w.append(x)
        w.commit()
    path = write_expression(tmp, dataset, 500, pd.DataFrame(
        x.T, index=genes, columns=[f"c{i}" for i in range(x.shape[0])]))
    tfs = tuple(sorted(world.tfs))
    return atlas, NetworkSet(network="sim", dataset=dataset, size=500, genes=tuple(genes),
                             tfs=tfs, sources=np.asarray([], dtype=str),
                             targets=np.asarray([], dtype=str), folder=tmp,
                             expression_path=path)


def _translator_with(world, tmp: Path, **changes) -> str:
    """The world's translator re-stamped with another spec (only the features matter here)."""
    tr = load_translator_dir(world.translator_dir)
    tr.feature_spec = dataclasses.replace(tr.feature_spec, **changes)
    return str(save_translator(tr, tmp / "translator"))


@pytest.mark.parametrize("changes", [
    {}, {"background": "profile", "anchors": "expression", "context_len": 100}],
    ids=["translator-spec", "profile-background"])
def test_bench_path_and_engine_path_give_bit_identical_features(sim_world, tmp_path, changes):
    translator = _translator_with(sim_world, tmp_path, **changes) if changes else \
        sim_world.translator_dir
    tr = load_translator_dir(translator)
    spec = tr.feature_spec
    kinds = list(tr.ensemble_kinds)

    atlas, network_set = _log1p_copy(tmp_path, sim_world, "sim00")
    prep = prepare(RunConfig(atlas=atlas, out=str(tmp_path / "o"),
                             model=sim_world.model_dir, translator=translator,
                             datasets=("sim00",), regulators=_regs(tmp_path, sim_world)))
    assert prep.spec == spec

    run = _Run(BenchConfig(data=tmp_path, out=tmp_path / "b", model=sim_world.model_dir,
                           methods=("vvp", "gdt_uniform", "gdt_source"),
                           features={"source_block": spec.source_block,
                                     "target_block": spec.target_block}),
               progress=lambda m: None)
    run.specs[0] = spec
    table = run.table(run.model, network_set, 0)

    compared = 0
    ds = prep.datasets[0]
    # the engine probes its blocks as one stacked batch; the benchmark computed them one by one
    batch = probe_blocks(prep.model, prep.spec, kinds,
                         [BlockWork(b, ds.anchors, prep.profiles.get(ds.name))
                          for b in prep.specs])
    assert len(prep.specs) > 1
    for bf in batch:
        assert not isinstance(bf, Exception)
        ss, tt, flat = bf.pair_rows()
        got, ok = table.gather(ss.tolist(), tt.tolist(), kinds)
        assert ok.all()
        for kind in kinds:
            np.testing.assert_array_equal(got[kind], flat[kind], err_msg=kind)
        compared += len(ss)
    assert compared == prep.n_pairs > 1000


def _regs(tmp: Path, world) -> str:
    path = tmp / "regs.txt"
    path.write_text("\n".join(sorted(world.tfs)) + "\n")
    return str(path)
