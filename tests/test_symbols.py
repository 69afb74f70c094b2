"""Gene symbol normalisation, duplicates and vocabulary mapping (atlasgrn.atlas.symbols)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from atlasgrn.atlas.symbols import (
    dedupe_index,
    find_duplicates,
    load_vocab,
    map_to_vocab,
    normalize_symbol,
    normalize_symbols,
)
from atlasgrn.errors import AtlasgrnError

SHARED = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"


@pytest.mark.parametrize("raw, expected", [
    ("  TP53 ", "TP53"),
    ("ENSG00000141510.16", "ENSG00000141510"),
    ("ENSMUSG00000059552.4", "ENSMUSG00000059552"),
    ("ENSG00000141510", "ENSG00000141510"),
    ("RP11-34P13.3", "RP11-34P13.3"),  # a clone name with a dot is not a versioned id
    ("C9orf152", "C9orf152"),  # case kept: human symbols may contain lower case
    ("Sox2", "Sox2"),
    ("", ""), ("  ", ""), ("nan", ""), (None, ""), (float("nan"), ""), (b"GATA1", "GATA1"),
])
def test_normalize_symbol_strips_whitespace_and_ensembl_versions_but_keeps_case(raw, expected):
    assert normalize_symbol(raw) == expected


def test_normalize_symbols_returns_object_array_in_input_order():
    out = normalize_symbols([" A ", "ENST00000269305.9", None])
    assert out.dtype == object and out.tolist() == ["A", "ENST00000269305", ""]


def test_find_duplicates_reports_every_position_of_each_repeated_name():
    assert find_duplicates(["A", "B", "A", "C", "B", "A"]) == {"A": [0, 2, 5], "B": [1, 4]}
    assert find_duplicates(["A", "B"]) == {}


def test_dedupe_index_keeps_first_occurrence_order_and_maps_every_column():
    uniques, inverse = dedupe_index(["B", "A", "B", "C", "A"])
    assert uniques.tolist() == ["B", "A", "C"]
    assert inverse.tolist() == [0, 1, 0, 2, 1]
    assert [uniques[i] for i in inverse] == ["B", "A", "B", "C", "A"]


def test_map_to_vocab_prefers_exact_then_upper_case_and_marks_unmapped_minus_one():
    vocab = {"SOX2": 5, "C9orf152": 7, "GATA1": 9, "<pad>": 0}
    m = map_to_vocab(["SOX2", "Sox2", "c9orf152", "Gm12345", "ENSG00000141510.3"], vocab)
    assert m.ids.tolist() == [5, 5, 7, -1, -1]
    assert (m.n_exact, m.n_case_insensitive, m.n_mapped, m.n_unmapped) == (1, 2, 3, 2)
    assert m.unmapped_examples == ("Gm12345", "ENSG00000141510")
    assert ("Sox2", "SOX2") in m.case_mapped_examples
    assert m.fraction_mapped == pytest.approx(0.6)
    assert "3/5 genes mapped" in m.summary()


def test_map_to_vocab_case_collision_picks_smallest_id_whatever_dict_order():
    a = map_to_vocab(["Abc"], {"ABC": 4, "abc": 2})
    b = map_to_vocab(["Abc"], {"abc": 2, "ABC": 4})
    assert a.ids.tolist() == b.ids.tolist() == [2]


def test_load_vocab_reads_json_and_rejects_non_objects(tmp_path):
    good = tmp_path / "vocab.json"
    good.write_text(json.dumps({"A": 1, "B": "2"}))
    assert load_vocab(good) == {"A": 1, "B": 2}
    bad = tmp_path / "list.json"
    bad.write_text("[1, 2]")
    with pytest.raises(AtlasgrnError, match="list.json"):
        load_vocab(bad)
    with pytest.raises(AtlasgrnError, match="missing.json"):
        load_vocab(tmp_path / "missing.json")


@pytest.mark.shared_data
def test_scgpt_vocab_maps_upper_cased_mouse_and_capitalised_mouse_symbols_equally():
    vocab_path = SHARED / "foundation_model_assets" / "scgpt_human" / "vocab.json"
    if not vocab_path.exists():
        pytest.skip(f"shared data not found at {vocab_path}")
    vocab = load_vocab(vocab_path)
    assert len(vocab) == 60697
    upper = ["SOX2", "POU5F1", "NANOG", "GATA1", "GM12345"]
    capital = ["Sox2", "Pou5f1", "Nanog", "Gata1", "Gm12345"]
    mu, mc = map_to_vocab(upper, vocab), map_to_vocab(capital, vocab)
    assert np.array_equal(mu.ids, mc.ids)
    assert mu.n_exact == 4 and mc.n_exact == 0 and mc.n_case_insensitive == 4
    assert mc.ids[-1] == -1


def test_model_layer_and_ingest_report_resolve_every_name_to_the_same_vocabulary_entry():
    """One rule for both layers: a gene must not get one token in the report and another in edges."""
    from atlasgrn.models.vocab import canonical_symbols, map_genes

    # "Abc" ties between two entries sharing an upper-cased key; dict order must not decide.
    vocab = {"ABC": 4, "abc": 2, "SOX2": 5, "ENSG00000141510": 8, "<pad>": 0}
    names = ["Abc", "ABC", "sox2", " SOX2 ", "ENSG00000141510.16", "Gm12345", ""]
    report = map_to_vocab(names, vocab).ids.tolist()
    assert report == [2, 4, 5, 5, 8, -1, -1]
    assert map_genes(vocab, names).tolist() == report
    reversed_vocab = dict(reversed(list(vocab.items())))
    assert canonical_symbols(reversed_vocab, names) == ["abc", "ABC", "SOX2", "SOX2",
                                                        "ENSG00000141510", None, None]


def test_gene_names_never_resolve_to_special_tokens_in_the_model_layer():
    from atlasgrn.models.vocab import map_genes

    assert map_genes({"<pad>": 0, "<cls>": 1, "GATA1": 2}, ["<pad>", "<cls>", "GATA1"]).tolist() \
        == [-1, -1, 2]
