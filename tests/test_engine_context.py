"""Context mode on real Ray over the simulated world: a translator trained with a profile
background (``train-translator --background profile --expression``), then one network per
(dataset, cell state) with enough cells, each probed with its own mean profile."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.dataset as pads
import pytest

from atlasgrn.engine.config import RunConfig
from atlasgrn.engine.job import prepare, run_job
from atlasgrn.engine.output import RunOutput, edges_dataset
from atlasgrn.errors import AtlasgrnError

from .engine_helpers import BLOCKS, train_cli_translator


@pytest.fixture(scope="module")
def context_translator(sim_world, tmp_path_factory):
    """``atlasgrn train-translator`` for context mode: the training TFs' true edges, features
    with the mean profile of sim00 as the background."""
    root = tmp_path_factory.mktemp("context-translator")
    return train_cli_translator(root, sim_world.model_dir, sim_world.edges, sim_world.train_tfs,
                                sim_world.genes,
                                extra=("--background", "profile", "--expression",
                                       sim_world.atlas, "--expression-dataset", "sim00"))


def _states(atlas: str, dataset: str) -> pd.Series:
    import anndata as ad
    import zarr

    group = zarr.open_group(f"{atlas}/datasets/{dataset}/obs", mode="r")
    return pd.Series(ad.io.read_elem(group["cell_state"])).astype(str).value_counts()


def _config(world, translator: str, out: Path, **kw) -> RunConfig:
    base = dict(atlas=world.atlas, out=str(out), model=world.model_dir, translator=translator,
                replicas=1, gpus_per_replica=0, cpus_per_replica=1, progress_every_s=0.0)
    base.update(kw)
    return RunConfig(**base)


def test_context_translator_states_its_mode(context_translator):
    spec = json.loads((Path(context_translator) / "translator.json").read_text())
    assert spec["feature_spec"]["background"] == "profile"
    assert spec["feature_spec"]["mode"] == "context"


def test_one_network_per_context_with_enough_cells(ray_session, sim_world, context_translator,
                                                   tmp_path):
    counts = _states(sim_world.atlas, "sim00")
    assert len(counts) >= 3
    # a threshold that keeps some states and drops at least one
    min_cells = int(counts.iloc[len(counts) // 2])
    kept = sorted(counts[counts >= min_cells].index)
    assert 0 < len(kept) < len(counts)
    regs = tmp_path / "regs.txt"
    regs.write_text("\n".join(sorted(sim_world.tfs)[:BLOCKS["source_block"]]) + "\n")
    out = tmp_path / "run"
    result = run_job(_config(sim_world, context_translator, out, datasets=("sim00",),
                             regulators=str(regs), context_key="cell_state",
                             min_cells=min_cells), log=lambda _m: None)
    assert result.status == "complete"
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["mode"] == "context" and manifest["store"] is None
    assert manifest["contexts"]["cells"]["sim00"] == {k: int(v) for k, v in counts.items()}
    parts = sorted(p.name for p in (out / "edges" / "dataset=sim00").iterdir())
    assert parts == [f"context={c}" for c in kept]
    edges = edges_dataset(RunOutput(str(out))).to_table().to_pandas()
    assert sorted(edges["context"].unique()) == kept
    # each context's network comes from its own profile: the scores differ between contexts
    wide = edges.pivot_table(index=["source", "target"], columns="context", values="score")
    assert wide.notna().all().all()
    assert not np.allclose(wide[kept[0]], wide[kept[-1]])
    cons = pads.dataset(str(out / "consensus"), format="parquet").to_table().to_pandas()
    assert (cons["n_datasets"] == len(kept)).all()  # one count per network


def test_context_key_errors_are_one_line_before_any_output(ray_session, sim_world,
                                                           context_translator, tmp_path):
    out = tmp_path / "out"
    with pytest.raises(AtlasgrnError, match="cell_type"):
        prepare(_config(sim_world, context_translator, out, context_key="cell_type"),
                log=lambda _m: None)
    with pytest.raises(AtlasgrnError, match="--min-cells"):
        prepare(_config(sim_world, context_translator, out, context_key="cell_state",
                        min_cells=100_000), log=lambda _m: None)
    with pytest.raises(AtlasgrnError, match="needs context mode"):
        prepare(_config(sim_world, sim_world.translator_dir, out, context_key="cell_state"),
                log=lambda _m: None)
    assert not out.exists()
