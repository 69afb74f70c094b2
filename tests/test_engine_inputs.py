"""Bad input fails before any work: one line on stderr, exit 2, no _SUCCESS, nothing removed.
Also: the sink's atomic writes, consensus and CLI options the cluster YAMLs rely on."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from atlasgrn.engine.plan import plan_dataset
from atlasgrn.engine.sink import RunOutput, edges_dataset, edges_table, write_consensus
from atlasgrn.run import main, parser

from .engine_helpers import sim_world  # noqa: F401 - fixture


def _run(capsys, argv) -> tuple[int, str]:
    rc = main(argv)
    return rc, capsys.readouterr().err.strip()


def _common(world) -> list[str]:
    return ["--model", world.model_dir, "--translator", world.translator_dir]


def test_missing_atlas_is_one_line_exit_2(tmp_path, capsys, sim_world):  # noqa: F811
    rc, err = _run(capsys, [str(tmp_path / "nope.zarr"), "--out", str(tmp_path / "o"),
                            *_common(sim_world)])
    assert rc == 2 and len(err.splitlines()) == 1 and "nope.zarr" in err
    assert not (tmp_path / "o").exists()


def test_unknown_dataset_is_one_line_exit_2(tmp_path, capsys, sim_world):  # noqa: F811
    rc, err = _run(capsys, [sim_world.atlas, "--out", str(tmp_path / "o"), "--datasets",
                            "sim00,nosuch", *_common(sim_world)])
    assert rc == 2 and len(err.splitlines()) == 1
    assert "nosuch" in err and "sim00" in err  # names the bad key and the choices
    assert not (tmp_path / "o").exists()


def test_dataset_without_vocabulary_genes_is_one_line_exit_2(tmp_path, capsys,
                                                               sim_world):  # noqa: F811
    from atlasgrn.atlas.writer import DatasetWriter

    atlas = str(tmp_path / "alien.zarr")
    with DatasetWriter(atlas, "alien", [f"XQ{i}" for i in range(5)], species="human",
                       value_kind="counts", source="test") as w:
        w.append(np.ones((3, 5), dtype=np.float32))
        w.commit()
    rc, err = _run(capsys, [atlas, "--out", str(tmp_path / "o"), *_common(sim_world)])
    assert rc == 2 and len(err.splitlines()) == 1
    assert "no gene of dataset 'alien'" in err and "fix:" in err


def test_missing_translator_is_one_line_exit_2(tmp_path, capsys, sim_world):  # noqa: F811
    rc, err = _run(capsys, [sim_world.atlas, "--out", str(tmp_path / "o"), "--model",
                            sim_world.model_dir, "--translator", str(tmp_path / "none")])
    assert rc == 2 and len(err.splitlines()) == 1 and "translator" in err


def test_non_run_directory_is_refused_and_kept(tmp_path, capsys, sim_world):  # noqa: F811
    out = tmp_path / "o"
    out.mkdir()
    (out / "precious.txt").write_text("keep me")
    rc, err = _run(capsys, [sim_world.atlas, "--out", str(out), *_common(sim_world)])
    assert rc == 2 and "not an atlasgrn run" in err
    assert (out / "precious.txt").read_text() == "keep me"
    assert sorted(p.name for p in out.iterdir()) == ["precious.txt"]


def test_block_wider_than_the_context_is_refused(tmp_path, capsys, sim_world):  # noqa: F811
    rc, err = _run(capsys, [sim_world.atlas, "--out", str(tmp_path / "o"), "--context-len",
                            "50", "--target-block", "100", *_common(sim_world)])
    assert rc == 2 and "context" in err and "--target-block" in err


def test_cli_has_the_options_the_cluster_yamls_use():
    args = parser().parse_args(["s3://b/a.zarr", "--out", "s3://b/o", "--replicas", "8",
                                "--gpus-per-replica", "0.5", "--vvp-grid", "1,2,3",
                                "--background", "0.5", "--datasets", "a,b", "--datasets", "c"])
    assert args.replicas == 8 and args.gpus_per_replica == 0.5
    assert args.vvp_grid == (1.0, 2.0, 3.0) and args.background == 0.5
    assert args.datasets == ["a,b", "c"]


# ----------------------------------------------------------------------------- the sink
def _spec_table(ds: str, rng: np.random.Generator):
    spec = plan_dataset(ds, ["A", "B", "C", "D"], ["A", "B"], 2, 4).blocks[0]
    s = np.repeat(np.array(spec.sources, dtype=object), 4)
    t = np.tile(np.array(spec.targets, dtype=object), 2)
    keep = s != t
    n = int(keep.sum())
    return spec, edges_table(spec, s[keep], t[keep], rng.random(n), rng.random(n),
                             rng.random(n))


def test_atomic_write_leaves_no_partial_file_readers_would_see(tmp_path):
    out = RunOutput(str(tmp_path / "run"))
    spec, table = _spec_table("d1", np.random.default_rng(0))
    path = out.edge_path(spec)
    (Path(path).parent).mkdir(parents=True)
    Path(path).with_name(f".{Path(path).name}.tmp-dead").write_bytes(b"partial")
    out.write_table_atomic(path, table)
    assert edges_dataset(out).to_table().num_rows == table.num_rows  # partial file ignored
    assert out.done_blocks([spec]) == {spec.block_id}
    assert out.remove_partial_files() == 1
    assert sorted(p.name for p in Path(path).parent.iterdir()) == [Path(path).name]


def test_edges_table_is_sorted_and_consensus_aggregates_per_pair(tmp_path):
    out = RunOutput(str(tmp_path / "run"))
    rng = np.random.default_rng(1)
    tables = {}
    for ds in ("d1", "d2"):
        spec, table = _spec_table(ds, rng)
        assert table.to_pandas()[["source", "target"]].apply(tuple, axis=1).is_monotonic_increasing
        out.write_table_atomic(out.edge_path(spec), table)
        tables[ds] = table.to_pandas()
    n = write_consensus(out, ["A", "B"], rows_per_part=2)
    cons = pa.concat_tables([__import__("pyarrow.parquet").parquet.read_table(p) for p in
                             sorted((tmp_path / "run" / "consensus").glob("*.parquet"))])
    assert n == cons.num_rows == 6 and len(list((tmp_path / "run" / "consensus").iterdir())) == 2
    both = tables["d1"].merge(tables["d2"], on=["source", "target"])
    df = cons.to_pandas().merge(both, on=["source", "target"])
    np.testing.assert_allclose(df["score_mean"], (df["score_x"] + df["score_y"]) / 2, rtol=1e-6)
    np.testing.assert_allclose(df["score_max"], np.maximum(df["score_x"], df["score_y"]),
                               rtol=1e-6)
    assert (df["n_datasets"] == 2).all()
    write_consensus(out, ["A", "B"], rows_per_part=100)  # fewer parts: stale ones removed
    assert [p.name for p in (tmp_path / "run" / "consensus").iterdir()] == ["part-00000.parquet"]


def test_translator_bundled_absent_is_a_clear_error(monkeypatch, tmp_path):
    import atlasgrn
    from atlasgrn.errors import AtlasgrnError
    from atlasgrn.translator import bundled

    monkeypatch.setattr(bundled, "bundled_translator_dir", lambda: tmp_path / "missing")
    with pytest.raises(AtlasgrnError, match="--translator"):
        atlasgrn.load_translator()


def test_the_job_probes_with_the_settings_the_bundled_translator_was_trained_with():
    """No train/serve skew: `train-translator` records its feature settings under
    provenance["features"]; the job must take background, context and grids from there."""
    import atlasgrn
    from atlasgrn.engine.config import RunConfig
    from atlasgrn.engine.scoring import resolve_probe_settings

    translator = atlasgrn.load_translator()
    trained = translator.provenance["features"]
    model_config = atlasgrn.load_model().config
    got = resolve_probe_settings(RunConfig(atlas="a.zarr", out="o"), model_config, translator)
    assert got.background == trained["background"] == model_config.values.background
    assert got.context_len == trained["context_len"]
    assert list(got.vvp_grid) == trained["vvp_grid"]
    assert list(got.gdt_levels) == trained["gdt_levels"]
    assert got.kinds == ("vvp", "gdt_uniform")
    # an explicit option still wins over the record
    override = resolve_probe_settings(RunConfig(atlas="a.zarr", out="o", background="profile"),
                                      model_config, translator)
    assert override.background == "profile"
