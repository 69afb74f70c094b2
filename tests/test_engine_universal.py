"""Universal mode and its probe store, on real Ray over the simulated world: a dataset's edges
are the store's scores for its pairs, an incremental build equals a from-scratch one and probes
only the blocks it never probed, an interrupted build resumes to the same bytes, and a store
written under another key is never read."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

from atlasgrn.engine.job import prepare, run_job
from atlasgrn.engine.store import ProbeStore
from atlasgrn.errors import AtlasgrnError

from .engine_helpers import sim_run_config

_config = sim_run_config


def _files(out: Path, sub: str) -> dict[str, bytes]:
    return {str(f.relative_to(out)): f.read_bytes()
            for f in sorted((out / sub).rglob("*.parquet"))}


def _manifest(out: Path) -> dict:
    return json.loads((out / "manifest.json").read_text())


def _store_scores(store_root: Path) -> pd.DataFrame:
    files = sorted(store_root.glob("model=*/spec=*/scores/translator=*/*.parquet"))
    assert files
    return pd.concat([pq.read_table(f).to_pandas() for f in files], ignore_index=True)


def test_the_clean_run_is_universal_and_each_dataset_is_the_store_restricted(clean_run):
    out, result = clean_run
    manifest = _manifest(out)
    assert manifest["mode"] == "universal" and manifest["feature_spec"]["mode"] == "universal"
    work = manifest["work"]
    assert work["pairs_probed"] == manifest["store"]["union_pairs"] > 0
    assert work["pairs_reused"] == 0 and work["blocks_reused"] == 0
    anchors = manifest["anchors"]
    assert anchors["sim00"] == anchors["sim01"]  # one list, fixed with the model
    stored = _store_scores(out / "store").set_index(["source", "target"]).sort_index()
    assert not stored.index.duplicated().any()
    edges = pq.read_table(out / "edges").to_pandas()
    for name, part in edges.groupby("dataset", observed=True):
        mine = part.drop(columns="dataset").set_index(["source", "target"]).sort_index()
        plan = manifest["plan"]["datasets"][name]
        assert len(mine) == plan["pairs"]
        # a join, not a probe: the very bits of the stored scores and logits
        pd.testing.assert_frame_equal(mine, stored.loc[mine.index], check_exact=True)


def test_incremental_build_probes_only_new_blocks_and_equals_a_from_scratch_build(
        clean_run, sim_world, tmp_path):
    """Build 1: one dataset and the first half of the regulators, into a shared --cache.
    Build 2: the clean run's whole configuration with that cache: it probes only the blocks
    build 1 never probed, and its edges and consensus are byte for byte the clean run's."""
    clean_out, _ = clean_run
    clean_manifest = _manifest(clean_out)
    sources = sorted({s for s in pq.read_table(clean_out / "edges", columns=["source"])
                      .column("source").to_pylist()})
    block = clean_manifest["feature_spec"]["source_block"]
    half = sources[: block * (len(sources) // (2 * block))]
    assert 0 < len(half) < len(sources)
    regs = tmp_path / "half.txt"
    regs.write_text("\n".join(half) + "\n")
    cache = tmp_path / "cache"
    first = run_job(_config(sim_world, tmp_path / "first", datasets=("sim00",),
                            regulators=str(regs), cache=str(cache)), log=lambda _m: None)
    assert first.status == "complete"
    first_work = _manifest(tmp_path / "first")["work"]
    assert first_work["pairs_reused"] == 0 and first_work["pairs_probed"] > 0
    assert not (tmp_path / "first" / "store").exists()  # --cache holds it instead

    second_out = tmp_path / "second"
    second = run_job(_config(sim_world, second_out, cache=str(cache)), log=lambda _m: None)
    assert second.status == "complete"
    work = _manifest(second_out)["work"]
    union_pairs = clean_manifest["work"]["pairs_probed"]
    assert work["pairs_reused"] == first_work["pairs_probed"]
    assert work["pairs_probed"] == union_pairs - first_work["pairs_probed"]
    assert work["blocks_reused"] == first_work["blocks_probed"]
    assert _files(second_out, "edges") == _files(clean_out, "edges")
    assert _files(second_out, "consensus") == _files(clean_out, "consensus")


def test_interrupted_after_store_writes_resumes_to_identical_bytes(clean_run, sim_world,
                                                                   tmp_path):
    """A build killed after its store writes, before the joins and the consensus (simulated
    by removing what those steps write), resumes without probing; with the scores gone too,
    it rescores the stored features, and the bytes are still the clean run's."""
    clean_out, _ = clean_run
    out = tmp_path / "run"
    shutil.copytree(clean_out, out)
    for gone in ("edges", "consensus"):
        shutil.rmtree(out / gone)
    (out / "_SUCCESS").unlink()
    result = run_job(_config(sim_world, out), log=lambda _m: None)
    assert result.status == "complete"
    work = _manifest(out)["work"]
    assert work["pairs_probed"] == 0 and work["blocks_probed"] == 0
    assert _files(out, "edges") == _files(clean_out, "edges")
    assert _files(out, "consensus") == _files(clean_out, "consensus")

    for scores in (out / "store").glob("model=*/spec=*/scores"):
        shutil.rmtree(scores)
    shutil.rmtree(out / "edges")
    (out / "_SUCCESS").unlink()
    result = run_job(_config(sim_world, out), log=lambda _m: None)
    work = _manifest(out)["work"]
    assert work["blocks_probed"] == 0 and work["blocks_rescored"] > 0
    assert _files(out, "edges") == _files(clean_out, "edges")
    assert _files(out / "store", ".") == _files(clean_out / "store", ".")


def test_a_store_under_another_key_is_never_read(clean_run, sim_world, tmp_path):
    """The namespace is the model and the spec: another spec has another prefix; a record that
    disagrees with its key is refused in one line, before any work."""
    import dataclasses

    clean_out, _ = clean_run
    prep = prepare(_config(sim_world, tmp_path / "unused"))
    store = ProbeStore(dataclasses.replace(prep.store, uri=str(clean_out / "store")))
    other = ProbeStore(dataclasses.replace(
        prep.store, uri=str(clean_out / "store"),
        spec=dataclasses.replace(prep.spec, context_len=prep.spec.context_len - 1)))
    assert store.root_uri != other.root_uri
    assert store.scored_keys() and not other.scored_keys()
    meta = Path(store.io.path("_store.json"))
    record = json.loads(meta.read_text())
    record["model_sha256"] = "0" * 64
    tampered = tmp_path / "tampered"
    shutil.copytree(clean_out / "store", tampered)
    target = ProbeStore(dataclasses.replace(prep.store, uri=str(tampered)))
    Path(target.io.path("_store.json")).write_text(json.dumps(record))
    with pytest.raises(AtlasgrnError, match="does not match its key"):
        target.claim()


def test_mode_contradicting_the_translator_is_refused(sim_world, tmp_path):
    with pytest.raises(AtlasgrnError, match="--mode context contradicts the translator"):
        prepare(_config(sim_world, tmp_path / "out", mode="context"))
    assert not (tmp_path / "out").exists()
