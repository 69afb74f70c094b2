"""Bad input fails before any work: one line on stderr, exit 2, no _SUCCESS, nothing removed.
Also: the output layout's atomic writes, consensus, CLI options the cluster YAMLs rely on, and
the feature contract between the translator and the job."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from atlasgrn.engine.consensus import write_consensus
from atlasgrn.engine.output import (
    RunOutput,
    edges_dataset,
    edges_table,
)
from atlasgrn.engine.plan import plan_dataset
from atlasgrn.run import main, parser

REPO = Path(__file__).resolve().parents[1]


def _run(capsys, argv) -> tuple[int, str]:
    rc = main(argv)
    return rc, capsys.readouterr().err.strip()


def _common(world) -> list[str]:
    return ["--model", world.model_dir, "--translator", world.translator_dir]


def test_missing_atlas_is_one_line_exit_2(tmp_path, capsys, sim_world):
    rc, err = _run(capsys, [str(tmp_path / "nope.zarr"), "--out", str(tmp_path / "o"),
                            *_common(sim_world)])
    assert rc == 2 and len(err.splitlines()) == 1 and "nope.zarr" in err
    assert not (tmp_path / "o").exists()


def test_unknown_dataset_is_one_line_exit_2(tmp_path, capsys, sim_world):
    rc, err = _run(capsys, [sim_world.atlas, "--out", str(tmp_path / "o"), "--datasets",
                            "sim00,nosuch", *_common(sim_world)])
    assert rc == 2 and len(err.splitlines()) == 1
    assert "nosuch" in err and "sim00" in err  # names the bad key and the choices
    assert not (tmp_path / "o").exists()


def test_dataset_without_vocabulary_genes_is_one_line_exit_2(tmp_path, capsys, sim_world):
    from atlasgrn.atlas.writer import DatasetWriter

    atlas = str(tmp_path / "alien.zarr")
    with DatasetWriter(atlas, "alien", [f"XQ{i}" for i in range(5)], species="human",
                       value_kind="counts", source="test") as w:
        w.append(np.ones((3, 5), dtype=np.float32))
        w.commit()
    rc, err = _run(capsys, [atlas, "--out", str(tmp_path / "o"), *_common(sim_world)])
    assert rc == 2 and len(err.splitlines()) == 1
    assert "dataset 'alien'" in err and "vocabulary" in err and "fix:" in err


def test_missing_translator_is_one_line_exit_2(tmp_path, capsys, sim_world):
    rc, err = _run(capsys, [sim_world.atlas, "--out", str(tmp_path / "o"), "--model",
                            sim_world.model_dir, "--translator", str(tmp_path / "none")])
    assert rc == 2 and len(err.splitlines()) == 1 and "translator" in err


def test_non_run_directory_is_refused_and_kept(tmp_path, capsys, sim_world):
    out = tmp_path / "o"
    out.mkdir()
    (out / "precious.txt").write_text("keep me")
    rc, err = _run(capsys, [sim_world.atlas, "--out", str(out), *_common(sim_world)])
    assert rc == 2 and "not an atlasgrn run" in err
    assert (out / "precious.txt").read_text() == "keep me"
    assert sorted(p.name for p in out.iterdir()) == ["precious.txt"]


@pytest.mark.parametrize("option,value,field", [
    ("--context-len", "50", "context_len"), ("--target-block", "100", "target_block"),
    ("--background", "profile", "background"), ("--vvp-grid", "1,2", "vvp_grid")])
def test_an_option_contradicting_the_translators_spec_is_refused(tmp_path, capsys, sim_world,
                                                                  option, value, field):
    rc, err = _run(capsys, [sim_world.atlas, "--out", str(tmp_path / "o"), option, value,
                            *_common(sim_world)])
    assert rc == 2 and len(err.splitlines()) == 1
    assert f"{option} {value}" in err and f"feature_spec.{field}" in err
    assert not (tmp_path / "o").exists()


def test_a_translator_trained_on_another_models_features_is_refused(tmp_path, capsys,
                                                                   sim_world):
    rc, err = _run(capsys, [sim_world.atlas, "--out", str(tmp_path / "o"), "--translator",
                            sim_world.translator_dir])  # bundled model, world's translator
    assert rc == 2 and len(err.splitlines()) == 1
    assert "feature_spec.model_sha256" in err and "train-translator" in err


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
    return spec, edges_table(s[keep], t[keep], rng.random(n),
                             {"vvp": rng.random(n), "gdt_uniform": rng.random(n)})


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
    stale = tmp_path / "run" / "consensus" / "part-00007.parquet"  # an earlier, larger layout
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"old")
    n = write_consensus(out, rows_per_part=100)  # one part: aggregated on the driver
    cons = pa.concat_tables([__import__("pyarrow.parquet").parquet.read_table(p) for p in
                             sorted((tmp_path / "run" / "consensus").glob("*.parquet"))])
    assert n == cons.num_rows == 6
    both = tables["d1"].merge(tables["d2"], on=["source", "target"])
    df = cons.to_pandas().merge(both, on=["source", "target"])
    np.testing.assert_allclose(df["score_mean"], (df["score_x"] + df["score_y"]) / 2, rtol=1e-6)
    np.testing.assert_allclose(df["score_max"], np.maximum(df["score_x"], df["score_y"]),
                               rtol=1e-6)
    assert (df["n_datasets"] == 2).all()
    assert sorted(df["top_k_networks"]) == ["d1,d2"] * 6  # every edge is in its top 50
    assert [p.name for p in (tmp_path / "run" / "consensus").iterdir()] == ["part-00000.parquet"]


def test_translator_bundled_absent_is_a_clear_error(monkeypatch, tmp_path):
    import atlasgrn
    from atlasgrn.errors import AtlasgrnError
    from atlasgrn.translator import bundled

    monkeypatch.setattr(bundled, "bundled_translator_dir", lambda: tmp_path / "missing")
    with pytest.raises(AtlasgrnError, match="--translator"):
        atlasgrn.load_translator()


def test_the_job_serves_the_bundled_translators_feature_spec():
    """No train/serve skew: the job's features are the translator's spec, field for field."""
    import atlasgrn
    from atlasgrn.atlas.bundled import demo_atlas_path
    from atlasgrn.engine.config import RunConfig
    from atlasgrn.engine.job import prepare

    translator = atlasgrn.load_translator()
    prep = prepare(RunConfig(atlas=str(demo_atlas_path()), out="unused", max_regulators=2))
    assert prep.spec == translator.feature_spec
    assert prep.kinds == translator.input_kinds()
    assert all(len(d.anchors) <= prep.spec.context_len for d in prep.datasets)
    assert all(len(set(b.sources) | set(b.targets)) <= prep.spec.context_len
               for b in prep.specs)


def test_main_job_with_a_contradicting_context_len_exits_2_with_one_line(tmp_path):
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-m", "atlasgrn.run", "--context-len", "128",
                           "--out", str(tmp_path / "o")], cwd=REPO, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 2, proc.stderr[-2000:]
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "--context-len 128" in lines[0]
    assert "feature_spec.context_len 256" in lines[0]
    assert not (tmp_path / "o").exists()


def test_an_out_that_is_a_file_is_called_a_file(tmp_path, capsys, sim_world):
    target = tmp_path / "edges.csv"
    target.write_text("a user's file")
    rc, err = _run(capsys, [sim_world.atlas, "--out", str(target), *_common(sim_world)])
    assert rc == 2 and len(err.splitlines()) == 1 and "is a file, not a directory" in err
    assert target.read_text() == "a user's file"


@pytest.mark.parametrize("option,value", [("--replicas", "0"), ("--cpus-per-replica", "0"),
                                          ("--gpus-per-replica", "-1"), ("--retries", "-1")])
def test_an_out_of_range_option_is_named_in_its_remedy(tmp_path, capsys, sim_world, option,
                                                       value):
    rc, err = _run(capsys, [sim_world.atlas, "--out", str(tmp_path / "o"), option, value,
                            *_common(sim_world)])
    assert rc == 2 and len(err.splitlines()) == 1
    assert f"{option} {value} is out of range" in err and f"fix: give {option}" in err
