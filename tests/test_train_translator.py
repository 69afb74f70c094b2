"""``atlasgrn train-translator``: a translator from a prior, stamped with its feature spec."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from atlasgrn.cli import main
from atlasgrn.digest import file_sha256, model_sha256
from atlasgrn.errors import CheckpointError
from atlasgrn.features import FeatureSpec, build_universe, compute_table
from atlasgrn.models import save_model
from atlasgrn.models.testing import tiny_model
from atlasgrn.training import read_prior
from atlasgrn.translator import load_translator_dir

from .bench_toy import random_network
from .conftest import shared_data_path

GENES = [f"G{i}" for i in range(30)]
TFS = GENES[:8]


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("prior")
    model = tiny_model(0, GENES, d_model=16, n_layers=1, d_ff=32)
    save_model(model, base / "model")
    edges = random_network(GENES, TFS, 45, seed=3)
    pd.DataFrame(edges, columns=["source", "target"]).to_csv(base / "prior.csv", index=False)
    # TRRUST-like: tab-separated, no header, extra columns
    pd.DataFrame([(a, b, "Activation", "123") for a, b in edges]).to_csv(
        base / "prior.tsv", sep="\t", index=False, header=False)
    pd.DataFrame(edges, columns=["from_gene", "to_gene"]).to_csv(base / "bad.csv", index=False)
    (base / "genes.txt").write_text("# universe\n" + "\n".join(GENES) + "\n")
    (base / "genes_unknown.txt").write_text("\n".join(GENES + ["NOTAGENE"]) + "\n")
    return {"base": base, "model": base / "model", "prior": base / "prior.csv",
            "tsv": base / "prior.tsv", "bad": base / "bad.csv", "genes": base / "genes.txt",
            "unknown": base / "genes_unknown.txt"}


def _train(files: dict[str, Path], out: str, *extra: str, prior: str = "prior",
           genes: str = "genes") -> int:
    return main(["train-translator", "--model", str(files["model"]), "--prior",
                 str(files[prior]), "--genes", str(files[genes]), "--out",
                 str(files["base"] / out), "--cache", str(files["base"] / "cache"),
                 "--max-epochs", "20", "--threads", "1", *extra])


def test_trains_and_saves_a_checkpoint_with_provenance(files: dict[str, Path]) -> None:
    assert _train(files, "tr") == 0
    meta = json.loads((files["base"] / "tr" / "translator.json").read_text())
    prov = meta["provenance"]
    assert prov["prior"]["sha256"] == file_sha256(files["prior"])
    assert prov["genes"]["sha256"] == file_sha256(files["genes"])
    model = tiny_model(0, GENES, d_model=16, n_layers=1, d_ff=32)
    assert prov["model"]["sha256"] == model_sha256(model)
    assert prov["labels"]["positives"] == 45 and prov["labels"]["pairs"] == 90
    guide = prov["ensemble"]["validation"]
    assert guide["pairs"] > 0 and {r["score"] for r in guide["thresholds"]} >= {0.5}
    assert set(meta["kinds"]) == {"vvp", "gdt_uniform", "gdt_source", "emb_concat", "emb_sum"}
    assert meta["ensemble_kinds"][0] == "vvp" and meta["ensemble_kinds"][1].startswith("gdt_")
    tr = load_translator_dir(files["base"] / "tr")
    spec = tr.feature_spec
    assert spec == FeatureSpec.for_model(model, kinds=tuple(meta["kinds"]))
    assert meta["feature_spec"]["model_sha256"] == model_sha256(model)
    table = compute_table(model, spec, build_universe(model.vocab, GENES, spec), ["G0", "G1"],
                          list(tr.ensemble_kinds))
    feats, ok = table.gather(["G0", "G1"], ["G5", "G9"])
    p = tr.score(feats)
    assert ok.all() and p.shape == (2,) and ((p > 0) & (p < 1)).all()


def test_spec_options_are_recorded_and_served(files: dict[str, Path]) -> None:
    assert _train(files, "tr_ctx", "--context-len", "24", "--source-block", "4",
                  "--target-block", "12") == 0
    spec = load_translator_dir(files["base"] / "tr_ctx").feature_spec
    assert (spec.context_len, spec.source_block, spec.target_block) == (24, 4, 12)


def test_translator_without_a_feature_spec_is_refused_with_how_to_retrain(
        files: dict[str, Path]) -> None:
    assert _train(files, "tr_old") == 0
    path = files["base"] / "tr_old" / "translator.json"
    meta = json.loads(path.read_text())
    del meta["feature_spec"]
    meta["format"] = 1
    path.write_text(json.dumps(meta))
    with pytest.raises(CheckpointError) as err:
        load_translator_dir(path.parent)
    assert "feature_spec" in str(err.value) and "train-translator" in str(err.value)


def test_rerun_uses_the_feature_cache(files: dict[str, Path]) -> None:
    assert _train(files, "tr_a") == 0
    assert _train(files, "tr_b") == 0
    prov = json.loads((files["base"] / "tr_b" / "translator.json").read_text())["provenance"]
    assert prov["feature_cache"] == {"hits": 3, "computed": 0}


def test_headerless_tsv_prior_gives_the_same_labels(files: dict[str, Path]) -> None:
    assert _train(files, "tr_tsv", "--no-header", prior="tsv") == 0
    prov = json.loads((files["base"] / "tr_tsv" / "translator.json").read_text())["provenance"]
    assert prov["labels"]["positives"] == 45


def test_prior_with_missing_columns_is_one_line_exit_2(
        files: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    assert _train(files, "tr_bad", prior="bad") == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "bad.csv" in err and "'source'" in err and "--no-header" in err


def test_genes_not_in_vocab_are_an_error_unless_dropped(
        files: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    assert _train(files, "tr_unk", genes="unknown") == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "NOTAGENE" in err and "--drop-unknown" in err
    assert _train(files, "tr_unk", "--drop-unknown", genes="unknown") == 0
    prov = json.loads((files["base"] / "tr_unk" / "translator.json").read_text())["provenance"]
    assert prov["genes"]["unknown_dropped"] == 1


def test_existing_checkpoint_needs_overwrite(files: dict[str, Path]) -> None:
    assert _train(files, "tr_o") == 0
    assert _train(files, "tr_o") == 2
    assert _train(files, "tr_o", "--overwrite") == 0


def test_reads_trrust_headerless(shared_data: Path) -> None:
    path = shared_data_path("trrust_v2", "trrust_rawdata.human.tsv")
    edges = read_prior(path, header=False)
    assert len(edges) > 8000 and list(edges.columns) == ["source", "target"]
    assert ("AATF", "BAX") in set(zip(edges.source, edges.target))


def test_bundled_translator_was_trained_with_the_bundled_model() -> None:
    """Guard: replacing the bundled model without re-running
    scripts/train_default_translator.py leaves a translator fitted to other features."""
    from atlasgrn.models import load_model

    folder = Path(__file__).resolve().parents[1] / "atlasgrn" / "data" / "translators" / "default"
    if not (folder / "translator.json").exists():
        pytest.skip("no bundled translator yet (scripts/train_default_translator.py)")
    tr = load_translator_dir(folder)
    assert tr.feature_spec.model_sha256 == model_sha256(load_model()), (
        "the bundled model changed: re-run scripts/train_default_translator.py")
    # the shipped read-out is the one the recorded selection rule picked: best on held-out genes
    meta = json.loads((folder / "translator.json").read_text())
    scored = meta["provenance"]["ensemble"]["candidates_unseen_gene_auroc"]
    assert len(scored) >= 3, scored
    assert tr.ensemble_kinds == (max(scored, key=scored.get),)
    assert set(tr.input_kinds()) <= set(tr.feature_spec.kinds)
